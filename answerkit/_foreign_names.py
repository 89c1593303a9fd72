"""Plivo's and TwiML's element names asked of the package root (``from answerkit import
GetDigits``): an ImportError that names the VobizXML element to import instead.

Python's own error for a missing name says only "cannot import name"; a developer coming
from plivoxml or twilio's VoiceResponse reaches for the names they know first. The package
root takes this module's ``__getattr__`` (PEP 562), so every other missing name is the
usual AttributeError (and ImportError in a ``from`` import).
"""

from __future__ import annotations

from typing import NoReturn

from answerkit._parse_tree import FOREIGN


def __getattr__(name: str) -> NoReturn:
    why = FOREIGN.get(name)
    if why is None:
        raise AttributeError(f"module 'answerkit' has no attribute {name!r}", name=name)
    # ImportError, not AttributeError: a `from answerkit import GetDigits` would drop an
    # AttributeError's text for its own generic one. hasattr() on these names raises too,
    # which only code that spells a Plivo or TwiML name can meet.
    raise ImportError(f"answerkit has no {name}: {why}", name=name)
