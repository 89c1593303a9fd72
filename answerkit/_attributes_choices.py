"""Attribute kinds whose values come from a closed set: :class:`Bool`, :class:`Int` (an
integer range), :class:`Enum` and :class:`Method` (a list of words), and
:class:`EndTimeout` (2 to 10 seconds, or 'auto').

Imported from :mod:`answerkit._attributes`, which re-exports every kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

from answerkit._attributes_base import Attr


def _as_given(value: object, what: str) -> str:
    """Advice for a value given as text where a Python value is meant (``"true"``)."""
    return f" (pass {what}, not the string {value!r})" if isinstance(value, str) else ""


class Bool(Attr):
    __slots__ = ("no", "yes")
    exact = (bool,)

    def __init__(self, py: str, xml: str | None = None) -> None:
        super().__init__(py, xml)
        self.yes = self.head + 'true"'
        self.no = self.head + 'false"'

    def describe(self) -> str:
        return "True or False"

    def check(self, value: object) -> str:
        if value is True:
            return "true"
        if value is False:
            return "false"
        self.fail(value, hint=_as_given(value, "True or False"))

    def frag(self, value: object) -> str:
        # Identity, not equality: 1 and 1.0 are not booleans.
        if value is True:
            return self.yes
        if value is False:
            return self.no
        self.fail(value, hint=_as_given(value, "True or False"))

    def parse(self, s: str) -> str:
        if s == "true" or s == "false":
            return s
        self.fail(s, "'true' or 'false'")

    def to_python(self, s: str) -> object:
        return s == "true"


class Int(Attr):
    """An integer from ``lo`` to ``hi``; without ``hi``, up to 2**63 - 1 (a signed 64-bit
    integer, what a platform's parser can hold).

    Building and parsing accept the same values: an XML value is ASCII digits, leading zeros
    allowed (``"007"`` renders as ``"7"``), and no sign (no bound here is below 0).
    """

    __slots__ = ("frags", "hi", "lo", "texts", "width")
    exact = (int,)

    def __init__(self, py: str, lo: int, hi: int | None = None, xml: str | None = None) -> None:
        super().__init__(py, xml)
        if lo < 0:
            raise ValueError("Int: the parser reads no sign, so lo must be >= 0")
        self.lo = lo
        # An unbounded range still gets a bound so the hot check is one chained comparison.
        self.hi = hi if hi is not None else _NO_LIMIT
        #: The most digits an accepted value has: longer digit strings are refused unread.
        self.width = len(str(self.hi))
        # Fragments of the small values people actually write (numDigits=1, loop=0...).
        self.frags = {i: f'{self.head}{i}"' for i in range(lo, min(self.hi, lo + 100) + 1)}
        self.texts = frozenset(str(i) for i in self.frags)

    def describe(self) -> str:
        if self.hi != _NO_LIMIT:
            return f"an integer from {self.lo} to {self.hi}"
        return f"an integer >= {self.lo}" if self.lo <= 0 else f"an integer > {self.lo - 1}"

    def refuse(self, value: object, big: bool, built: bool = True) -> NoReturn:
        """``fail``, saying where the hidden bound of an unbounded range is when it is hit
        (``built``: the value was given to a constructor, so text is worth a word)."""
        if big and self.hi == _NO_LIMIT:
            self.fail(value, f"{self.describe()} and at most {self.hi} (2**63 - 1)")
        text = value.strip() if isinstance(value, str) and built else ""
        number = (
            text.isascii()
            and text.isdigit()
            and len(text) <= 20
            and self.lo <= int(text) <= self.hi
        )
        self.fail(value, hint=_as_given(value, f"the number {text}") if number else "")

    def check(self, value: object) -> str:
        # type() rather than isinstance(): True/False are ints and must not pass.
        if type(value) is int and self.lo <= value <= self.hi:
            return str(value)
        self.refuse(value, type(value) is int and value > self.hi)

    def frag(self, value: object) -> str:
        # type() rather than isinstance(): True/False are ints and must not pass (and would
        # find the fragments of 1 and 0).
        if type(value) is int:
            f = self.frags.get(value)
            if f is not None:
                return f
            if self.lo <= value <= self.hi:
                return f'{self.head}{value}"'
        self.refuse(value, type(value) is int and value > self.hi)

    def parse(self, s: str) -> str:
        if s in self.texts:
            return s
        if s.isascii() and s.isdigit():
            t = s.lstrip("0") or "0"
            # int() only of what can be in range; canonical form: "007" renders as "7"
            if len(t) <= self.width and self.lo <= int(t) <= self.hi:
                return str(int(t))
            self.refuse(s, len(t) > self.width or int(t) > self.hi, built=False)
        self.fail(s)

    def to_python(self, s: str) -> object:
        return int(s)


_NO_LIMIT = 2**63 - 1


class Enum(Attr):
    __slots__ = ("choices",)

    def __init__(self, py: str, choices: Iterable[str], xml: str | None = None) -> None:
        super().__init__(py, xml)
        self.choices = tuple(choices)
        # The memo holds every accepted value: membership and rendering in one lookup, and
        # nothing is ever added (on a miss, _compute checks: a str subclass of a choice passes,
        # and is not kept; anything else is an error).
        self.memo = {c: f'{self.head}{c}"' for c in self.choices}

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def check(self, value: object) -> str:
        if isinstance(value, str):
            v = str(value)  # what renders is what is checked (a str subclass may differ)
            if v in self.memo:
                return v
        self.fail(value, hint=self.case_hint(value))

    def parse(self, s: str) -> str:
        if s in self.memo:
            return s
        self.fail(s, hint=self.case_hint(s))

    def case_hint(self, value: object) -> str:
        """Advice for a choice spelt in another case or with spaces around (``post``)."""
        if isinstance(value, str):
            for choice in self.choices:
                if choice.lower() == value.strip().lower():
                    return f" (did you mean {choice!r}? the values are case-sensitive)"
        return ""


class Method(Enum):
    __slots__ = ()

    def __init__(self, py: str) -> None:
        super().__init__(py, ("GET", "POST"))


class EndTimeout(Attr):
    """digitEndTimeout / speechEndTimeout: 2-10 seconds, or 'auto'."""

    __slots__ = ()
    exact = (int, str)

    def describe(self) -> str:
        return "an integer from 2 to 10 (or the same as a string), or 'auto'"

    _OK = frozenset(["auto", *(str(i) for i in range(2, 11))])

    def check(self, value: object) -> str:
        if type(value) is int and 2 <= value <= 10:
            return str(value)
        if type(value) is str and value in self._OK:
            return value
        self.fail(value)

    def parse(self, s: str) -> str:
        return self.check(s)

    def to_python(self, s: str) -> object:
        return s if s == "auto" else int(s)
