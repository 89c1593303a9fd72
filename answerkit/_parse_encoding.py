"""The input's encoding, made UTF-8 before lxml reads it (XML 1.0 Appendix F, §4.3.3).

Bytes are decoded here by XML's rules (a byte order mark, else the declared encoding, else
UTF-8) and a str's declaration is made to say UTF-8, so lxml always reads UTF-8 bytes
whose declaration agrees, and the checks of ``_parse_lxml`` read one encoding only. A
document that grows over the size limit once UTF-8 is refused here, where that is known.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lxml import etree

from answerkit._element import MAX_BYTES
from answerkit._parse_lines import _line_at
from answerkit.errors import ParseError

#: The encoding declared by an XML declaration at the start of a str (after a BOM, if any):
#: group 1 is the name. A str is already decoded, so parse() declares it UTF-8 instead.
_DECLARED_ENCODING = re.compile(
    r"""\ufeff?<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"[^"]*"|'[^']*')"""
    r"""[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|'([^']*)')"""
).match


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
        if not _xml_knows(encoding):
            # Python's own codecs ('unicode_escape', 'u8', 'latin-1', '8859') decoded what an
            # XML parser refuses: a document the simulator passed failed live ('\n' in a
            # Speak's text even became a line end).
            raise ParseError(
                f"the document declares an unknown encoding {encoding!r} (not a name XML "
                "parsers know); declare one that is (UTF-8, ISO-8859-1, windows-1252, ...), "
                "or none for UTF-8",
                line=1,
            )
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
    if text.startswith("\ufeff"):
        # A second byte order mark: a character before the root, as lxml and a str's
        # parse() say; re-encoded as UTF-8 it read as a mark again, and passed.
        raise ParseError("a second byte order mark before the root element", line=1)
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


@lru_cache(maxsize=32)
def _xml_knows(encoding: str) -> bool:
    """Whether an XML parser (libxml2, as lxml has it) takes ``encoding`` as a name: a
    byte order mark's own names and the ones documents declare, not Python's aliases."""
    try:
        etree.XMLParser(encoding=encoding)
    except (LookupError, ValueError, TypeError):
        return False
    return True


def _decoded_line(head: bytes, encoding: str) -> int | None:
    """The line a decode error is on: ``head`` is the text before it, in ``encoding`` (a
    codec that has just read it), so its line ends are counted once decoded. None if even a
    lenient decode fails: the error is told without a line rather than not at all."""
    try:
        text = head.decode(encoding, "replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return None
    return _line_at(text, len(text))


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
