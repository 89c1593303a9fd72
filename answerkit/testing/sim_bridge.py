"""Dial and Conference: the elements that connect a simulated call to other parties.

``<Dial>`` plays the outcome the test scripted for the B-leg and sends the
``callbackUrl`` events and the ``action`` request (spec §2.5); on an inbound call a
Dial without ``callerId`` fails with no B-leg, as on Vobiz (spec §1.2 Dial). ``<Conference>``
joins a room shared by every call of one simulator (spec §1.2, §2.9); a call in a
room blocks until it is let out: the lone-member rule, a member leaving with
``endConferenceOnExit``, a transfer or a hang-up.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from answerkit.elements import Element
from answerkit.errors import AnswerkitError
from answerkit.parse import parse
from answerkit.testing.sim_elements import _int, hear, wait
from answerkit.testing.sim_script import DIAL_OUTCOMES, dial_outcomes
from answerkit.testing.sim_signals import BLOCK, CallEnded, Fetch
from answerkit.testing.sim_transcript import CAUSES, Cause

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["DIAL_OUTCOMES", "Bridge", "ConferenceRoom", "Member", "run_conference", "run_dial"]

ANSWERED = ("answer", "bridge")
TALK_SECONDS = 10
_STATUS_OF = {"busy": "busy", "no-answer": "no-answer", "failed": "failed"}
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
        _play_fetched(call, dial_music, None, {})
    if winner is None:
        status = next(
            (o for o in ("no-answer", "busy", "failed") if any(t.outcome == o for t in targets)),
            "failed",
        )
        record["outcome"] = status
        call._emit("dial", f"dial {names} -> {status}", dial=record)
        # An unanswered B-leg rings for the Dial's timeout: effectively 120 s when not set
        # (spec §1.2 Dial), which a <Hangup schedule> may cut short.
        call.clock += _int(el.get("timeout"), 120) if status == "no-answer" else 2
        for target in targets:
            leg_hangup(target, CAUSES[target.outcome])
        hangup_cause = CAUSES[status].cause
        ring = "true" if status == "no-answer" else "false"
        bleg_uuid = ""
    else:
        record["outcome"] = "answered"
        call._emit("dial", f"dial {names} -> answered by {winner.address}", dial=record)
        leg_event(winner, "DialAnswer", "answer", "answered")
        for target in targets:
            if target is not winner:
                cause = CAUSES[
                    "lose_race"
                    if target.outcome in ("answer", "bridge", "no-answer")
                    else target.outcome
                ]
                leg_hangup(target, cause)
        leg_event(winner, "DialConnected", "connected", "connected")
        confirm = el.get("confirmSound")
        if confirm:
            _play_fetched(call, confirm, None, {}, audible=False)
        talk_start = call.clock
        b_cause = CAUSES["normal"].with_source("Callee")
        if winner.outcome == "bridge":
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
            b_cause = bridge.cause or b_cause
            if bridge.transferred_to:
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
        leg_hangup(winner, b_cause, round(call.clock - talk_start))
        status, ring, hangup_cause, bleg_uuid = "completed", "true", b_cause.cause, winner.uuid
    return _dial_action(
        call,
        el,
        {
            "DialStatus": status,
            "DialRingStatus": ring,
            "DialHangupCause": hangup_cause,
            "DialALegUUID": call.call_uuid,
            "DialBLegUUID": bleg_uuid,
        },
    )


def _dial_action(call: SimulatedCall, el: Element, params: dict[str, str]) -> Fetch | None:
    """Send the Dial action (spec §2.5): a hand-off, or with ``redirect="false"`` a request."""
    action = el.get("action")
    if not action:
        return None
    method = el.get("method") or "POST"
    event = call.sim.dial_action_event  # DialAction or Redirect: spec §6 item 8
    if el.get("redirect") == "false":
        call._send(action, method, call._params(event, params))
        return None
    return Fetch(action, method, event, params, "action")


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
        call,
        el,
        {
            "DialStatus": "failed",
            "DialRingStatus": "false",
            "DialHangupCause": CAUSES["failed"].cause,
            "DialALegUUID": call.call_uuid,
            "DialBLegUUID": "",
        },
    )


def _bridge_interrupted(
    call: SimulatedCall,
    el: Element,
    winner: _Target,
    bridge: Bridge,
    leg_hangup: Any,
    talk_start: float,
) -> None:
    """The caller hung up or was transferred while bridged: the B-leg goes too."""
    with call.cleanup():
        if bridge.up:
            source = "Caller" if call.hanging_up else "API Request"
            bridge.end(CAUSES["normal"].with_source(source))
            leg_hangup(winner, bridge.cause, round(call.clock - talk_start))
        action = el.get("action")
        if action and call.hanging_up:
            # Spec §2.13: after a hang-up mid-bridge the Dial action follows the hangup
            # webhook; the call is over, so its XML is ignored.
            params = {
                "DialStatus": "completed",
                "DialRingStatus": "true",
                "DialHangupCause": "NORMAL_CLEARING",
                "DialALegUUID": call.call_uuid,
                "DialBLegUUID": winner.uuid,
            }
            method = el.get("method") or "POST"
            event = call.sim.dial_action_event
            call._after_hangup.append(
                lambda: call._send(action, method, call._params(event, params))
            )


def _play_fetched(
    call: SimulatedCall, url: str, event: str | None, extra: dict[str, str], audible: bool = True
) -> None:
    """Fetch a sound URL (dialMusic, confirmSound, waitSound) and play its Speak/Play/Wait."""
    hook = call._send(url, "POST", call._params(event, extra))
    if not hook.ok or not audible:
        return
    try:
        doc = parse(hook.body)
    except (AnswerkitError, ValueError) as exc:
        call._emit("note", f"could not play {call._display(url)}: {exc}")
        return
    for child in doc.children:
        if child.tag in ("Speak", "Play"):
            hear(call, child)
        elif child.tag == "Wait":
            wait(call, child, first=False)


# -- conferences -------------------------------------------------------------------------


@dataclass
class Member:
    """One call in a conference room."""

    call: SimulatedCall
    member_id: str
    stay_alone: bool
    starter: bool
    end_on_exit: bool
    muted: bool
    active: bool = True
    reason: str = ""
    kicked: bool = False


@dataclass
class ConferenceRoom:
    """A named room shared by every call of one simulator (``sim.conference(name)``)."""

    name: str
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: bool = False
    history: list[str] = field(default_factory=list)
    _members: list[Member] = field(default_factory=list)
    _next_id: int = 1

    @property
    def members(self) -> list[SimulatedCall]:
        """The calls in the room now, in the order they joined."""
        return [m.call for m in self._members if m.active]

    def join(self, call: SimulatedCall, el: Element) -> Member:
        """Add ``call``; returns its membership."""
        if not self._members:
            self.uuid = str(uuid.uuid4())
            self.started = False
        member = Member(
            call,
            str(self._next_id),
            stay_alone=el.get("stayAlone") == "true",
            starter=el.get("startConferenceOnEnter") != "false",
            end_on_exit=el.get("endConferenceOnExit") == "true",
            muted=el.get("muted") == "true",
        )
        self._next_id += 1
        self._members.append(member)
        if member.starter:
            self.started = True
        self.history.append(f"{call.call_uuid} joined")
        self._settle()
        return member

    def leave(self, member: Member) -> None:
        """Take ``member`` out; ``endConferenceOnExit`` ends the conference for everyone."""
        if member in self._members:
            self._members.remove(member)
        member.active = False
        self.history.append(f"{member.call.call_uuid} left")
        if member.end_on_exit:
            for other in self._members:
                if other.active:
                    other.active, other.kicked = False, True
                    other.reason = "the conference ended"
        if not any(m.active for m in self._members):
            self.started = False
        self._settle()

    def _settle(self) -> None:
        # stayAlone defaults to false on Vobiz: a member alone in a started room is let go.
        active = [m for m in self._members if m.active]
        if self.started and len(active) == 1 and not active[0].stay_alone:
            active[0].active = False
            active[0].reason = "alone in the conference"


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
            _play_fetched(call, wait_sound, "ConferenceRemoteSounds", extra, audible=waiting)
        while member.active:
            yield BLOCK
        left = True
    finally:
        if call.driven:  # not when an abandoned call is garbage-collected
            with call.cleanup():
                reason = member.reason or ("hung up" if call.hanging_up else "transferred")
                room.leave(member)
                if callback:
                    # Spec §2.9: the exit event carries no From, To, Direction or CallStatus.
                    call._notify(
                        callback,
                        cb_method,
                        "ConferenceExit",
                        {
                            **base,
                            "ConferenceAction": "exit",
                            "ConferenceLastMember": "true" if not room.members else "false",
                        },
                        omit=EXIT_OMITS,
                    )
                call._emit("conference", f'leaves conference "{name}" ({reason})', room=name)
    if left and member.kicked and last:
        # Spec: kicked legs report NORMAL_CLEARING/4000/Callee (when nothing follows).
        raise CallEnded(CAUSES["normal"].with_source("Callee"))
