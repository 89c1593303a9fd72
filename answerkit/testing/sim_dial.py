"""``<Dial>``: the element that rings other parties for a simulated call.

``<Dial>`` plays the outcome the test scripted for the B-leg and sends the
``callbackUrl`` events and the ``action`` request (spec §2.5); on an inbound call a Dial
without ``callerId`` fails with no B-leg, as on Vobiz (spec §1.2 Dial). Here: the
Dial's targets, its outcome, and the ways it ends with no B-leg answered (unanswered,
cancelled while it rang, refused). The answered B-leg, up to its bridge and its
leaving, is :mod:`~answerkit.testing.sim_bridge`'s; the DialHangups and the action at
the end, :mod:`~answerkit.testing.sim_dial_action`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from answerkit.elements import Element
from answerkit.testing.sim_bridge import _connect, _Target
from answerkit.testing.sim_dial_action import _action_params, _dial_action, _end_legs
from answerkit.testing.sim_elements import _int, end_call
from answerkit.testing.sim_script import RINGS_OUT, dial_outcomes
from answerkit.testing.sim_signals import Fetch
from answerkit.testing.sim_sounds import _play_fetched
from answerkit.testing.sim_transcript import CAUSES, Cause, DialOutcome, DialRecord

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["run_dial"]

ANSWERED = ("answer", "bridge")
#: Seconds the dialled side rings before a scripted ``cancel`` (the caller hangs up).
CANCEL_AFTER = 5
# The unanswered outcomes, in the order one decides the DialStatus of several B-legs.
_UNANSWERED: tuple[DialOutcome, ...] = ("no-answer", "timeout", "busy", "failed")


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
    record: DialRecord = {
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
        status: DialOutcome = next(
            (o for o in _UNANSWERED if any(t.outcome == o for t in targets)),
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
            for rec in call.recordings:
                if rec.awaits_dial:  # startOnDialAnswer: recording from this answer on
                    rec.awaits_dial = False
                    rec.start = call.clock
                    call._emit("record", "recording starts (the Dial was answered)",
                               recording_id=rec.recording_id)  # fmt: skip
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


def _dial_cancelled(
    call: SimulatedCall,
    el: Element,
    targets: list[_Target],
    record: DialRecord,
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
    record: DialRecord = {
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
