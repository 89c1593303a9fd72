"""Warm transfer: hold the caller in a room, brief the agent, join them on accept.

The sequence (spec §1.2 Conference notes, §2.13):

1. :meth:`WarmTransfer.start` moves the caller's leg with the Transfer API to the hold
   route: an announcement, then a conference room of their own where they wait with
   ``stayAlone`` and hear ``waitSound`` until a starter joins.
2. It calls the agent (make-call). The agent's answer route whispers the context and
   gathers one key.
3. Accept: the agent joins the caller's room and the call is connected. Decline, busy,
   no answer, a failed call or no key: the caller is moved to the fallback route.
4. A caller who hangs up while waiting leaves the room; that exit cancels the agent call,
   and so does a caller who leaves after the agent accepted (the agent would otherwise
   wait in the room alone).

Exactly one outcome wins: every callback that decides (accept, decline, agent hangup,
caller exit) takes the attempt's ticket with ``incr`` (atomic on every store, a store of
one's own too, where ``set_if_absent`` may be a read and then a write) and its holder
writes the decision (``_warm_moves.take_decision``: a ticket whose record the store
failed to write is taken over by the next callback), so duplicate and out-of-order
callbacks (Vobiz retries status callbacks, and conference events arrive in any order) do
nothing twice. The outcome is read from that decision, and the move it owes is found from
it too (``_warm_moves``): a store failing after the decision leaves nothing half decided,
and the callback sent again completes what it owes (the move, the agent's hangup, and the
tell: ``warm.told.<n>`` notes the outcome ``on_outcome`` was told, and a callback that
finds one recorded but not told tells it). The record is keyed by the caller's CallUUID
and expires with the store's TTL. Each :meth:`WarmTransfer.start` is a new attempt whose
number travels in every URL (``attempt``) and names the keys of the attempt's record
(``warm.decided.2``): a late callback of an earlier attempt for the same caller (the first
agent's hangup, after a fallback route started a second transfer) decides nothing for the
new one, even when it passed its check just before start() began it, and a new start()
hangs up the earlier attempt's agent (after calling the new one, and not when that agent's
Hangup webhook came already). Attempt 1 keeps the room name of earlier versions
(``warm-<caller>``), later attempts get a room of their own. URLs
without ``attempt`` come from a version of answerkit before attempts (a rolling deploy):
they belong to a transfer whose record has no attempt number. The version just before
numbered keys put ``attempt`` in its URLs but kept the record under the bare keys: an
attempt start() did not mark (``warm.layout.<n>``) is read and decided that way
(``_warm_moves.numbered``), or it would be decided a second time.

An agent who accepts but never reaches the room would strand the caller there (stayAlone,
a room nobody starts). Conference callbacks may arrive after the agent's Hangup webhook
(spec §2.9, and §2.12 retries), so a missing ConferenceEnter alone proves nothing: on the
agent's Hangup the caller is moved to the fallback only when no room event of the attempt
shows that the agent was there (the agent's enter or exit, the caller's exit). There is no
live-call check in that status callback (it must answer within 3 s): the transfer itself
finds a caller who is gone. The outcome ``agent-unavailable`` is recorded only once the
move succeeded; a move that fails gives the rescue back to the webhook's retry. A room
event of the agent that arrives after such a move cannot bring the caller back; it
restores the outcome ``accepted``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from answerkit._api_args import check_destinations, check_phone
from answerkit._deadline import deadline_grace
from answerkit._log import QuietLog
from answerkit.elements import Conference, Gather, Hangup, Play, Response, Speak, Wait
from answerkit.errors import (
    ArgumentError,
    CallNotActiveError,
    ConfigurationError,
    ElementError,
    HandlerTimeout,
    StateError,
    VobizError,
)
from answerkit.recipes._targets import check_target
from answerkit.recipes._warm_moves import (
    LAYOUT,
    MOVE_SETTLED,
    MOVING,
    TOLD,
    FallbackMove,
    MoveInFlight,
    at,
    key_of,
    latest_attempt,
    numbered,
    read_decision,
    surely_not_applied,
    take_decision,
)
from answerkit.recipes._warm_state import (
    AGENT,
    AGENT_CALL,
    AGENT_ENDED,
    ATTEMPT,
    CALLER_LEFT,
    CONTEXT,
    DECIDED,
    JOINED,
    OUTCOME,
    RESCUED,
    attempt_of,
    room_name,
    url_ids,
)
from answerkit.request import CallRequest, Event
from answerkit.state import CallState

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = QuietLog("answerkit")

Whisper = str | Callable[[Mapping[str, str]], str]

#: A transfer's outcome, as :meth:`WarmTransfer.outcome` and ``on_outcome`` give it.
WarmOutcome = Literal["accepted", "declined", "agent-unavailable", "agent-unreachable", "abandoned"]
_OUTCOMES: frozenset[str] = frozenset(get_args(WarmOutcome))

NO_CHOICE = "No choice was made. The caller will be looked after. Goodbye."


@dataclass(frozen=True)
class WarmTransferStart:
    """A transfer under way: the caller is on hold and the agent's phone is ringing."""

    caller_uuid: str
    agent_request_uuid: str | None
    room: str


class WarmTransfer:
    """A warm transfer recipe mounted on ``flow`` under ``/{name}/...``."""

    def __init__(
        self,
        flow: CallFlow,
        name: str = "warm",
        *,
        agent: str | Callable[[Mapping[str, str]], str],
        caller_id: str,
        fallback: str,
        announcement: str = "Please hold while we transfer your call.",
        hold_music: str | None = None,
        whisper: Whisper | None = None,
        accept_key: str = "1",
        agent_timeout: int = 30,
        decision_timeout: int = 10,
        goodbye: str = "Thank you for calling. Goodbye.",
        on_outcome: Callable[[str, WarmOutcome], None] | None = None,
    ) -> None:
        # isinstance first: len() of an int is a TypeError that names neither field nor fix.
        if (
            not isinstance(accept_key, str)
            or len(accept_key) != 1
            or accept_key not in "0123456789*#"
        ):
            raise ConfigurationError(
                f"WarmTransfer: accept_key must be one key as a string ('1', '#'), "
                f"got {accept_key!r}"
            )
        self.flow = flow
        self.name = name
        self.agent = agent
        try:
            check_phone("caller_id", caller_id)
            if isinstance(agent, str):
                check_destinations("agent", agent)
        except ArgumentError as exc:
            # Checked now: every agent call would be refused, each caller sent to the
            # fallback as agent-unreachable.
            raise ConfigurationError(f"WarmTransfer: {exc}") from None
        _check_settings(announcement, hold_music, whisper, agent_timeout, decision_timeout, goodbye)
        self.caller_id = caller_id
        self.fallback = fallback
        self.announcement = announcement
        self.hold_music = hold_music
        self.whisper = whisper
        self.accept_key = accept_key
        self.agent_timeout = agent_timeout
        self.decision_timeout = decision_timeout
        self.goodbye = goodbye
        #: ``on_outcome(caller_uuid, outcome)``, each time the outcome is recorded or
        #: changes (a CRM told "accepted"). It runs inside a webhook: keep it quick.
        self.on_outcome = on_outcome
        self._moves = FallbackMove(
            flow, fallback, f"{name}_landing", self._state, self._tell_outcome
        )
        self.routes = {
            "hold": f"{name}_hold",
            "music": f"{name}_music",
            "room": f"{name}_room",
            "agent": f"{name}_agent",
            "choice": f"{name}_agent_choice",
            "agent_status": f"{name}_agent_status",
            "landing": f"{name}_landing",
        }
        r = self.routes
        flow.add_route(f"/{name}/hold", self._hold, name=r["hold"])
        # The wait sound is the same for every caller, every time: no replay record, so
        # that it plays on while the state store is down (not the apology document).
        flow.add_route(
            f"/{name}/music", self._music, name=r["music"], replay_check=False, sound=True
        )
        flow.add_route(f"/{name}/room", self._room_event, name=r["room"], status_callback=True)
        flow.add_route(f"/{name}/agent", self._agent_answer, name=r["agent"])
        flow.add_route(f"/{name}/agent/choice", self._agent_choice, name=r["choice"])
        flow.add_route(
            f"/{name}/agent/status",
            self._agent_status,
            name=r["agent_status"],
            status_callback=True,
        )
        flow.add_route(f"/{name}/landing", self._moves.landing, name=r["landing"])
        flow.add_check(self._validate)
        flow.add_hangup_listener(self._on_hangup)

    # -- starting -----------------------------------------------------------------------

    def room_for(self, caller_uuid: str, attempt: int | None = None) -> str:
        """The conference room of one transfer attempt (by default the caller's latest).

        One room per attempt: an earlier attempt's agent who accepts late joins a room of
        their own, never the caller's current one.
        """
        if attempt is None:
            attempt = latest_attempt(self._state(caller_uuid))
        return room_name(self.name, caller_uuid, attempt)

    def start(
        self, caller_uuid: str, context: Mapping[str, object] | None = None
    ) -> WarmTransferStart | None:
        """Put the caller on hold (Transfer API) and call the agent.

        ``context`` (a CRM record, say) is kept as text, ``str()`` of each key and value,
        for the whisper and for ``agent`` when it is a function.

        Returns None when the caller's call has already ended (nothing was started).
        """
        state = self._state(caller_uuid)
        # A new attempt number first: from here on the callbacks of an earlier attempt
        # (whose URLs carry its number) are stale and decide nothing for this one. Nothing
        # to clear: the new attempt's record is under keys of its own (see at()), which a
        # late callback of the earlier one never writes.
        attempt = state.incr(ATTEMPT)
        # Marked before any URL of the attempt goes out: its record is under numbered keys
        # (an attempt begun by an earlier version is read under the bare ones, numbered()).
        state[at(LAYOUT, attempt)] = True
        previous = attempt - 1 if attempt > 1 else None  # 1: a transfer before attempts
        previous_agent = self._agent_of(state, previous)
        if state.get(key_of(state, AGENT_ENDED, previous)):
            previous_agent = None  # its Hangup webhook came: nothing to hang up
        ctx = {str(k): str(v) for k, v in (context or {}).items()}
        state[CONTEXT] = ctx
        ids = {"xfer": caller_uuid, "attempt": attempt}
        sent = held = timed_out = False
        # One try from the hold transfer to the agent's call: the deadline (SIGALRM) can
        # strike on any line, and one between the two (outside both tries) left the caller
        # on hold with no agent called and nothing owed.
        try:
            sent = True
            moved = self.flow.try_transfer(caller_uuid, aleg=self.routes["hold"], params=ids)
            held = True
            if moved is None:
                log.info(
                    "warm transfer: caller %s already hung up; not calling the agent", caller_uuid
                )
                return None
            return self._call_agent(caller_uuid, attempt, ctx)
        except HandlerTimeout as exc:
            timed_out = True  # no REST call past the deadline: the earlier agent stays
            if sent and (held or not surely_not_applied(exc)):
                # The caller is on hold, or may be: unless the agent was called (then the
                # agent's callbacks decide), the fallback is owed. Also when _call_agent
                # owed it already: the decision is taken once. (The hold transfer refused
                # unsent, LateTransferRefused: the caller is where they were.)
                self._owe_fallback_later(caller_uuid, attempt, unless_called=True)
            raise
        except Exception as exc:
            # A timeout, a 5xx: the caller may be on hold, where no agent will come.
            # (Refused, or never sent: they are where they were.) After the hold, an error
            # of _call_agent's own handling, which owed what it could.
            if not held and not surely_not_applied(exc):
                self._owe_fallback_later(caller_uuid, attempt)
            raise
        finally:
            if previous_agent and not timed_out:
                # The earlier attempt's agent would otherwise stay: in the old room, or in
                # the whisper, where a stale accept can no longer connect anyone. After the
                # caller is moved (hanging up an agent who is in the room with the caller
                # would end the room, and the caller's call with it) and after the new
                # agent is called: the hangup may be retried for seconds on a 5xx, and the
                # caller should not wait on hold for that before the new agent rings.
                self._hang_up_quietly(str(previous_agent))

    def _owe_fallback_later(
        self, caller_uuid: str, attempt: int, *, unless_called: bool = False
    ) -> None:
        """The caller is on hold, or maybe on the way there (the hold transfer's outcome is
        unknown), and no agent will be called: the move to the fallback is owed. A webhook
        past its deadline makes no REST call, and the room may send no callback again (the
        caller's ConferenceEnter may have come), so a thread of its own makes the move once
        the webhook has answered. ``unless_called``: not when make-call gave the agent's
        request (that agent's callbacks decide)."""
        # Not cut short by the deadline's later alarms: a decision recorded without its
        # debt would leave nothing to move the caller.
        with deadline_grace(), contextlib.suppress(Exception):
            if unless_called and self._state(caller_uuid).get(at(AGENT, attempt)):
                return
            if self._decide(caller_uuid, "agent-unreachable", attempt, move_now=False):
                self._moves.settle_later(caller_uuid)

    def _call_agent(
        self, caller_uuid: str, attempt: int, ctx: Mapping[str, str]
    ) -> WarmTransferStart:
        ids = {"xfer": caller_uuid, "attempt": attempt}
        try:
            destination = self.agent(ctx) if callable(self.agent) else self.agent
            created = self.flow.client.make_call(
                self.caller_id,
                destination,
                self.flow.url_for(self.routes["agent"], **ids),
                hangup_url=self.flow.url_for(self.routes["agent_status"], **ids),
                ring_timeout=self.agent_timeout,
            )
        except HandlerTimeout:
            self._owe_fallback_later(caller_uuid, attempt)  # the caller is on hold already
            raise
        except Exception as exc:
            # The caller is on hold already: whatever keeps the agent from being called (the
            # API, a number make_call refuses, the agent function failing) must send them
            # on to the fallback, or they would wait in a room nobody starts.
            log.warning(
                "warm transfer: could not call the agent for %s: %s: %s",
                caller_uuid,
                type(exc).__name__,
                exc,
                exc_info=not isinstance(exc, (VobizError, ArgumentError)),
            )
            if not isinstance(exc, (VobizError, ArgumentError)):
                self._report(exc)  # a bug in the agent function: the flow's error hook hears
            with contextlib.suppress(MoveInFlight):  # another webhook is moving them
                self._decide(caller_uuid, "agent-unreachable", attempt)
            return WarmTransferStart(caller_uuid, None, room_name(self.name, caller_uuid, attempt))
        self._state(caller_uuid)[at(AGENT, attempt)] = created.request_uuid
        room = room_name(self.name, caller_uuid, attempt)
        return WarmTransferStart(caller_uuid, created.request_uuid, room)

    def outcome(self, caller_uuid: str) -> WarmOutcome | None:
        """``accepted``, ``declined``, ``agent-unavailable``, ``agent-unreachable`` or
        ``abandoned``; None while undecided."""
        state = self._state(caller_uuid)
        return self._outcome_at(state, latest_attempt(state))

    @staticmethod
    def _outcome_at(state: CallState, attempt: int | None) -> WarmOutcome | None:
        """The outcome of ``attempt``: as a rescue or a late room event changed it, or else
        as decided."""
        changed = _outcome(state.get(key_of(state, OUTCOME, attempt)))
        if changed is not None:
            # In an earlier version's record (bare keys) also the decision's own outcome.
            return changed
        if isinstance(attempt, int) and numbered(state, attempt):
            decision, _ = read_decision(state, attempt)
        else:
            # The bare key: an incr counter (b912e1b^, its outcome under OUTCOME, above),
            # or the decision itself (b912e1b, for a transfer from before attempts).
            decision = state.get(DECIDED)
        return _outcome(decision.get("outcome")) if isinstance(decision, dict) else None

    @staticmethod
    def _agent_of(state: CallState, attempt: int | None) -> str | None:
        """The agent's call of ``attempt``: its CallUUID once it answered, or else the
        request UUID make-call gave."""
        agent = state.get(key_of(state, AGENT_CALL, attempt)) or state.get(
            key_of(state, AGENT, attempt)
        )
        return str(agent) if agent else None

    # -- caller side ----------------------------------------------------------------------

    def _hold(self, call: CallRequest) -> Response:
        caller = call.query.get("xfer") or call.call_uuid
        attempt = attempt_of(call)
        return Response(
            Speak(self.announcement),
            Conference(
                room_name(self.name, caller, attempt),
                stay_alone=True,
                start_conference_on_enter=False,
                end_conference_on_exit=True,
                wait_sound=self.flow.url_for(self.routes["music"]),
                callback_url=self.flow.url_for(self.routes["room"], **url_ids(caller, attempt)),
            ),
            Speak(self.goodbye),
            Hangup(),
        )

    def _music(self, call: CallRequest) -> Response:
        if self.hold_music:
            return Response(Play(self.hold_music, loop=0))
        return Response(Speak("Please continue to hold."), Wait(length=10))

    def _room_event(self, call: CallRequest) -> None:
        self._moves.status_callback(call, self._on_room_event)
        self._tell_owed(call.query.get("xfer") or "")

    def _agent_status(self, call: CallRequest) -> None:
        self._moves.status_callback(call, self._on_agent_status)
        self._tell_owed(call.query.get("xfer") or "")

    def _on_room_event(self, call: CallRequest) -> None:
        caller = call.query.get("xfer") or ""
        attempt = attempt_of(call)
        if call.query.get("leg") == "agent":
            # Enter or exit: either shows that the agent reached the room (the exit may be
            # the first of the two to be delivered). Only from this attempt's agent call.
            joined = call.event in (Event.ConferenceEnter, Event.ConferenceExit)
            if joined and self._is_current(caller, attempt) and self._is_agent(caller, call):
                state = self._state(caller)
                state[key_of(state, JOINED, attempt)] = True
                if (
                    state.get(key_of(state, RESCUED, attempt))
                    and self._outcome_at(state, attempt) == "agent-unavailable"
                ):
                    # Delivered after the agent's hangup, and after the caller was moved
                    # to the fallback: too late to undo the move; the record is put right.
                    state[key_of(state, OUTCOME, attempt)] = "accepted"
                    self._tell_outcome(caller, attempt, "accepted")
                    log.warning(
                        "warm transfer for %s: the agent's room event came after the "
                        "caller was moved to the fallback",
                        caller,
                    )
                if state.get(key_of(state, CALLER_LEFT, attempt)):
                    # The caller left before the agent got there (their exit handled while
                    # the accept was being decided, or their Hangup before the room): the
                    # agent, with stay_alone, would wait in the room for nobody.
                    self._hang_up_quietly(call.call_uuid)
            return
        if call.event != Event.ConferenceExit or call.call_uuid != caller:
            return
        # The caller left the room (the room ended, or they hung up): nobody to rescue.
        # This attempt's key: written late, after start() began another, it says nothing
        # of the new attempt's room.
        state = self._state(caller)
        state[key_of(state, CALLER_LEFT, attempt)] = True
        if not self._is_current(caller, attempt):
            return
        # The caller left the room. Before an agent decided: cancel the agent's call. After
        # an accept: the agent may be waiting in the room (stay_alone) for nobody. The
        # outcome is read after this callback's own decision: an accept decided meanwhile
        # wins it, and its agent must be hung up all the same. Every delivery does it (a
        # retry after a failed hangup, or a store failing after the decision).
        self._decide(caller, "abandoned", attempt)
        state = self._state(caller)
        if self._outcome_at(state, attempt) in ("abandoned", "accepted") and not state.get(
            key_of(state, AGENT_ENDED, attempt)
        ):
            agent_uuid = self._agent_of(state, attempt)
            if agent_uuid:
                self._hang_up_quietly(agent_uuid)

    def _on_hangup(self, call: CallRequest) -> None:
        """Any Hangup webhook of the flow. A caller of this recipe who hangs up before
        reaching the hold room (during the announcement, say) sends no room event: the
        agent's phone would ring on, and an agent who accepts would wait in the room alone.
        So the caller's own Hangup settles it, as their ConferenceExit would."""
        caller = call.call_uuid
        if not caller:
            return
        state = self._state(caller)
        attempt = latest_attempt(state)
        if attempt is None or state.get(key_of(state, CALLER_LEFT, attempt)):
            return  # not one of ours, or the room told already
        self._decide(caller, "abandoned", attempt)
        # Read after the decision: "abandoned" by a delivery before this one, which then met
        # the store down (the Hangup is sent again, see Dispatcher._tell_listeners), or
        # "accepted": the rest is done all the same.
        state = self._state(caller)
        over = self._outcome_at(state, attempt) in ("accepted", "abandoned")
        if over and not state.get(key_of(state, AGENT_ENDED, attempt)):
            agent_uuid = self._agent_of(state, attempt)
            if agent_uuid:
                self._hang_up_quietly(agent_uuid)
        # A delivery before this one decided, then met the store down before telling.
        self._tell_owed(caller)
        # Last: until it is written, each delivery does it all.
        state[key_of(state, CALLER_LEFT, attempt)] = True

    # -- agent side -----------------------------------------------------------------------

    def _agent_answer(self, call: CallRequest) -> Response:
        caller = call.query.get("xfer", "")
        attempt = attempt_of(call)
        gone = Response(Speak("This transfer is no longer waiting. Goodbye."), Hangup())
        if not caller or not self._is_current(caller, attempt) or self.outcome(caller) is not None:
            return gone
        state = self._state(caller)
        # The agent's own CallUUID (make-call gave only a request UUID): the room events of
        # the agent leg are checked against it, and it is the one to hang up. Under the
        # attempt's own key: a start() between the check and the write leaves the new
        # attempt's record without this agent.
        state[key_of(state, AGENT_CALL, attempt)] = call.call_uuid
        if not self._is_current(caller, attempt):
            return gone  # a start() ran meanwhile: no whisper for a transfer gone
        ctx = state.get(CONTEXT) or {}
        text = self._whisper_text(ctx)
        return Response(
            Gather(
                Speak(text),
                action=self.flow.url_for(self.routes["choice"], **url_ids(caller, attempt)),
                input_type="dtmf",
                num_digits=1,
                # '#' ends the input by default and is left out of Digits (spec §1.2): an
                # accept_key '#' could never be accepted, and a '#' would not decline.
                finish_on_key="none",
                execution_timeout=self.decision_timeout,
            ),
            Speak(NO_CHOICE),
            Hangup(),
        )

    def _agent_choice(self, call: CallRequest) -> Response:
        caller = call.query.get("xfer", "")
        attempt = attempt_of(call)
        if call.digits == self.accept_key:
            if (
                caller
                and self._is_current(caller, attempt)
                and self._accepted_by(caller, attempt, call)
            ):
                # A repeated delivery of the accepting Gather action (Vobiz retries): the
                # same answer again, or the agent would be told the caller is gone.
                return self._join(caller, attempt)
            if (
                caller
                and self._is_current(caller, attempt)
                and self._caller_waiting(caller, attempt)
                and self._decide(caller, "accepted", attempt)
            ):
                return self._join(caller, attempt)
            return Response(Speak("The caller is no longer waiting. Goodbye."), Hangup())
        # No key: the Gather timed out and Vobiz posted empty input (spec §6 item 2), the
        # same as when it moves on to the next element and the agent's call ends.
        outcome: WarmOutcome = "agent-unavailable" if not call.digits else "declined"
        if caller:
            try:
                self._decide(caller, outcome, attempt)
            except (VobizError, MoveInFlight) as exc:
                # The decision stands and the caller's move is owed: the agent's hangup
                # callback, which follows this answer, makes it.
                log.warning("warm transfer for %s: move to the fallback owed: %s", caller, exc)
        if not call.digits:
            return Response(Speak(NO_CHOICE), Hangup())
        return Response(Speak("Transfer declined. Goodbye."), Hangup())

    def _join(self, caller: str, attempt: int | None) -> Response:
        # stay_alone: the caller may still be hearing the announcement, and a lone member
        # without it is disconnected at once (spec §1.2), which would leave the caller in a
        # room nobody ever starts. The callback tells the recipe that the agent got there
        # (see _agent_status).
        return Response(
            Speak("Connecting you now."),
            Conference(
                room_name(self.name, caller, attempt),
                stay_alone=True,
                end_conference_on_exit=True,
                callback_url=self.flow.url_for(
                    self.routes["room"], **url_ids(caller, attempt), leg="agent"
                ),
            ),
            Hangup(),
        )

    def _accepted_by(self, caller: str, attempt: int | None, call: CallRequest) -> bool:
        """Whether ``attempt`` was accepted already, by the agent call ``call`` is from."""
        state = self._state(caller)
        return (
            self._outcome_at(state, attempt) == "accepted"
            and state.get(key_of(state, AGENT_CALL, attempt)) == call.call_uuid
        )

    def _on_agent_status(self, call: CallRequest) -> None:
        caller = call.query.get("xfer")
        if not caller or call.event != Event.Hangup:
            return
        attempt = attempt_of(call)
        # A later start() need not hang this agent up (see start()).
        state = self._state(caller)
        state[key_of(state, AGENT_ENDED, attempt)] = True
        # Busy, no answer, failed, or hung up during the whisper: never accepted.
        if self._decide(caller, "agent-unavailable", attempt) or not self._is_current(
            caller, attempt
        ):
            return
        state = self._state(caller)
        # The agent accepted, then hung up before reaching the room: the caller would hold
        # there alone, with nobody ever to start it, until the room's time limit. No room
        # event is not proof (they may come late, see the module notes). No live-call GET
        # here: a status callback has 3 s (spec §2.12), and try_transfer already returns
        # None for a caller who is gone.
        if (
            self._outcome_at(state, attempt) != "accepted"
            or state.get(key_of(state, JOINED, attempt))
            or state.get(key_of(state, CALLER_LEFT, attempt))
        ):
            return
        # The rescue, written once (setdefault) and owing the move by itself: a repeated
        # hangup callback moves the caller once (the attempt's move is marked made), and
        # one that meets the store down after it finds the move still owed (_warm_moves).
        # Not a ticket as the decision is: two rescues written at once (set_if_absent not
        # atomic on the store) owe the same move, made once under the move's claim and
        # marked settled; a ticket without its record would owe nothing.
        rescue = {"outcome": "agent-unavailable", "id": uuid.uuid4().hex[:12]}
        with deadline_grace():  # the rescue taken and its debt, in one piece (see _decide)
            if numbered(state, attempt):
                won = state.setdefault(at(RESCUED, attempt), rescue) == rescue
            else:
                # An earlier version's record, its way (an incr counter; a dict from before
                # attempts is a rescue taken too).
                won = not state.get(RESCUED) and state.incr(RESCUED) == 1
            if won:
                self._moves.record(state, "agent-unavailable", attempt, rescue=True)
        self._moves.make_owed(caller)

    # -- deciding -----------------------------------------------------------------------

    def _decide(
        self,
        caller_uuid: str,
        outcome: WarmOutcome,
        attempt: int | Literal["latest"] | None = "latest",
        *,
        move_now: bool = True,
    ) -> bool:
        """Record the one outcome of ``attempt`` (by default the caller's latest); False
        when another came first, or when ``attempt`` (None: a URL from before attempts) is
        not the caller's latest."""
        if attempt == "latest":
            attempt = latest_attempt(self._state(caller_uuid))
        if not self._is_current(caller_uuid, attempt):
            return False
        state = self._state(caller_uuid)
        moving = outcome in MOVING
        # The debt recorded with the decision, the deadline held off meanwhile: a deadline
        # between them (SIGALRM) would leave the move to be found from the decision alone.
        with deadline_grace():
            if isinstance(attempt, int) and numbered(state, attempt):
                # A ticket (incr, atomic on every store) and then the record, under the
                # attempt's own keys: exactly one callback wins, a late callback of an
                # earlier attempt can only win that attempt's, and a store failing between
                # ticket and record is taken over by the next callback (take_decision).
                won = take_decision(state, attempt, outcome)
            else:
                # A transfer an earlier version began: decided its way (an incr counter
                # under the bare key, then the outcome), or it would be decided again. A
                # dict there is a decision b912e1b took for a transfer from before attempts.
                won = not state.get(DECIDED) and state.incr(DECIDED) == 1
                if won:
                    state[OUTCOME] = outcome
            if not won:
                return False
            if not self._is_current(caller_uuid, attempt):
                # start() began another attempt since the check above: this one's decision
                # is moot (its caller is on their way to the new hold).
                return False
            if moving:
                # Owed until done: when the REST call fails or runs out of time, the decision
                # stands and a later status callback (or this one, sent again) moves them.
                # A store failing before this write leaves the decision to say so.
                self._moves.record(state, outcome, attempt)
        log.info("warm transfer for %s: %s", caller_uuid, outcome)
        if not moving:
            self._tell_outcome(caller_uuid, attempt, outcome)
        elif move_now:
            self._moves.make_owed(caller_uuid)  # tells on_outcome once moved
        return True

    def _report(self, exc: BaseException) -> None:
        """Hand an error of the app's own code (the agent function) to the flow's
        ``on_error`` hook, as a handler's error would be; there is no call to pass."""
        try:
            # The dispatcher's hook: what the flow was given, or a test harness's tap.
            hook = self.flow.dispatcher().on_error
        except Exception:
            hook = self.flow.on_error
        if hook is None:
            return
        try:
            hook(exc, None, self.routes["agent"])
        except Exception:
            log.exception("warm transfer: the on_error hook itself failed")

    def _tell_outcome(self, caller_uuid: str, attempt: int | None, outcome: str) -> None:
        """Tell ``on_outcome`` the ``outcome`` just recorded for ``attempt``, noting it told
        (``warm.told.<n>``): a callback after this one that finds the outcome not noted
        tells it (:meth:`_tell_owed`), so a store failing or the deadline striking before
        the tell no longer loses it (the retry found the transfer decided: nothing to do)."""
        state = self._state(caller_uuid)
        if not numbered(state, attempt):
            # An earlier version's record keeps no note of what it told: told as it did.
            self._tell(caller_uuid, outcome)
            return
        if state.get(at(TOLD, attempt)) == outcome:
            return  # told already, by a callback that came first
        # Noted, then told, with the deadline held off from one to the other: noted after
        # telling, a store failing in between told it twice. A note the store refuses
        # leaves the tell to the next callback, and this webhook (an accept, say) goes on.
        with deadline_grace():
            try:
                state[at(TOLD, attempt)] = outcome
            except StateError as exc:
                log.warning("warm transfer for %s: %s told later: %s", caller_uuid, outcome, exc)
                return
            self._tell(caller_uuid, outcome)

    def _tell_owed(self, caller_uuid: str) -> None:
        """Tell ``on_outcome`` the latest attempt's outcome if it was recorded but not told:
        the callback that recorded it met the store down or its deadline before telling,
        and its retry found the transfer decided (or the move made) and told nothing. A
        moving outcome is told once the move is made (as that callback would have)."""
        if not caller_uuid or self.on_outcome is None:
            return
        state = self._state(caller_uuid)
        attempt = latest_attempt(state)
        if attempt is None or not numbered(state, attempt):
            return
        outcome = self._outcome_at(state, attempt)
        if outcome is None or state.get(at(TOLD, attempt)) == outcome:
            return
        if outcome in MOVING and (
            not state.get(at(MOVE_SETTLED, attempt)) or self._moves.owed(state) is not None
        ):
            return  # the move is still owed: told once it is made
        self._tell_outcome(caller_uuid, attempt, outcome)

    def _tell(self, caller_uuid: str, outcome: str) -> None:
        told = _outcome(outcome)
        if told is None:
            return
        hook = self.on_outcome
        if hook is None:
            return
        try:
            hook(caller_uuid, told)
        except Exception:  # the transfer is done; a failing report must not undo it
            log.exception("warm transfer for %s: on_outcome failed", caller_uuid)

    def _is_current(self, caller_uuid: str, attempt: int | None) -> bool:
        latest = self._state(caller_uuid).get(ATTEMPT)
        if attempt is None:
            # A URL without attempt (a version before attempts started this transfer, a
            # rolling deploy): current as long as no start() has numbered the record.
            return latest is None
        return attempt > 0 and latest == attempt

    def _is_agent(self, caller_uuid: str, call: CallRequest) -> bool:
        """Whether ``call`` is this attempt's agent leg (unknown until its answer webhook)."""
        state = self._state(caller_uuid)
        agent_call = state.get(key_of(state, AGENT_CALL, attempt_of(call)))
        return agent_call is None or call.call_uuid == agent_call

    def _caller_waiting(self, caller_uuid: str, attempt: int | None) -> bool:
        """Whether the caller's call is still live (the agent is about to join them).

        A caller who hangs up before reaching the room (during the announcement, or when
        the hold transfer failed) sends no room event: without this, an accepting agent
        would wait alone in the room.
        """
        state = self._state(caller_uuid)
        if state.get(key_of(state, CALLER_LEFT, attempt)):
            # The caller's Hangup or room exit came already: no need to ask Vobiz.
            self._decide(caller_uuid, "abandoned", attempt)
            return False
        try:
            self.flow.client.get_live_call(caller_uuid)
        except CallNotActiveError:
            self._decide(caller_uuid, "abandoned", attempt)
            return False
        except VobizError as exc:  # cannot tell: connect, as before the check
            log.info("warm transfer: could not check caller %s: %s", caller_uuid, exc)
        return True

    def _hang_up_quietly(self, call_uuid: str) -> None:
        try:
            self.flow.client.hangup(call_uuid)
        except VobizError as exc:
            log.info("warm transfer: agent call %s could not be hung up: %s", call_uuid, exc)

    def _whisper_text(self, ctx: Mapping[str, Any]) -> str:
        if callable(self.whisper):
            return self.whisper({str(k): str(v) for k, v in ctx.items()})
        if isinstance(self.whisper, str):
            return self.whisper
        about = ", ".join(f"{k}: {v}" for k, v in ctx.items())
        intro = f"Transferred call. {about}. " if about else "Transferred call. "
        return f"{intro}Press {self.accept_key} to accept, any other key to decline."

    def _state(self, caller_uuid: str) -> CallState:
        # Not the caller's own record: that one lapses hangup_linger seconds after the
        # caller's Hangup webhook (0: at once), and the agent's events may come later still.
        return CallState(self.flow.store, f"{self.name}:{caller_uuid}")

    def _validate(self, flow: CallFlow) -> None:
        # The hold, whisper and room URLs are the flow's: without a public URL start()
        # would fail on every call, so the recipe fails when mounted instead.
        try:
            flow.url_for(self.routes["hold"])
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"WarmTransfer {self.name!r} cannot build its URLs: {exc}"
            ) from None
        where = f"WarmTransfer {self.name!r}"
        try:
            check_target(flow, where, "fallback", self.fallback, event="Transfer")
        except ConfigurationError:
            # The landing asks Vobiz to fetch a fallback that takes no transfer itself.
            check_target(flow, where, "fallback", self.fallback, event="Redirect")
        flow.transfers.warn_without_client(f"WarmTransfer {self.name!r}")


_ANY_URL = "https://example.com/"  # stands in for the recipe's own URLs, unknown when made


def _check_settings(
    announcement: str,
    hold_music: str | None,
    whisper: Whisper | None,
    agent_timeout: int,
    decision_timeout: int,
    goodbye: str,
) -> None:
    """Refuse, when the recipe is made, a setting every transfer would trip over later: the
    documents it goes into are tried out now, as IVRMenu's are."""
    if not isinstance(agent_timeout, int) or isinstance(agent_timeout, bool) or agent_timeout <= 0:
        raise ConfigurationError(
            f"WarmTransfer: agent_timeout must be the seconds the agent's phone rings, a whole "
            f"number > 0, got {agent_timeout!r}"
        )
    if whisper is not None and not isinstance(whisper, str) and not callable(whisper):
        raise ConfigurationError(
            f"WarmTransfer: whisper must be text or a function of the context returning "
            f"text, got {whisper!r}"
        )
    # The whisper's Gather: its executionTimeout is the agent's time to decide.
    tried: list[tuple[str, Callable[[], object]]] = [
        ("announcement", lambda: Speak(announcement)),
        ("goodbye", lambda: Speak(goodbye)),
        ("decision_timeout", lambda: Gather(action=_ANY_URL, execution_timeout=decision_timeout)),
    ]
    if isinstance(whisper, str):
        tried.append(("whisper", lambda: Speak(whisper)))
    if hold_music:  # "" is unset, as it always was (hold_music=os.environ.get(..., ""))
        tried.append(("hold_music", lambda: Play(hold_music, loop=0)))
    for name, build in tried:
        try:
            build()
        except (ElementError, TypeError) as exc:
            hint = (
                " (the URL of an audio file the caller hears on hold)"
                if name == "hold_music"
                else ""
            )
            raise ConfigurationError(f"WarmTransfer: {name}: {exc}{hint}") from None


def _outcome(value: object) -> WarmOutcome | None:
    """A recorded outcome as its Literal, or None (none yet, or not one of ours)."""
    if isinstance(value, str) and value in _OUTCOMES:
        return cast("WarmOutcome", value)
    return None
