"""One attribute of one VobizXML element (:class:`Attr`), the base of every attribute kind.

An :class:`Attr` knows its Python name, its XML name and what it accepts, and it turns a
Python value (construction) or an XML string (parsing) into the one canonical rendered
string, or raises :class:`ElementError` naming the element, the attribute, the value given
and what is allowed. Both paths share one check, so a parsed document is held to the same
rules as a built one. Here too: the fragment `` name="value"`` each path renders, and the
memos that keep the strings a flow repeats from being checked and escaped again.

The kinds refine what a value may be: answerkit/_attributes_choices.py (booleans, integer
ranges, enumerations) and answerkit/_attributes_text.py (patterns, free text, URLs, hints,
key=value lists).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NoReturn

from answerkit._xmltext import (
    bad_xml_char,
    describe_bad_char,
    esc_attr,
    esc_url,
    remember,
    shown,
)
from answerkit.errors import ElementError


def camel(py: str) -> str:
    """``num_digits`` -> ``numDigits``; a trailing ``_`` (``async_``) is dropped."""
    head, *rest = py.rstrip("_").split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


_ESCAPERS: dict[str, Callable[[str], str]] = {"attr": esc_attr, "url": esc_url}


class Attr:
    """One attribute of one element (its table assigns ``element``)."""

    __slots__ = ("element", "escape", "head", "memo", "pos", "py", "read_memo", "xml")
    #: How a rendered value is escaped, for kinds whose values may hold ``& < > "`` etc.
    escaper: ClassVar[str | None] = None
    #: The types of the values a TagMemo may keep for this kind (see there).
    exact: ClassVar[tuple[type, ...]] = (str,)

    def __init__(self, py: str, xml: str | None = None) -> None:
        self.element = ""
        self.py = py
        self.xml = xml if xml is not None else camel(py)
        self.head = f' {self.xml}="'
        self.pos = 0  # index in its table, set by the table
        #: plain str value -> its fragment `` name="escaped"`` (see ``frag``).
        self.memo: dict[str, str] = {}
        #: XML value -> (rendered, fragment), for the parser (see ``read``).
        self.read_memo: dict[str, tuple[str, str]] = {}
        self.escape: Callable[[str], str] | None = _ESCAPERS.get(self.escaper or "")

    def fail(self, value: object, allowed: str | None = None, hint: str = "") -> NoReturn:
        name = self.py if self.py == self.xml else f"{self.py} ({self.xml})"
        raise ElementError(
            f"{self.element}: {name} must be {allowed or self.describe()}, got "
            f"{shown(value)}{hint}",
            element=self.element,
            attribute=self.xml,
            value=value,
        )

    def describe(self) -> str:
        """What the attribute accepts, for error messages."""
        return "a string"

    def check(self, value: object) -> str:
        """Check a Python value; return the rendered string."""
        if not isinstance(value, str):
            self.fail(value)
        return self.check_str(str(value))  # str(): a str subclass renders as plain text

    def check_str(self, value: str) -> str:
        bad = bad_xml_char(value)
        if bad is not None:
            self.fail(value, f"text XML can carry ({describe_bad_char(value, bad)})")
        return value

    def frag(self, value: object) -> str:
        """Check ``value``; return `` name="escaped rendered value"``.

        This is the construction path. A flow uses the same few strings (URLs, caller ids)
        on every request, and checking and escaping one is a pure function of it, so string
        results are memoised (bounded, see ``remember``). A value seen for the first time
        takes ``_compute``, which must be fast on its own: per-call URLs never repeat.
        """
        # Only a plain str is looked up: the memo holds plain strs, and a look-alike (a str
        # subclass with its own __str__ or __eq__) gets the full check.
        f = self.memo.get(value) if type(value) is str else None
        return self._compute(value) if f is None else f

    def _compute(self, value: object) -> str:
        """The fragment for a value not in the memo; memoised if a plain str."""
        v = self.check(value)
        e = self.escape
        f = self.head + (v if e is None else e(v)) + '"'
        return remember(self.memo, value, f) if type(value) is str else f

    def put(self, d: dict[str, str], value: object) -> str:
        """``frag``, also storing the rendered value in ``d`` (SSML nodes keep a dict)."""
        v = d[self.xml] = self.check(value)
        e = self.escape
        return self.head + (v if e is None else e(v)) + '"'

    def parse(self, s: str) -> str:
        """Check an attribute value read from XML; return the rendered string."""
        return self.check_str(s)

    def read(self, s: str) -> tuple[str, str]:
        """``parse``, with the fragment too: what the parser needs, memoised like ``frag``."""
        hit = self.read_memo.get(s)
        if hit is None:
            v = self.parse(s)
            e = self.escape
            hit = remember(self.read_memo, s, (v, self.head + (v if e is None else e(v)) + '"'))
        return hit

    def to_python(self, s: str) -> object:
        """The keyword value that renders as ``s`` (used by ``repr``)."""
        return s
