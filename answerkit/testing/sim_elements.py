"""The simple elements of a call document: Speak, Play, Wait, Hangup, Stream.

Each element (spec §1.2) is a function of a
:class:`~answerkit.testing.sim_call.SimulatedCall`; :func:`check_schedule` and
:func:`end_call` end the call, after any element, once its ``<Hangup schedule>`` falls
due. The elements that take the caller's script or reach other parties have modules
of their own: ``<Record>`` (:mod:`~answerkit.testing.sim_record`), ``<Gather>``
(:mod:`~answerkit.testing.sim_gather`), ``<Dial>`` (:mod:`~answerkit.testing.sim_dial`)
and ``<Conference>`` (:mod:`~answerkit.testing.sim_conference`); how a reply is judged
before it runs is :mod:`~answerkit.testing.sim_judge`'s. The callbacks after the
hang-up (:mod:`~answerkit.testing.sim_after_hangup`) used to live here, and their
names can still be imported from here.
"""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, NoReturn

from answerkit.elements import Element
from answerkit.testing.sim_after_hangup import (
    SIMULATED_TRANSCRIPTION as SIMULATED_TRANSCRIPTION,
)
from answerkit.testing.sim_after_hangup import send_hangup as send_hangup
from answerkit.testing.sim_signals import CallEnded, Fetch
from answerkit.testing.sim_transcript import CAUSES, FLOW_REJECTIONS, Cause
from answerkit.testing.sim_webhooks import UTC_FORMAT

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["check_schedule", "hangup_element", "hear", "stream", "wait"]


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
    call.transcript.heard.extend([text] * times)  # listed whole, cut short or not
    played = _before_hangup(call, seconds * times)
    if played < seconds * times:
        line += f" (cut short after {played:g}s by the scheduled hang-up)"
    call.clock += played
    call._emit("hear", line, text=text, loop=loop)
    return loop == 0


def _before_hangup(call: SimulatedCall, seconds: float) -> float:
    """How much of ``seconds`` passes before the call's scheduled hang-up: the clock never
    runs past it (a 5 s silence then read as ended before the call's 1 s end)."""
    if call.hangup_at is not None and call.clock + seconds > call.hangup_at:
        return max(0.0, call.hangup_at - call.clock)
    return seconds


def wait(call: SimulatedCall, el: Element, first: bool, early: bool = False) -> None:
    """A silent pause; as the first element of an inbound answer it delays answering.

    ``early``: inside ``<PreAnswer>``, a pause in the early media; it neither answers
    the call nor counts as billed time (spec §1.2 PreAnswer).
    """
    length: float = _int(el.get("length"), 1)
    if el.get("silence") == "true":
        # The simulated caller is silent: the wait ends once minSilence ms of it are heard
        # (spec §1.2 Wait; it waited the whole length).
        length = min(length, _int(el.get("minSilence"), 2000) / 1000)
    passed = _before_hangup(call, length)
    cut = "" if passed == length else f" (cut short by the scheduled hang-up, of {length:g}s)"
    length = passed
    if early and not call.answered:
        call.clock += length
        call._emit("silence", f"silence: {length:g}s (early media){cut}")
    elif first and not call.answered and call.direction == "inbound":
        call.clock += length
        call._emit("silence", f"rings {length:g}s before answer{cut}")
    else:
        call._mark_answered()  # before the pause: its seconds are answered (billed) time
        call.clock += length
        call._emit("silence", f"silence: {length:g}s{cut}")


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
