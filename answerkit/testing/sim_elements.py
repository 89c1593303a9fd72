"""The simple elements of a call document, and the data and signals a call runs on.

Speak, Play, Wait, Hangup, Stream, Record and Gather (spec §1.2) as functions of a
:class:`~answerkit.testing.sim_call.SimulatedCall`, and :func:`judge`, which holds
each XML reply to the platform's rules. Dial and Conference, which involve other
parties, are in :mod:`answerkit.testing.sim_bridge`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from answerkit.elements import Element, Response
from answerkit.errors import AnswerkitError, ConfigurationError
from answerkit.parse import parse
from answerkit.testing.sim_transcript import CAUSES, Cause, Webhook

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = [
    "BLOCK",
    "STEP",
    "CallEnded",
    "CallSetup",
    "Fetch",
    "GatherPrompt",
    "Interrupted",
    "Pending",
    "gather",
    "hangup_element",
    "hear",
    "judge",
    "parse_digits",
    "record",
    "stream",
    "wait",
]

#: What a call's program yields: it took a step, or it waits on something outside it.
STEP = 0
BLOCK = 1
DIGIT_KEYS = frozenset("0123456789*#")
MAX_XML_BYTES = 100_000
#: How Vobiz writes ``SessionStart`` (UTC, spec §2.1).
UTC_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
XML_TYPES = ("application/xml", "text/xml")


class CallEnded(Exception):
    """Raised inside a program to end the call with ``cause``."""

    def __init__(self, cause: Cause, note: str | None = None) -> None:
        super().__init__(cause.name)
        self.cause = cause
        self.note = note


class Interrupted(Exception):
    """Raised inside a program when a queued transfer or hang-up must be taken now."""


@dataclass
class Fetch:
    """A request whose XML becomes the call's next document (a hand-off)."""

    url: str
    method: str
    event: str | None
    params: dict[str, str]
    kind: str  # "answer" | "action" | "transfer" | "redirect": picks the 7xxx/8xxx cause


@dataclass(frozen=True)
class GatherPrompt:
    """What a Gather asks for, handed to an input provider (``answerkit call``)."""

    input_types: tuple[str, ...]
    num_digits: int
    finish_on_key: str
    prompts: tuple[str, ...]


@dataclass
class Recording:
    """A recording started by ``<Record>``; its RecordStop goes out after the hang-up.

    ``length`` and ``reason``: how long it lasts and why it stops, unless the call ends
    first (a ``recordSession`` recording always lasts until the hang-up).
    """

    recording_id: str
    element: Element
    start: float
    session: bool
    length: int = 0
    reason: str = "HungUp"


@dataclass
class Pending:
    """A transfer or hang-up waiting for the call's next step."""

    kind: str  # "transfer" | "transfer-bleg" | "hangup"
    url: str = ""
    method: str = "POST"
    cause: Cause | None = None


@dataclass
class CallSetup:
    """Everything a call is started with (built by :class:`CallSimulator`)."""

    call_uuid: str
    from_: str
    to: str
    direction: str
    answer_url: str | None
    answer_method: str = "POST"
    hangup_url: str | None = None
    hangup_method: str = "POST"
    fallback_url: str | None = None
    fallback_method: str | None = None  # None: the answer URL's method
    ring_url: str | None = None
    ring_method: str = "POST"
    caller_name: str | None = None
    request_uuid: str | None = None
    outcome: str = "answer"
    params: Mapping[str, str] = field(default_factory=dict)
    digits: list[str | None] = field(default_factory=list)
    speech: list[str | None] = field(default_factory=list)
    dial: list[Any] = field(default_factory=list)
    speech_confidence: float = 0.9
    max_steps: int = 200
    first_fetch: Fetch | None = None  # a B-leg starts from its transfer URL
    send_hangup: bool = True
    registered: bool = False  # LocalVobiz already knows the call (make-call)


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
    try:
        doc: Response = parse(hook.body)
    except (AnswerkitError, ValueError) as exc:
        why = f"invalid VobizXML from the {kind} URL: {exc}"
        raise CallEnded(CAUSES[f"{kind}_xml"], why) from None
    call.transcript.documents.append(doc)
    return doc


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
    if reason == "busy":
        raise CallEnded(CAUSES["busy"].with_source("Answer XML"))
    if reason == "rejected" or (first and not call.answered):
        raise CallEnded(CAUSES["rejected"])
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

    The simulated caller speaks for :data:`MESSAGE_SECONDS`, presses no key (so
    ``finishOnKey`` never ends it: nothing scripts keys for a Record), then stays
    silent: the recording stops after ``timeout`` seconds of silence (default 60), or
    at ``maxLength`` (default 60) if that comes first (spec §1.2 Record). The silence
    counts in the length: the file holds it, as far as the spec says.
    """
    max_length = max(1, _int(el.get("maxLength"), 60))
    natural = MESSAGE_SECONDS + max(0, _int(el.get("timeout"), 60))
    if max_length < natural:
        return max_length, "maxLength"
    return natural, "RecordingTimeout"


def record(call: SimulatedCall, el: Element) -> Fetch | None:
    """Start a recording and send its action (spec §2.6: early, with RecordingID).

    Not ``recordSession``, it runs for its :func:`recording_end` length before the next
    element, as the platform's Record blocks the document.
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
    if not session:
        rec.length, rec.reason = recording_end(el)
        call.clock += rec.length
    action = el.get("action")
    if not action:
        return None
    method = el.get("method") or "POST"
    params = {"RecordingID": recording_id}
    if el.get("redirect") == "true":
        return Fetch(action, method, "Record", params, "action")
    hook = call._send(action, method, call._params("Record", params))
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


def _local_time(start: datetime, seconds: float) -> str:
    # Vobiz reports StartTime/AnswerTime/EndTime in the account's local time (spec §2.2).
    return (start + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def send_hangup(call: SimulatedCall, cause: Cause) -> None:
    """The hangup webhook (spec §2.2), to the hangup URL or else the answer URL."""
    url = call.setup.hangup_url or call.setup.answer_url
    if not url:
        return
    t = call.transcript
    answered = call.answered_at
    call._notify(
        url,
        call.setup.hangup_method,
        "Hangup",
        {
            "HangupCause": cause.cause,
            "HangupCauseCode": str(cause.code),
            "HangupCauseName": cause.name,
            "HangupSource": cause.source,
            "Duration": str(t.duration),
            "BillDuration": str(t.bill_duration),
            "StartTime": _local_time(call.started_at, 0),
            "AnswerTime": "" if answered is None else _local_time(call.started_at, answered),
            "EndTime": _local_time(call.started_at, call.clock),
            "BillRate": "0",
            "TotalCost": "0.00000",
        },
    )


#: What a simulated transcription says: no audio is recorded, so there is nothing to transcribe.
SIMULATED_TRANSCRIPTION = "simulated transcription"


def send_record_stops(call: SimulatedCall) -> None:
    """RecordStop for every recording with a callbackUrl (after the hangup, spec §2.13),
    then its transcription to ``transcriptionUrl`` (spec §2.6)."""
    for rec in call.recordings:
        callback = rec.element.get("callbackUrl")
        if callback:
            _record_stop(call, rec, callback)
    for rec in call.recordings:
        transcription_url = rec.element.get("transcriptionUrl")
        if transcription_url:
            _transcription(call, rec, transcription_url)


def _transcription(call: SimulatedCall, rec: Recording, url: str) -> None:
    # Spec §2.6 lists these four fields, snake_case unlike every other callback's, and no
    # other: no CallUUID, so a flow that needs the call must map it from the recording id.
    # The text is a fixed stand-in (SIMULATED_TRANSCRIPTION): nothing was really recorded.
    transcription_id = str(uuid.uuid4())
    fields = {
        "transcription": SIMULATED_TRANSCRIPTION,
        "transcription_id": transcription_id,
        "transcription_url": f"https://media.vobiz.ai/transcriptions/{transcription_id}",
        "recording_id": rec.recording_id,
    }
    standard = [name for name in call._params("", {}) if name not in fields]
    call._notify(url, rec.element.get("transcriptionMethod") or "POST", "", fields, standard)


def _record_stop(call: SimulatedCall, rec: Recording, callback: str) -> None:
    length, reason = rec.length, rec.reason
    if rec.session or call.clock < rec.start + length:
        # Recording the whole call, or cut short by a scheduled hang-up: it ends with the call.
        length, reason = max(1, round(call.clock - rec.start)), "HungUp"
    start_ms = int(rec.start * 1000)
    fmt = rec.element.get("fileFormat") or "mp3"
    url = f"https://media.vobiz.ai/recordings/{rec.recording_id}.{fmt}"
    call._notify(
        callback,
        rec.element.get("callbackMethod") or "POST",
        "RecordStop",
        {
            "RecordingID": rec.recording_id,
            "RecordUrl": url,
            "RecordFile": url,
            "RecordingDuration": str(length),
            "RecordingDurationMs": str(length * 1000),
            "RecordingStartMs": str(start_ms),
            "RecordingEndMs": str(start_ms + length * 1000),
            "RecordingEndReason": reason,
        },
    )


def gather(call: SimulatedCall, el: Element) -> Generator[int, None, Fetch | None]:
    """Play the prompts, take the next scripted input, and hand off to the action.

    No input (spec §6 item 2): with ``gather_timeout="next"`` (the default) the call
    goes on with the next element; with ``"post-empty"`` the action gets empty
    ``Digits``/``Speech``. The spec names no ``Event`` for the action, so none is sent.
    """
    prompts = []
    for child in el.children:
        hear(call, child)
        prompts.append((child.text or "").strip())
    if call.stop_at == "gather":
        call.stop_at = None
        call.paused = True
        yield BLOCK
    types = tuple((el.get("inputType") or "dtmf").split())
    finish = el.get("finishOnKey", "#") or ""
    finish = "" if finish == "none" else finish
    num_digits = _int(el.get("numDigits"), 32)
    got = call._take_input(types, GatherPrompt(types, num_digits, finish, tuple(prompts)))
    action = el.get("action")
    masked = el.get("log") == "false"
    if got is None:
        call.clock += _int(el.get("executionTimeout"), 15)
        call._emit("no-input", "gives no input")
        if call.sim.gather_timeout == "next" or not action:
            return None
        params = {"InputType": types[0], "Digits": "", "Speech": "", "SpeechConfidenceScore": ""}
    else:
        kind, value = got
        call.clock += 2
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


def check_digits(digits: str | None) -> str | None:
    """Validate one scripted input: None, ``""`` and ``"-"`` mean no input.

    Anything but keys raises :class:`~answerkit.errors.ConfigurationError`.
    """
    if digits is None or digits in ("", "-"):
        return None
    if not isinstance(digits, str) or not set(digits) <= DIGIT_KEYS:
        raise ConfigurationError(
            f"digits must hold only the keys 0-9, * and # (- or empty for no input), got {digits!r}"
        )
    return digits


def parse_digits(digits: str | Sequence[str | None] | None) -> list[str | None]:
    """``"1,2"`` or ``["1", None]`` -> the scripted Gather inputs (``-``/None: no input)."""
    if digits is None:
        return []
    items = _script_items("digits", digits)
    return [check_digits(item.strip() if isinstance(item, str) else item) for item in items]


def _script_items(name: str, script: object) -> list[Any]:
    """A scripted input's items: a string split on commas, a list or tuple item by item."""
    if isinstance(script, str):
        return script.split(",")
    if isinstance(script, (list, tuple)):
        return list(script)
    raise ConfigurationError(
        f"{name} must be text such as '1,2' or a list of texts (None or '-' for no input), "
        f"got {script!r}"
    )


def parse_speech(speech: str | Sequence[str | None] | None) -> list[str | None]:
    """``"sales,yes"`` or a list -> the scripted speech inputs (``-``/None: nothing said).

    A string is split on commas (the ``--speech`` contract of ``answerkit call``); a
    list or tuple gives one input per item, taken whole, so ``["sales, please"]`` is
    one utterance with its comma. Anything but text raises ConfigurationError.
    """
    if speech is None:
        return []
    items = _script_items("speech", speech)
    said: list[str | None] = []
    for item in items:
        if item is not None and not isinstance(item, str):
            raise ConfigurationError(
                "speech must be text, or a list of texts (None or - for nothing said), "
                f"got {item!r}"
            )
        said.append(None if item is None or item.strip() in ("", "-") else item.strip())
    return said
