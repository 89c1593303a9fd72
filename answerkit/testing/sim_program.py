"""A simulated call's program: what it does from its first request to its last element.

The program is a generator (:data:`Program`) that the call steps: it yields
:data:`~answerkit.testing.sim_signals.STEP` after every element, and
:data:`~answerkit.testing.sim_signals.BLOCK` while it waits on something outside
itself (a conference room, a bridged B-leg, a keepCallAlive Stream, a loop that only
a transfer can end). It fetches each document (the answer URL, then every hand-off:
an action, a Redirect, a transfer; the fallback URL when the answer URL fails), runs
its elements as the platform does (spec §1), counts the steps against ``max_steps``,
and ends the call when its ``<Hangup schedule>`` falls due during an element.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

from answerkit.elements import Response
from answerkit.testing import sim_elements as elem
from answerkit.testing.sim_conference import run_conference
from answerkit.testing.sim_dial import run_dial
from answerkit.testing.sim_gather import gather
from answerkit.testing.sim_judge import judge
from answerkit.testing.sim_record import record
from answerkit.testing.sim_signals import BLOCK, STEP, CallEnded, Fetch
from answerkit.testing.sim_transcript import CAUSES

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["Program", "run_documents", "start_program"]

Program = Generator[int, None, None]
_UNANSWERED_STATUS = {"busy": "busy", "no-answer": "no-answer", "failed": "failed"}


def start_program(call: SimulatedCall) -> Program:
    """The whole program of a call: it rings, is answered (or not), then runs its documents."""
    if call.setup.first_fetch is not None:
        call._mark_answered()
        yield from run_documents(call, call.setup.first_fetch)
        return
    if call.direction == "outbound":
        if call.setup.ring_url:
            call._notify(
                call.setup.ring_url, call.setup.ring_method, "Ring", {"CallStatus": "ringing"}
            )
        outcome = call.setup.outcome
        if outcome != "answer":
            call._status = _UNANSWERED_STATUS.get(outcome, "failed")
            cause = CAUSES[call._status]
            raise CallEnded(cause, f"the called party did not answer ({outcome})")
        call._mark_answered()
    assert call.setup.answer_url is not None
    yield from run_documents(
        call, Fetch(call.setup.answer_url, call.setup.answer_method, "StartApp", {}, "answer")
    )


def run_documents(call: SimulatedCall, fetch: Fetch) -> Program:
    """Fetch and run documents from ``fetch`` on, until one ends without a hand-off."""
    next_fetch: Fetch | None = fetch
    while next_fetch is not None:
        doc = _fetch_document(call, next_fetch)
        next_fetch = yield from _run_document(call, doc)
    if call.hangup_at is not None and call.clock >= call.hangup_at:
        raise CallEnded(CAUSES["normal"], "scheduled hangup")
    if call.hangup_at is not None:
        # Spec §1.2: an element must follow <Hangup schedule>, or the call ends at once:
        # the end of the document, not the hang-up still to come.
        raise CallEnded(
            CAUSES["end_of_xml"],
            f"the document ended before its scheduled hang-up (due at {call.hangup_at:g} s)",
        )
    raise CallEnded(CAUSES["end_of_xml"])


ANSWER_RETRIES = 3  # spec §2.12: "Answer URL: 3 retries or 60 s, then the fallback"


def _fetch_document(call: SimulatedCall, fetch: Fetch) -> Response:
    _count_step(call)
    hook = fetch.reply
    if hook is None:
        hook = call._send(fetch.url, fetch.method, call._params(fetch.event, fetch.params))
        # Spec §2.12: the answer URL gets 3 retries before the fallback (or 7011); only an
        # error status or no answer is retried, a wrong content type or bad XML is not.
        retries = ANSWER_RETRIES if fetch.kind == "answer" else 0
        while not hook.ok and retries and not call.ended:
            retries -= 1
            call._emit("note", f"answer URL failed ({hook.error or hook.status}): retrying")
            hook = call._send(fetch.url, fetch.method, call._params(fetch.event, fetch.params))
    try:
        try:
            return judge(call, hook, fetch.kind)
        except CallEnded:
            fallback = call.setup.fallback_url
            if fetch.kind != "answer" or not fallback:
                raise
            call._emit("note", "answer URL failed: trying the fallback URL")
            method = call.setup.fallback_method or fetch.method
            hook = call._send(fallback, method, call._params(fetch.event, fetch.params))
            return judge(call, hook, fetch.kind)
    except CallEnded as ended:
        if ended.cause.code == CAUSES["answer_xml"].code:
            # Spec §0 rule 4, §2.1: Vobiz answers the call, then drops it about a second
            # later with 8011 (answered and billed), unlike an answer URL it cannot reach.
            call._mark_answered()
            call.clock += 1
        raise


def _run_document(call: SimulatedCall, doc: Response) -> Generator[int, None, Fetch | None]:
    elements = doc.children
    last = len(elements) - 1
    for index, el in enumerate(elements):
        _count_step(call)
        tag = el.tag
        fetch: Fetch | None = None
        if tag == "Speak" or tag == "Play":
            call._mark_answered()
            if elem.hear(call, el):
                elem.check_schedule(call)  # the first loop may already outlast it
                yield from _hold()
        elif tag == "Gather":
            call._mark_answered()
            fetch = yield from gather(call, el)
        elif tag == "Wait":
            elem.wait(call, el, first=index == 0)
        elif tag == "Redirect":
            url = (el.text or "").strip()
            call._emit("redirect", f"redirected to {call._display(url)}")
            fetch = Fetch(url, el.get("method") or "POST", "Redirect", {}, "redirect")
        elif tag == "Hangup":
            elem.hangup_element(call, el, first=index == 0)
        elif tag == "Dial":
            call._mark_answered()
            fetch = yield from run_dial(call, el)
        elif tag == "Conference":
            call._mark_answered()
            yield from run_conference(call, el, last=index == last)
        elif tag == "Record":
            call._mark_answered()
            fetch = record(call, el)
        elif tag == "PreAnswer":
            # Early media: nothing in it answers the call or is billed (spec §1.2).
            for child in el.children:
                if child.tag == "Wait":
                    elem.wait(call, child, first=False, early=True)
                else:
                    elem.hear(call, child, early=True)
        elif tag == "DTMF":
            call._mark_answered()
            tones = (el.text or "").strip()
            call.transcript.dtmf.append(tones)
            call._emit("dtmf", f"flow sends tones: {tones}")
        elif tag == "Stream":
            call._mark_answered()
            if elem.stream(call, el):
                yield from _hold_stream(call)
        else:
            call._emit("note", f"skipped <{tag}>: not an element of a call document")
        # A Dial cut short by the scheduled hang-up sent its action itself (after the
        # hangup webhook, spec §2.13); here no hand-off is followed once the call is gone.
        elem.check_schedule(call)
        if fetch is not None:
            return fetch
        yield STEP
    return None


def _count_step(call: SimulatedCall) -> None:
    call._steps += 1
    if call._steps > call.setup.max_steps:
        call.transcript.step_limit_reached = True
        raise CallEnded(
            CAUSES["normal"].with_source("Caller"),
            f"the caller hangs up after {call.setup.max_steps} steps (max_steps)",
        )


def _hold() -> Generator[int, None, None]:
    """Block until a transfer or hang-up: only they (or a scheduled hang-up) end a loop."""
    while True:
        yield BLOCK


def _hold_stream(call: SimulatedCall) -> Generator[int, None, None]:
    """Block while a keepCallAlive Stream's socket is open (:meth:`SimulatedCall.close_stream`)."""
    call._stream_open = True
    try:
        while call._stream_open:
            yield BLOCK
    finally:
        call._stream_open = False
    call._emit("stream", "the stream closed")
