"""How long to wait before repeating a request, and when to stop: :class:`RetryPolicy`
and the wait a server asks for (:func:`parse_retry_after`).

Which requests may be repeated at all is :class:`~answerkit._retry.Sender`'s rule (see
:mod:`answerkit._retry`); this module only bounds the repeats: their count, their total
time, the backoff curve, and the ``Retry-After`` of a 429 or 503.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_WAIT", "RetryPolicy", "parse_retry_after"]


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
