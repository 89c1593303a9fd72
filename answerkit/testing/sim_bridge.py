"""The answered B-leg of a simulated Dial: its events, its talk or bridge, its leaving.

From its DialAnswer until it leaves, the B-leg may be hung up or moved by the REST API
(by its own DialBLegUUID, or the call's with ``legs=bleg``); with the ``bridge``
outcome it stays connected (:class:`Bridge`), and the caller's call blocks, until one
side ends it. The Dial that rang it is :mod:`~answerkit.testing.sim_dial`'s. The rooms
of ``<Conference>`` (:class:`ConferenceRoom`, :class:`Member`) are shared data, in
:mod:`~answerkit.testing.sim_signals`; they and :data:`DIAL_OUTCOMES` can still be
imported from here.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from answerkit.elements import Element
from answerkit.testing.sim_dial_action import _action_after_hangup, _action_params
from answerkit.testing.sim_script import DIAL_OUTCOMES as DIAL_OUTCOMES
from answerkit.testing.sim_script import RINGS_OUT
from answerkit.testing.sim_signals import BLOCK, Interrupted, Pending
from answerkit.testing.sim_signals import ConferenceRoom as ConferenceRoom
from answerkit.testing.sim_signals import Member as Member
from answerkit.testing.sim_sounds import _play_fetched
from answerkit.testing.sim_transcript import CAUSES, Cause

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["DIAL_OUTCOMES", "Bridge", "ConferenceRoom", "Member"]

TALK_SECONDS = 10


@dataclass
class _Target:
    tag: str
    address: str
    uuid: str
    position: int
    outcome: str
    sip_params: dict[str, str]


class Bridge:
    """A B-leg that answered and stays connected (the ``bridge`` outcome)."""

    def __init__(self, call: SimulatedCall, target: _Target, caller_id: str) -> None:
        self.call = call
        self.target = target
        self.caller_id = caller_id
        self.up = True
        self.cause: Cause | None = None
        self.transferred_to: str | None = None

    def end(self, cause: Cause) -> None:
        """The B-leg leaves the bridge with ``cause``."""
        if self.up:
            self.up = False
            self.cause = cause

    def transfer_bleg(self, url: str, method: str) -> None:
        """Move the B-leg onto ``url`` as a call of its own (Transfer API, legs=bleg)."""
        if not self.up:
            return
        self.end(CAUSES["normal"].with_source("API Request"))
        self.transferred_to = url
        self.call.sim.start_bleg(
            self.call, self.target.uuid, self.target.address, self.caller_id, url, method
        )


def _connect(
    call: SimulatedCall,
    el: Element,
    targets: list[_Target],
    winner: _Target,
    caller_id: str,
    leg_event: Any,
    leg_hangup: Any,
) -> Generator[int, None, tuple[Cause, float]]:
    """The answered B-leg's events, then its talk (or bridge) until it ends.

    Returns how the B-leg ended and when its talk started. A hang-up or transfer of the
    call that a handler of DialAnswer or DialConnected asks for (a REST request, taken as
    that webhook returns) meets a B-leg that answered but is not yet bridged: it ends as
    an interrupted bridge does, with its DialHangup, and after a hang-up the Dial action
    (spec §2.13: DialAnswer, DialConnected, DialHangup, Hangup, Dial action); with
    ``legs=both`` it moves instead (see _interrupted_unbridged). A Hang-up request for the
    B-leg itself (its DialBLegUUID) from such a handler ends the Dial there: the B-leg's
    DialHangup, and the A-leg goes on after the Dial. So does a transfer of the B-leg alone
    (its own DialBLegUUID, or the call's with ``legs=bleg``): it moves at once (spec §4.1),
    a call of its own, as a bridged B-leg moves.
    """
    losers = [target for target in targets if target is not winner]
    # Listed in LocalVobiz from its answer until it leaves, whatever its outcome, so the
    # flow's REST calls may name the B-leg by its own CallUUID (DialBLegUUID) from the
    # DialAnswer handler on, as the vendor's Transfer page allows.
    call.sim.register_bleg(winner.uuid, caller_id, winner.address)
    b_cause = CAUSES["normal"].with_source("Callee")
    moved = False  # a moved B-leg lives on as a call of its own: LocalVobiz keeps it
    try:
        try:
            leg_event(winner, "DialAnswer", "answer", "answered")
            while losers:
                target = losers.pop(0)  # taken first: an interrupted webhook still went out
                leg_hangup(target, _lost(target))
            hung_up, moving = _asked_of_bleg(call, winner)
            if hung_up is None and moving is None:
                leg_event(winner, "DialConnected", "connected", "connected")
                hung_up, moving = _asked_of_bleg(call, winner)
            confirm = el.get("confirmSound")
            if confirm and hung_up is None and moving is None:
                _play_fetched(call, "confirmSound", confirm, None, {}, audible=False)
                hung_up, moving = _asked_of_bleg(call, winner)
        except Interrupted:
            if call.driven:
                with call.cleanup():
                    for target in losers:  # the race was lost when the winner answered
                        leg_hangup(target, _lost(target))
                moved, ended = _interrupted_unbridged(call, el, winner, caller_id, leg_hangup)
                b_cause = ended or b_cause
            raise
        talk_start = call.clock
        if hung_up is not None:
            # Never bridged: the Dial is over, and the caller's document goes on after it.
            b_cause = hung_up
            call._emit("dial", f"{winner.address} was hung up (Hang-up API) before the bridge")
        elif moving is not None:
            # Moved before the bridge (spec §4.1: the selected leg fetches the new URL at
            # once), as a bridged B-leg moves: a call of its own, its DialHangup by the
            # API, and the caller's document goes on after the Dial.
            b_cause = CAUSES["normal"].with_source("API Request")
            moved = True
            call._emit("dial", f"{winner.address} was transferred away before the bridge")
            call.sim.start_bleg(
                call, winner.uuid, winner.address, caller_id, moving.url, moving.method
            )
        elif winner.outcome == "bridge":
            bridge = call.bridge = Bridge(call, winner, caller_id)
            call._emit("dial", f"connected to {winner.address}")
            finished = False
            try:
                while bridge.up:
                    yield BLOCK
                finished = True
            finally:
                call.bridge = None
                if not finished and call.driven:
                    _bridge_interrupted(call, el, winner, bridge, leg_hangup, talk_start)
                moved = bridge.transferred_to is not None
                b_cause = bridge.cause or b_cause
            if moved:
                call._emit("dial", f"{winner.address} was transferred away")
            else:
                call._emit("dial", f"{winner.address} hangs up")
        else:
            talk = float(TALK_SECONDS)
            if call.hangup_at is not None and call.clock + talk > call.hangup_at:
                # The caller's scheduled hang-up ends the talk, and the B-leg with it.
                talk = max(0.0, call.hangup_at - call.clock)
                b_cause = CAUSES["normal"]
            call.clock += talk
        return b_cause, talk_start
    finally:
        if not moved:
            call.sim.unregister_bleg(winner.uuid, b_cause)


def _interrupted_unbridged(
    call: SimulatedCall, el: Element, winner: _Target, caller_id: str, leg_hangup: Any
) -> tuple[bool, Cause | None]:
    """A hang-up or transfer of the call interrupted a DialAnswer or DialConnected
    handler, before the bridge formed; returns whether the B-leg moved, and how it ended
    if it did not.

    A transfer with ``legs=both`` moves the whole session (spec §4.1): the B-leg fetches
    its own URL as a call of its own, with no DialHangup, as a bridged B-leg does (its
    transfer was queued first: taken here, before the A-leg leaves). Otherwise the B-leg
    ends with the A-leg, as an interrupted bridge does.
    """
    moving = None if call.hanging_up else call.take_bleg_transfer(winner.uuid)
    if moving is None:
        return False, _bridge_interrupted(call, el, winner, None, leg_hangup, call.clock)
    call._emit("dial", f"{winner.address} was transferred away")
    call.sim.start_bleg(call, winner.uuid, winner.address, caller_id, moving.url, moving.method)
    return True, None


def _asked_of_bleg(call: SimulatedCall, winner: _Target) -> tuple[Cause | None, Pending | None]:
    """What the REST API asked of the answered, unbridged B-leg by the time the webhook
    just sent returned: a hang-up (how it ended), else a transfer of it (taken)."""
    hung_up = call.take_bleg_hangup()
    return hung_up, None if hung_up is not None else call.take_bleg_transfer(winner.uuid)


def _lost(target: _Target) -> Cause:
    """How a B-leg the winner beat ends: one still ringing (or that would have answered)
    lost the race; a busy or failed one ends with its own cause."""
    lost_race = target.outcome in ("answer", "bridge", *RINGS_OUT)
    return CAUSES["lose_race" if lost_race else target.outcome]


def _bridge_interrupted(
    call: SimulatedCall,
    el: Element,
    winner: _Target,
    bridge: Bridge | None,
    leg_hangup: Any,
    talk_start: float,
) -> Cause | None:
    """The caller hung up or was transferred while bridged (``bridge``), or while its
    answered B-leg was not bridged yet (None): the B-leg goes too. Returns how the B-leg
    ended here (None: it had left already)."""
    cause: Cause | None = None
    with call.cleanup():
        if bridge is None or bridge.up:
            # Who ended the call (the caller, the Hang-up API), or a transfer (the API).
            source = call.ending_source if call.hanging_up else "API Request"
            cause = CAUSES["normal"].with_source(source)
            if bridge is not None:
                bridge.end(cause)
            # The B-leg has left before its DialHangup goes out, as on the normal path: a
            # handler of it that retrieves or moves the leg gets 404 (spec §4.3).
            call.dial_bleg = None
            call.sim.unregister_bleg(winner.uuid, cause)
            leg_hangup(winner, cause, round(call.clock - talk_start))
        # Spec §2.13: after a hang-up mid-bridge the Dial action follows the hangup webhook.
        params = _action_params(call, "completed", "true", "NORMAL_CLEARING", winner.uuid)
        _action_after_hangup(call, el, params)
    return cause
