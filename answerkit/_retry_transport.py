"""A request that got no HTTP answer: what failed, whether anything was sent, and the
typed error that says so.

requests raises one family of exceptions for a refused connection, a timeout, a reset
after sending and a URL it could not even build, and whether the request may be repeated
depends on which (the rules are in :mod:`answerkit._retry`). They are sorted here by the
exception and its chain of causes, apart from the retry loop that acts on the verdict.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.exceptions import LocationValueError, MaxRetryError, NewConnectionError
from urllib3.util.ssl_match_hostname import CertificateError

from answerkit import errors

__all__ = ["TransportFailure", "classify_transport_error"]


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
