"""VobizXML text -> the typed element tree, with every check the constructors apply.

``parse(doc.to_xml()) == doc`` for every valid document. Errors raise
:class:`~answerkit.errors.ParseError` carrying the line. The parser is hardened: no DTD,
no entity declarations or references, no network, no huge trees. Plivo and TwiML names are
refused with the VobizXML replacement named.

Two paths: a document exactly as ``to_xml`` writes it is read by ``_canonical`` (no lxml,
kept only if it renders back to the same text); everything else, and every error, goes
through lxml (``parse_full``).
"""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Callable
from typing import Any

from lxml import etree

from answerkit._attributes import Table, attr_string
from answerkit._canonical import HEAD, read
from answerkit._element import _NOATTRS, MAX_BYTES, RULE_LAST, Element, cannot_contain
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
from answerkit.ssml import MAX_DEPTH as MAX_SSML_DEPTH
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
    try:
        p: etree.XMLParser = _local.parser
    except AttributeError:
        p = _local.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            collect_ids=False,  # no index of xml:id values: nothing here looks one up
            remove_comments=True,
            remove_pis=True,
        )
    return p


_BANG = ord("!")  # see parse_full

#: The encoding declared by an XML declaration at the start of a str (after a BOM, if any):
#: group 1 is the name. A str is already decoded, so parse() declares it UTF-8 instead.
_DECLARED_ENCODING = re.compile(
    r"""\ufeff?<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"[^"]*"|'[^']*')"""
    r"""[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')"""
).match
#: A str over this many characters may be over MAX_BYTES once encoded (4 bytes a char).
_MAY_BE_TOO_BIG = MAX_BYTES // 4
#: What rendering may add to a document whatever its body: the XML declaration and
#: <Response>, and </Response> (the input may have neither, or be a bare <Response/>).
_RENDER_FRAME = len(HEAD) + len("</Response>")
#: A document of at most this many bytes renders (to_xml) within MAX_BYTES, whatever it
#: holds: rendering escapes more than XML requires, but a byte grows at most 6 times ('"' in
#: a single-quoted value becomes '&quot;'; see _render_bound). Below it nothing is counted.
_MAY_RENDER_TOO_BIG = (MAX_BYTES - _RENDER_FRAME) // 6


def _too_big(size: int) -> ParseError:
    return ParseError(
        f"the document is {size} bytes; Vobiz accepts at most {MAX_BYTES} (spec §1.0)",
        element="Response",
        value=size,
    )


def parse(source: str | bytes) -> Response:
    """Parse VobizXML text (str or UTF-8 bytes) into a :class:`Response`.

    Bytes in another encoding are read as their XML declaration says; a str is text already,
    so the encoding its declaration names, if any, is ignored. A document over 100,000 bytes
    (a str, or bytes in another encoding, also once encoded as UTF-8), or that would render
    over them, is refused, as ``to_xml`` refuses to write one (spec §1.0).

    Raises :class:`ParseError` (an ``ElementError``) with ``.line`` on malformed XML, a DTD
    or entity, an unknown element or attribute, a bad value or a broken document rule.
    """
    if isinstance(source, str):
        text: str | None = source
        if len(source) > _MAY_BE_TOO_BIG:
            size = len(source.encode("utf-8", "surrogatepass"))
            if size > MAX_BYTES:
                raise _too_big(size)
    elif isinstance(source, (bytes, bytearray)):
        if len(source) > MAX_BYTES:
            raise _too_big(len(source))
        try:
            text = source.decode()
        except UnicodeDecodeError:
            text = None  # another encoding, declared in the document: lxml reads it
    else:
        raise ParseError(f"parse() takes str or bytes, got {type(source).__name__}")
    # A document exactly as to_xml writes it is read without lxml (see _canonical: the
    # result is kept only if it renders back to the same text). Everything else, errors
    # included, takes the full path.
    if text is not None and text.startswith(HEAD):
        doc = read(text)
        if doc is not None:
            return doc
    if isinstance(source, str):
        try:
            data = source.encode()
        except UnicodeEncodeError as e:  # a lone surrogate, e.g. from surrogateescape decoding
            raise ParseError(
                f"U+{ord(source[e.start]):04X} at position {e.start} is not a character "
                "(a lone surrogate); XML cannot carry it",
                line=_line_at(source, e.start),
            ) from None
        return parse_full(_as_utf8(source, data))
    return parse_full(_utf8_of(bytes(source)))


# Byte order marks, and the first bytes of '<?' with none (XML 1.0 Appendix F).
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
_UNMARKED = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_UTF8_DECL = b'<?xml version="1.0" encoding="UTF-8"?>'


def _marked(data: bytes) -> tuple[str | None, bytes]:
    """The encoding a byte order mark gives (or, with none, the first bytes of '<?' in
    UTF-16 or UTF-32), and the bytes after the mark; None for an ASCII-compatible start."""
    if data[:1] == b"<" and data[1:2] != b"\x00":  # the usual start: no mark to look for
        return None, data
    for mark, name in _BOMS:
        if data.startswith(mark):
            return name, data[len(mark) :]
    for head, name in _UNMARKED:
        if data.startswith(head):
            return name, data
    return None, data


#: The encoding an ASCII-compatible document declares (group 1 or 2).
_DECLARED_BYTES = re.compile(
    rb"""<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"[^"]*"|'[^']*')"""
    rb"""[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')"""
).match


def _utf8_of(data: bytes) -> bytes:
    """``data`` as UTF-8 with a UTF-8 declaration, decoded here by XML's rules (a byte order
    mark, else the declared encoding, else UTF-8): the DTD scan then reads every document
    in one encoding (in UTF-7 or UTF-16 '<!DOCTYPE' is other bytes), and lxml is never
    left to decode one itself."""
    if data.startswith(_UTF8_DECL):  # to_xml's declaration, the usual start
        return data
    encoding, body = _marked(data)
    if encoding is None:
        m = _DECLARED_BYTES(data)
        if m is None:
            return data  # UTF-8, as XML assumes (lxml reports what is not)
        encoding = (m[1] if m[1] is not None else m[2]).decode("ascii", "replace")
        if encoding.upper() in ("UTF-8", "UTF8"):
            return data
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as e:
        # e.start counts from after the byte order mark; the offset told is the input's.
        at = len(data) - len(body) + e.start
        raise ParseError(
            f"the document is not valid {encoding}: {e.reason} at byte {at}",
            line=_decoded_line(body[: e.start], encoding),
        ) from None
    except (LookupError, UnicodeError, ValueError, TypeError):
        # Not a codec, or one that is no text encoding ('undefined', 'punycode', a name
        # with a NUL in it): either way not one this document can be read in. The name is
        # in the declaration, on the first line.
        raise ParseError(
            f"the document declares an unknown encoding {encoding!r}", line=1
        ) from None
    try:
        raw = text.encode()
    except UnicodeEncodeError as e:
        raise ParseError(
            f"U+{ord(text[e.start]):04X} is not a character (a lone surrogate); "
            "XML cannot carry it",
            line=_line_at(text, e.start),
        ) from None
    # parse() measured the input's bytes; a character may take more in UTF-8 than in the
    # encoding it came in (U+8A9E is 2 bytes in UTF-16, 3 in UTF-8; 'é' 1 in Latin-1, 2).
    # Told as what it is, not left to the rendered-size check, which would blame escaping.
    # Measured before _as_utf8 names UTF-8 in the declaration ("L1" grows by 3 bytes), as
    # parse() measures a str: the declaration to_xml writes is its own anyway.
    if len(raw) > MAX_BYTES:
        raise ParseError(
            f"the document is {len(raw)} bytes once encoded as UTF-8, over Vobiz's "
            f"{MAX_BYTES:,} (spec §1.0; it is {len(data)} bytes in {encoding}, but VobizXML "
            "is written in UTF-8, so to_xml could not write it back). Split it with Redirect.",
            element="Response",
            value=len(raw),
        )
    return _as_utf8(text, raw)


def _decoded_line(head: bytes, encoding: str) -> int | None:
    """The line a decode error is on: ``head`` is the text before it, in ``encoding`` (a
    codec that has just read it), so its line ends are counted once decoded. None if even a
    lenient decode fails: the error is told without a line rather than not at all."""
    try:
        text = head.decode(encoding, "replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return None
    return _line_at(text, len(text))


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


def _as_utf8(source: str, data: bytes) -> bytes:
    """``data`` (``source`` encoded as UTF-8), its declared encoding, if any, made UTF-8.

    lxml decodes bytes as the declaration says; a str was decoded already, so whatever
    encoding its declaration names (ISO-8859-1, UTF-16...) is not the one of these bytes.
    """
    m = _DECLARED_ENCODING(source)
    if m is None:
        return data
    name = m[1] if m[1] is not None else m[2]
    if name.upper() in ("UTF-8", "UTF8"):
        return data
    at = m.start(1) if m[1] is not None else m.start(2)
    return (source[:at] + "UTF-8" + source[at + len(name) :]).encode()


# What opens a comment, a CDATA section or a processing instruction (and what closes each),
# and the declarations refused.
_OPENS_OR_DECLARES = re.compile(rb"<!--|<!\[CDATA\[|<\?|<!DOCTYPE|<!ENTITY")
_CLOSER = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}


def _declaration_at(data: bytes) -> int:
    """Where the first DTD or entity declaration of ``data`` starts, -1 if none. Read left to
    right as XML reads it: one written inside a comment, CDATA section or processing
    instruction is text ('<?x <!-- ?>' is a processing instruction, so a '<!DOCTYPE' after
    it is in the open). Each opener's closer is looked for once, so the scan is linear;
    after an opener that is never closed everything is inside it (lxml refuses that)."""
    at = 0
    while True:
        m = _OPENS_OR_DECLARES.search(data, at)
        if m is None:
            return -1
        closer = _CLOSER.get(m.group())
        if closer is None:
            return m.start()
        end = data.find(closer, m.end())
        if end < 0:
            return -1
        at = end + len(closer)


def parse_full(data: bytes) -> Response:
    """The full parser, through lxml: any layout, and every refusal and error with its line.

    ``data`` is UTF-8 (parse makes it so: see _utf8_of); the checks before lxml and the
    rendered-size bound read it as UTF-8.
    """
    # Refused before lxml sees them: no XXE, no billion laughs. A search for one byte as an
    # int (33, '!') is a bare memchr (b"!" in data is several times slower), so '!' goes
    # first; '<!' also starts comments and CDATA, which are fine.
    # The document is UTF-8 here (see _utf8_of): no declaration is in other bytes.
    if _BANG in data and (b"<!DOCTYPE" in data or b"<!ENTITY" in data):
        at = _declaration_at(data)
        if at >= 0:
            raise ParseError(
                "DTDs and entity declarations are refused (no XXE, no entity expansion)",
                line=_line_at(data, at),
            )
    doc = _read_tree(data)
    if isinstance(doc, ParseError):
        # Raised here, outside any except block and from a frame that holds no part of the
        # tree: the error has no __context__ and its traceback nothing of lxml's, so keeping
        # it (a log handler, a test) keeps no tree alive. Raised from inside _read_tree's
        # except, its __context__ was the _TreeError, whose element holds the whole tree.
        raise doc
    if len(data) > _MAY_RENDER_TOO_BIG and _render_bound(data) > MAX_BYTES:
        _check_rendered_size(doc)
    return doc


def _read_tree(data: bytes) -> Response | ParseError:
    """The document lxml reads from ``data``, or the ParseError to raise (returned, not
    raised: see parse_full)."""
    try:
        root: Any = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as e:
        if data.count(b"\r") != data.count(b"\r\n"):
            # libxml2 counts no line at a lone \r, where XML ends one (§2.11): read again
            # with every line end as \n (the same document to XML), for the error's lines.
            try:
                etree.fromstring(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n"), _parser())
            except etree.XMLSyntaxError as again:
                return _syntax_error(again)
        return _syntax_error(e)
    if root.getroottree().docinfo.doctype:  # the scan missed one: never served, at least
        return ParseError("DTDs are refused", line=1)
    try:
        return _document(root)
    except _TreeError as e:  # only now is the true line worth its cost (see _TreeError)
        return e.located(data, root)


def _syntax_error(e: etree.XMLSyntaxError) -> ParseError:
    if "Excessive depth" in e.msg:  # lxml's own limit, 256 levels
        return ParseError(
            "the document nests more than 256 levels deep; VobizXML takes a few levels, "
            f"and SSML inside a Speak at most {MAX_SSML_DEPTH}",
            line=e.lineno,
        )
    hint = ""
    if "EntityRef" in e.msg or "xmlParseEntityRef" in e.msg:
        # The commonest cause of a call dropped with 8011: a URL's query string.
        hint = "; a bare '&' (in a URL's query string, say) must be written &amp;"
    return ParseError(f"not well-formed XML: {e.msg}{hint}", line=e.lineno)


def _render_bound(data: bytes) -> int:
    """A size ``data`` (UTF-8, read by lxml) cannot render over: a byte of its text grows
    only where the escapers of _xmltext write more than the source did, and each such byte
    is counted with its most. Counting is memchr-fast; rendering a 90 KB document is not.

    - '>' (text or value) becomes '&gt;': 3 more.
    - '"' becomes '&quot;' in a value, 5 more, but only one quoted with "'" holds it raw:
      with no "'" anywhere there is none.
    - A reference is at least as long as what the escapers write for its character
      ('&#10;' for a value's newline, '&#13;', '&#9;', '&lt;', '&amp;'...) except '&#34;',
      one short of '&quot;': 1 more for each '&'.
    - A CDATA section's '<' becomes '&lt;' (3 more) and its '&' '&amp;' (4 more); a '<'
      anywhere else is markup, written back as it was.
    - Everything else renders as it was or shorter: white space between elements, comments
      and processing instructions are dropped, a value's raw white space is a space to XML
      (its escapes are references, above), values render canonical ('007' as '7'), an
      empty element written <X></X> renders <X/> (the elements that render <X></X> need
      text), and each attribute keeps its name, '=', quotes and one space before it.
    - Plus _RENDER_FRAME: the declaration and <Response>...</Response> may be added.
    """
    # A one-byte 'in' is a memchr, far cheaper than a count (or than a search for
    # '<![CDATA[', whose '<' is everywhere): each count is made only where it can add.
    grows = 3 * data.count(b">")
    if b"'" in data:
        grows += 5 * data.count(b'"')
    if b"[" in data and b"<![CDATA[" in data:
        grows += 4 * data.count(b"&") + 3 * data.count(b"<")
    elif b"&" in data:
        grows += data.count(b"&")
    return len(data) + _RENDER_FRAME + grows


def _check_rendered_size(doc: Response) -> None:
    """Refuse a document whose rendering is over MAX_BYTES though its text was not: to_xml
    would refuse to write what parse accepted (spec §1.0)."""
    # What to_xml writes, measured without its own check (which would raise ElementError,
    # not ParseError, and without the size): the children are rendered as it renders them.
    size = len(HEAD) + sum(len(str(c).encode()) for c in doc.children) + len("</Response>")
    if size > MAX_BYTES:
        raise ParseError(
            f"the document renders as {size} bytes, over the {MAX_BYTES} Vobiz accepts "
            "(spec §1.0): to_xml escapes more than the text did ('>' as &gt;, a '\"' in a "
            "single-quoted value as &quot;, a CDATA section's '<' and '&'), so it could not "
            "write this document back. Split it with Redirect.",
            element="Response",
            value=size,
        )


_TAG, _TEXT, _TAIL = "tag", "text", "tail"  # what in an element a _TreeError is about


class _TreeError(ParseError):
    """A ParseError about an element of lxml's tree, raised while reading the tree.

    lxml's ``sourceline`` is the line where an element's start tag ENDS: a ``<Gather`` on
    line 3 whose ``>`` is on line 9 says 9. parse_full catches this error and raises a plain
    ParseError with the true line (``located``): the element's start, the line of the
    attribute ``at``, or of the first non-blank character of the element's text or tail
    (``part``). Finding it costs a second pass over the source, paid only on an error.
    ``line`` (lxml's, or _tail_line's estimate) is kept only if that pass fails.
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


def _document(root: Any) -> Response:
    if root.tag != "Response":
        if root.tag in ELEMENTS:
            raise _TreeError(
                f"the root must be Response, found {root.tag}: wrap it, "
                f"<Response><{root.tag}>...</{root.tag}></Response>",
                root,
            )
        what = _name_error(root.tag)
        raise _TreeError(f"the root must be Response, found {what}", root)
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
        raise _TreeError(
            f"Response takes no attributes, got {shown(dict(el.attrib))}", el, at=el.keys()[0]
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
    of _source_line, which reads the true one. (Wrong after a multi-line start tag, a
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
        return _TreeError(_name_error(el.tag), el)
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
                raise _TreeError(foreign_attribute(tag, k, table), el, attribute=k)
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
