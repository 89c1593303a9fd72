"""The simple elements of a call document: Speak, Play, Wait, Hangup, Stream, Record, Gather.

Each element (spec §1.2) is a function of a
:class:`~answerkit.testing.sim_call.SimulatedCall`, and :func:`judge` holds each XML
reply to the platform's rules. Dial and Conference, which involve other parties, are
in :mod:`answerkit.testing.sim_bridge`. The call's data and signals
(:mod:`~answerkit.testing.sim_signals`), the scripted inputs
(:mod:`~answerkit.testing.sim_script`) and the callbacks after the hang-up
(:mod:`~answerkit.testing.sim_after_hangup`) used to live here, and their names can
still be imported from here.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Generator
from datetime import timedelta
from typing import TYPE_CHECKING, NoReturn

from lxml import etree

from answerkit.elements import Element, Response
from answerkit.errors import AnswerkitError, ElementError
from answerkit.parse import parse
from answerkit.testing.sim_after_hangup import (
    SIMULATED_TRANSCRIPTION as SIMULATED_TRANSCRIPTION,
)
from answerkit.testing.sim_after_hangup import send_hangup as send_hangup
from answerkit.testing.sim_signals import (
    BLOCK,
    STEP,
    CallEnded,
    Fetch,
    GatherPrompt,
    Recording,
)
from answerkit.testing.sim_transcript import CAUSES, FLOW_REJECTIONS, Cause, Webhook

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = [
    "check_schedule",
    "gather",
    "hangup_element",
    "hear",
    "judge",
    "record",
    "stream",
    "wait",
]

MAX_XML_BYTES = 100_000
#: How Vobiz writes ``SessionStart`` (UTC, spec §2.1).
UTC_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
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


def check_schedule(call: SimulatedCall, after_hangup: Fetch | None = None) -> None:
    """End the call if its ``<Hangup schedule>`` fell due during the element just run.

    The call ends at the scheduled time, not when the element would have finished
    (Duration counts to the hang-up), and a hand-off the element made is not
    followed: the call is gone. ``after_hangup`` (a Dial's action) is still requested
    after the hangup webhook (spec §2.13), its reply ignored.
    """
    if call.hangup_at is None or call.clock < call.hangup_at:
        return
    call.clock = call.hangup_at
    end_call(call, CAUSES["normal"], "scheduled hangup", after_hangup)


def end_call(
    call: SimulatedCall, cause: Cause, note: str, after_hangup: Fetch | None = None
) -> NoReturn:
    """End the call now; ``after_hangup`` (a Dial's action) is requested after the hangup
    webhook (spec §2.13), its reply ignored."""
    if after_hangup is not None:
        late = after_hangup
        call._after_hangup.append(
            lambda: call._send(late.url, late.method, call._params(late.event, late.params))
        )
    raise CallEnded(cause, note)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def hear(call: SimulatedCall, el: Element, early: bool = False) -> bool:
    """Put a Speak or Play into the transcript; True when it loops forever (``loop=0``)."""
    text = (el.text or "").strip()
    loop = _int(el.get("loop"), 1)
    if el.tag == "Speak":
        line = f'hears: "{text}"'
        seconds = max(1, math.ceil(len(text.split()) / 2.5))
    else:
        line = f"hears audio: {text}"
        seconds = 5
    if early:
        line += " (early media)"
    if loop > 1:
        line += f" (x{loop})"
    elif loop == 0:
        line += " (looping)"
    times = max(loop, 1)
    call.transcript.heard.extend([text] * times)
    call.clock += seconds * times
    call._emit("hear", line, text=text, loop=loop)
    return loop == 0


def wait(call: SimulatedCall, el: Element, first: bool, early: bool = False) -> None:
    """A silent pause; as the first element of an inbound answer it delays answering.

    ``early``: inside ``<PreAnswer>``, a pause in the early media; it neither answers
    the call nor counts as billed time (spec §1.2 PreAnswer).
    """
    length = _int(el.get("length"), 1)
    if early and not call.answered:
        call.clock += length
        call._emit("silence", f"silence: {length}s (early media)")
    elif first and not call.answered and call.direction == "inbound":
        call.clock += length
        call._emit("silence", f"rings {length}s before answer")
    else:
        call._mark_answered()  # before the pause: its seconds are answered (billed) time
        call.clock += length
        call._emit("silence", f"silence: {length}s")


def hangup_element(call: SimulatedCall, el: Element, first: bool) -> None:
    """End the call (or schedule its end); first and unanswered, it rejects the call."""
    schedule = _int(el.get("schedule"), 0)
    if schedule > 0:
        call.hangup_at = call.clock + schedule
        call._emit("note", f"hangup scheduled in {schedule}s")
        return
    reason = el.get("reason")
    busy, rejected = FLOW_REJECTIONS  # a rejection on purpose: Transcript.ended_normally
    if reason == "busy":
        raise CallEnded(busy)
    if reason == "rejected" or (first and not call.answered):
        raise CallEnded(rejected)
    raise CallEnded(CAUSES["normal"])


def stream(call: SimulatedCall, el: Element) -> bool:
    """Record the stream URL (no WebSocket is opened) and send StartStream.

    True when ``keepCallAlive="true"``: the Stream then runs on its own and the call
    waits for its socket to close before the next element (spec §1.2 Stream).
    """
    url = (el.text or "").strip()
    keep_alive = el.get("keepCallAlive") == "true"
    call.transcript.streams.append(url)
    line = f"audio streams to {url}"
    if keep_alive:
        line += " (keepCallAlive: the call waits until the stream closes)"
    call._emit("stream", line)
    callback = el.get("statusCallbackUrl")
    if callback:
        method = el.get("statusCallbackMethod") or "POST"
        # Spec §2.10 lists Timestamp without its format: it is written here as SessionStart
        # is (UTC, microseconds), at the call's simulated time. The two snake_case fields
        # echo the element's own attributes.
        stamp = call.session_start + timedelta(seconds=call.clock)
        call._notify(
            callback,
            method,
            "StartStream",
            {
                "StreamID": str(uuid.uuid4()),
                "ServiceURL": url,
                "Error": "",
                "Timestamp": stamp.strftime(UTC_FORMAT),
                "status_callback_url": callback,
                "status_callback_method": method,
            },
        )
    return keep_alive


#: How long the simulated caller speaks into a ``<Record>`` before falling silent.
MESSAGE_SECONDS = 5


def recording_end(el: Element) -> tuple[int, str]:
    """How long a (not ``recordSession``) Record lasts, and its ``RecordingEndReason``.

    The simulated caller speaks for :data:`MESSAGE_SECONDS`, then stays silent (the
    default ending; ``record=["key"]`` or ``["hangup"]`` script another, see
    :func:`record`): the recording stops after ``timeout`` seconds of silence (default
    60), or at ``maxLength`` (default 60) if that comes first (spec §1.2 Record). The silence
    counts in the length: the file holds it, as far as the spec says.
    """
    max_length = max(1, _int(el.get("maxLength"), 60))
    natural = MESSAGE_SECONDS + max(0, _int(el.get("timeout"), 60))
    if max_length < natural:
        return max_length, "maxLength"
    return natural, "RecordingTimeout"


def record(call: SimulatedCall, el: Element) -> Fetch | None:
    """Start a recording and send its action (spec §2.6: early, with RecordingID).

    The action goes out as the recording starts; with ``redirect="true"`` its XML
    becomes the next document once the recording is done. Not ``recordSession``, the
    recording runs for its :func:`recording_end` length before the next element, as the
    platform's Record blocks the document; a scheduled hang-up falling due meanwhile
    ends the call (and the recording) at its time, the action having gone out already.
    """
    recording_id = str(uuid.uuid4())
    session = el.get("recordSession") == "true"
    rec = Recording(recording_id, el, call.clock, session)
    call.transcript.recordings.append(recording_id)
    call.recordings.append(rec)
    call._emit(
        "record",
        "recording starts" + (" (whole call)" if session else ""),
        recording_id=recording_id,
    )
    ending = "silence" if session else call._next_record_ending()
    if not session:
        rec.length, rec.reason = recording_end(el)
        finish = el.get("finishOnKey", "#") or ""
        if ending == "key" and finish in ("", "none"):
            call._emit("note", "a scripted key cannot end this Record: its finishOnKey is none")
        elif ending in ("key", "hangup") and rec.length < MESSAGE_SECONDS:
            call._emit(
                "note",
                f"the scripted ending {ending!r} did not come: maxLength cut the recording "
                f"at {rec.length} s, during the caller's {MESSAGE_SECONDS} s message",
            )
        elif ending in ("key", "hangup"):
            # The caller leaves the message, then presses the key or hangs up.
            rec.length = MESSAGE_SECONDS
            rec.reason = "FinishedOnKey" if ending == "key" else "HungUp"
    fetch = _record_action(call, el, recording_id)
    if not session:
        length, reason = rec.length, rec.reason
        if call.hangup_at is not None and call.hangup_at < rec.start + length:
            # The scheduled hang-up falls due first: it ends the recording (RecordStop says
            # the same, sim_after_hangup.py).
            length, reason = max(1, round(call.hangup_at - rec.start)), "HungUp"
        call.clock += rec.length
        call._emit(
            "record", f"recording ends after {length} s: {reason}", recording_id=recording_id
        )
        if rec.reason == "HungUp":
            end_call(call, CAUSES["normal"].with_source("Caller"), "hung up while recording")
    return fetch


def _record_action(call: SimulatedCall, el: Element, recording_id: str) -> Fetch | None:
    """Send the Record action now; the hand-off to its XML with ``redirect="true"``."""
    action = el.get("action")
    if not action:
        return None
    method = el.get("method") or "POST"
    params = {"RecordingID": recording_id}
    hook = call._send(action, method, call._params("Record", params))
    if el.get("redirect") == "true":
        return Fetch(action, method, "Record", params, "action", reply=hook)
    if hook.ok and hook.body.strip():
        try:
            steers = bool(parse(hook.body).children)
        except (AnswerkitError, ValueError):
            steers = False
        if steers:
            call._emit(
                "note",
                "the Record action answered a non-empty document with "
                "redirect=false: on Vobiz it may interrupt the call",
            )
    return None


def gather(call: SimulatedCall, el: Element) -> Generator[int, None, Fetch | None]:
    """Play the prompts, take the next scripted input, and hand off to the action.

    No input (spec §6 item 2): with ``gather_timeout="next"`` (the default) the call
    goes on with the next element; with ``"post-empty"`` the action gets empty
    ``Digits``/``Speech``. The spec names no ``Event`` for the action, so none is sent.
    """
    prompts = []
    endless = False
    for child in el.children:
        endless = hear(call, child) or endless
        prompts.append((child.text or "").strip())
    # A scheduled hang-up that fell due during the prompts ends the call there: the caller
    # is gone before any input is taken (or the test's pause at this Gather is reached).
    check_schedule(call)
    if call.has_pending:
        # A hang-up or transfer asked for while the prompts played (a listener reacting
        # to what was heard) ends the Gather before the caller answers it.
        yield STEP
    if call.stop_at == "gather":
        call.stop_at = None
        call.paused = True
        yield BLOCK
    types = tuple((el.get("inputType") or "dtmf").split())
    finish = el.get("finishOnKey", "#") or ""
    finish = "" if finish == "none" else finish
    num_digits = _int(el.get("numDigits"), 32)
    prompt = GatherPrompt(types, num_digits, finish, tuple(prompts))
    got = call._take_input(types, prompt)
    action = el.get("action")
    masked = el.get("log") == "false"
    if got is None and endless:
        # The timeout starts once the prompts end (spec §1.2), and a loop=0 one never
        # does: the caller hears it until they answer (call.press/say while blocked), hang
        # up or are transferred, as with any looping audio.
        call._emit(
            "note",
            "the Gather's prompt loops for ever (loop=0), so its executionTimeout never "
            "starts: a silent caller hears it until the call ends",
        )
        while got is None:
            yield BLOCK
            got = call._take_input(types, prompt)
    if got is None:
        call.clock += _int(el.get("executionTimeout"), 15)
        check_schedule(call)  # hung up while the Gather waited: no action either way
        call._emit("no-input", "gives no input")
        if call.sim.gather_timeout == "next" or not action:
            return None
        params = {"InputType": types[0], "Digits": "", "Speech": "", "SpeechConfidenceScore": ""}
    else:
        kind, value = got
        call.clock += 2
        check_schedule(call)  # hung up before the input was complete: nothing was sent
        if kind == "dtmf":
            if finish and finish in value:
                value = value[: value.index(finish)]
            value = value[:num_digits]
            call.transcript.digits_sent.append(value)
            shown = "*" * len(value) if masked else value
            call._emit("press", f"presses: {shown}", digits=value)
            params = {
                "InputType": "dtmf",
                "Digits": value,
                "Speech": "",
                "SpeechConfidenceScore": "",
            }
        else:
            call.transcript.speech_sent.append(value)
            call._emit("say", f'says: "{"***" if masked else value}"', speech=value)
            interim = el.get("interimSpeechResultsCallback")
            if interim:
                # One partial result before the final one (spec §2.4); the reply is ignored.
                method = el.get("interimSpeechResultsCallbackMethod") or "POST"
                call._notify(
                    interim,
                    method,
                    "",
                    {
                        "StableSpeech": value,
                        "UnstableSpeech": "",
                        "Stability": "0.90",
                        "SequenceNumber": "1",
                    },
                )
            params = {
                "InputType": "speech",
                "Digits": "",
                "Speech": value,
                "SpeechConfidenceScore": f"{call.setup.speech_confidence:.2f}",
            }
    if not action:
        return None
    method = el.get("method") or "POST"
    if el.get("redirect") == "false":
        call._send(action, method, call._params(None, params))
        return None
    return Fetch(action, method, None, params, "action")
