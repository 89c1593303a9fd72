"""lxml's tree -> the typed element tree, with every check the constructors apply.

Each element's name and place, its tail, attributes, children and text are checked as it is
built; an error is raised as a ``_TreeError`` naming the lxml element, which
``_parse_lxml`` turns into a ParseError with the true source line (``_parse_lines``).
Plivo and TwiML names are refused with the VobizXML replacement named (``FOREIGN``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from lxml import etree

from answerkit._attributes import Table, attr_string
from answerkit._element import _NOATTRS, RULE_LAST, Element, cannot_contain
from answerkit._parse_lines import _TAIL, _TEXT, _XML_NS, _TreeError
from answerkit._tables import foreign_attribute
from answerkit._xmltext import MEMO_LIMIT, TAG_MAX_LEN, XML_SPACE, shown, xml_blank
from answerkit.elements import (
    DTMF,
    ELEMENTS,
    Conference,
    Hangup,
    Number,
    Play,
    Record,
    Redirect,
    Response,
    Speak,
    Stream,
    User,
    Wait,
)
from answerkit.errors import ElementError, ParseError
from answerkit.ssml import SSML, SSML_TAGS

#: Names from Plivo and TwiML (spec §1.3, §5) and what VobizXML uses instead.
FOREIGN = {
    "GetDigits": "Plivo's name; use Gather(input_type='dtmf'): timeout becomes "
    "execution_timeout, digitTimeout becomes digit_end_timeout",
    "GetInput": "Plivo's name; use Gather: type becomes input_type, timeout becomes "
    "execution_timeout",
    "MultiPartyCall": "Plivo's; Vobiz has no equivalent: use Conference",
    "Message": "Plivo's SMS verb; VobizXML cannot send messages (no equivalent)",
    "AudioStream": "an old Vobiz name; use Stream",
    "Say": "TwiML; use Speak",
    "Pause": "TwiML; use Wait",
    "Sip": "not VobizXML; dial SIP with User inside Dial",
    "SIPTransfer": "not VobizXML; dial SIP with User inside Dial",
    "GetSpeech": "not VobizXML; use Gather(input_type='speech')",
    "Notify": "not VobizXML (no equivalent)",
    "Reject": "TwiML; use Hangup(reason='rejected')",
}


def _document(root: Any) -> Response:
    if root.tag != "Response":
        if root.tag in ELEMENTS:
            raise _TreeError(
                f"the root must be Response, found {root.tag}: wrap it, "
                f"<Response><{root.tag}>...</{root.tag}></Response>",
                root,
                element=root.tag,
            )
        what = _name_error(root.tag)
        raise _TreeError(f"the root must be Response, found {what}", root, element=_tag(root))
    text = root.text
    if root.items() or (text and not xml_blank(text)):
        _no_attrs_or_text(root)
    kids = _children(root, Response)
    # Every child was checked against Response's allowed children on the way: the tree is
    # assembled directly. The document rules are read from the rule codes, as to_xml does;
    # only a code that may mean a broken rule asks for the message (and the line).
    doc = Response._assembled(kids)
    ruled = doc._ruled
    if ruled and (ruled > 1 or kids[-1]._r != RULE_LAST):
        problem = doc._problem()
        if problem is not None:
            path, err = problem
            node = root
            for i in path:
                node = node[i]
            raise _TreeError(str(err), node, element=err.element)
    return doc


def _no_attrs_or_text(el: Any) -> None:
    if el.attrib:
        name = el.keys()[0]
        raise _TreeError(
            f"Response takes no attributes, got {shown(dict(el.attrib))}",
            el,
            at=name,
            element="Response",
            attribute=name,
            value=el.get(name),
        )
    if el.text and not xml_blank(el.text):
        raise _TreeError(f"Response takes no text, got {shown(el.text)}", el, part=_TEXT)


def _children(parent_el: Any, parent: type[Element]) -> list[Element]:
    """The children of ``parent_el`` (a ``parent``), each checked and built, in order.

    The usual child is a leaf without attributes: it is built here, in the loop, rather
    than in a call per element (most of a small document's cost is per element). Anything
    else goes to ``_element``. Each element is checked in the same order either way: its
    name and place, its tail, then its attributes, children and text.
    """
    allowed = _ALLOWED[parent]  # tag -> kind, for the children parent takes: one lookup
    out: list[Element] = []
    for el in parent_el[:]:  # a list of the children: cheaper than lxml's iterator
        tag = el.tag
        # comments, PIs and entities have function tags: not found
        kind = allowed.get(tag)
        if kind is None:
            raise _misplaced(el, _KINDS.get(tag, _UNKNOWN)[0], parent)
        tail = el.tail
        if tail is not None and tail.strip(XML_SPACE):  # xml_blank, inline: every element
            raise _TreeError(
                f"text {shown(tail.strip(XML_SPACE))} outside any element",
                el,
                part=_TAIL,
                line=_tail_line(el, tail),
            )
        cls, bare_text, bare_empty = kind
        items = el.items()
        if items or len(el):
            out.append(_element(el, tag, cls, items))
            continue
        # The usual leaf, without attributes or children: its constructor is the cheapest
        # way to build it (a class call beats __new__ plus stores) and applies the same
        # checks to the same text.
        text = el.text
        try:
            if bare_text is not None and text is not None:
                out.append(bare_text(text))
            elif bare_empty is not None and (not text or xml_blank(text)):
                out.append(bare_empty())
            else:
                out.append(cls._parsed(_NOATTRS, _START[tag], text, _NOKIDS))
        except ParseError:
            raise
        except ElementError as e:
            raise _located(e, el) from None
    return out


def _tail_line(el: Any, tail: str) -> int:
    """An estimate of the line where the text in ``tail`` (after ``el``) starts, counted on
    from lxml's line for ``el`` through its re-serialisation and its tail: only the fallback
    of _parse_lines._source_line, which reads the true one. (Wrong after a multi-line start tag, a
    character reference such as &#10;, or a comment or processing instruction, which the
    tree has not kept.)"""
    start = len(tail) - len(tail.lstrip(XML_SPACE))
    inside = etree.tostring(el, with_tail=False).count(b"\n")
    return int(el.sourceline or 1) + inside + tail.count("\n", 0, start)


def _element(el: Any, tag: str, cls: type[Element], items: list[tuple[str, str]]) -> Element:
    """An element with attributes (``items``, as lxml lists them) or children, or both;
    its name, place and tail are checked already (``_children``)."""
    try:
        if items:
            # (tag, *items) -> the checked attributes and start tag: a pure function of the
            # key (the tables are fixed), and flows repeat the same few start tags.
            key = (tag, *items)
            seen = _SEEN.get(key)
            attrs, start = seen if seen is not None else _seen(key, tag, cls, items, el)
        else:
            attrs, start = _NOATTRS, _START[tag]
        if len(el):
            if cls is Speak:
                return Speak._parsed(attrs, start, None, _content(el))
            return cls._parsed(attrs, start, el.text, _children(el, cls))
        return cls._parsed(attrs, start, el.text, _NOKIDS)
    except ParseError:
        raise
    except ElementError as e:
        raise _located(e, el) from None


def _located(e: ElementError, el: Any) -> ParseError:
    """``e``, raised while building ``el``, as a ParseError with ``el``'s line (its
    attribute's, if about one)."""
    return _TreeError(str(e), el, element=e.element, attribute=e.attribute, value=e.value)


_NOKIDS: list[object] = []  # shared by childless elements; never mutated
_START = {tag: "<" + tag for tag in ELEMENTS}
_BareText = Callable[[str], Element] | None
_BareEmpty = Callable[[], Element] | None
_Kind = tuple[type[Element], _BareText, _BareEmpty]
#: tag -> (class, its constructor if it takes only text, or only nothing): one lookup.
_TEXT_ONLY: dict[str, Callable[[str], Element]] = {
    c.tag: c for c in (Speak, Play, Number, User, Conference, Redirect, DTMF, Stream)
}
_NOTHING: dict[str, Callable[[], Element]] = {c.tag: c for c in (Hangup, Wait, Record)}
_KINDS: dict[str, _Kind] = {
    tag: (cls, _TEXT_ONLY.get(tag), _NOTHING.get(tag)) for tag, cls in ELEMENTS.items()
}
_UNKNOWN: tuple[None, None, None] = (None, None, None)
#: parent class -> its part of _KINDS: the tags it may contain (its ``_kids``), so one
#: lookup both finds a child's kind and checks its place.
_ALLOWED: dict[type[Element], dict[str, _Kind]] = {
    parent: {tag: kind for tag, kind in _KINDS.items() if kind[0] in parent._kids}
    for parent in ELEMENTS.values()
}
#: (tag, *attribute items) -> (the checked attributes, the start tag rendered from them).
#: The dict is shared by the elements read from the same start tag: they never change it
#: (as _canonical's memo). Bounded like the other memos and kept while there is room: at
#: most MEMO_LIMIT entries, each from names and values of at most TAG_MAX_LEN characters
#: in all. Only a start tag that was read without error is kept.
_SEEN: dict[tuple[object, ...], tuple[dict[str, str], str]] = {}


def _seen(
    key: tuple[object, ...], tag: str, cls: type[Element], items: list[tuple[str, str]], el: Any
) -> tuple[dict[str, str], str]:
    """``_attributes`` for a start tag not in ``_SEEN``; kept there while there is room."""
    got = _attributes(tag, cls._table, items, el)
    # The key's own size, not the rendering's: a value may render shorter ("007" -> "7").
    if len(_SEEN) < MEMO_LIMIT and sum(len(k) + len(v) for k, v in items) <= TAG_MAX_LEN:
        _SEEN[key] = got
    return got


def _misplaced(el: Any, cls: type[Element] | None, parent: type[Element]) -> ParseError:
    if cls is None or cls is Response:
        return _TreeError(_name_error(el.tag), el, element=_tag(el))
    # The parent's verdict: more useful than whatever is wrong inside the child.
    return _TreeError(str(cannot_contain(parent, cls.tag)), el, element=parent.tag)


def _attributes(
    tag: str, table: Table, items: list[tuple[str, str]], el: Any
) -> tuple[dict[str, str], str]:
    """The checked attributes (rendered values, table order) and the start tag they make."""
    by_xml = table.by_xml
    attrs: dict[str, str] = {}
    start = "<" + tag
    last = -1
    ordered = True
    for k, v in items:
        a = by_xml.get(k)
        if a is None:
            if k.startswith(_XML_NS):  # lxml spells xml:lang in Clark notation
                k = "xml:" + k[len(_XML_NS) :]
                a = by_xml.get(k)
            if a is None:
                raise _TreeError(
                    foreign_attribute(tag, k, table), el, element=tag, attribute=k, value=v
                )
        attrs[k], frag = a.read_memo.get(v) or a.read(v)
        start += frag
        pos = a.pos
        if pos < last:
            ordered = False
        last = pos
    if not ordered:  # render in table order, like a built element
        index = table.index
        attrs = {k: attrs[k] for k in sorted(attrs, key=index.__getitem__)}
        start = "<" + tag + attr_string(attrs, table.escapers)
    return attrs, start


def _content(el: Any) -> list[object]:
    """Mixed content of Speak or an SSML node: strings and SSML nodes, in order."""
    out: list[object] = []
    if el.text:
        out.append(el.text)
    for c in el[:]:
        tag = c.tag
        cls = SSML_TAGS.get(tag) if type(tag) is str else None
        if cls is None:
            raise _TreeError(
                f"{el.tag}: {tag!r} is not SSML that Speak accepts "
                f"(allowed: {', '.join(SSML_TAGS)})",
                c,
                element=_tag(c),
            )
        items = c.items()
        try:
            attrs = _attributes(tag, cls._table, items, c)[0] if items else {}
            node: SSML = cls._from_parts(attrs, _content(c))
        except ParseError:
            raise
        except ElementError as e:  # the node's own line, not its Speak's
            raise _located(e, c) from None
        out.append(node)
        if c.tail:
            out.append(c.tail)
    return out


def _tag(el: Any) -> str | None:
    """An element's tag for an error's ``element``; None for an entity reference (lxml
    gives it a function as its tag)."""
    return el.tag if type(el.tag) is str else None


def _name_error(tag: object) -> str:
    if type(tag) is not str:
        return "an entity reference (entities are refused)"
    if tag.startswith("{"):
        return f"{tag!r}: VobizXML uses no namespaces"
    hint = FOREIGN.get(tag)
    if hint is not None:
        return f"{tag} is not VobizXML: {hint}"
    if tag == "Response":
        return "Response nested inside Response"
    close = difflib.get_close_matches(tag, ELEMENTS, n=1)
    also = f"; did you mean {close[0]}?" if close else ""
    return f"unknown element {tag!r}{also}"
