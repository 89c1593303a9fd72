"""A warm transfer's caller side: the hold room and everything that reports on it.

The hold document (announcement, then a room of the caller's own with the wait sound),
the room's events (the agent reaching it, the caller leaving it) and the caller's own
Hangup webhook, which settles a transfer whose caller left before the room.
"""

from __future__ import annotations

from answerkit._log import QuietLog
from answerkit.elements import Conference, Hangup, Play, Response, Speak, Wait
from answerkit.recipes._warm_outcome import WarmOutcomes
from answerkit.recipes._warm_state import (
    AGENT_CALL,
    AGENT_ENDED,
    CALLER_LEFT,
    JOINED,
    OUTCOME,
    RESCUED,
    attempt_of,
    key_of,
    latest_attempt,
    room_name,
    url_ids,
)
from answerkit.request import CallRequest, Event

log = QuietLog("answerkit")


class CallerSide(WarmOutcomes):
    """The routes and listener of a WarmTransfer that hear from or about the caller."""

    announcement: str
    goodbye: str
    hold_music: str | None

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

    def _is_agent(self, caller_uuid: str, call: CallRequest) -> bool:
        """Whether ``call`` is this attempt's agent leg (unknown until its answer webhook)."""
        state = self._state(caller_uuid)
        agent_call = state.get(key_of(state, AGENT_CALL, attempt_of(call)))
        return agent_call is None or call.call_uuid == agent_call

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
