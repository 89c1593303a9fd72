"""VobizXML text -> the typed element tree, with every check the constructors apply.

``parse(doc.to_xml()) == doc`` for every valid document. Errors raise
:class:`~answerkit.errors.ParseError` carrying the line. The parser is hardened: no DTD,
no entity declarations or references, no network, no huge trees. Plivo and TwiML names are
refused with the VobizXML replacement named.

Two paths: a document exactly as ``to_xml`` writes it is read by ``_canonical`` (no lxml,
kept only if it renders back to the same text); everything else, and every error, goes
through lxml (``parse_full``).

This module is the entry: what input is taken, its size as given, and which path reads it.
The rest lives beside it: ``_parse_encoding`` (the input made UTF-8), ``_parse_lxml`` (the
full path: the DTD scan, the hardened lxml parser, the rendered-size bound),
``_parse_tree`` (lxml's tree -> the typed elements, ``FOREIGN``), ``_parse_lines`` (line
counting and the error path's scan for an element's true line).
"""

from __future__ import annotations

from answerkit._canonical import HEAD, read
from answerkit._element import MAX_BYTES
from answerkit._parse_encoding import _as_utf8, _utf8_of
from answerkit._parse_lines import _line_at
from answerkit._parse_lxml import parse_full as parse_full
from answerkit._parse_tree import _SEEN as _SEEN
from answerkit._parse_tree import FOREIGN as FOREIGN
from answerkit.elements import Response
from answerkit.errors import ParseError

__all__ = ["parse"]

#: A str over this many characters may be over MAX_BYTES once encoded (4 bytes a char).
_MAY_BE_TOO_BIG = MAX_BYTES // 4


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
