"""The full path, through lxml: any layout, every refusal and every error with its line.

What ``parse`` hands on (UTF-8, see ``_parse_encoding``) is scanned for a DTD or entity
declaration, which is refused before lxml sees it; lxml reads the rest with a hardened
parser (no DTD, no entities, no network, no huge trees) and ``_parse_tree`` builds the
typed elements from its tree. Last, a document that would render over the size limit is
refused: what parse accepts, to_xml can write back.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from lxml import etree

from answerkit._canonical import HEAD
from answerkit._element import MAX_BYTES
from answerkit._parse_lines import _line_at, _TreeError
from answerkit._parse_tree import _document
from answerkit.elements import Response
from answerkit.errors import ParseError
from answerkit.ssml import MAX_DEPTH as MAX_SSML_DEPTH

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

#: What rendering may add to a document whatever its body: the XML declaration and
#: <Response>, and </Response> (the input may have neither, or be a bare <Response/>).
_RENDER_FRAME = len(HEAD) + len("</Response>")
#: A document of at most this many bytes renders (to_xml) within MAX_BYTES, whatever it
#: holds: rendering escapes more than XML requires, but a byte grows at most 6 times ('"' in
#: a single-quoted value becomes '&quot;'; see _render_bound). Below it nothing is counted.
_MAY_RENDER_TOO_BIG = (MAX_BYTES - _RENDER_FRAME) // 6


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

    ``data`` is UTF-8 (parse makes it so: see _parse_encoding._utf8_of); the checks before
    lxml and the rendered-size bound read it as UTF-8.
    """
    # Refused before lxml sees them: no XXE, no billion laughs. A search for one byte as an
    # int (33, '!') is a bare memchr (b"!" in data is several times slower), so '!' goes
    # first; '<!' also starts comments and CDATA, which are fine.
    # The document is UTF-8 here (see _parse_encoding._utf8_of): no declaration is in other bytes.
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
