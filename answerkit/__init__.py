"""answerkit: typed VobizXML call flows on Flask, with the Transfer API and a local simulator.

The package root only re-exports; each idea lives in its own module (see the README's
architecture section).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from answerkit._version import installed_version
from answerkit.app import CallFlow
from answerkit.client import CallCreated, LiveCall, TransferResult, VobizClient
from answerkit.dispatch import ErrorHook, Handler, HandlerTimeout, Route
from answerkit.elements import (
    DTMF,
    Conference,
    Dial,
    Element,
    Gather,
    Hangup,
    Number,
    Play,
    PreAnswer,
    Record,
    Redirect,
    Response,
    ResponseChild,
    Speak,
    Stream,
    User,
    Wait,
)
from answerkit.errors import (
    AnswerkitError,
    APIError,
    ArgumentError,
    AuthenticationError,
    CallNotActiveError,
    ConfigurationError,
    ConflictError,
    ConnectError,
    ElementError,
    ForbiddenError,
    NotFoundError,
    ParseError,
    PaymentRequiredError,
    RateLimitedError,
    RetryLater,
    ServerError,
    StateError,
    StateValueError,
    TransferArgumentError,
    TransportError,
    ValidationError,
    VobizError,
)
from answerkit.errors import (
    TimeoutError as TimeoutError,  # importable by name, not by * (see errors.TimeoutError)
)
from answerkit.lint import LintWarning
from answerkit.parse import parse
from answerkit.query import dialed_numbers, find, find_all, spoken_text
from answerkit.request import (
    CallRequest,
    CallStatus,
    DialStatus,
    Event,
    MissingCallUUID,
    StateNotCarried,
)
from answerkit.signature import Verification, redact_headers, sign, verify
from answerkit.ssml import Break, Emphasis, Lang, P, Phoneme, Prosody, S, SayAs, Sub, W
from answerkit.state import CallState, MemoryStore, StateStore
from answerkit.state_urls import open_store

__version__ = installed_version()

# Every type a public function returns or hands to user code is named here too:
# HandlerTimeout reaches on_error hooks and Verification is what verify() returns, and
# users annotate and isinstance-check both.
if not TYPE_CHECKING:  # a type checker sees only the names above
    # `from answerkit import GetDigits` (or Say, Pause...) names the VobizXML element.
    from answerkit._foreign_names import __getattr__ as __getattr__

__all__ = [
    "DTMF",
    "APIError",
    "AnswerkitError",
    "ArgumentError",
    "AuthenticationError",
    "Break",
    "CallCreated",
    "CallFlow",
    "CallNotActiveError",
    "CallRequest",
    "CallState",
    "CallStatus",
    "Conference",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "Dial",
    "DialStatus",
    "Element",
    "ElementError",
    "Emphasis",
    "ErrorHook",
    "Event",
    "ForbiddenError",
    "Gather",
    "Handler",
    "HandlerTimeout",
    "Hangup",
    "Lang",
    "LintWarning",
    "LiveCall",
    "MemoryStore",
    "MissingCallUUID",
    "NotFoundError",
    "Number",
    "P",
    "ParseError",
    "PaymentRequiredError",
    "Phoneme",
    "Play",
    "PreAnswer",
    "Prosody",
    "RateLimitedError",
    "Record",
    "Redirect",
    "Response",
    "ResponseChild",
    "RetryLater",
    "Route",
    "S",
    "SayAs",
    "ServerError",
    "Speak",
    "StateError",
    "StateNotCarried",
    "StateStore",
    "StateValueError",
    "Stream",
    "Sub",
    "TransferArgumentError",
    "TransferResult",
    "TransportError",
    "User",
    "ValidationError",
    "Verification",
    "VobizClient",
    "VobizError",
    "W",
    "Wait",
    "dialed_numbers",
    "find",
    "find_all",
    "open_store",
    "parse",
    "redact_headers",
    "sign",
    "spoken_text",
    "verify",
]
