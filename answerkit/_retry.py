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

The loop's parts live beside it: the bounds on waiting and repeating in
:mod:`answerkit._retry_policy`, what a requests exception means (was anything sent?) in
:mod:`answerkit._retry_transport`, and reading an answer's body, request id and error
message in :mod:`answerkit._retry_answer`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import requests
from urllib3.exceptions import LocationValueError
from urllib3.util import Timeout

from answerkit import errors
from answerkit._deadline import (
    LateTransferRefused,
    handler_thread_given_up,
    sleep_unless_given_up,
)
from answerkit._retry_answer import Answer, _api_message, _no_such_route, _read
from answerkit._retry_policy import MAX_WAIT
from answerkit._retry_policy import RetryPolicy as RetryPolicy
from answerkit._retry_policy import parse_retry_after as parse_retry_after
from answerkit._retry_transport import _maybe_applied, _transport_error, classify_transport_error
from answerkit.errors import HandlerTimeout

__all__ = ["RetryPolicy", "Sender", "parse_retry_after"]

logger = logging.getLogger("answerkit.client")

#: Statuses an idempotent request is repeated on; a plain 500 may be a bug that repeats.
RETRYABLE_GATEWAY_STATUSES = frozenset({502, 503, 504})


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
        elif status == 405:
            hint = (
                f"the API takes no {method} at this path: check base_url (Vobiz's ends in "
                "/api/v1) and the path (PascalCase, with its trailing slash)"
            )
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
