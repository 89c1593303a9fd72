"""The answerkit logger for code that runs inside a webhook: a log call there must never
change the webhook's answer.

A logging handler of the app's may raise from ``emit`` (a log shipper that is down, a
handler that does not call ``handleError``): through a plain logger that reached the
webhook, and a forged request got the fallback instead of its 403, a failing handler's
error line turned the fallback into a 500, a SQLite file found replaced gave the apology.
Nowhere is left to say that the logging failed, so that alone goes unsaid.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from answerkit.errors import HandlerTimeout

if TYPE_CHECKING:
    _Adapter = logging.LoggerAdapter[logging.Logger]
else:  # generic at run time only from Python 3.11
    _Adapter = logging.LoggerAdapter


class QuietLog(_Adapter):
    """A logger adapter whose every call swallows what the logging itself raises.

    An adapter, so ``debug`` to ``critical``, ``isEnabledFor`` and ``setLevel`` work as on
    the logger, and ``mock.patch.object(log, "warning")`` works in a test."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.getLogger(name), {})

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs  # no extra fields: the records are the logger's own

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.setdefault("stacklevel", _STACKLEVEL)
        try:
            super().log(level, msg, *args, **kwargs)
        except HandlerTimeout:
            raise  # the deadline, struck while a line was logged: it goes on
        except Exception:
            pass


# The record names the caller of warning(), not this frame. From Python 3.11 the logger
# skips logging's own frames (the adapter's warning()) before counting stacklevel, so one
# more is this frame; on 3.10 they count too, one more.
_STACKLEVEL = 2 if sys.version_info >= (3, 11) else 3
