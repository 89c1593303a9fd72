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
import traceback
from typing import TYPE_CHECKING, Any

from answerkit.errors import HandlerTimeout

if TYPE_CHECKING:
    _Adapter = logging.LoggerAdapter[logging.Logger]
else:  # generic at run time only from Python 3.11
    _Adapter = logging.LoggerAdapter


#: Failure log lines show at most this much of an exception's text: one webhook's 20 MB
#: message was written twice (the line and its traceback).
EXC_TEXT_MAX = 2000


def bounded(text: str) -> str:
    """``text`` cut to :data:`EXC_TEXT_MAX` characters, saying how long it was."""
    if len(text) > EXC_TEXT_MAX:
        text = f"{text[: EXC_TEXT_MAX - 40]}... ({len(text)} characters in all)"
    return text


class _BoundedTracebacks(logging.Filter):
    """Gives a record whose exception text is long a traceback with that text bounded: the
    line names the exception briefly, but the traceback a formatter adds repeated its whole
    text (a 20 MB message written in full). Logging's formatters use a record's
    ``exc_text`` as given; ``exc_info`` stays for the handlers that read the exception
    itself. A record with no long text is left alone, for the app's own formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_text is None:
            try:
                parts = traceback.format_exception(*record.exc_info)
            except Exception:  # an exception whose text cannot be made: the formatter's
                return True
            if any(len(part) > EXC_TEXT_MAX for part in parts):
                text = "".join(part if len(part) <= EXC_TEXT_MAX else bounded(part) + "\n"
                               for part in parts)  # fmt: skip
                record.exc_text = text.rstrip("\n")  # as Formatter.formatException has it
        return True


_BOUNDED = _BoundedTracebacks()


class QuietLog(_Adapter):
    """A logger adapter whose every call swallows what the logging itself raises.

    An adapter, so ``debug`` to ``critical``, ``isEnabledFor`` and ``setLevel`` work as on
    the logger, and ``mock.patch.object(log, "warning")`` works in a test."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.getLogger(name), {})
        if _BOUNDED not in self.logger.filters:
            self.logger.addFilter(_BOUNDED)

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
