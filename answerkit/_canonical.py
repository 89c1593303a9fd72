"""Reading back exactly what ``Response.to_xml`` writes, without lxml.

A webhook's answer, or the simulator's copy of it, is usually a document this library wrote:
compact, attributes in table order, only the escapes of ``_xmltext``. ``read`` takes such a
document apart with a regular expression and builds the elements through the parser's
own paths (``_parsed`` and the bare constructors, every check included). Then it renders the
tree and keeps it only if that rendering is the input, character for character.

That comparison is the proof. ``parse(doc.to_xml()) == doc`` holds for every valid document
(the property tests check it), so a tree that renders as the input is the tree the full
parser builds from it; and what to_xml writes is well-formed XML without DTD or entities.
Anything else (another layout, a comment, an unknown name, an entity, a DTD, a value or a
rule to report with its line) gives None, and ``parse`` takes the full path through lxml,
which does the refusing and the reporting.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from answerkit._attributes import Table
from answerkit._calls import Conference, Number, Record, Stream, User
from answerkit._element import _DECL, _NOATTRS, Element, _Container
from answerkit._xmltext import remember, unescape
from answerkit.elements import (
    DTMF,
    ELEMENTS,
    Hangup,
    Play,
    Redirect,
    Response,
    Speak,
    Wait,
)
from answerkit.errors import ElementError

__all__ = ["read"]

HEAD = _DECL + "<Response>"
_TAIL = "</Response>"
# One token: an element with its attributes (escaped values hold no '"', '<' or '>'),
# then "/>" (1: empty), its text and end tag (2: a leaf), or ">" (3: a container opens);
# or a container's end tag (4). findall() returns them all in one call; text between tokens
# is skipped, which the final comparison catches.
_TOKEN = re.compile(
    r'<([A-Za-z]+)((?: [A-Za-z]+="[^"<>]*")*)(?:(/>)|>([^<]*)</\1>|(>))|</([A-Za-z]+)>'
)

_NOKIDS: list[object] = []  # shared by childless elements; never mutated
_START = {tag: "<" + tag for tag in ELEMENTS}
#: Elements without attributes or children, built by their constructors (as parse does).
_BARE_TEXT: dict[str, Callable[[str], Element]] = {
    c.tag: c for c in (Speak, Play, Number, User, Conference, Redirect, DTMF, Stream)
}
_BARE_EMPTY: dict[str, Callable[[], Element]] = {c.tag: c for c in (Hangup, Wait, Record)}


class _NotOurs(Exception):
    """The document is not in the form to_xml writes; the full parser decides."""


def read(text: str) -> Response | None:
    """The document, if ``text`` is exactly what ``to_xml`` writes for it; else None."""
    if not text.startswith(HEAD) or not text.endswith(_TAIL):
        return None
    try:
        doc = Response._assembled(_build(_TOKEN.findall(text, len(HEAD), len(text) - len(_TAIL))))
        # Validates (document rules, size) and renders: equal to the input, or not ours.
        if doc.to_xml() != text:
            return None
    except (ElementError, LookupError, _NotOurs):
        return None
    return doc


def _build(tokens: list[tuple[str, str, str, str, str, str]]) -> list[Element]:
    """Response's children from the tokens; one level of containers (Gather, Dial...)."""
    top: list[Element] = []
    kids = top  # where the next element goes
    allowed = Response._kids
    opened: tuple[type[Element], dict[str, str], str, str] | None = None
    for tag, attributes, empty, body, opens, end in tokens:
        if end:
            if opened is None or opened[3] != end:
                raise _NotOurs
            cls, attrs, start, _ = opened
            top.append(cls._parsed(attrs, start, None, kids))
            kids, allowed, opened = top, Response._kids, None
            continue
        cls = ELEMENTS[tag]  # KeyError: not ours
        if cls not in allowed:
            raise _NotOurs
        if attributes:
            key = _START[tag] + attributes
            attrs, start = _SEEN.get(key) or _attributes(key, tag, cls._table, attributes)
        else:
            attrs, start = _NOATTRS, _START[tag]
        if opens:
            if opened is not None or not issubclass(cls, _Container):
                raise _NotOurs  # SSML inside Speak, or deeper than one container
            opened = (cls, attrs, start, tag)
            kids, allowed = [], cls._kids
        elif empty:
            make = _BARE_EMPTY.get(tag) if attrs is _NOATTRS else None
            kids.append(make() if make is not None else cls._parsed(attrs, start, None, _NOKIDS))
        else:
            raw = unescape(body) if "&" in body else body
            bare = _BARE_TEXT.get(tag) if attrs is _NOATTRS else None
            kids.append(bare(raw) if bare is not None else cls._parsed(attrs, start, raw, _NOKIDS))
    if opened is not None:
        raise _NotOurs
    return top


def _attributes(key: str, tag: str, table: Table, attributes: str) -> tuple[dict[str, str], str]:
    """The attributes, checked, and the start tag rendered from them (never the input's:
    the final comparison is only a proof if the rendering is our own); memoised by ``key``,
    the start tag as written."""
    by_xml = table.by_xml
    attrs: dict[str, str] = {}
    start = "<" + tag
    last = -1
    # ' name="value" name2="value2"' split at the quotes: ' name=', 'value', ' name2=', ...
    # (escaped values hold no quote). Anything odd here shows in the final comparison.
    parts = iter(attributes.split('"'))
    for name, value in zip(parts, parts, strict=False):  # the last part, '', has no pair
        a = by_xml[name[1:-1]]  # KeyError: not ours
        if a.pos <= last:  # out of table order (the full parser sorts them)
            raise _NotOurs
        last = a.pos
        raw = unescape(value) if "&" in value else value
        attrs[a.xml], frag = a.read_memo.get(raw) or a.read(raw)
        start += frag
    # The dict is shared by the elements read from the same start tag: they never change it.
    return remember(_SEEN, key, (attrs, start))


#: start tag as written -> (its checked attributes, the start tag rendered from them).
_SEEN: dict[str, tuple[dict[str, str], str]] = {}
