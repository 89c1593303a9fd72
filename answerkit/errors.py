"""Every exception answerkit raises, in one tree.

::

    AnswerkitError
    ├── ElementError (also ValueError)      a VobizXML element, attribute or document is invalid
    │   └── ParseError                      XML text could not be turned into VobizXML (has .line)
    ├── ConfigurationError                  a flow, route or client is set up wrongly
    ├── StateError                          the per-call state store failed or is unreachable
    │   └── StateValueError (ValueError)    a key or value the state cannot keep (a bug)
    ├── RetryLater                          raised by a status handler: Vobiz, send it again
    ├── HandlerTimeout                      a handler ran past the flow's deadline
    ├── ArgumentError (ValueError)          a client argument refused locally, nothing was sent
    │   └── TransferArgumentError           ... of a transfer
    └── VobizError                          talking to the Vobiz REST API failed
        ├── TransportError                  the request did not get an HTTP answer
        │   ├── ConnectError                could not connect (nothing was sent)
        │   └── TimeoutError                no answer in time (may have been applied)
        └── APIError                        Vobiz answered with an error status
            ├── ValidationError             400 / 422: bad parameters
            ├── AuthenticationError         401: credentials, or a wrong-case path
            ├── PaymentRequiredError        402: insufficient balance
            ├── ForbiddenError              403: not allowed (e.g. geo permissions)
            ├── NotFoundError               404: no such resource
            │   └── CallNotActiveError      404 on a call: it ended or never existed
            ├── ConflictError               409
            ├── RateLimitedError            429: has .retry_after
            └── ServerError                 5xx

Every message says what went wrong and what to do about it.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from typing_extensions import Unpack

# TimeoutError is left out: a star import would shadow Python's own (see its docstring).
__all__ = [
    "APIError", "AnswerkitError", "ArgumentError", "AuthenticationError", "CallNotActiveError",
    "ConfigurationError", "ConflictError", "ConnectError", "ElementError", "ForbiddenError",
    "HandlerTimeout", "NotFoundError", "ParseError", "PaymentRequiredError", "RateLimitedError",
    "RetryLater", "ServerError", "StateError", "StateValueError", "TransferArgumentError",
    "TransportError", "ValidationError", "VobizError",
]  # fmt: skip


class AnswerkitError(Exception):
    """Root of every exception answerkit raises.

    Every one pickles (Celery, multiprocessing, logging queues): most take keyword-only
    details that ``args`` does not hold, so an unpickled error is rebuilt without calling
    ``__init__``, from its ``args`` and attributes.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args), self.__dict__)


def _restore(cls: type[AnswerkitError], args: tuple[Any, ...]) -> AnswerkitError:
    exc = cls.__new__(cls)
    exc.args = args
    return exc


class ElementError(AnswerkitError, ValueError):
    """A VobizXML element, attribute or document is invalid.

    The message names the element, the attribute, the value given and what is allowed.
    """

    def __init__(
        self,
        message: str,
        *,
        element: str | None = None,
        attribute: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(message)
        self.element = element
        self.attribute = attribute
        self.value = value


class ParseError(ElementError):
    """XML text could not be parsed into a valid VobizXML document."""

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        element: str | None = None,
        attribute: str | None = None,
        value: object = None,
    ) -> None:
        if line is not None:
            message = f"line {line}: {message}"
        super().__init__(message, element=element, attribute=attribute, value=value)
        self.line = line


class ConfigurationError(AnswerkitError):
    """A flow, route, store or client is configured wrongly."""


class StateError(AnswerkitError):
    """The per-call state store failed or could not be reached."""


class StateValueError(StateError, ValueError):
    """A key or value the per-call state cannot keep: a key that is not text, a value JSON
    cannot carry without loss (a ``Decimal``, a ``datetime``, a set), a counter that holds
    no integer. A bug in the code that wrote it, not a failure of the store: a status
    callback whose handler raises it is not sent again (it would fail the same way)."""


class RetryLater(AnswerkitError):
    """Raise it in a status-callback handler to have Vobiz send the callback again.

    The webhook then answers 503 instead of its empty 200: Vobiz retries a status callback
    that does not get a 200 up to 3 times, with backoff (spec §2.12). The request's
    signature is forgotten by the replay check, so the retry is not refused as a replay.
    Only for status callbacks (their answer is not a document, so no caller is dropped);
    raised by any other handler it is an error like any other (the fallback is served).
    """


class HandlerTimeout(AnswerkitError):
    """A handler ran past the flow's deadline; the fallback document was served."""


class ArgumentError(AnswerkitError, ValueError):
    """An argument was refused locally; nothing was sent to Vobiz. ``field`` names it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TransferArgumentError(ArgumentError):
    """Transfer arguments were refused locally; nothing was sent to Vobiz."""


class VobizError(AnswerkitError):
    """Talking to the Vobiz REST API failed."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        call_uuid: str | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.call_uuid = call_uuid


class TransportError(VobizError):
    """The request got no HTTP answer."""


class ConnectError(TransportError):
    """Could not connect to the API; the request was not sent."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """No answer in time; the request may or may not have been applied.

    Also Python's own ``TimeoutError``, so ``except TimeoutError`` catches it either way.
    Left out of ``answerkit.__all__``: ``from answerkit import *`` would shadow the built-in
    name (a socket's timeout would then go uncaught); import it by name.
    """


class _APIErrorDetails(TypedDict, total=False):
    """APIError's details other than the status, for a subclass that passes them on."""

    body: object
    request_id: str | None
    method: str | None
    url: str | None
    call_uuid: str | None


class APIError(VobizError):
    """Vobiz answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: object = None,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        call_uuid: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url, call_uuid=call_uuid)
        self.status = status
        self.body = body  # the decoded JSON, else the text; a dict for a documented error
        self.request_id = request_id


class ValidationError(APIError):
    """400 or 422: the API refused the parameters."""


class AuthenticationError(APIError):
    """401: wrong credentials, or a path not in PascalCase."""


class PaymentRequiredError(APIError):
    """402: the account balance is insufficient."""


class ForbiddenError(APIError):
    """403: the account may not do this."""


class NotFoundError(APIError):
    """404: no such resource."""


class CallNotActiveError(NotFoundError):
    """404 on a call: it already ended or never existed."""


class ConflictError(APIError):
    """409: the request conflicts with the resource's state."""


class RateLimitedError(APIError):
    """429: too many requests; ``retry_after`` is the wait in seconds, if given."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int = 429,
        **details: Unpack[_APIErrorDetails],
    ) -> None:
        super().__init__(message, status=status, **details)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the API failed; a transfer may or may not have been applied."""
