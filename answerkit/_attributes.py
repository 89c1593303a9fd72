"""Attribute kinds and the per-element attribute tables of VobizXML (spec §1.2).

Each :class:`Attr` is one attribute of one element. It knows its Python name, its XML
name and what it accepts, and it turns a Python value (construction) or an XML string
(parsing) into the one canonical rendered string, or raises :class:`ElementError`
naming the element, the attribute, the value given and what is allowed. Both paths
share one check, so a parsed document is held to the same rules as a built one.

Tables list the attributes in the spec's table order, which is the rendering order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar, NoReturn

from answerkit._xmltext import (
    MEMO_LIMIT,
    MEMO_MAX_LEN,
    bad_xml_char,
    check_url,
    describe_bad_char,
    esc_attr,
    esc_url,
    fast_url,
    remember,
    shown,
    trim,
)
from answerkit.errors import ElementError


def camel(py: str) -> str:
    """``num_digits`` -> ``numDigits``; a trailing ``_`` (``async_``) is dropped."""
    head, *rest = py.rstrip("_").split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


_ESCAPERS: dict[str, Callable[[str], str]] = {"attr": esc_attr, "url": esc_url}


def attr_string(attrs: dict[str, str], escapers: dict[str, Callable[[str], str]]) -> str:
    """`` name="value"`` for each attribute, in the dict's (table) order."""
    s = ""
    for k, v in attrs.items():
        e = escapers.get(k)
        s += f' {k}="{v if e is None else e(v)}"'
    return s


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


class Hints(Attr):
    """Gather hints: comma-separated phrases, or a sequence of phrases joined with commas."""

    __slots__ = ()
    escaper = "attr"

    def describe(self) -> str:
        return (
            "non-empty comma-separated phrases (at most 500 phrases, 10000 characters in all, "
            "100 characters per phrase)"
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
        if (
            not value
            or len(value) > 10000
            or len(phrases) > 500
            or any(not p.strip() or len(p) > 100 for p in phrases)
        ):
            self.fail(value)
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


class Table(dict[str, Attr]):
    """The attributes of one element keyed by Python name, in rendering order."""

    def __init__(self, element: str, *attrs: Attr) -> None:
        super().__init__()
        self.element = element
        self.by_xml: dict[str, Attr] = {}
        self.index: dict[str, int] = {}
        for i, a in enumerate(attrs):
            a.element = element
            a.pos = i
            self[a.py] = a
            self.by_xml[a.xml] = a
            self.index[a.xml] = i
        self.escapers = {a.xml: a.escape for a in attrs if a.escape is not None}
        #: Python name -> that attribute's bound ``frag``: a plain dict, so a constructor
        #: reaches any of them in one specialised lookup.
        self.frag: dict[str, Callable[[object], str]] = {a.py: a.frag for a in attrs}
