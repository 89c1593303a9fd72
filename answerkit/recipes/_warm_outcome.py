"""A warm transfer's outcomes: deciding an attempt's one outcome, reading it, telling it.

:class:`WarmOutcomes` is the base of the recipe's caller side (``_warm_caller``) and agent
side (``_warm_agent``): both decide through :meth:`WarmOutcomes._decide`, which takes the
decision (``_warm_ticket``), owes the move it calls for (``_warm_moves``) and tells
``on_outcome`` once (``warm.told.<n>``). The attributes it names are set by
:class:`~answerkit.recipes.warm_transfer.WarmTransfer`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, cast, get_args

from answerkit._deadline import deadline_grace
from answerkit._log import QuietLog
from answerkit.errors import StateError, VobizError
from answerkit.recipes._warm_moves import MOVE_SETTLED, MOVING, FallbackMove
from answerkit.recipes._warm_state import (
    AGENT,
    AGENT_CALL,
    ATTEMPT,
    DECIDED,
    OUTCOME,
    at,
    key_of,
    latest_attempt,
    numbered,
)
from answerkit.recipes._warm_ticket import read_decision, take_decision
from answerkit.state import CallState

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = QuietLog("answerkit")

#: A transfer's outcome, as :meth:`WarmTransfer.outcome` and ``on_outcome`` give it.
WarmOutcome = Literal["accepted", "declined", "agent-unavailable", "agent-unreachable", "abandoned"]
_OUTCOMES: frozenset[str] = frozenset(get_args(WarmOutcome))

#: Per attempt: the outcome ``on_outcome`` was last told (see WarmOutcomes._tell_owed),
#: and how many changes it was told (which names each tell's claim).
TOLD = "warm.told"
TELLS = "warm.tells"


class WarmOutcomes:
    """The deciding and telling of a :class:`~answerkit.recipes.warm_transfer.WarmTransfer`."""

    flow: CallFlow
    name: str
    routes: dict[str, str]
    on_outcome: Callable[[str, WarmOutcome], None] | None
    _moves: FallbackMove

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
        told = state.get(at(TOLD, attempt))
        if told == outcome:
            return  # told already, by a callback that came first
        # Claimed, then told, with the deadline held off from one to the other: claimed
        # after telling, a store failing in between told it twice. The claim is the
        # store's to decide (setdefault: one webhook of several wins), named by the tell
        # it would be, its number and outcome: two webhooks that read the same note (a room
        # event delivered while the decline's own webhook told it) each told the outcome,
        # and a change made again later (A, B, A, B) is a tell of its own. A claim the
        # store refuses leaves the tell to the next callback, and this webhook (an accept,
        # say) goes on.
        tells = state.get(at(TELLS, attempt))
        number = (tells if isinstance(tells, int) else 0) + 1
        claim = f"{at(TOLD, attempt)}:{number}>{outcome}"
        token = uuid.uuid4().hex
        with deadline_grace():
            try:
                if state.setdefault(claim, token) != token:
                    return  # another webhook tells this change
            except StateError as exc:
                log.warning("warm transfer for %s: %s told later: %s", caller_uuid, outcome, exc)
                return
            try:
                state.update({at(TOLD, attempt): outcome, at(TELLS, attempt): number})
            except StateError as exc:  # the claim keeps it told once all the same
                log.warning("warm transfer for %s: told %s unnoted: %s", caller_uuid, outcome, exc)
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

    def _hang_up_quietly(self, call_uuid: str) -> None:
        try:
            self.flow.client.hangup(call_uuid)
        except VobizError as exc:
            log.info("warm transfer: agent call %s could not be hung up: %s", call_uuid, exc)

    def _state(self, caller_uuid: str) -> CallState:
        # Not the caller's own record: that one lapses hangup_linger seconds after the
        # caller's Hangup webhook (0: at once), and the agent's events may come later still.
        return CallState(self.flow.store, f"{self.name}:{caller_uuid}")


def _outcome(value: object) -> WarmOutcome | None:
    """A recorded outcome as its Literal, or None (none yet, or not one of ours)."""
    if isinstance(value, str) and value in _OUTCOMES:
        return cast("WarmOutcome", value)
    return None
