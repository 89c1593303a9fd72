"""The base of every VobizXML element: reading API, equality, repr and rendering plumbing.

Elements render at construction: a leaf is immutable, so its compact XML (``_x``) is final;
a container (Gather, Dial, PreAnswer) keeps its start tag (``_open``) and renders too, and
drops ``_x`` when a child is added. A Response never caches, since a nested container may
still change, but it only joins its children's strings.

Constructors build only those strings. The attribute dict of the reading API (``_attrs``) is
read back from the start tag the first time something asks for it: rendering is what every
webhook does, reading attributes is what tests and lint do.

Document rules are checked by ``Response.to_xml`` through ``_r``, a rule code each element
carries (see :data:`RULE_LAST`...). Response counts the non-zero codes as children arrive (a
class without codes, Speak, is not even read), so a valid document costs one integer test;
``_rule`` gives the message once something is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from answerkit._attributes import Table, attr_string
from answerkit._tables import EMPTY, TEXTS
from answerkit._xmltext import esc_text, shown, unescape, xml_blank
from answerkit.errors import ElementError

_E = TypeVar("_E", bound="Element")
# The children a container takes (Response: ResponseChild, Gather: Speak | Play, ...), so
# that its ``children`` rebuild another: ``Response(Speak("Hi"), *menu.children)``.
_Child = TypeVar("_Child", bound="Element", covariant=True)
_DECL = '<?xml version="1.0" encoding="UTF-8"?>'
#: Vobiz refuses answers over 100 KB; read as 100,000 bytes, the stricter reading.
MAX_BYTES = 100_000
_NOATTRS: dict[str, str] = {}  # shared by attribute-less elements; never mutated

#: Rule codes (``Element._r``). A code is conservative: it may send a valid element to the
#: full check (``_rule``), never let a broken one through.
RULE_NONE = 0
RULE_LAST = 1  # must be the last child of Response (Redirect; Hangup without schedule)
RULE_FIRST = 2  # must be the first child (PreAnswer)
RULE_CHECK = 3  # ask _rule: the element's own rule fails (or may: a Dial with nothing to dial)

# One rendered attribute: values are escaped, so they hold no '"'.
_ATTR = re.compile(r' ([^=]+)="([^"]*)"')


def attrs_of(start: str) -> dict[str, str]:
    """The attributes of a start tag this library rendered, unescaped, in their order."""
    return {k: unescape(v) for k, v in _ATTR.findall(start)}


class Element:
    """Base of every VobizXML element.

    Reading API: ``tag``, ``attrs`` (rendered strings keyed by XML name), ``get(name)``
    (XML or snake_case name), ``children``, ``text``. Elements compare by structure.
    """

    __slots__ = ("_attrs", "_x")
    tag: ClassVar[str] = ""
    _table: ClassVar[Table] = EMPTY
    _kid_order: ClassVar[tuple[type[Element], ...]] = ()
    _kids: ClassVar[frozenset[type[Element]]] = frozenset()
    #: The rule code: a class constant here; classes whose rule depends on the instance
    #: (Gather, Hangup, Dial, Wait, Stream) give it a slot of the same name.
    _r: int = RULE_NONE

    _attrs: dict[str, str]  # unset until _a() reads the start tag back (or a parser sets it)
    _x: str | None  # this element's compact XML, once rendered

    def _a(self) -> dict[str, str]:
        """The given attributes as rendered, keyed by XML name, in table order."""
        try:
            return self._attrs
        except AttributeError:
            a = self._attrs = attrs_of(self._start())
            return a

    def _start(self) -> str:
        """The start tag as rendered (up to its ``>``): a leaf always has its ``_x``."""
        x = self._x or self._render()
        return x[: x.index(">")]

    @property
    def attrs(self) -> dict[str, str]:
        """The given attributes as rendered (``"true"``, ``"1"``...), keyed by XML name."""
        return dict(self._a())

    def get(self, name: str, default: str | None = None) -> str | None:
        """An attribute's rendered value by XML name (``numDigits``) or Python name."""
        attrs = self._a()
        v = attrs.get(name)
        if v is None:
            a = self._table.get(name)
            if a is not None:
                v = attrs.get(a.xml)
        return default if v is None else v

    @property
    def children(self) -> list[Element]:
        """The child elements, in order (a copy)."""
        return []

    @property
    def text(self) -> str | None:
        """The text content (for Speak with SSML, the plain text), or None."""
        return None

    if not TYPE_CHECKING:  # a leaf has no add() a type checker would offer

        def add(self, child):
            """Refused: this element takes no child elements (containers have their own)."""
            raise ElementError(
                f"{self.tag}: takes no child elements", element=self.tag, value=child
            )

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _key(self) -> tuple[object, ...]:
        return (self._a(),)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return type(other) is type(self) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def _args(self) -> list[str]:
        return []

    def __repr__(self) -> str:
        args = self._args()
        for k, v in self._a().items():
            a = self._table.by_xml[k]
            args.append(f"{a.py}={a.to_python(v)!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    def __str__(self) -> str:
        """This element as an XML fragment (a Response gives the whole document)."""
        return self._x or self._render()

    def _astr(self) -> str:
        a = self._a()
        return attr_string(a, self._table.escapers) if a else ""

    def _render(self) -> str:
        x = self._x = f"<{self.tag}{self._astr()}/>"
        return x

    def _pretty(self, out: list[str], depth: int) -> None:
        out.append("  " * depth + (self._x or self._render()))

    def to_xml(self, pretty: bool = False) -> str:
        """Only a Response is a document; see :meth:`Response.to_xml`."""
        raise ElementError(
            f"{self.tag}: only a Response can be rendered as a document; "
            f"wrap it: Response({type(self).__name__}(...))",
            element=self.tag,
        )

    def _rule(self, index: int, last: int) -> str | None:
        """The document rule this element breaks at ``index`` of Response, if any."""
        return None

    @classmethod
    def _blank(cls: type[_E], attrs: dict[str, str]) -> _E:
        """An instance with only its checked attributes set, for ``_parsed`` to fill in
        (the parser has checked everything the constructor would)."""
        el = cls.__new__(cls)
        el._attrs = attrs
        return el

    @classmethod
    def _parsed(
        cls, attrs: dict[str, str], start: str, text: str | None, kids: Sequence[object]
    ) -> Element:
        """Parser path: build from checked attributes (and their start tag, ``<Tag a="1"``),
        raw text and built children.

        Each family overrides this with its own text and children checks, the same ones
        its constructors apply, without a second call per element.
        """
        if (text and not xml_blank(text)) or kids:
            what = shown(text) if text and not xml_blank(text) else type(kids[0]).__name__
            raise ElementError(f"{cls.tag}: takes no text or children, got {what}", element=cls.tag)
        el = cls._blank(attrs)
        el._x = start + "/>"
        el._ruled_from_attrs()
        return el

    def _ruled_from_attrs(self) -> None:
        """Set the rule code of a parsed element (its constructor sets it otherwise)."""


def cannot_contain(parent: type[Element], tag: str) -> ElementError:
    """The error for a ``tag`` child that ``parent`` does not allow."""
    names = ", ".join(k.__name__ for k in parent._kid_order) or "none"
    hint = ""
    if tag == "Record" and parent.tag == "Dial":
        hint = " (spec §6 item 7: put Record(record_session=True) before the Dial)"
    return ElementError(
        f"{parent.tag}: cannot contain {tag}; allowed children: {names}{hint}",
        element=parent.tag,
        value=tag,
    )


def _reject(parent: Element, child: object) -> ElementError:
    if isinstance(child, Element):
        return cannot_contain(type(parent), child.tag)
    names = ", ".join(k.__name__ for k in parent._kid_order) or "none"
    hint = ""
    if isinstance(child, str):
        hint = (
            "; wrap a number in Number(...)"
            if parent.tag == "Dial"
            else "; wrap text in Speak(...)"
        )
    return ElementError(
        f"{parent.tag}: children must be elements ({names}), got {shown(child)}{hint}",
        element=parent.tag,
        value=child,
    )


class _Container(Element, Generic[_Child]):
    __slots__ = ("_children", "_open")
    _children: list[_Child]
    _open: str  # "<Tag" plus the rendered attributes
    _close: ClassVar[str]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls._close = f"</{cls.tag}>"

    def _take(self, children: Sequence[object]) -> None:
        kids = self._kids
        for c in children:
            if type(c) not in kids and not isinstance(c, self._kid_order):
                raise _reject(self, c)
        self._children = list(children)  # type: ignore[arg-type]

    @property
    def children(self) -> list[_Child]:  # type: ignore[override]
        # Element's is list[Element]; a list is invariant, but this one is a copy the
        # container never sees again, so nothing put into it can break the container.
        return list(self._children)

    def __copy__(self: _E) -> _E:
        # copy.copy's default would share the child list: an add() to the copy would change
        # the original too, whose render cache and rule count would not know (stale XML,
        # rules unchecked). Children themselves are shared, as in any shallow copy.
        new = object.__new__(type(self))
        for klass in type(self).__mro__:
            for slot in getattr(klass, "__slots__", ()):
                if hasattr(self, slot):  # not set: the attribute dict, until read
                    setattr(new, slot, getattr(self, slot))
        if hasattr(self, "__dict__"):  # a subclass of the user's, with attributes of its own
            new.__dict__.update(self.__dict__)
        new._children = list(new._children)  # type: ignore[attr-defined]
        return new

    def _append(self, child: Element) -> None:
        """``add`` of each container, typed there to the children it takes."""
        if type(child) not in self._kids and not isinstance(child, self._kid_order):
            raise _reject(self, child)
        self._children.append(child)  # type: ignore[arg-type]  # checked just above
        self._x = None

    def _start(self) -> str:
        return self._open

    def _key(self) -> tuple[object, ...]:
        return (self._a(), self._children)

    def _args(self) -> list[str]:
        return [repr(c) for c in self._children]

    def _render(self) -> str:
        ch = self._children
        if not ch:
            x = self._x = self._open + "/>"
            return x
        x = self._open + ">"
        for c in ch:
            x += c._x or c._render()
        x = self._x = x + self._close
        return x

    def _pretty(self, out: list[str], depth: int) -> None:
        if not self._children:
            return Element._pretty(self, out, depth)
        pad = "  " * depth
        out.append(f"{pad}{self._open}>")
        for c in self._children:
            c._pretty(out, depth + 1)
        out.append(pad + self._close)

    @classmethod
    def _parsed(
        cls, attrs: dict[str, str], start: str, text: str | None, kids: Sequence[object]
    ) -> Element:
        if text and not xml_blank(text):
            raise ElementError(f"{cls.tag}: takes no text, got {shown(text)}", element=cls.tag)
        el = cls._blank(attrs)
        el._open = start
        el._x = None
        el._take(kids)
        el._ruled_from_attrs()
        return el


class _TextElement(Element):
    __slots__ = ("_text",)
    _text: str

    @property
    def text(self) -> str:
        return self._text

    def _key(self) -> tuple[object, ...]:
        return (self._a(), self._text)

    def _args(self) -> list[str]:
        return [repr(self._text)]

    def _render(self) -> str:
        x = self._x = f"<{self.tag}{self._astr()}>{esc_text(self._text)}</{self.tag}>"
        return x

    @classmethod
    def _parsed(
        cls, attrs: dict[str, str], start: str, text: str | None, kids: Sequence[object]
    ) -> Element:
        if kids:
            raise ElementError(
                f"{cls.tag}: takes no child elements, got {type(kids[0]).__name__}",
                element=cls.tag,
            )
        el = cls._blank(attrs)
        spec = TEXTS[cls.tag]
        if attrs:
            el._text, e = spec.take(text or "")
            el._x = f"{start}>{e}</{cls.tag}>"
        else:
            el._text, el._x = spec.whole(text or "")
        el._ruled_from_attrs()
        return el
