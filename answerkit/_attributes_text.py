"""Attribute kinds whose values are strings checked by their shape: :class:`Pattern` (a
regular expression), :class:`Text` (free text), :class:`URL`, :class:`Hints` (Gather's
comma-separated phrases) and :class:`KeyValues` (``k=v,k2=v2`` headers).

Imported from :mod:`answerkit._attributes`, which re-exports every kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from answerkit._attributes_base import Attr
from answerkit._xmltext import (
    MEMO_LIMIT,
    MEMO_MAX_LEN,
    check_url,
    fast_url,
    remember,
    shown,
    trim,
)


class Pattern(Attr):
    """A string matching a regular expression (the alphabet check covers XML chars)."""

    __slots__ = ("advice", "maxlen", "regex", "what")

    def __init__(
        self,
        py: str,
        regex: str,
        what: str,
        *,
        maxlen: int = 0,
        xml: str | None = None,
        advice: Callable[[str], str] | None = None,
    ) -> None:
        super().__init__(py, xml)
        self.regex = re.compile(regex)
        self.what = what
        self.maxlen = maxlen
        #: The fix for a refused value, when one can be told (a phone number's E.164 form).
        self.advice = advice

    def describe(self) -> str:
        return self.what

    def check_str(self, value: str) -> str:
        if self.regex.fullmatch(value) is None or (self.maxlen and len(value) > self.maxlen):
            self.fail(value, hint=self.advice(value) if self.advice else "")
        return value


def _no_placeholder(attr: Attr, value: str) -> None:
    """Refuse ``{{...}}`` in a free-text value, as ``check_url`` does in URLs: Vobiz never
    expands templates in attributes (spec §1.0 Placeholders), so a callerName or a hint would
    reach the call as written. A single brace is plain text."""
    if "{{" in value or "}}" in value:
        never = "without {{...}} placeholders (Vobiz never expands them)"
        attr.fail(value, f"{attr.describe()}, {never}")


class Text(Attr):
    """Free text (trimmed), non-empty unless ``empty_ok``, at most ``maxlen`` characters."""

    __slots__ = ("maxlen",)
    escaper = "attr"

    def __init__(self, py: str, maxlen: int = 0, xml: str | None = None) -> None:
        super().__init__(py, xml)
        self.maxlen = maxlen

    def describe(self) -> str:
        limit = f" of at most {self.maxlen} characters" if self.maxlen else ""
        return f"non-blank text{limit}"

    def check_str(self, value: str) -> str:
        v = super().check_str(trim(value))
        if not v or (self.maxlen and len(v) > self.maxlen):
            self.fail(value)
        _no_placeholder(self, v)
        return v


class URL(Attr):
    """An absolute URL with one of ``schemes``; surrounding whitespace is trimmed."""

    __slots__ = ("extra", "fast", "schemes")
    escaper = "url"

    def __init__(
        self,
        py: str,
        schemes: tuple[str, ...] = ("https", "http"),
        extra: tuple[str, ...] = (),
        xml: str | None = None,
    ) -> None:
        super().__init__(py, xml)
        self.schemes = tuple(s + "://" for s in schemes)
        self.extra = extra
        self.fast = fast_url(schemes)

    def describe(self) -> str:
        urls = " or ".join(self.schemes)
        also = "".join(f" or {e!r}" for e in self.extra)
        return f"an absolute {urls} URL{also}"

    def check_str(self, value: str) -> str:
        if value in self.extra:
            return value
        if self.fast(value) is not None:
            return value
        return check_url(self, value, self.schemes)

    def _compute(self, value: object) -> str:
        # The fast regex admits printable ASCII without '"', '<', '>': only '&' needs escaping.
        # This is the path of every per-call URL, so remember() is written out here.
        if type(value) is str and self.fast(value) is not None:
            f = self.head + (value.replace("&", "&amp;") if "&" in value else value) + '"'
            memo = self.memo
            if len(memo) < MEMO_LIMIT and len(value) <= MEMO_MAX_LEN:
                memo[value] = f
            return f
        return super()._compute(value)

    def parse(self, s: str) -> str:
        return s if self.fast(s) is not None else self.check_str(s)

    def read(self, s: str) -> tuple[str, str]:
        # As _compute: a per-call URL read back from a document is new every time.
        hit = self.read_memo.get(s)
        if hit is None:
            if self.fast(s) is None:
                return super().read(s)
            f = self.head + (s.replace("&", "&amp;") if "&" in s else s) + '"'
            hit = remember(self.read_memo, s, (s, f))
        return hit


class Hints(Attr):
    """Gather hints: comma-separated phrases, or a sequence of phrases joined with commas."""

    __slots__ = ()
    escaper = "attr"

    def describe(self) -> str:
        return (
            "non-empty comma-separated phrases (at most 500 phrases, 10000 characters with "
            "the commas, 100 characters per phrase)"
        )

    def check(self, value: object) -> str:
        if isinstance(value, (list, tuple)) and all(type(p) is str for p in value):
            if any("," in p for p in value):
                self.fail(value, "phrases without commas when given as a list")
            value = ",".join(value)
        if type(value) is not str:
            self.fail(value)
        return self.check_str(value)

    def check_str(self, value: str) -> str:
        super().check_str(value)
        phrases = value.split(",")
        if not value:
            self.fail(value)
        # Each limit says which one failed and by how much: the message is the fix. The
        # 10,000 characters are the attribute as sent, separating commas included (the
        # stricter reading of spec §1.2: Vobiz receives the joined string).
        if len(value) > 10000:
            self.fail(value, hint=f" ({len(value)} characters with the commas, over 10000)")
        if len(phrases) > 500:
            self.fail(value, hint=f" ({len(phrases)} phrases, over 500)")
        for n, p in enumerate(phrases, 1):
            if not p.strip():
                self.fail(value, hint=f" (phrase {n} is empty: a doubled or trailing comma?)")
            if len(p) > 100:
                self.fail(
                    value, hint=f" (phrase {n} has {len(p)} characters, over 100: {shown(p)})"
                )
        _no_placeholder(self, value)
        return value


class KeyValues(Attr):
    """``k=v,k2=v2`` (sipHeaders, extraHeaders); a mapping is joined in that form."""

    __slots__ = ("key", "maxbytes", "what")

    def __init__(self, py: str, key: str, what: str, maxbytes: int = 0) -> None:
        super().__init__(py)
        self.key = re.compile(key)
        self.maxbytes = maxbytes
        self.what = what

    def describe(self) -> str:
        limit = f", at most {self.maxbytes} bytes" if self.maxbytes else ""
        return f"'key=value' pairs separated by commas ({self.what}{limit})"

    def check(self, value: object) -> str:
        if isinstance(value, Mapping):
            if not all(type(k) is str and type(v) is str for k, v in value.items()):
                self.fail(value)
            value = ",".join(f"{k}={v}" for k, v in value.items())
        if type(value) is not str:
            self.fail(value)
        return self.check_str(value)

    def check_str(self, value: str) -> str:
        for pair in value.split(","):
            k, eq, v = pair.partition("=")
            if not eq or self.key.fullmatch(k) is None or _ALNUM.fullmatch(v) is None:
                self.fail(value)
        if self.maxbytes and len(value) > self.maxbytes:  # ASCII only, so chars == bytes
            self.fail(value)
        return value


_ALNUM = re.compile("[A-Za-z0-9]+")
