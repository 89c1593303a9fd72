"""Dial and Conference: the elements that connect a simulated call to other parties.

``<Dial>`` plays the outcome the test scripted for the B-leg and sends the
``callbackUrl`` events and the ``action`` request (spec §2.5); on an inbound call a
Dial without ``callerId`` fails with no B-leg, as on Vobiz (spec §1.2 Dial). ``<Conference>``
joins a room shared by every call of one simulator (spec §1.2, §2.9); a call in a
room blocks until it is let out: the lone-member rule, a member leaving with
``endConferenceOnExit``, a transfer or a hang-up. The rooms themselves
(:class:`ConferenceRoom`, :class:`Member`) are shared data, in
:mod:`~answerkit.testing.sim_signals`.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from answerkit._sound import not_sound, not_sound_message
from answerkit.elements import Element
from answerkit.errors import AnswerkitError
from answerkit.parse import parse
from answerkit.testing.sim_elements import _int, check_schedule, end_call, hear, wait
from answerkit.testing.sim_script import DIAL_OUTCOMES, RINGS_OUT, dial_outcomes
from answerkit.testing.sim_signals import (
    BLOCK,
    CallEnded,
    ConferenceRoom,
    Fetch,
    Interrupted,
    Member,
    Pending,
)
from answerkit.testing.sim_transcript import CAUSES, Cause

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["DIAL_OUTCOMES", "Bridge", "ConferenceRoom", "Member", "run_conference", "run_dial"]

ANSWERED = ("answer", "bridge")
#: Seconds the dialled side rings before a scripted ``cancel`` (the caller hangs up).
CANCEL_AFTER = 5
TALK_SECONDS = 10
EXIT_OMITS = ("From", "To", "Direction", "CallStatus")


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


def run_dial(call: SimulatedCall, el: Element) -> Generator[int, None, Fetch | None]:
    """Play a Dial; returns the hand-off to its action, if any."""
    sip_params = {}
    for pair in (el.get("sipHeaders") or "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            sip_params[f"X-VH-{key.strip()}"] = value.strip()
    children = [c for c in el.children if c.tag in ("Number", "User")]
    addresses = [(c.tag, (c.text or "").strip()) for c in children]
    if not addresses and (el.text or "").strip():
        addresses = [("Number", (el.text or "").strip())]
    outcomes = dial_outcomes(call._next_dial_outcome(), len(addresses))
    targets = [
        _Target(tag, address, str(uuid.uuid4()), i + 1, outcomes[i], sip_params)
        for i, (tag, address) in enumerate(addresses)
    ]
    if not el.get("callerId") and call.direction == "inbound":
        return _dial_refused(call, el, targets)
    winner = next((t for t in targets if t.outcome in ANSWERED), None)
    caller_id = el.get("callerId") or call.from_
    callback = el.get("callbackUrl")
    cb_method = el.get("callbackMethod") or "POST"
    names = ", ".join(t.address for t in targets) or "nobody"
    record: dict[str, Any] = {
        "numbers": [t.address for t in targets],
        "outcome": None,
        "answered_by": winner.address if winner else None,
    }
    call.transcript.dials.append(record)

    def leg_event(
        target: _Target, event: str, action: str, status: str, extra: dict[str, str] | None = None
    ) -> None:
        if not callback:
            return
        params = {
            "DialAction": action,
            "DialALegUUID": call.call_uuid,
            "DialBLegUUID": target.uuid,
            "DialBLegStatus": status,
            "DialBLegFrom": caller_id.lstrip("+"),
            "DialBLegTo": target.address.lstrip("+"),
            "DialBLegPosition": str(target.position),
            **target.sip_params,
            **(extra or {}),
        }
        call._notify(callback, cb_method, event, params)

    def leg_hangup(target: _Target, cause: Cause, duration: int = 0) -> None:
        leg_event(
            target,
            "DialHangup",
            "hangup",
            "completed",
            {
                "DialBLegDuration": str(duration),
                "DialBLegBillDuration": str(60 * -(-duration // 60)),
                "DialBLegHangupCause": cause.cause,
                "DialBLegHangupCauseCode": str(cause.code),
                "DialBLegHangupCauseName": cause.name,
                "DialBLegHangupSource": cause.source,
            },
        )

    dial_music = el.get("dialMusic")
    if dial_music and dial_music != "real":
        _play_fetched(call, "dialMusic", dial_music, None, {})
    if any(t.outcome == "cancel" for t in targets):
        # Scripted: the caller hangs up while the dialled side rings (outcome "cancel").
        for target in targets:
            if target.outcome == "cancel":
                target.outcome = "no-answer"
        return _dial_cancelled(call, el, targets, record, names, leg_hangup, by_caller=True)
    if winner is None:
        status = next(
            (
                o
                for o in ("no-answer", "timeout", "busy", "failed")
                if any(t.outcome == o for t in targets)
            ),
            "failed",
        )
        # An unanswered B-leg rings for the Dial's timeout: effectively 120 s when not set
        # (spec §1.2 Dial); a busy or failed one ends within seconds.
        ring_time = _int(el.get("timeout"), 120) if status in RINGS_OUT else 2
        if call.hangup_at is not None and call.hangup_at - call.clock <= ring_time:
            return _dial_cancelled(call, el, targets, record, names, leg_hangup)
        record["outcome"] = status
        call._emit("dial", f"dial {names} -> {status}", dial=record)
        call.clock += ring_time
        hangup_cause = CAUSES[status].cause
        ring = "true" if status in RINGS_OUT else "false"
        params = _action_params(call, status, ring, hangup_cause, "")
        legs = [(target, CAUSES[target.outcome], 0) for target in targets]
    else:
        record["outcome"] = "answered"
        # From its answer until the B-leg leaves, the Transfer and Hang-up APIs may act on
        # it (legs=bleg, or its own DialBLegUUID); before and after, LocalVobiz answers a
        # legs=bleg request 400, and its CallUUID 404. Set before the event, so a listener
        # on it that moves the B-leg names this one.
        call.dial_bleg = winner.uuid
        try:
            call._emit("dial", f"dial {names} -> answered by {winner.address}", dial=record)
            b_cause, talk_start = yield from _connect(
                call, el, targets, winner, caller_id, leg_event, leg_hangup
            )
        finally:
            call.dial_bleg = None
            call.take_bleg_hangup()  # one asked for too late to act on is dropped
            # So is a transfer of this B-leg not acted on (the Dial ended first): left
            # queued, it would move a later Dial's B-leg, another call.
            why = (
                "not acted on: the caller was hung up first"
                if call.hanging_up
                else "requested too late: its Dial had ended, nothing moved"
            )
            for late in call.drop_bleg_transfers(winner.uuid):
                call._emit(
                    "note",
                    f"transfer of the B-leg {winner.uuid} to {call._display(late.url)} {why}",
                )
        params = _action_params(call, "completed", "true", b_cause.cause, winner.uuid)
        legs = [(winner, b_cause, round(call.clock - talk_start))]
    _end_legs(call, el, legs, leg_hangup, params)
    return _dial_action(call, el, params)


def _action_params(
    call: SimulatedCall, status: str, ring: str, hangup_cause: str, bleg_uuid: str
) -> dict[str, str]:
    """The Dial action's own parameters (spec §2.5)."""
    return {
        "DialStatus": status,
        "DialRingStatus": ring,
        "DialHangupCause": hangup_cause,
        "DialALegUUID": call.call_uuid,
        "DialBLegUUID": bleg_uuid,
    }


def _end_legs(
    call: SimulatedCall,
    el: Element,
    legs: list[tuple[_Target, Cause, int]],
    leg_hangup: Any,
    params: dict[str, str],
) -> None:
    """Send each B-leg's DialHangup (``legs``: the leg, its cause, its talk seconds).

    A hang-up or transfer of the call that a DialHangup handler asks for (a REST request,
    taken as that webhook returns) loses nothing that was due: the other legs still get
    their own DialHangup (spec §1.2 Dial), and after a hang-up the Dial action (``params``)
    follows the Hangup webhook (spec §2.13: DialHangup, Hangup, Dial action, RecordStop).
    """
    waiting = list(legs)
    try:
        while waiting:
            target, cause, duration = waiting.pop(0)  # taken first: an interrupted one went out
            leg_hangup(target, cause, duration)
    except Interrupted:
        if call.driven:
            with call.cleanup():
                for target, cause, duration in waiting:
                    leg_hangup(target, cause, duration)
            _action_after_hangup(call, el, params)
        raise


def _action_after_hangup(call: SimulatedCall, el: Element, params: dict[str, str]) -> None:
    """After a hang-up that interrupted the Dial, queue its action to follow the Hangup
    webhook (spec §2.13), whatever ``redirect`` says: the call is over, so its XML is
    ignored. A transfer sends none: the call went on elsewhere."""
    action = el.get("action")
    if not action or not call.hanging_up:
        return
    method = el.get("method") or "POST"
    event = call.sim.dial_action_event
    call._after_hangup.append(lambda: call._send(action, method, call._params(event, params)))


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


def _dial_action(call: SimulatedCall, el: Element, params: dict[str, str]) -> Fetch | None:
    """Send the Dial action (spec §2.5): a hand-off, or with ``redirect="false"`` a request.

    A Dial the scheduled hang-up cut short ends the call here; its action, whatever
    ``redirect`` says, follows the hangup webhook (spec §2.13), its XML ignored.
    """
    action = el.get("action")
    method = el.get("method") or "POST"
    event = call.sim.dial_action_event  # DialAction or Redirect: spec §6 item 8
    fetch = Fetch(action, method, event, params, "action") if action else None
    check_schedule(call, after_hangup=fetch)
    if fetch is None:
        return None
    if el.get("redirect") == "false":
        call._send(fetch.url, method, call._params(event, params))
        return None
    return fetch


def _dial_cancelled(
    call: SimulatedCall,
    el: Element,
    targets: list[_Target],
    record: dict[str, Any],
    names: str,
    leg_hangup: Any,
    *,
    by_caller: bool = False,
) -> Fetch | None:
    """The caller leaves while the B-legs ring, at the scheduled hang-up (or, ``by_caller``,
    scripted with the outcome ``cancel``, after CANCEL_AFTER seconds of ringing): the Dial
    is cancelled (spec §2.5 lists ``DialStatus=cancel``), and the call ends then.

    The ringing legs end with ORIGINATOR_CANCEL (``CAUSES["cancel"]``: the spec names no
    cause for it); a busy or failed one with its own cause.
    """
    if by_caller:
        ring: float = min(CANCEL_AFTER, _int(el.get("timeout"), CANCEL_AFTER))
        if call.hangup_at is not None:
            ring = min(ring, max(0, call.hangup_at - call.clock))
        call.clock += ring
    else:
        assert call.hangup_at is not None
        call.clock = max(call.clock, call.hangup_at)
    record["outcome"] = "cancel"
    # The caller is gone before the legs' DialHangups go out (and before the event, so a
    # listener on it cannot move the call either): a handler of them that moves or hangs
    # up the call gets 404, and the call ends as it would have (spec §2.13: DialHangup,
    # Hangup, then the Dial action with DialStatus=cancel).
    call.leave(CAUSES["normal"].with_source("Caller") if by_caller else CAUSES["normal"])
    call._emit("dial", f"dial {names} -> cancelled: the caller hung up while it rang", dial=record)
    rang = "true" if any(t.outcome in RINGS_OUT for t in targets) else "false"
    params = _action_params(call, "cancel", rang, CAUSES["cancel"].cause, "")
    legs = [
        (target, CAUSES["cancel" if target.outcome in RINGS_OUT else target.outcome], 0)
        for target in targets
    ]
    _end_legs(call, el, legs, leg_hangup, params)
    if by_caller:
        action = el.get("action")
        fetch = (
            Fetch(action, el.get("method") or "POST", call.sim.dial_action_event, params, "action")
            if action
            else None
        )
        end_call(call, CAUSES["normal"].with_source("Caller"), "hung up while it rang", fetch)
    return _dial_action(call, el, params)


def _dial_refused(call: SimulatedCall, el: Element, targets: list[_Target]) -> Fetch | None:
    """A Dial without callerId on an inbound call: Vobiz creates no B-leg (spec §1.2 Dial).

    The caller's own number is not one the account owns, so the platform refuses the
    B-leg ("The from number ... is not owned by this account"): no B-leg callbacks, and
    the Dial ends failed (its action gets ``DialStatus=failed``).
    """
    names = ", ".join(t.address for t in targets) or "nobody"
    record: dict[str, Any] = {
        "numbers": [t.address for t in targets],
        "outcome": "failed",
        "answered_by": None,
    }
    call.transcript.dials.append(record)
    call._emit(
        "note",
        "Dial has no callerId: on an inbound call Vobiz presents the caller's own number "
        f"({call.from_}), which this account does not own, and refuses the B-leg "
        '("The from number ... is not owned by this account"); set caller_id to a Vobiz '
        "number the account owns",
    )
    call._emit("dial", f"dial {names} -> failed (no callerId)", dial=record)
    call.clock += 1
    return _dial_action(
        call, el, _action_params(call, "failed", "false", CAUSES["failed"].cause, "")
    )


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


def _play_fetched(
    call: SimulatedCall,
    attribute: str,
    url: str,
    event: str | None,
    extra: dict[str, str],
    audible: bool = True,
) -> None:
    """Fetch a sound URL (``attribute``: dialMusic, confirmSound, waitSound) and play its
    Speak/Play/Wait. An answer Vobiz could not play is the application's error: an HTTP
    error (an audio file's URL given where a document is fetched, a wrong path), a body
    that is not VobizXML, or elements other than Play, Speak and Wait (spec §1.2)."""
    hook = call._send(url, "POST", call._params(event, extra))
    if hook.status == 0:  # outside the simulated application: nothing was fetched
        return
    where = f"the {attribute} URL {call._display(url)}"
    if not hook.ok:
        _sound_error(
            call,
            f"{where} answered HTTP {hook.status}: it must answer a VobizXML "
            "document of Play, Speak and Wait (an audio file goes in a Play there)",
        )
        return
    try:
        doc = parse(hook.body)
    except (AnswerkitError, ValueError) as exc:
        _sound_error(call, f"{where} answered no valid VobizXML: {exc}")
        return
    wrong = not_sound(doc)
    if wrong:
        _sound_error(call, f"{where}: {not_sound_message(wrong)}; Vobiz would not play it")
        return
    if attribute == "waitSound" and any(c.tag == "Play" for c in doc.children):
        # Played here, as Plivo does; Vobiz's pages name only Speak and Wait for a wait
        # sound (spec §1.2): a note, so a test's author knows what rests on that reading.
        call._emit(
            "note",
            f"{where} answered a Play: Vobiz documents Speak and Wait for a wait sound, "
            "Play only on Plivo's word (spec §1.2)",
        )
    if not audible:
        return
    for child in doc.children:
        if child.tag in ("Speak", "Play"):
            hear(call, child)
        elif child.tag == "Wait":
            wait(call, child, first=False)


def _sound_error(call: SimulatedCall, error: str) -> None:
    call.transcript.handler_errors.append(error)
    call._emit("error", f"handler error: {error}")


# -- conferences -------------------------------------------------------------------------


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
