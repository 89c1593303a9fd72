"""``<Conference>``: a simulated call joins a room shared by every call of one simulator.

A call in a room (spec §1.2, §2.9) blocks until it is let out: the lone-member rule, a
member leaving with ``endConferenceOnExit``, a transfer or a hang-up. The rooms
themselves (:class:`~answerkit.testing.sim_signals.ConferenceRoom`,
:class:`~answerkit.testing.sim_signals.Member`) are shared data, in
:mod:`~answerkit.testing.sim_signals`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

from answerkit.elements import Element
from answerkit.testing.sim_signals import BLOCK, CallEnded
from answerkit.testing.sim_sounds import _play_fetched
from answerkit.testing.sim_transcript import CAUSES

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["run_conference"]

EXIT_OMITS = ("From", "To", "Direction", "CallStatus")


def run_conference(call: SimulatedCall, el: Element, last: bool) -> Generator[int, None, None]:
    """Join the room; block while in it; leave with the exit callback."""
    name = (el.text or "").strip()
    room = call.sim.conference(name)
    member = room.join(call, el)
    call.transcript.conferences.append(name)
    waiting = not room.started
    call._emit(
        "conference",
        f'joins conference "{name}"' + (" (waiting for it to start)" if waiting else ""),
        room=name,
    )
    callback = el.get("callbackUrl")
    cb_method = el.get("callbackMethod") or "POST"
    base = {
        "ConferenceName": name,
        "ConferenceUUID": room.uuid,
        "ConferenceMemberID": member.member_id,
    }
    left = False
    try:
        if callback:
            call._notify(
                callback,
                cb_method,
                "ConferenceEnter",
                {
                    **base,
                    "ConferenceAction": "enter",
                    "ConferenceFirstMember": "true" if len(room.members) <= 1 else "false",
                },
            )
        wait_sound = el.get("waitSound")
        if wait_sound:
            # VO: Vobiz fetches waitSound on every join; the member hears it while waiting.
            extra = {
                "ConferenceAction": "waitSound",
                "ConferenceName": name,
                "ConferenceUUID": "",
                "ConferenceMemberID": "",
            }
            _play_fetched(
                call, "waitSound", wait_sound, "ConferenceRemoteSounds", extra, audible=waiting
            )
        while member.active:
            yield BLOCK
        left = True
    finally:
        if call.driven:  # not when an abandoned call is garbage-collected
            with call.cleanup():
                reason = member.reason or ("hung up" if call.hanging_up else "transferred")
                emptied = room.leave(member)
                if callback:
                    # Spec §2.9: the exit event carries no From, To, Direction or CallStatus.
                    call._notify(
                        callback,
                        cb_method,
                        "ConferenceExit",
                        {
                            **base,
                            "ConferenceAction": "exit",
                            "ConferenceLastMember": "true" if emptied else "false",
                        },
                        omit=EXIT_OMITS,
                    )
                call._emit("conference", f'leaves conference "{name}" ({reason})', room=name)
    if left and member.kicked and last:
        # Spec: kicked legs report NORMAL_CLEARING/4000/Callee (when nothing follows).
        raise CallEnded(CAUSES["normal"].with_source("Callee"))
