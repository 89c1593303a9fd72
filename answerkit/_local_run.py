"""Whether a local command (``answerkit call``, ``check``, ``routes``) is running.

Such a command stands in what it needs (a token, a public URL, memory state, a local Vobiz
API's client), so the start-up warnings about production settings (no REST credentials, a
state directory that is missing) would be false there: they are kept for real serving.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0


def active() -> bool:
    """True inside :func:`local_run`."""
    return _depth > 0


@contextmanager
def local_run() -> Iterator[None]:
    """Mark the code inside as a local command's (nestable)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
