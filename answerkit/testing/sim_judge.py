"""How the platform judges a document a simulated call fetches, before it runs a line.

:func:`judge` holds each XML reply to the platform's rules (spec §2.12): its HTTP
status, content type, size and VobizXML decide whether the call goes on or is dropped
with the cause Vobiz gives. A ``<DTMF>`` whose text Vobiz ignores (spec §1.2 DTMF) is
skipped rather than failing the document: :func:`answerkit.parse.parse` refuses one,
so it is blanked out of the bytes and the rest read again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from answerkit.elements import Response
from answerkit.errors import AnswerkitError, ElementError
from answerkit.parse import parse
from answerkit.testing.sim_signals import CallEnded
from answerkit.testing.sim_transcript import CAUSES, Webhook

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["judge"]

MAX_XML_BYTES = 100_000
XML_TYPES = ("application/xml", "text/xml")


def judge(call: SimulatedCall, hook: Webhook, kind: str) -> Response:
    """The document a reply carries, or the cause Vobiz drops the call with (spec §2.12)."""
    if not hook.ok:
        why = hook.error or f"HTTP {hook.status}"
        raise CallEnded(CAUSES[f"{kind}_url"], f"the {kind} URL failed: {why}")
    ctype = hook.content_type.split(";", 1)[0].strip().lower()
    if ctype not in XML_TYPES:
        raise CallEnded(
            CAUSES[f"{kind}_xml"],
            f"the {kind} URL answered {ctype or 'no content type'!r}, not application/xml",
        )
    if len(hook.body) > MAX_XML_BYTES:
        raise CallEnded(CAUSES[f"{kind}_xml"], f"the {kind} XML is over 100 KB")
    doc, skipped = _parse_reply(call, hook.body, kind)
    call.transcript.documents.append(doc)
    if not doc.children and kind in _MUST_STEER and skipped:
        # Not a handler that forgot its Response: every element it wrote was skipped.
        call._emit(
            "note",
            f"the {kind} URL's document had only <DTMF> that Vobiz ignores, so nothing is "
            "left to run and the call ends (4010)",
        )
    elif not doc.children and kind in _MUST_STEER:
        # Valid, but the call ends right there (4010): nearly always a handler that built
        # its Response and forgot to return it (a Redirect target must answer XML, §2.7).
        call._emit(
            "note",
            f"the {kind} URL answered an empty document, so the call ends (4010): return "
            "the Response (or Response(Hangup()) to end the call on purpose)",
        )
    return doc


#: The fetches whose document is the call's next one and never meant to be empty.
_MUST_STEER = frozenset({"answer", "redirect", "transfer"})
#: What a ``<DTMF>`` may send (spec §1.2 DTMF: "The text may contain only 1234567890*#wW").
DTMF_KEYS = frozenset("0123456789*#wW")


def _parse_reply(call: SimulatedCall, body: bytes, kind: str) -> tuple[Response, int]:
    """The document in ``body`` and how many ``<DTMF>`` were skipped in it, or the cause
    Vobiz drops the call with (invalid XML).

    Spec §1.2 DTMF: "Any other character makes Vobiz ignore the element". ``parse``
    refuses such a ``<DTMF>`` (the builder must never write one), so it is blanked out
    and the rest read again; each one skipped gets a transcript note.
    """
    try:
        return parse(body), 0
    except (AnswerkitError, ValueError) as exc:
        error: Exception = exc
    ignored = _ignored_dtmf(body) if _is_dtmf_text(error) else None
    if ignored is not None:
        rest, skipped = ignored
        try:
            doc = parse(rest)
        except (AnswerkitError, ValueError) as exc:
            error = exc  # something else is wrong too: the call ends on that
        else:
            for text in skipped:
                shown = text if len(text) <= 40 else text[:40] + "..."
                call._emit(
                    "note",
                    f"skipped <DTMF>{shown}</DTMF>: a character other than 0-9 * # w W "
                    "makes Vobiz ignore the element (spec §1.2 DTMF)",
                )
            return doc, len(skipped)
    why = f"invalid VobizXML from the {kind} URL: {error}"
    raise CallEnded(CAUSES[f"{kind}_xml"], why)


def _is_dtmf_text(error: Exception) -> bool:
    """True when ``error`` is parse's refusal of a ``<DTMF>``'s text (not an attribute)."""
    return (
        isinstance(error, ElementError)
        and error.element == "DTMF"
        and error.attribute is None
        and isinstance(error.value, str)
        and bool(set(error.value.strip()) - DTMF_KEYS)  # empty text stays an error
    )


def _ignored_dtmf(body: bytes) -> tuple[bytes, list[str]] | None:
    """``body`` with the ``<DTMF>`` elements of ``<Response>`` that Vobiz ignores blanked
    out, and their texts; None when there is none, or ``body`` cannot be read so.

    Blanked, not taken out of a re-serialised tree: every byte of the element becomes a
    space but its line ends, so anything after it stays on its line and column, and a
    later error names the line the author sees (lxml would rewrite the declaration,
    comments outside the root and line breaks inside tags). lxml tells which children
    are such a ``<DTMF>`` (its text read as parse reads it: comments dropped, so
    ``1<!-- c -->a`` is ``1a``); _child_spans finds where they are in the bytes.
    ``parse`` reached the element, so ``body`` has no DTD or entity declaration (refused
    before anything else); lxml is still told to resolve nothing and fetch nothing.
    """
    if b"\x00" in body[:4] or body[:2] in (b"\xfe\xff", b"\xff\xfe"):
        return None  # UTF-16 or UTF-32: markup is not single bytes, so not blanked here
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return None
    children = list(root)
    spans = _child_spans(body)
    if spans is None or len(spans) != len(children):
        return None
    out = bytearray(body)
    skipped: list[str] = []
    for el, (start, end) in zip(children, spans, strict=True):
        text = (el.text or "").strip()
        if el.tag != "DTMF" or len(el) or not text or not set(text) - DTMF_KEYS:
            continue
        if not body.startswith(b"<DTMF", start):
            return None  # the scan and lxml disagree: leave the document as it is
        skipped.append(text)
        for i in range(start, end):
            if out[i] not in b"\r\n":
                out[i] = 0x20
    if not skipped:
        return None
    return bytes(out), skipped


def _child_spans(body: bytes) -> list[tuple[int, int]] | None:
    """The byte ranges ``[start, end)`` of the root's child elements, in document order;
    None if the markup does not scan (lxml read it, so that is a document this scanner
    does not know, and nothing is blanked).

    Comments, processing instructions and CDATA sections are stepped over whole; a tag
    ends at the first ``>`` outside a quoted attribute value. Every other ``<`` opens a
    tag: in well-formed XML text cannot hold one unescaped.
    """
    spans: list[tuple[int, int]] = []
    depth = 0
    start = 0
    i = body.find(b"<")
    while i >= 0:
        for opener, closer in ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>")):
            if body.startswith(opener, i):
                close = body.find(closer, i + len(opener))
                if close < 0:
                    return None
                i = body.find(b"<", close + len(closer))
                break
        else:
            if body.startswith(b"<!", i):
                return None  # a DOCTYPE: parse refuses one before any element
            end = _tag_end(body, i)
            if end is None:
                return None
            if body.startswith(b"</", i):
                depth -= 1
                if depth == 1:
                    spans.append((start, end))
            elif body[end - 2 : end] == b"/>":
                if depth == 1:
                    spans.append((i, end))
            else:
                if depth == 1:
                    start = i
                depth += 1
            i = body.find(b"<", end)
    return spans if depth == 0 else None


def _tag_end(body: bytes, i: int) -> int | None:
    """The index after the ``>`` that ends the tag opened at ``body[i]``; None if none."""
    quote = 0
    for j in range(i + 1, len(body)):
        byte = body[j]
        if quote:
            if byte == quote:
                quote = 0
        elif byte in b"\"'":
            quote = byte
        elif byte == 0x3E:  # ">"
            return j + 1
    return None
