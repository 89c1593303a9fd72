"""VobizXML text -> the typed element tree, with every check the constructors apply.

``parse(doc.to_xml()) == doc`` for every valid document. Errors raise
:class:`~answerkit.errors.ParseError` carrying the line. The parser is hardened: no DTD,
no entity declarations or references, no network, no huge trees. Plivo and TwiML names are
refused with the VobizXML replacement named.
"""

from __future__ import annotations

import difflib
import threading
from typing import Any

from lxml import etree

from answerkit._attributes import Table
from answerkit._element import _NOATTRS, Element, cannot_contain
from answerkit._tables import RENAMED
from answerkit.elements import ELEMENTS, Response, Speak
from answerkit.errors import ElementError, ParseError
from answerkit.ssml import SSML, SSML_TAGS

__all__ = ["parse"]

_XML_NS = "{http://www.w3.org/XML/1998/namespace}"

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

_local = threading.local()


def _parser() -> etree.XMLParser:
    # A parser per thread: lxml parser objects must not be shared across threads.
    p: etree.XMLParser | None = getattr(_local, "parser", None)
    if p is None:
        p = _local.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
    return p


def parse(source: str | bytes) -> Response:
    """Parse VobizXML text (str or UTF-8 bytes) into a :class:`Response`.

    Raises :class:`ParseError` (an ``ElementError``) with ``.line`` on malformed XML, a DTD
    or entity, an unknown element or attribute, a bad value or a broken document rule.
    """
    if isinstance(source, str):
        data = source.encode("utf-8")
    elif isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        raise ParseError(f"parse() takes str or bytes, got {type(source).__name__}")
    # Refused before lxml sees them: no XXE, no billion laughs. One scan in the usual case:
    # '<!' also starts comments and CDATA, which are fine.
    if b"<!" in data:
        for marker in (b"<!DOCTYPE", b"<!ENTITY"):
            at = data.find(marker)
            if at >= 0:
                raise ParseError(
                    "DTDs and entity declarations are refused (no XXE, no entity expansion)",
                    line=data.count(b"\n", 0, at) + 1,
                )
    try:
        root: Any = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as e:
        raise ParseError(f"not well-formed XML: {e.msg}", line=e.lineno) from None
    # UTF-16/32 hide a DTD from the byte scan; ask the tree in that (rare) case only.
    if (b"\x00" in data[:4] or data[:2] in (b"\xfe\xff", b"\xff\xfe")) and (
        root.getroottree().docinfo.doctype
    ):
        raise ParseError("DTDs are refused", line=1)
    return _document(root)


def _document(root: Any) -> Response:
    if root.tag != "Response":
        what = _name_error(root.tag)
        raise ParseError(f"the root must be Response, found {what}", line=root.sourceline)
    _no_attrs_or_text(root)
    kids = [_element(el, Response) for el in root]
    doc = Response._parsed({}, None, kids)  # type: ignore[arg-type]
    problem = doc._problem()
    if problem is not None:
        i, err = problem
        raise ParseError(str(err), line=root[i].sourceline, element=err.element)
    return doc


def _no_attrs_or_text(el: Any) -> None:
    if el.attrib:
        raise ParseError(
            f"Response takes no attributes, got {dict(el.attrib)!r}", line=el.sourceline
        )
    if el.text and not el.text.isspace():
        raise ParseError(f"Response takes no text, got {el.text!r}", line=el.sourceline)


def _element(el: Any, parent: type[Element]) -> Element:
    cls = ELEMENTS.get(el.tag)  # comments, PIs and entities have function tags: None
    if cls is None or cls not in parent._kids:
        raise _misplaced(el, cls, parent)
    tail = el.tail
    if tail is not None and not tail.isspace():
        raise ParseError(f"text {tail.strip()!r} outside any element", line=el.sourceline)
    try:
        items = el.items()
        attrs = _attributes(cls.tag, cls._table, items, el) if items else _NOATTRS
        if len(el):
            if cls is Speak:
                return Speak._parsed(attrs, None, _content(el))
            return cls._parsed(attrs, el.text, [_element(c, cls) for c in el])
        return cls._parsed(attrs, el.text, _NOKIDS)
    except ParseError:
        raise
    except ElementError as e:
        raise ParseError(
            str(e), line=el.sourceline, element=e.element, attribute=e.attribute, value=e.value
        ) from None


_NOKIDS: list[object] = []  # shared by childless elements; never mutated


def _misplaced(el: Any, cls: type[Element] | None, parent: type[Element]) -> ParseError:
    if cls is None or cls is Response:
        return ParseError(_name_error(el.tag), line=el.sourceline)
    # The parent's verdict: more useful than whatever is wrong inside the child.
    return ParseError(str(cannot_contain(parent, cls.tag)), line=el.sourceline, element=parent.tag)


def _attributes(tag: str, table: Table, items: list[tuple[str, str]], el: Any) -> dict[str, str]:
    by_xml = table.by_xml
    attrs: dict[str, str] = {}
    last = -1
    ordered = True
    for k, v in items:
        a = by_xml.get(k)
        if a is None:
            if k.startswith(_XML_NS):  # lxml spells xml:lang in Clark notation
                k = "xml:" + k[len(_XML_NS) :]
                a = by_xml.get(k)
            if a is None:
                raise ParseError(_attr_error(tag, k, table), line=el.sourceline, attribute=k)
        attrs[k] = a.parse(v)
        if a.pos < last:
            ordered = False
        last = a.pos
    if not ordered:  # render in table order, like a built element
        index = table.index
        attrs = {k: attrs[k] for k in sorted(attrs, key=index.__getitem__)}
    return attrs


def _content(el: Any) -> list[object]:
    """Mixed content of Speak or an SSML node: strings and SSML nodes, in order."""
    out: list[object] = []
    if el.text:
        out.append(el.text)
    for c in el:
        tag = c.tag
        cls = SSML_TAGS.get(tag) if type(tag) is str else None
        if cls is None:
            raise ParseError(
                f"{el.tag}: {tag!r} is not SSML that Speak accepts "
                f"(allowed: {', '.join(SSML_TAGS)})",
                line=c.sourceline,
            )
        items = c.items()
        attrs = _attributes(tag, cls._table, items, c) if items else {}
        node: SSML = cls._from_parts(attrs, _content(c))
        out.append(node)
        if c.tail:
            out.append(c.tail)
    return out


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


def _attr_error(tag: str, name: str, table: Table) -> str:
    renamed = RENAMED.get((tag, name))
    if renamed is not None:
        if tag == "Gather" and name == "timeout":
            return (
                "Gather: there is no timeout attribute on Gather (it is Plivo's GetDigits); "
                f"use {renamed}"
            )
        return f"{tag}: {name} is not VobizXML; use {renamed}"
    known = list(table.by_xml)
    close = difflib.get_close_matches(name, known, n=1)
    also = f"; did you mean {close[0]}?" if close else ""
    listing = ", ".join(known) if known else "none"
    return f"{tag}: unknown attribute {name!r}{also} (known: {listing})"
