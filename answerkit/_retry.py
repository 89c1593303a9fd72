"""Sending one Vobiz API request: retried only where safe, failures turned into typed errors.

:class:`Sender` is the REST client's transport. The retry rules follow one
principle: repeat a request only when it certainly had no effect, or when
repeating it cannot change the outcome.

* A connection that was never established (refused, DNS failure, connect
  timeout, an unreachable proxy) sent nothing, so any request may be repeated.
  A certificate that fails verification sent nothing either, but stays failing.
* A 429 means Vobiz refused the request before acting on it, so any request may
  be repeated after the wait it asks for (``Retry-After``).
* A read timeout, a connection reset after sending, any other TLS error (it may
  come while reading the answer), or a 5xx may come after the request was
  applied. A transfer re-runs the new XML and a make-call places a second call,
  so POSTs are never repeated then. A GET changes nothing and is repeated after
  a reset or a 502/503/504; a DELETE only after 502/503/504, which gateways send
  before the call service is reached; either waits as long as a ``Retry-After``
  asks. Timeouts are not repeated at all: each would cost the whole timeout again.
* A request that could not even be built (a host urllib3 refuses to look up) sent
  nothing, and fails the same way every time: it is not repeated.
* Inside a webhook's handler that its deadline gave up (a handler thread the caller no
  longer waits for), no retry is sent, nor waited for once that is known: the caller was
  answered with the fallback, and a late transfer would move a call Vobiz has moved on
  with. HandlerTimeout is raised instead.
"""

from __future__ import annotations

import email.utils
import html
import json
import logging
import math
import os
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.exceptions import LocationValueError, MaxRetryError, NewConnectionError
from urllib3.util import Timeout
from urllib3.util.ssl_match_hostname import CertificateError

from answerkit import errors
from answerkit._deadline import (
    LateTransferRefused,
    handler_thread_given_up,
    sleep_unless_given_up,
)
from answerkit.errors import HandlerTimeout

__all__ = [
    "Answer",
    "RetryPolicy",
    "Sender",
    "TransportFailure",
    "classify_transport_error",
    "parse_retry_after",
]

logger = logging.getLogger("answerkit.client")

#: Statuses an idempotent request is repeated on; a plain 500 may be a bug that repeats.
RETRYABLE_GATEWAY_STATUSES = frozenset({502, 503, 504})

#: The longest single wait before a retry, in seconds, whatever ``max_retry_time`` allows
#: (``inf`` included): a ``Retry-After`` longer than this is an outage or a broken header,
#: and the caller is better told at once than kept waiting (time.sleep itself overflows
#: past about 292 years).
MAX_WAIT = 3600.0

#: The backoff curve's exponent stops growing here: ``2 ** n`` past 1023 is too large for
#: a float, and the curve reached ``backoff_cap`` long before.
_MAX_DOUBLINGS = 64


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on repeating a request: count, total time and the backoff curve."""

    max_retries: int = 3
    max_retry_time: float = 30.0
    backoff: float = 0.5
    backoff_cap: float = 8.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries!r}")
        if self.max_retry_time < 0 or self.backoff < 0 or self.backoff_cap < 0:
            raise ValueError("max_retry_time, backoff and backoff_cap must not be negative")

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry).

        ``Retry-After`` from the server wins over the backoff curve, because
        retrying earlier than asked only earns another 429.
        """
        if retry_after is not None:
            return max(0.0, retry_after)
        doublings = min(retry_number - 1, _MAX_DOUBLINGS)
        return float(min(self.backoff_cap, self.backoff * 2**doublings))

    def allows(self, retry_number: int, wait: float, started: float) -> bool:
        """Whether retry ``retry_number`` after ``wait`` seconds stays inside the bounds:
        the count, the total time, and MAX_WAIT for the one wait."""
        if retry_number > self.max_retries or not wait <= MAX_WAIT:
            return False
        return time.monotonic() + wait - started <= self.max_retry_time


@dataclass(frozen=True)
class TransportFailure:
    """What a requests exception means for us: which error, and whether anything was sent."""

    kind: str  # "unsent" | "connect" | "timeout" | "transport"
    sent: bool
    retryable: bool
    detail: str


#: requests' errors for a request it could not build or address: raised before a
#: connection is made, so nothing was sent.
_UNBUILDABLE = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidJSONError,
    requests.exceptions.URLRequired,
)


def classify_transport_error(
    exc: requests.RequestException | LocationValueError,
) -> TransportFailure:
    """Sort a requests exception (or urllib3's refusal of a host it cannot look up, which
    requests lets through) into unsent / connect / timeout / other transport failure."""
    detail = _describe(exc)
    if isinstance(exc, (LocationValueError, *_UNBUILDABLE)):
        return TransportFailure("unsent", sent=False, retryable=False, detail=detail)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransportFailure("connect", sent=False, retryable=True, detail=detail)
    if isinstance(exc, requests.exceptions.ProxyError):
        # urllib3 says ProxyError only before it has reached the proxy (or its CONNECT
        # tunnel failed): the request never left for Vobiz.
        return TransportFailure("connect", sent=False, retryable=True, detail=f"proxy: {detail}")
    if isinstance(exc, requests.exceptions.SSLError):
        if any(
            isinstance(c, (ssl.SSLCertVerificationError, CertificateError)) for c in _chain(exc)
        ):
            # Checked in the handshake, so nothing was sent; and it does not go away by retrying.
            return TransportFailure("connect", sent=False, retryable=False, detail=detail)
        # Any other TLS error may come after the request went out: a bad record MAC or a
        # garbled record while reading the answer (a connection shared across a fork, a
        # middlebox) arrives as the same SSLError as a failed handshake.
        return TransportFailure("transport", sent=True, retryable=False, detail=detail)
    if isinstance(exc, requests.exceptions.Timeout):
        return TransportFailure("timeout", sent=True, retryable=False, detail=detail)
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        if isinstance(reason, NewConnectionError):
            return TransportFailure("connect", sent=False, retryable=True, detail=detail)
    # A reset or a remote close after the request went out: it may have been applied.
    return TransportFailure("transport", sent=True, retryable=False, detail=detail)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first: requests wraps urllib3, which wraps the
    socket or TLS error (in ``reason`` or in ``args``)."""
    chain = [exc]
    for _ in range(8):
        inner = chain[-1]
        causes = [getattr(inner, "reason", None), *inner.args]
        nxt = next((c for c in causes if isinstance(c, BaseException) and c not in chain), None)
        if nxt is None:
            break
        chain.append(nxt)
    return chain


def _describe(exc: BaseException) -> str:
    """The innermost cause, as ``Type: message``."""
    inner = _chain(exc)[-1]
    return f"{type(inner).__name__}: {inner}"


def parse_retry_after(headers: Mapping[str, str], body: Any) -> float | None:
    """Seconds to wait: ``Retry-After`` (seconds or HTTP date), else ``details.retryAfter``."""
    value = headers.get("Retry-After")
    if value:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):  # year 99999999999999999999
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    if isinstance(body, dict):
        for holder in (body.get("error"), body):
            details = holder.get("details") if isinstance(holder, dict) else None
            if isinstance(details, dict):
                seconds = _seconds(details.get("retryAfter", details.get("retry_after")))
                if seconds is not None:
                    return seconds
    return None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        # float() refuses an int past 1e308: a wait that long is never worth it.
        return max(0.0, float(value)) if abs(value) < 2**1000 else (math.inf if value > 0 else 0.0)
    if isinstance(value, float):
        return max(0.0, value)
    if isinstance(value, str):
        try:
            return max(0.0, float(value.strip()))
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Answer:
    """A 2xx (or, inside the loop, any) HTTP answer: status, parsed body, request id."""

    status: int
    body: Any  # parsed JSON, the text when it is not JSON, None when empty
    headers: Mapping[str, str]
    request_id: str | None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


class Sender:
    """Sends requests for one account on one session; shared by threads, holds no per-call state."""

    def __init__(
        self,
        session: requests.Session,
        policy: RetryPolicy,
        *,
        auth_id: str,
        auth_token: str,
        base_url: str,
        timeout: float | tuple[float, float] | Timeout,
        user_agent: str,
    ) -> None:
        self.session = session
        self.policy = policy
        self.auth_id = auth_id
        self.base_url = base_url
        self._timeout = timeout
        self._pid = os.getpid()
        self._headers = {
            "X-Auth-ID": auth_id,
            "X-Auth-Token": auth_token,
            "Accept": "application/json",
            "User-Agent": user_agent,
        }

    def __repr__(self) -> str:
        return f"Sender(auth_id={self.auth_id!r}, base_url={self.base_url!r})"

    def _forked(self) -> None:
        """In a process forked after the session was used (gunicorn --preload with a
        client used in the master): the parent's keep-alive connections came along, so two
        processes would write to one socket and read each other's answers. They are
        dropped here (closed in this process only); new ones are made as needed."""
        for adapter in list(self.session.adapters.values()):
            # close(): the pools of direct and of proxied connections alike (requests'
            # HTTPAdapter makes new ones on demand after it).
            adapter.close()
        self._pid = os.getpid()

    def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        call_uuid: str | None = None,
    ) -> Answer:
        """Send, retrying where safe; return the 2xx answer or raise a VobizError."""
        if os.getpid() != self._pid:
            self._forked()
        url = self.base_url + path
        headers = dict(self._headers)
        data = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(json_body).encode("utf-8")
        # GET changes nothing, so it may repeat after anything; DELETE only after a
        # gateway status; POST (transfer, create) only when it surely had no effect.
        repeat_sent = method == "GET"
        repeat_statuses = RETRYABLE_GATEWAY_STATUSES if method in ("GET", "DELETE") else frozenset()
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            error: errors.VobizError
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    # requests takes urllib3.Timeout too (HTTPAdapter.send); its stubs omit it
                    timeout=self._timeout,  # type: ignore[arg-type]
                    allow_redirects=False,
                    # Passed explicitly because requests lets REQUESTS_CA_BUNDLE and
                    # HTTPS_PROXY override the session's own settings (psf/requests#3829):
                    # a session given with a private CA or a proxy must keep them.
                    verify=self.session.verify,
                    proxies=dict(self.session.proxies),
                )
            except (requests.RequestException, LocationValueError) as exc:
                failure = classify_transport_error(exc)
                logger.info("%s %s -> %s (attempt %d)", method, path, failure.detail, attempt)
                error = _transport_error(failure, method, url, call_uuid)
                may_retry = failure.retryable or (repeat_sent and failure.kind == "transport")
                wait = self.policy.delay(attempt)
            else:
                answer = _read(response)
                logger.debug(
                    "%s %s -> %d (request id %s, attempt %d)",
                    method,
                    path,
                    answer.status,
                    answer.request_id,
                    attempt,
                )
                if 200 <= answer.status < 300:
                    return answer
                error = self.api_error(answer, method, path, call_uuid)
                may_retry = answer.status == 429 or answer.status in repeat_statuses
                # A 503 may carry Retry-After too (RFC 9110 §10.2.3); retrying sooner than
                # asked only earns another, and a wait past the time bound means no retry.
                retry_after = parse_retry_after(answer.headers, answer.body) if may_retry else None
                wait = self.policy.delay(attempt, retry_after)
            if not may_retry or not self.policy.allows(attempt, wait, started):
                raise error
            _stop_if_handler_given_up(error, method, path, call_uuid)
            logger.warning(
                "%s %s failed (%s); retrying in %.2fs (attempt %d of at most %d)",
                method,
                path,
                type(error).__name__,
                wait,
                attempt + 1,
                self.policy.max_retries + 1,
            )
            # Woken early if the handler asking is given up meanwhile: its handler thread is
            # one of a bounded pool, and a Retry-After may ask for minutes.
            sleep_unless_given_up(wait)
            _stop_if_handler_given_up(error, method, path, call_uuid)

    def api_error(
        self, answer: Answer, method: str, path: str, call_uuid: str | None
    ) -> errors.APIError:
        """The typed error for a non-2xx answer, with a message that says what to do."""
        status, body = answer.status, answer.body
        cls: type[errors.APIError] = errors.APIError
        extra: dict[str, Any] = {}
        if status in (400, 422):
            cls, hint = errors.ValidationError, "fix the parameter Vobiz names"
        elif status == 401:
            cls = errors.AuthenticationError
            hint = (
                f"check the credentials (auth id {self.auth_id}; VOBIZ_AUTH_ID / "
                "VOBIZ_AUTH_TOKEN) and that the path is PascalCase /Account/{auth_id}/Call/…/"
            )
        elif status == 402:
            cls, hint = errors.PaymentRequiredError, "the balance is insufficient: top up"
        elif status == 403:
            cls = errors.ForbiddenError
            hint = "the account may not do this (for calls: the geo permissions)"
        elif status == 404 and call_uuid is not None and not _no_such_route(body):
            cls = errors.CallNotActiveError
            hint = f"call {call_uuid} is not active: it already ended or never existed" + (
                " (a call just placed may still be queued)"
                if method == "GET"
                # Vobiz moves only an answered call: a queued or ringing one is a 404 too.
                else ", or is not answered yet (queued or ringing calls cannot be moved)"
                if method == "POST"
                else " (check with get_live_call())"
            )
        elif status == 404:
            cls = errors.NotFoundError
            hint = (
                "no such API route: check base_url (Vobiz's ends in /api/v1) and that the "
                "path keeps its trailing slash"
                if call_uuid is not None
                else "check base_url and the auth id"
            )
        elif status == 409:
            cls, hint = errors.ConflictError, "the call's state does not allow this now"
        elif status == 429:
            cls = errors.RateLimitedError
            wait = extra["retry_after"] = parse_retry_after(answer.headers, body)
            hint = "rate limited: " + _wait_advice(wait)
        elif status >= 500:
            cls = errors.ServerError
            hint = "Vobiz failed; " + (
                _maybe_applied(call_uuid) if method == "POST" else "retry later"
            )
        elif 300 <= status < 400:
            hint = "Vobiz answered with a redirect; check base_url"
        else:
            hint = "unexpected answer"
        said = _api_message(body) or "no message"
        rid = f" (request id {answer.request_id})" if answer.request_id else ""
        return cls(
            f"{method} {path} -> {status}: {said}. {hint[0].upper()}{hint[1:]}{rid}",
            status=status,
            body=body,
            request_id=answer.request_id,
            method=method,
            url=self.base_url + path,
            call_uuid=call_uuid,
            **extra,
        )


def _wait_advice(wait: float | None) -> str:
    """What to do about a 429 that asked for ``wait`` seconds (None: it did not say)."""
    if wait is None:
        return "back off and retry"
    if wait <= MAX_WAIT:
        return f"wait {wait:g}s and retry"
    # Past the bound nothing was retried; and "wait infs" would tell nobody anything.
    asked = f"a wait of {wait:g}s" if math.isfinite(wait) else "a wait too long to read"
    return (
        f"Vobiz asked for {asked}, more than the {MAX_WAIT:g}s this client ever waits: "
        "treat it as an outage and retry much later"
    )


def _stop_if_handler_given_up(
    error: errors.VobizError, method: str, path: str, call_uuid: str | None
) -> None:
    """Raise HandlerTimeout instead of waiting for or sending a retry, when the webhook
    handler making this request was given up at its deadline (on a handler thread: the
    SIGALRM deadline interrupts the wait itself). Outside a webhook there is no handler,
    and this never raises."""
    if not handler_thread_given_up():
        return
    why = (
        f"its last attempt failed ({type(error).__name__}), and the handler asking for it is "
        "past its deadline: the caller was answered with the fallback. Make REST calls early "
        "in the handler, or raise the flow's deadline"
    )
    if method == "POST" and call_uuid is not None:
        # A POST is retried only when it surely had no effect (no connection, or a 429),
        # so this transfer was not applied: the kind that says nothing was sent.
        raise LateTransferRefused(
            f"transfer of call {call_uuid} not sent again (Vobiz did not act on it): {why}"
        ) from error
    raise HandlerTimeout(f"{method} {path} not sent again: {why}") from error


def _read(response: requests.Response) -> Answer:
    body: Any = None
    if response.content:
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):
            # Malformed JSON is kept as text: the caller gets a typed error or result,
            # never a JSONDecodeError.
            body = response.text
    request_id = None
    if isinstance(body, dict):
        error_part = body.get("error")
        request_id = (
            _text(body.get("requestId"))
            or _text(body.get("request_id"))
            or (_text(error_part.get("requestId")) if isinstance(error_part, dict) else None)
            or _text(body.get("api_id"))
        )
    request_id = request_id or response.headers.get("X-Request-ID")
    return Answer(response.status_code, body, response.headers, request_id)


def _transport_error(
    failure: TransportFailure, method: str, url: str, call_uuid: str | None
) -> errors.TransportError:
    where: dict[str, Any] = {"method": method, "url": url, "call_uuid": call_uuid}
    if failure.kind == "unsent":
        return errors.ConnectError(
            f"could not make the request {method} {url} ({failure.detail}); nothing was "
            "sent. Check base_url (its host must be a valid host name) and any proxy set",
            **where,
        )
    if failure.kind == "connect":
        return errors.ConnectError(
            f"could not connect to Vobiz for {method} {url} ({failure.detail}); nothing was "
            "sent. Check the network and base_url",
            **where,
        )
    applied = _maybe_applied(call_uuid) if method == "POST" else "the request may have been applied"
    if failure.kind == "timeout":
        return errors.TimeoutError(
            f"no answer from Vobiz in time for {method} {url} ({failure.detail}): {applied}",
            **where,
        )
    return errors.TransportError(
        f"the connection broke during {method} {url} ({failure.detail}): {applied}", **where
    )


_HTML = re.compile(r"<(!doctype\s+html|html|head|body)[\s>]", re.IGNORECASE)
# Neither pattern can run past the next "<": a page of many "<" and no ">" costs one pass,
# where "<[^>]*>" rescanned the rest of the page from every "<".
_HTML_TITLE = re.compile(r"<title[^<>]*>([^<]*)<", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^<>]*>")
#: Characters of a text or HTML error body summed up in a message: a gateway's page says
#: what it is near its top, and a multi-megabyte body must not cost more than that.
SUMMARY_CHARS = 8192


def _maybe_applied(call_uuid: str | None) -> str:
    """What to do after a POST that may or may not have taken effect (none is idempotent,
    spec §4.1 and §4.4)."""
    if call_uuid is None:  # a make-call: there is no call to look up yet
        return (
            "a call may have been placed; check your answer and hangup webhooks (or the "
            "call records) before placing it again"
        )
    # The one POST on a call is a transfer, and a moved call is as live as before:
    # get_live_call() cannot tell, and a repeat moves the call a second time.
    return (
        "the transfer may have been applied, and the call is live either way (so "
        "get_live_call() cannot tell): do not repeat it blindly; if it was applied, the "
        "target URL gets the call with Event=Transfer"
    )


def _no_such_route(body: Any) -> bool:
    """True for a 404 from in front of the API rather than from it: the gateway's own
    ``{"message": "Not Found"}`` (spec §4.0) or a web page; these mean the path is wrong.
    Any other body, even a bare ``{"message": "Call not found or already completed"}``,
    is the API saying the call is not live."""
    if isinstance(body, dict):
        message = body.get("message")
        return (
            set(body) == {"message"}
            and isinstance(message, str)
            and message.strip().lower() == "not found"
        )
    return isinstance(body, str) and bool(_HTML.search(body[:2000]))


def _api_message(body: Any) -> str | None:
    """The human message from any of the three error body shapes of spec §4.0, with the
    fields a validation error names; or the gist of a text or HTML error page."""
    if isinstance(body, dict):
        error_part = body.get("error")
        message = None
        if isinstance(error_part, dict):
            message = _text(error_part.get("message")) or _text(error_part.get("code"))
        message = (
            message or _text(error_part) or _text(body.get("message")) or _text(body.get("detail"))
        )
        named = _named_fields(body, message or "")
        if named:
            return f"{message} ({named})" if message else named
        return message
    if isinstance(body, str) and body.strip():
        text = body[:SUMMARY_CHARS]
        if _HTML.search(text[:2000]):
            # A proxy's or gateway's error page: its title says it ("502 Bad Gateway");
            # the first 200 characters of markup would say nothing.
            title = _HTML_TITLE.search(text)
            text = html.unescape(title.group(1) if title else _HTML_TAG.sub(" ", text))
        text = " ".join(text.split())
        return text[:200] + ("…" if len(text) > 200 else "")
    return None


def _named_fields(body: Mapping[str, Any], message: str) -> str | None:
    """What ``details.field`` and ``details.errors[]`` add to ``message`` (422 bodies name
    the failing fields only there, under a generic "Validation failed"), or None."""
    error_part = body.get("error")
    details = (error_part if isinstance(error_part, dict) else body).get("details")
    if not isinstance(details, dict):
        return None
    said: list[str] = []
    field_name = _text(details.get("field"))
    if field_name and field_name not in message:
        said.append(f"field {field_name}")
    items = details.get("errors")
    for item in items[:5] if isinstance(items, list) else ():
        if isinstance(item, dict):
            name = next((v for k in ("field", "param", "path") if (v := _text(item.get(k)))), None)
            text = next((v for k in ("message", "msg", "code") if (v := _text(item.get(k)))), None)
            part = ": ".join(p for p in (name, text) if p)
        else:
            part = _text(item) or ""
        if part and part not in message:
            said.append(part)
    text = "; ".join(said)
    return (text[:300] + ("…" if len(text) > 300 else "")) or None
