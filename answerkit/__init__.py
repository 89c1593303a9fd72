"""answerkit: typed VobizXML call flows on Flask, with the Transfer API and a local simulator."""

from __future__ import annotations

from answerkit.errors import (
    AnswerkitError,
    APIError,
    AuthenticationError,
    CallNotActiveError,
    ConfigurationError,
    ElementError,
    ParseError,
    RateLimitedError,
    ServerError,
    StateError,
    TransferArgumentError,
    VobizError,
)

__all__ = [
    "APIError",
    "AnswerkitError",
    "AuthenticationError",
    "CallNotActiveError",
    "ConfigurationError",
    "ElementError",
    "ParseError",
    "RateLimitedError",
    "ServerError",
    "StateError",
    "TransferArgumentError",
    "VobizError",
]
