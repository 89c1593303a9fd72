"""SSML markup a ``Speak`` may hold, mixed with plain strings.

``Speak("Hello ", Break(time="500ms"), SayAs("123", interpret_as="spell-out"))`` renders
``<Speak>Hello <break time="500ms"/><say-as interpret-as="spell-out">123</say-as></Speak>``.

The tag set is the one Vobiz's SSML page draws on (Plivo's list, spec §1.2): ``break``,
``emphasis``, ``lang``, ``p``, ``phoneme``, ``prosody``, ``s``, ``say-as``, ``sub``, ``w``.
The spec's list also names ``cont``: it is left out on purpose. In Plivo's SDK it is the
builder's own holder for text that continues after a tag, not SSML markup (neither W3C SSML
nor the Polly voices Vobiz's SSML page names know it), and an unknown tag risks the whole
answer (spec §1.0: invalid XML drops the call). Nesting follows Plivo's SSML builder, at most
:data:`MAX_DEPTH` levels deep. Nodes are immutable once built.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

from answerkit._attributes import Attr, Enum, Pattern, Table, Text, attr_string
from answerkit._xmltext import bad_xml_char, describe_bad_char, esc_text, shown
from answerkit.errors import ElementError

__all__ = ["SSML", "Break", "Emphasis", "Lang", "P", "Phoneme", "Prosody", "S", "SayAs", "Sub", "W"]

#: How deep SSML may nest (a node holding only text is one level). Real prompts use a few
#: levels; the cap keeps every document parseable (lxml refuses a tree over 256 levels) and
#: keeps rendering and ``text`` far from Python's recursion limit.
MAX_DEPTH = 32


class SSML:
    """Base of the SSML nodes; ``text`` is the plain text with the markup removed."""

    __slots__ = ("_attrs", "_content", "_depth")
    tag: ClassVar[str] = ""
    _table: ClassVar[Table]
    #: SSML node classes allowed inside; None means text only, () means no content at all.
    _kids: ClassVar[tuple[type[SSML], ...] | None] = None
    #: Attributes that must be present (XML names).
    _required: ClassVar[tuple[str, ...]] = ()

    _attrs: dict[str, str]
    _content: tuple[str | SSML, ...]
    _depth: int  # levels of SSML in this node, itself included

    def _setup(self, content: Iterable[object], attrs: dict[str, str]) -> None:
        self._attrs = attrs
        kids = self._kids
        depth = 1
        if kids is None:
            self._content = normalize(self.tag, content, ())
            if not any(type(x) is str and x.strip() for x in self._content):
                raise ElementError(f"{self.tag}: text is required", element=self.tag, value=None)
        else:
            self._content = normalize(self.tag, content, kids)
            if not kids and self._content:
                raise ElementError(
                    f"{self.tag}: takes no content, got {shown(self._content[0])}",
                    element=self.tag,
                    value=self._content[0],
                )
            for x in self._content:
                if isinstance(x, SSML) and x._depth >= depth:
                    depth = x._depth + 1
            if depth > MAX_DEPTH:
                raise ElementError(
                    f"{self.tag}: SSML may nest at most {MAX_DEPTH} levels deep, got {depth} "
                    "levels",
                    element=self.tag,
                    value=depth,
                )
        self._depth = depth
        for name in self._required:
            if name not in attrs:
                a = self._table.by_xml[name]
                raise ElementError(
                    f"{self.tag}: {a.py} ({a.xml}) is required",
                    element=self.tag,
                    attribute=a.xml,
                )

    def _put(self, **values: Any) -> dict[str, str]:
        # SSML is rare next to plain text; a generic keyword loop keeps the classes short.
        d: dict[str, str] = {}
        for py, value in values.items():
            if value is not None:
                self._table[py].put(d, value)
        return d

    @classmethod
    def _from_parts(cls, attrs: dict[str, str], content: list[object]) -> SSML:
        """Build from parsed parts (attributes already checked by the table)."""
        node = cls.__new__(cls)
        node._setup(content, attrs)
        return node

    @property
    def attrs(self) -> dict[str, str]:
        """The attributes as rendered, keyed by XML name."""
        return dict(self._attrs)

    @property
    def content(self) -> list[str | SSML]:
        """Strings and nested nodes, in order."""
        return list(self._content)

    @property
    def text(self) -> str:
        """The plain text, markup removed."""
        return plain_text(self._content)

    def render(self) -> str:
        """This node as XML."""
        a = attr_string(self._attrs, self._table.escapers)
        if not self._content:
            return f"<{self.tag}{a}/>"
        return f"<{self.tag}{a}>{render_content(self._content)}</{self.tag}>"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, SSML)
        return self._attrs == other._attrs and self._content == other._content

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        args = [repr(x) for x in self._content]
        for k, v in self._attrs.items():
            a = self._table.by_xml[k]
            args.append(f"{a.py}={a.to_python(v)!r}")
        return f"{type(self).__name__}({', '.join(args)})"


def normalize(
    owner: str, content: Iterable[object], kids: tuple[type[SSML], ...]
) -> tuple[str | SSML, ...]:
    """Check content items; merge adjacent strings and drop empty ones (so parsing agrees)."""
    out: list[str | SSML] = []
    for x in content:
        if isinstance(x, str):
            x = str(x)  # a str subclass is kept as plain text
            if not x:
                continue
            bad = bad_xml_char(x)
            if bad is not None:
                raise ElementError(
                    f"{owner}: text {describe_bad_char(x, bad)}", element=owner, value=x
                )
            if out and type(out[-1]) is str:
                out[-1] += x
            else:
                out.append(x)
        elif isinstance(x, kids):
            out.append(x)
        else:
            names = ", ".join(k.__name__ for k in kids)
            allowed = f"text or SSML ({names})" if kids else "text only"
            raise ElementError(
                f"{owner}: content must be {allowed}, got {shown(x)}", element=owner, value=x
            )
    return tuple(out)


def plain_text(content: Iterable[str | SSML]) -> str:
    return "".join([x if type(x) is str else x.text for x in content])  # type: ignore[union-attr]


def render_content(content: Iterable[str | SSML]) -> str:
    return "".join(
        [esc_text(x) if type(x) is str else x.render() for x in content]  # type: ignore[union-attr]
    )


_LANG_TAG = r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*"


class BreakTime(Attr):
    """``500ms`` or ``2s``, at most 10 seconds."""

    __slots__ = ()

    def describe(self) -> str:
        return "a pause such as '500ms' or '2s', at most 10 seconds"

    _FORM = re.compile("([0-9]{1,5})(ms|s)")

    def check_str(self, value: str) -> str:
        m = self._FORM.fullmatch(value)
        if m is None or int(m[1]) * (1 if m[2] == "ms" else 1000) > 10000:
            self.fail(value)
        return value


class Break(SSML):
    """``<break>``: a pause, by ``time`` or by ``strength``."""

    __slots__ = ()
    tag = "break"
    _table = Table(
        "break",
        BreakTime("time"),
        Enum("strength", ("none", "x-weak", "weak", "medium", "strong", "x-strong")),
    )
    _kids = ()

    def __init__(self, *, time: str | None = None, strength: str | None = None) -> None:
        self._setup((), self._put(time=time, strength=strength))


class Emphasis(SSML):
    """``<emphasis>``: stress the words."""

    __slots__ = ()
    tag = "emphasis"
    _table = Table("emphasis", Enum("level", ("strong", "moderate", "reduced")))

    def __init__(self, *content: str | SSML, level: str | None = None) -> None:
        self._setup(content, self._put(level=level))


class Lang(SSML):
    """``<lang xml:lang="...">``: words in another language."""

    __slots__ = ()
    tag = "lang"
    _table = Table("lang", Pattern("xml_lang", _LANG_TAG, "a language tag", xml="xml:lang"))
    _required = ("xml:lang",)

    def __init__(self, *content: str | SSML, xml_lang: str) -> None:
        self._setup(content, self._put(xml_lang=xml_lang))


class P(SSML):
    """``<p>``: a paragraph."""

    __slots__ = ()
    tag = "p"
    _table = Table("p")

    def __init__(self, *content: str | SSML) -> None:
        self._setup(content, {})


class Phoneme(SSML):
    """``<phoneme>``: pronounce ``text`` as the phonetic ``ph``."""

    __slots__ = ()
    tag = "phoneme"
    _table = Table(
        "phoneme",
        Enum(
            "alphabet",
            (
                "ipa",
                "x-sampa",
                "x-amazon-jyutping",
                "x-amazon-pinyin",
                "x-amazon-pron-kana",
                "x-amazon-yomigana",
            ),
        ),
        Text("ph"),
    )
    _required = ("ph",)

    def __init__(self, text: str, *, ph: str, alphabet: str | None = None) -> None:
        self._setup((text,), self._put(alphabet=alphabet, ph=ph))


class Prosody(SSML):
    """``<prosody>``: rate, pitch and volume."""

    __slots__ = ()
    tag = "prosody"
    _table = Table(
        "prosody",
        Pattern(
            "rate",
            r"x-slow|slow|medium|fast|x-fast|[0-9]{1,3}%",
            "x-slow, slow, medium, fast, x-fast or a percentage such as '80%'",
        ),
        Pattern(
            "pitch",
            r"x-low|low|medium|high|x-high|default|[+-][0-9]{1,3}(?:\.[0-9]+)?%",
            "x-low, low, medium, high, x-high, default or a change such as '+10%'",
        ),
        Pattern(
            "volume",
            r"silent|x-soft|soft|medium|loud|x-loud|default|[+-][0-9]{1,2}(?:\.[0-9]+)?dB",
            "silent, x-soft, soft, medium, loud, x-loud, default or a change such as '+6dB'",
        ),
    )

    def __init__(
        self,
        *content: str | SSML,
        rate: str | None = None,
        pitch: str | None = None,
        volume: str | None = None,
    ) -> None:
        self._setup(content, self._put(rate=rate, pitch=pitch, volume=volume))


class S(SSML):
    """``<s>``: a sentence."""

    __slots__ = ()
    tag = "s"
    _table = Table("s")

    def __init__(self, *content: str | SSML) -> None:
        self._setup(content, {})


class SayAs(SSML):
    """``<say-as>``: how to read ``text`` (digits, a date, spelled out...)."""

    __slots__ = ()
    tag = "say-as"
    _table = Table(
        "say-as",
        Enum(
            "interpret_as",
            (
                "characters", "spell-out", "cardinal", "number", "ordinal", "digits",
                "fraction", "unit", "date", "time", "address", "expletive", "telephone",
            ),
            xml="interpret-as",
        ),
        Enum("format", ("mdy", "dmy", "ymd", "md", "dm", "ym", "my", "d", "m", "y")),
    )  # fmt: skip
    _required = ("interpret-as",)

    def __init__(self, text: str, *, interpret_as: str, format: str | None = None) -> None:
        self._setup((text,), self._put(interpret_as=interpret_as, format=format))


class Sub(SSML):
    """``<sub alias="...">``: say ``alias`` instead of ``text``."""

    __slots__ = ()
    tag = "sub"
    _table = Table("sub", Text("alias"))
    _required = ("alias",)

    def __init__(self, text: str, *, alias: str) -> None:
        self._setup((text,), self._put(alias=alias))


class W(SSML):
    """``<w>``: a word with a part-of-speech ``role``."""

    __slots__ = ()
    tag = "w"
    _table = Table("w", Enum("role", ("amazon:VB", "amazon:VBD", "amazon:NN", "amazon:SENSE_1")))

    def __init__(self, *content: str | SSML, role: str | None = None) -> None:
        self._setup(content, self._put(role=role))


_INLINE = (Break, Emphasis, Lang, Phoneme, Prosody, SayAs, Sub, W)
Emphasis._kids = (Break, Emphasis, Lang, Phoneme, Prosody, SayAs, Sub, W)
Lang._kids = (*_INLINE, P, S)
P._kids = (*_INLINE, S)
Prosody._kids = (*_INLINE, P, S)
S._kids = _INLINE
W._kids = (Break, Emphasis, Phoneme, Prosody, SayAs, Sub)

#: Everything a Speak may hold besides plain strings.
SPEAK_SSML: tuple[type[SSML], ...] = (*_INLINE, P, S)
#: SSML tag -> class, for the parser.
SSML_TAGS: dict[str, type[SSML]] = {c.tag: c for c in SPEAK_SSML}
