"""The ``<Record>`` element of a simulated call: how long it records, why it stops, its action.

The simulated caller leaves a message of :data:`MESSAGE_SECONDS`, then ends the
recording as the test scripted (``record=`` of :meth:`CallSimulator.call`: silence,
the ``finishOnKey`` key, or hanging up); the action goes out as the recording starts
(spec §2.6). The RecordStop and transcription callbacks come after the hang-up
(:mod:`~answerkit.testing.sim_after_hangup`).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from answerkit.elements import Element
from answerkit.errors import AnswerkitError
from answerkit.parse import parse
from answerkit.testing.sim_elements import _int, end_call
from answerkit.testing.sim_signals import Fetch, Recording
from answerkit.testing.sim_transcript import CAUSES

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["record"]

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
    on_answer = el.get("startOnDialAnswer") == "true"
    # Either records on past this element, the document going on at once (spec §1.2): a
    # startOnDialAnswer one from the answer of a Dial's B-leg (it was played as a
    # voicemail Record, the caller leaving a message before the Dial began).
    session = on_answer or el.get("recordSession") == "true"
    rec = Recording(recording_id, el, call.clock, session, awaits_dial=on_answer)
    call.transcript.recordings.append(recording_id)
    call.recordings.append(rec)
    call._emit(
        "record",
        "recording waits for a Dial's answer"
        if on_answer
        else "recording starts" + (" (whole call)" if session else ""),
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
        end = call.clock + rec.length
        if call.hangup_at is not None:  # never past the scheduled hang-up (events in order)
            end = max(call.clock, min(end, call.hangup_at))
        call.clock = end
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
            # Spec §1.2 Record: with redirect=false the action "must return an empty
            # <Response>, or it will interrupt a flow that has already moved on": a
            # failure of the flow, not a note a passing test would never read.
            error = (
                f"{call._display(action)}: the Record action answered a non-empty document "
                "with redirect=false; on Vobiz it interrupts the call: answer an empty "
                "Response() (declare the route status_callback=True), or set redirect=True"
            )
            call.transcript.handler_errors.append(error)
            call._emit("error", f"handler error: {error}")
    return None
