"""The Vobiz REST client: transfer a live call, hang up, retrieve a live call, make a call.

Only the live-call endpoints answerkit needs (spec §4). Every failure is an
:mod:`answerkit.errors` exception whose message says what to do; transport
failures are retried only where that is safe (see :mod:`answerkit._retry`).
"""

from __future__ import annotations

import decimal
import http.cookiejar
import logging
import math
import numbers
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal, TypedDict, TypeVar
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Timeout
from urllib3.util.retry import Retry

from answerkit import errors
from answerkit._api_args import (
    PATH_SEGMENT,
    check_call_uuid,
    make_call_body,
    transfer_body,
)
from answerkit._keywords import advise_keywords
from answerkit._retry import RetryPolicy, Sender
from answerkit._retry_answer import Answer
from answerkit._version import installed_version
from answerkit.api_results import CallCreated, LiveCall, TransferResult, text_field, uuid_list

__all__ = [
    "DEFAULT_BASE_URL", "CallCreated", "ClientOptions", "LiveCall", "TransferResult",
    "VobizClient",
]  # fmt: skip

DEFAULT_BASE_URL = "https://api.vobiz.ai/api/v1"
logger = logging.getLogger("answerkit.client")


def _valid_timeout(timeout: object) -> bool:
    """Whether requests can use ``timeout``: seconds > 0, a (connect, read) pair of them, or
    urllib3's own Timeout."""
    if isinstance(timeout, Timeout):
        return True
    values = timeout if isinstance(timeout, tuple) and len(timeout) == 2 else (timeout,)
    return all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t > 0
        for t in values
    )


def _header_unsafe(value: str, *, spaces: bool = False) -> int | None:
    """The index of the first character of ``value`` an HTTP header cannot carry as
    written (anything but printable ASCII; spaces only with ``spaces``), or None."""
    for i, c in enumerate(value):
        if not (c.isascii() and c.isprintable()) or (c == " " and not spaces):
            return i
    return None


def token_flaw(token: str) -> str | None:
    """What keeps ``token`` from being an auth token as written, told without echoing it
    (a character no Vobiz token holds: a byte order mark from a file saved "UTF-8 with
    BOM", a zero-width space copied with it, a space between two tokens), or None."""
    bad = _header_unsafe(token)
    if bad is None:
        return None
    where = f"character {bad + 1} of {len(token)}"
    if token[bad] == " ":
        return f"{where} is a space: give several tokens as a list or comma-separated"
    return (
        f"{where} is not printable ASCII (an invisible character copied with it, or a "
        "byte order mark from a file saved as UTF-8 with BOM); copy the token again from "
        "the Vobiz console"
    )


def _check_numbers(*, whole: bool = True, endless: bool = False, **settings: object) -> None:
    """Refuse a client setting that is not a number of the right kind, 0 or more: each
    would fail deep inside the retry loop or urllib3, on the first request."""
    for name, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, decimal.Decimal)):
            fine = False
        else:
            try:
                number = float(value)  # a Decimal sNaN, an int past float's range: refused
            except (ValueError, OverflowError):
                number = math.nan
            finite = math.isfinite(number) or (endless and number == math.inf)
            fine = (number.is_integer() or not whole) and finite and number >= 0
        if not fine:
            what = "a whole number" if whole else "a number of seconds"
            raise errors.ConfigurationError(f"{name} must be {what}, 0 or more, got {value!r}")


def refuse_cookies(session: requests.Session) -> requests.Session:
    """Make ``session`` keep no cookies: Vobiz's API and webhooks are stateless, and a
    cookie carried from one request to the next would couple unrelated calls."""
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


ENV_BASE_URL = "VOBIZ_BASE_URL"
"""The environment variable read for ``base_url`` when none is passed."""

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _without_userinfo(url: str) -> tuple[str, bool]:
    """``url`` quoted for a message with any ``user:password@`` hidden, and whether it had
    one (read without urlsplit, which refuses some malformed URLs before saying)."""
    scheme, sep, rest = url.partition("://")
    # Up to the query or fragment: a password may hold an unencoded "/" of its own.
    head = rest.split("?", 1)[0].split("#", 1)[0]
    if not sep or "@" not in head:
        return repr(url), False
    return repr(f"{scheme}://***@{rest[head.rindex('@') + 1 :]}"), True


def _unusable_host(base_url: str) -> str | None:
    """Why the transport would refuse ``base_url``'s host on the first request, or None.

    The same checks, made now: requests' own (an IDNA 2008 name; "exa\\u00admple.com", with
    a soft hyphen, is not one), then urllib3's before it connects (no label empty or over
    63 characters). Left to the first request, either failed untyped, or as a broken
    connection that "may have been applied" though nothing was sent.
    """
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(base_url, None)
    except requests.exceptions.RequestException as exc:
        return str(exc)
    host = urlsplit(prepared.url or "").hostname or ""
    try:
        host.encode("idna")
    except UnicodeError:
        return f"a label of {host!r} is empty or longer than 63 characters"
    return None


#: flow.transfer's keywords, which take route names, and what the client takes instead.
_TRANSFER_RENAMED = {
    "aleg": "use aleg_url= (the client takes URLs; flow.transfer takes route names)",
    "bleg": "use bleg_url= (the client takes URLs; flow.transfer takes route names)",
}

#: plivo-python's make_call keywords, and what VobizClient.make_call takes for them.
_MAKE_CALL_RENAMED = {
    "to_": "use to= (plivo's to_ is to here; from_ stays from_)",
    "from": "use from_=",
    "answer_url_method": "use answer_method=",
    "time_limit_seconds": "use time_limit=",
}


_Client = TypeVar("_Client", bound="VobizClient")


class ClientOptions(TypedDict, total=False):
    """VobizClient's options other than the account and the address, for a function that
    makes clients and passes them on (``LocalVobiz.client(**options)``)."""

    timeout: float | tuple[float, float] | Timeout
    max_retries: int
    max_retry_time: float
    backoff: float
    session: requests.Session | None
    pool_maxsize: int
    user_agent: str | None


class VobizClient:
    """A client for the Vobiz live-call REST API.

    Reads ``VOBIZ_AUTH_ID`` and ``VOBIZ_AUTH_TOKEN`` when the credentials are not
    passed, and ``VOBIZ_BASE_URL`` when ``base_url`` is not (an ``http://`` one on a
    loopback host, a local API server such as LocalVobiz, needs no ``allow_http``).
    It keeps one pooled :class:`requests.Session`, so keep one client per process and
    reuse it: a run of transfers then rides one TCP/TLS connection.

    Thread safety: one client may be shared by any number of threads. Calls never
    change shared state: credentials and headers are passed per request, cookies are
    refused, and urllib3's connection pool is thread-safe. It keeps up to
    ``pool_maxsize`` (32) connections per host open between requests, as many as a flow
    runs handlers at once per process; more threads at once than that open (and then
    close) connections of their own.

    Use it as a context manager, or call :meth:`close`. A ``session`` passed in is
    used as is and left open; its own ``verify`` and ``proxies`` win over the
    ``REQUESTS_CA_BUNDLE`` and ``HTTPS_PROXY`` environment variables.
    """

    def __init__(
        self,
        auth_id: str | None = None,
        auth_token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | tuple[float, float] | Timeout = 10.0,
        allow_http: bool = False,
        max_retries: int = 3,
        max_retry_time: float = 30.0,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        pool_maxsize: int = 32,
        user_agent: str | None = None,
    ) -> None:
        auth_id = auth_id if auth_id is not None else os.environ.get("VOBIZ_AUTH_ID")
        token_from_env = auth_token is None
        auth_token = auth_token if auth_token is not None else os.environ.get("VOBIZ_AUTH_TOKEN")
        for name, value in (("auth_id", auth_id), ("auth_token", auth_token)):
            if value is not None and not isinstance(value, str):
                raise errors.ConfigurationError(
                    f"{name} must be text, got {type(value).__name__}"
                    + (" (decode bytes first)" if isinstance(value, bytes) else "")
                    + (
                        " (the client signs in with one token: pass the current one)"
                        if name == "auth_token" and isinstance(value, (list, tuple))
                        else ""
                    )
                )
        # Surrounding whitespace is a copy-paste or a secret file's final newline, as for
        # CallFlow: left in, it makes an invalid header whose error text quotes the token.
        auth_id = auth_id.strip() if isinstance(auth_id, str) else auth_id
        auth_token = auth_token.strip() if isinstance(auth_token, str) else auth_token
        if token_from_env and auth_token and "," in auth_token:
            # Rotation: one VOBIZ_AUTH_TOKEN serves the flow, which verifies webhooks signed
            # with any of its tokens, and this client, which signs in with one: the current
            # token, listed first (VOBIZ_AUTH_TOKEN=new,old). Refused, every transfer failed.
            auth_token = next((t.strip() for t in auth_token.split(",") if t.strip()), "")
        # requests refuses a header value with surrounding whitespace, and only when sending.
        user_agent = user_agent.strip() if isinstance(user_agent, str) else user_agent
        if not auth_id:
            raise errors.ConfigurationError(
                "no Vobiz auth id: set the VOBIZ_AUTH_ID environment variable or pass "
                "VobizClient(auth_id=..., auth_token=...) (to a CallFlow as client=; in "
                "tests, CallSimulator(flow, local_vobiz=LocalVobiz().start()) lends the flow one)"
            )
        if not auth_token:
            raise errors.ConfigurationError(
                "no Vobiz auth token: set the VOBIZ_AUTH_TOKEN environment variable or pass "
                "VobizClient(auth_id=..., auth_token=...) (to a CallFlow as client=; "
                "CallFlow(auth_token=) verifies webhooks only)"
            )
        if not PATH_SEGMENT.fullmatch(auth_id):
            raise errors.ConfigurationError(
                f"auth id {auth_id!r} is not a Vobiz auth id (expected MA_… or SA_…)"
            )
        if "," in auth_token:
            # Given in code, a list is a mistake to name: the REST API takes one token, and
            # sent as is the request would go out and come back 401.
            raise errors.ConfigurationError(
                "auth_token holds a ',': a list of tokens, as a CallFlow takes for rotation; "
                "the REST client signs in with one, so pass auth_token= the current token"
            )
        flaw = token_flaw(auth_token)
        if flaw is not None:
            # Never echo the token: only where the bad character is.
            raise errors.ConfigurationError(f"auth token: {flaw}")
        if user_agent is not None and _header_unsafe(user_agent, spaces=True) is not None:
            raise errors.ConfigurationError(
                f"user_agent must be printable ASCII (an HTTP header value), got {user_agent!r}"
            )
        from_env = base_url is None and bool(os.environ.get(ENV_BASE_URL, "").strip())
        if base_url is None:
            base_url = os.environ.get(ENV_BASE_URL, "").strip() or DEFAULT_BASE_URL
        shown, has_userinfo = _without_userinfo(base_url)  # a password is never echoed
        try:
            parts = urlsplit(base_url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            parts = urlsplit("")  # fails the check below, which names the fix
        if has_userinfo:
            # Not echoed: the userinfo is a secret, and it would reach repr() and every
            # error's url. Vobiz takes credentials in headers only (spec §4.0).
            raise errors.ConfigurationError(
                "base_url must not carry credentials (user:password@host): pass auth_id= "
                "and auth_token=, which travel as the X-Auth-ID/X-Auth-Token headers"
            )
        # A loopback http URL in the environment is its own opt-in: a local API server
        # (LocalVobiz) for an app served as in production, and nothing leaves the host.
        if from_env and parts.hostname in _LOOPBACK:
            allow_http = True
        allowed = ("https", "http") if allow_http else ("https",)
        if parts.scheme not in allowed or not parts.hostname:
            hint = "" if allow_http else " (http only with allow_http=True, for local testing)"
            raise errors.ConfigurationError(
                f"base_url must be an absolute https URL{hint}, got {shown}"
            )
        if "?" in base_url or "#" in base_url:
            # Paths are appended to base_url: after a "?" or "#" they would become part of
            # the query or fragment, and every request would address the API root.
            raise errors.ConfigurationError(
                f"base_url must be the API root without ?query or #fragment, got {shown}"
            )
        bad_host = _unusable_host(base_url)
        if bad_host is not None:
            raise errors.ConfigurationError(
                f"base_url {shown} has no valid host name ({bad_host}): fix its host "
                "(Vobiz's API root is https://api.vobiz.ai/api/v1)"
            )
        if not _valid_timeout(timeout):
            # requests would raise a bare ValueError only when sending, and None (no
            # timeout) would let one stuck request hold the caller's leg forever.
            raise errors.ConfigurationError(
                f"timeout must be seconds > 0, or a (connect, read) pair of them, got {timeout!r}"
            )
        _check_numbers(max_retries=max_retries, pool_maxsize=pool_maxsize)
        _check_numbers(backoff=backoff, whole=False)
        _check_numbers(max_retry_time=max_retry_time, whole=False, endless=True)
        if session is not None and not isinstance(session, requests.Session):
            raise errors.ConfigurationError(
                f"session must be a requests.Session, got {type(session).__name__}"
            )
        try:
            policy = RetryPolicy(int(max_retries), float(max_retry_time), float(backoff))
        except ValueError as exc:
            raise errors.ConfigurationError(str(exc)) from None
        self._auth_id = auth_id
        self._base_url = base_url.rstrip("/")
        self._allow_http = allow_http
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            # Our own loop decides about retries; urllib3 must not retry a POST behind our back.
            adapter = HTTPAdapter(
                pool_connections=4, pool_maxsize=int(pool_maxsize), max_retries=Retry(0, read=False)
            )
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            refuse_cookies(session)
        self._session = session
        self._closed = False
        self._sender = Sender(
            session,
            policy,
            auth_id=auth_id,
            auth_token=auth_token,
            base_url=self._base_url,
            timeout=timeout,
            user_agent=user_agent
            or f"answerkit/{installed_version()} requests/{requests.__version__}",
        )

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def auth_id(self) -> str:
        """The account (``MA_…``) or sub-account (``SA_…``) id requests are made for."""
        return self._auth_id

    @property
    def base_url(self) -> str:
        """The API root, e.g. ``https://api.vobiz.ai/api/v1``."""
        return self._base_url

    def close(self) -> None:
        """Close the pooled connections (a session passed in is left open)."""
        self._closed = True
        if self._owns_session:
            self._session.close()

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VobizClient(auth_id={self._auth_id!r}, base_url={self._base_url!r})"

    # -- endpoints ---------------------------------------------------------------------

    @advise_keywords("VobizClient.transfer", _TRANSFER_RENAMED)
    def transfer(
        self,
        call_uuid: str,
        *,
        legs: str | None = None,
        aleg_url: str | None = None,
        aleg_method: str = "POST",
        bleg_url: str | None = None,
        bleg_method: str = "POST",
    ) -> TransferResult:
        """Move a live call leg (or both) to new XML at a URL.

        ``legs`` is derived from the URLs when left out. Arguments are checked
        before anything is sent (:class:`~answerkit.errors.TransferArgumentError`):
        a URL for each leg named and none for a leg not named (Vobiz would ignore
        it silently), methods GET/POST, absolute https URLs.

        Returns when Vobiz accepted (202); it fetches the URL afterwards, and a leg
        whose URL fails is dropped (cause 7013/8013) with no error here. A 404
        raises :class:`~answerkit.errors.CallNotActiveError`. Retried only when
        nothing reached Vobiz (no connection) or it refused (429, after its
        ``Retry-After``); never after a timeout, a broken connection or a 5xx: the
        transfer may have been applied, and re-running it re-executes the new XML.
        """
        check_call_uuid(call_uuid, transfer=True)
        body = transfer_body(
            legs, (aleg_url, aleg_method), (bleg_url, bleg_method), allow_http=self._allow_http
        )
        answer = self._send("POST", self._call_path(call_uuid), json_body=body, call_uuid=call_uuid)
        if not isinstance(answer.body, dict):
            logger.warning(
                "transfer of %s accepted (%s) but the body was not a JSON object",
                call_uuid,
                answer.status,
            )
            return TransferResult(None, None, (), raw=answer.body)
        raw = answer.body
        uuids = uuid_list(raw.get("call_uuids")) or uuid_list(raw.get("call_uuid"))
        return TransferResult(
            text_field(raw.get("api_id")), text_field(raw.get("message")), uuids, raw
        )

    def hangup(self, call_uuid: str) -> None:
        """Hang up a live call (204). Vobiz then sends the call's hangup webhook.

        Repeated after a 502/503/504; if the first attempt had ended the call, the
        repeat answers 404 and :class:`~answerkit.errors.CallNotActiveError` is raised.
        """
        check_call_uuid(call_uuid)
        self._send("DELETE", self._call_path(call_uuid), call_uuid=call_uuid)

    def get_live_call(self, call_uuid: str) -> LiveCall:
        """Describe a live call; :class:`~answerkit.errors.CallNotActiveError` if it is not live."""
        check_call_uuid(call_uuid)
        path = self._call_path(call_uuid)
        answer = self._send("GET", path, params={"status": "live"}, call_uuid=call_uuid)
        raw = answer.body
        if not isinstance(raw, dict):
            raise errors.APIError(
                f"GET {path} -> {answer.status} but the body is not a JSON object, so the "
                "call cannot be described; retry later",
                status=answer.status,
                body=raw,
                request_id=answer.request_id,
                method="GET",
                url=self._base_url + path,
                call_uuid=call_uuid,
            )
        return LiveCall(
            call_uuid=text_field(raw.get("call_uuid")) or call_uuid,
            call_status=text_field(raw.get("call_status")),
            api_id=text_field(raw.get("api_id")),
            request_uuid=text_field(raw.get("request_uuid")),
            caller_name=text_field(raw.get("caller_name")),
            direction=text_field(raw.get("direction")),
            from_=text_field(raw.get("from")),
            to=text_field(raw.get("to")),
            session_start=text_field(raw.get("session_start")),
            stir_attestation=text_field(raw.get("stir_attestation")),
            stir_verification=text_field(raw.get("stir_verification")),
            raw=raw,
        )

    @advise_keywords("VobizClient.make_call", _MAKE_CALL_RENAMED)
    def make_call(
        self,
        from_: str,
        to: str,
        answer_url: str,
        *,
        answer_method: str = "POST",
        hangup_url: str | None = None,
        hangup_method: str = "POST",
        ring_url: str | None = None,
        ring_method: str = "POST",
        fallback_url: str | None = None,
        fallback_method: str = "POST",
        caller_name: str | None = None,
        time_limit: int | None = None,
        ring_timeout: int | None = None,
        hangup_on_ring: int | None = None,
        send_digits: str | None = None,
        sip_headers: Mapping[str, str] | str | None = None,
        machine_detection: bool | Literal["true", "hangup"] | None = None,
        machine_detection_url: str | None = None,
        machine_detection_method: str = "POST",
        extra: Mapping[str, Any] | None = None,
    ) -> CallCreated:
        """Place an outbound call whose answer webhook is ``answer_url``.

        ``sip_headers`` come back on the webhooks as ``X-PH-<name>``; keys and
        values must be letters and digits. ``machine_detection`` is ``True`` (or
        ``"true"``) or ``"hangup"``; ``False`` or None leaves it off. ``extra``
        passes further documented fields (``machine_detection_time`` …) through
        unchanged, but not the fields of the named arguments. A create is not
        idempotent: it is never retried after a timeout or a 5xx. Bad arguments
        raise :class:`~answerkit.errors.ArgumentError` (a :class:`ValueError`)
        before anything is sent.
        """
        hooks = {
            "answer": (answer_url, answer_method),
            "hangup": (hangup_url, hangup_method),
            "ring": (ring_url, ring_method),
            "fallback": (fallback_url, fallback_method),
            "machine_detection": (machine_detection_url, machine_detection_method),
        }
        numbers = {
            "time_limit": time_limit,
            "ring_timeout": ring_timeout,
            "hangup_on_ring": hangup_on_ring,
        }
        body = make_call_body(
            from_,
            to,
            hooks,
            caller_name=caller_name,
            numbers=numbers,
            send_digits=send_digits,
            sip_headers=sip_headers,
            machine_detection=machine_detection,
            extra=extra,
            allow_http=self._allow_http,
        )
        path = f"/Account/{self._auth_id}/Call/"
        answer = self._send("POST", path, json_body=body)
        raw = answer.body
        if not isinstance(raw, dict):
            logger.warning(
                "make_call accepted (%s) but the body was not a JSON object; "
                "the request uuid is unknown",
                answer.status,
            )
            return CallCreated(None, None, (), raw=raw)
        return CallCreated(
            text_field(raw.get("api_id")),
            text_field(raw.get("message")),
            uuid_list(raw.get("request_uuid")),
            raw,
        )

    def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        call_uuid: str | None = None,
    ) -> Answer:
        if self._closed:
            raise errors.ConfigurationError("this VobizClient is closed; create a new one")
        return self._sender.send(
            method, path, json_body=json_body, params=params, call_uuid=call_uuid
        )

    def _call_path(self, call_uuid: str) -> str:
        # PascalCase and the trailing slash, exactly as the doc pages: a lowercase path
        # answers 401 and a missing slash 401 or 404 depending on the page (§4.0, §6.18).
        return f"/Account/{self._auth_id}/Call/{quote(call_uuid, safe='')}/"
