"""A warm transfer's agent side: the whisper, the agent's choice, and the agent's hangup.

The agent's answer route whispers the context and gathers one key; accept joins the
caller's room (once the caller is known to be waiting), anything else sends the caller on
to the fallback. The agent's Hangup webhook decides an unanswered transfer, and rescues a
caller whose agent accepted but never reached the room.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from answerkit._deadline import deadline_grace
from answerkit._log import QuietLog
from answerkit.elements import Conference, Gather, Hangup, Response, Speak
from answerkit.errors import CallNotActiveError, VobizError
from answerkit.recipes._warm_moves import MoveInFlight
from answerkit.recipes._warm_outcome import WarmOutcome, WarmOutcomes
from answerkit.recipes._warm_state import (
    AGENT_CALL,
    AGENT_ENDED,
    CALLER_LEFT,
    CONTEXT,
    JOINED,
    RESCUED,
    at,
    attempt_of,
    key_of,
    numbered,
    room_name,
    url_ids,
)
from answerkit.request import CallRequest, Event

log = QuietLog("answerkit")

Whisper = str | Callable[[Mapping[str, str]], str]

NO_CHOICE = "No choice was made. The caller will be looked after. Goodbye."


class AgentSide(WarmOutcomes):
    """The routes of a WarmTransfer that the agent's call reaches."""

    accept_key: str
    whisper: Whisper | None
    decision_timeout: int

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

    def _whisper_text(self, ctx: Mapping[str, Any]) -> str:
        if callable(self.whisper):
            return self.whisper({str(k): str(v) for k, v in ctx.items()})
        if isinstance(self.whisper, str):
            return self.whisper
        about = ", ".join(f"{k}: {v}" for k, v in ctx.items())
        intro = f"Transferred call. {about}. " if about else "Transferred call. "
        return f"{intro}Press {self.accept_key} to accept, any other key to decline."

    def _agent_status(self, call: CallRequest) -> None:
        self._moves.status_callback(call, self._on_agent_status)
        self._tell_owed(call.query.get("xfer") or "")

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
        # event is not proof (they may come late, see the notes of warm_transfer.py). No
        # live-call GET here: a status callback has 3 s (spec §2.12), and try_transfer
        # already returns None for a caller who is gone.
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
