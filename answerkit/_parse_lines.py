"""Where in the source a parse error is: line counting, and the error path's own scan.

Every line parse finds itself is counted by ``_line_at``. lxml's ``sourceline`` for an
element is the line where its start tag ENDS, and its tree has dropped comments and
processing instructions, so an error about an element is raised as a ``_TreeError`` while
the tree is read (``_parse_tree``) and given its true line afterwards by a second, plain
scan of the source (``_source_line``). That scan is kept apart from the readers: it runs
only on an error, and nothing on the way to a valid document pays for it.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from answerkit.errors import ParseError

_XML_NS = "{http://www.w3.org/XML/1998/namespace}"


def _line_at(text: str | bytes, at: int, start: int = 0, line: int = 1) -> int:
    """The line position ``at`` of ``text`` is on, where position ``start`` is on ``line``.

    Every line parse finds itself is counted here (lxml's are its own): XML ends a line
    with \\r\\n, \\r or \\n, each once (XML 1.0 §2.11), so a document written with \\r
    alone (old Mac style) has lines too; counting '\\n' alone told line 1 for all of it.
    Three counts (memchr-fast), no loop: linear. ``start`` must not split a \\r\\n (it is 0
    or a '<').
    """
    if isinstance(text, str):
        ends = text.count("\n", start, at) + text.count("\r", start, at)
        return line + ends - text.count("\r\n", start, at)
    ends = text.count(b"\n", start, at) + text.count(b"\r", start, at)
    return line + ends - text.count(b"\r\n", start, at)


_TAG, _TEXT, _TAIL = "tag", "text", "tail"  # what in an element a _TreeError is about


class _TreeError(ParseError):
    """A ParseError about an element of lxml's tree, raised while reading the tree.

    lxml's ``sourceline`` is the line where an element's start tag ENDS: a ``<Gather`` on
    line 3 whose ``>`` is on line 9 says 9. parse_full (_parse_lxml) catches this error and
    raises a plain ParseError with the true line (``located``): the element's start, the line
    of the attribute ``at``, or of the first non-blank character of the element's text or
    tail (``part``). Finding it costs a second pass over the source, paid only on an error.
    ``line`` (lxml's, or _parse_tree._tail_line's estimate) is kept only if that pass fails.
    """

    def __init__(
        self,
        message: str,
        el: Any,
        *,
        part: str = _TAG,
        at: str | None = None,
        line: int | None = None,
        element: str | None = None,
        attribute: str | None = None,
        value: object = None,
    ) -> None:
        super().__init__(
            message,
            line=el.sourceline if line is None else line,
            element=element,
            attribute=attribute,
            value=value,
        )
        self.reason = message
        self.el = el
        self.part = part
        self.at = attribute if at is None else at

    def located(self, data: bytes, root: Any) -> ParseError:
        """This error as a plain ParseError, with the line read from ``data`` (the UTF-8
        bytes lxml built ``root`` from)."""
        try:
            line = _source_line(data, root, self.el, self.part, self.at)
        except Exception:  # whatever fails, lxml's line is kept: see _source_line
            line = None
        return ParseError(
            self.reason,
            line=self.line if line is None else line,
            element=self.element,
            attribute=self.attribute,
            value=self.value,
        )


#: One attribute in a start tag, from the white space before it: group 1 is its name.
_ATTRIBUTE = re.compile(rb"""[ \t\r\n]+([^ \t\r\n=/>]+)[ \t\r\n]*=[ \t\r\n]*(?:"[^"]*"|'[^']*')""")
_TAG_NAME = re.compile(rb"<[^ \t\r\n/>]+")
#: The rest of a start tag after its name, to its '>': quoted values may hold '>' (never
#: '<'). Each alternative starts with its own character, so no text is tried twice.
_TAG_REST = re.compile(rb"""[^"'>]*(?:(?:"[^"]*"|'[^']*')[^"'>]*)*>""")
_NOT_BLANK = re.compile(rb"[^ \t\r\n]")
#: A character reference to XML white space (tab, line feed, carriage return, space).
_BLANK_REFERENCE = re.compile(rb"&#(?:x0*(?:9|[aAdD]|20)|0*(?:9|10|13|32));")


def _source_line(data: bytes, root: Any, el: Any, part: str, at: str | None) -> int | None:
    """The line in ``data`` of ``el`` (an element of ``root``, the tree lxml built from it):
    where its start tag starts, where attribute ``at`` of it is, or where its text or tail
    (``part``) has its first non-blank character. None if not found.

    An error path only. ``el`` is the n-th start tag in ``data``, n its place in lxml's
    document order (comments and processing instructions are not in the tree): _source_at
    finds it. Any failure, an exception included, means "not found" to the caller, which
    keeps lxml's line.
    """
    target = -1
    for i, e in enumerate(root.iter(etree.Element)):
        if e is el:
            target = i
            break
    if target < 0:
        return None
    offset = _source_at(data, target, part)
    if offset < 0:
        return None
    line = _line_at(data, offset)
    if part == _TAG and at is not None:
        return _attribute_line(data, offset, line, at, el.nsmap)
    return line


def _source_at(data: bytes, target: int, part: str) -> int:
    """The byte offset in ``data`` of the '<' of start tag number ``target`` (from 0, in
    document order; ``part`` _TAG), or of the first non-blank character of that element's
    text (_TEXT: before its first child or its end tag) or tail (_TAIL: after its end tag,
    before the next tag); -1 if there is none.

    ``data`` was accepted by lxml and has no DTD (refused before), so a plain left-to-right
    scan reads it as lxml did: comments, processing instructions and CDATA sections are
    skipped whole (a CDATA section's text is text), a quoted value whole, and what is left
    of a '<' is a start or an end tag. Written here, not left to a second XML parser:
    expat (the one in the standard library) refuses names lxml takes, such as
    'xmlns:\\u2160' (XML 1.0 fifth edition name characters), and every line was lxml's
    again. Each byte is looked at a bounded number of times: linear.
    """
    size = len(data)
    count = 0  # start tags seen
    open_: list[int] = []  # the number of each open element, innermost last
    watching = False  # in the text (or tail) looked for
    pos = 0
    while True:
        lt = data.find(b"<", pos)
        if watching:
            hit = _first_not_blank(data, pos, size if lt < 0 else lt)
            if hit >= 0:
                return hit
        if lt < 0:
            return -1
        kind = data[lt + 1 : lt + 2]
        if kind == b"!" or kind == b"?":
            if data.startswith(b"<![CDATA[", lt):
                close = data.find(b"]]>", lt + 9)
                if close >= 0 and watching:  # a CDATA section's text is no reference
                    m = _NOT_BLANK.search(data, lt + 9, close)
                    if m is not None:
                        return m.start()
                closer = b"]]>"
            elif data.startswith(b"<!--", lt):
                close, closer = data.find(b"-->", lt + 4), b"-->"
            elif kind == b"?":
                close, closer = data.find(b"?>", lt + 2), b"?>"
            else:  # a declaration: refused before lxml read the document
                return -1
            if close < 0:
                return -1
            pos = close + len(closer)
            continue
        # A start or an end tag ends the text looked for: what was not found is not there.
        if watching:
            return -1
        if kind == b"/":
            close = data.find(b">", lt)
            if close < 0 or not open_:
                return -1
            done = open_.pop()
            watching = done == target and part == _TAIL
            pos = close + 1
            continue
        name = _TAG_NAME.match(data, lt)
        rest = _TAG_REST.match(data, name.end()) if name is not None else None
        if rest is None:
            return -1
        number = count
        count += 1
        if number == target and part == _TAG:
            return lt
        pos = rest.end()
        if data[pos - 2] == 0x2F:  # '/>': an empty element, ended here
            watching = number == target and part == _TAIL
        else:
            open_.append(number)
            watching = number == target and part == _TEXT


def _first_not_blank(data: bytes, pos: int, end: int) -> int:
    """The offset of the first character in ``data[pos:end]`` (text between tags) that is
    not XML white space, written or as a character reference; -1 if none."""
    while (m := _NOT_BLANK.search(data, pos, end)) is not None:
        ref = _BLANK_REFERENCE.match(data, m.start(), end)
        if ref is None:
            return m.start()
        pos = ref.end()
    return -1


def _attribute_line(
    data: bytes, offset: int, line: int, name: str, nsmap: dict[str | None, str]
) -> int:
    """The line of attribute ``name`` (as lxml names it) in the start tag at ``offset`` of
    ``data``, which starts on ``line``; ``line`` if it is not there (an error about a value
    the tag does not hold). ``nsmap``: the element's prefixes and their namespaces."""
    m = _TAG_NAME.match(data, offset)
    if m is None:
        return line
    pos = m.end()
    # lxml names an attribute in a namespace '{uri}local'; the source, 'prefix:local', with
    # a prefix bound to that uri (another prefix's 'local', or an xmlns:local declaration,
    # is another attribute).
    spellings = {name}
    if name.startswith("{"):
        uri, _, local = name[1:].partition("}")
        prefixes = [p for p, u in nsmap.items() if u == uri and p]
        if f"{{{uri}}}" == _XML_NS:
            prefixes.append("xml")
        spellings = {f"{p}:{local}" for p in prefixes}
    while (a := _ATTRIBUTE.match(data, pos)) is not None:
        if a[1].decode("utf-8", "replace") in spellings:
            return _line_at(data, a.start(1), offset, line)
        pos = a.end()
    return line
