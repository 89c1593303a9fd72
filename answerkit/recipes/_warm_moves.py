"""A warm transfer's move of the caller to the fallback: owed until done, never twice.

The move is a REST call made from inside a webhook. It can fail, or still be in flight
when another webhook of the same transfer arrives, so:

* The record says a move is owed (``MOVE_OWED``, with the attempt it is for) before it is
  made. A move Vobiz surely did not apply (nothing was sent, or the API refused it: a
  connection error, 4xx, 429) stays owed, and the next status callback of the transfer,
  or Vobiz's retry of the failed one, makes it (:meth:`FallbackMove.status_callback`).
  One that may have been applied (a timeout, a 5xx, the webhook's deadline) is not
  repeated: the transfer would run the fallback's document twice (spec §4.1), as the
  REST client never repeats such a POST either.
* A claim in the store (first writer wins, with an expiry, as a webhook's replay record)
  keeps two webhooks from making the move at once; the second is asked to come back
  (:class:`MoveInFlight`, a RetryLater in a status callback). A worker killed mid-move
  leaves a claim that lapses after :data:`CLAIM_TTL`.
* A rescue (an accepted transfer whose agent hung up before any room event came) is
  dropped when the record, read afresh, shows the agent reached the room or the caller
  left it: a room event delivered late must not send a connected caller away.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from answerkit.dispatch import LateTransferRefused
from answerkit.errors import (
    APIError,
    ConnectError,
    RetryLater,
    ServerError,
    StateError,
    VobizError,
)
from answerkit.recipes._warm_state import ATTEMPT, CALLER_LEFT, JOINED, MOVE_OWED, OUTCOME
from answerkit.request import CallRequest
from answerkit.state import CallState

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = logging.getLogger("answerkit")

#: Seconds a claim on a move lasts: longer than the REST client may take to make it (its
#: retries within max_retry_time, 30 s, plus a 10 s timeout), so that only a killed
#: worker's claim ever lapses.
CLAIM_TTL = 45.0


class MoveInFlight(Exception):
    """Another webhook of the transfer is moving the caller right now."""


def surely_not_applied(exc: BaseException) -> bool:
    """Whether a failed transfer is known not to have been applied, so it may be made
    again: nothing was sent (no connection; refused locally past the handler's deadline),
    or Vobiz refused it. A 5xx, a timeout or a deadline mid-request may have been applied."""
    if isinstance(exc, (ConnectError, LateTransferRefused)):
        return True
    return isinstance(exc, APIError) and not isinstance(exc, ServerError)


class FallbackMove:
    """Moves one recipe's callers to its fallback route: at least once when Vobiz surely
    did not apply a move, never twice at once. ``tell(caller_uuid, outcome)`` is told once
    a move is done."""

    def __init__(
        self,
        flow: CallFlow,
        fallback: str,
        state_of: Callable[[str], CallState],
        tell: Callable[[str, str], None],
    ) -> None:
        self.flow = flow
        self.fallback = fallback
        self.state_of = state_of
        self.tell = tell

    def owe(self, caller_uuid: str, outcome: str, *, rescue: bool = False) -> bool:
        """Owe the caller a move for ``outcome`` (this attempt's) and make it: whether
        they were moved. ``rescue``: ``outcome`` is recorded once the caller is moved.
        Raises MoveInFlight, or the REST error or deadline (see the module notes)."""
        state = self.state_of(caller_uuid)
        state[MOVE_OWED] = {"outcome": outcome, "rescue": rescue, "attempt": state.get(ATTEMPT)}
        return self._make(caller_uuid, state)

    def status_callback(self, call: CallRequest, body: Callable[[CallRequest], None]) -> None:
        """Run a status callback of the transfer (``?xfer=`` names the caller): ``body``,
        then the move an earlier webhook still owes the caller (after, so that what the
        body recorded, such as the agent reaching the room, is seen). A move that failed
        and may be made again, or that another webhook is making, has Vobiz send the
        callback again (RetryLater, spec §2.12)."""
        caller = call.query.get("xfer") or ""
        try:
            body(call)
            if caller:
                state = self.state_of(caller)
                if state.get(MOVE_OWED):
                    self._make(caller, state)
        except (VobizError, MoveInFlight) as exc:
            raise RetryLater(
                f"warm transfer for {caller}: the caller's move to the fallback is still "
                f"to be made: {exc}"
            ) from exc

    def _make(self, caller_uuid: str, state: CallState) -> bool:
        store = self.flow.store
        claim = f"warm-move:{state.call_uuid}"
        if not store.remember_all([claim], CLAIM_TTL):
            raise MoveInFlight(f"the caller {caller_uuid} is being moved by another webhook")
        try:
            state.refresh()  # what other webhooks wrote since this one first read
            owed: Any = state.get(MOVE_OWED)
            if not isinstance(owed, dict):
                return False  # made meanwhile
            # Cleared before the request: whatever fails once it may have been sent (the
            # store, the deadline), the move is not made again.
            state.pop(MOVE_OWED, None)
            if owed.get("rescue") and (state.get(JOINED) or state.get(CALLER_LEFT)):
                return False  # the agent reached the room after all
            outcome = str(owed.get("outcome", ""))
            try:
                moved = self.flow.try_transfer(caller_uuid, aleg=self.fallback) is not None
            except BaseException as exc:
                if surely_not_applied(exc):
                    self._owe_again(state, owed)
                else:
                    log.warning(
                        "warm transfer for %s: the move to the fallback may have been "
                        "applied (%s); it is not made again, which would run the fallback "
                        "twice",
                        caller_uuid,
                        type(exc).__name__,
                    )
                    if not owed.get("rescue"):
                        self.tell(caller_uuid, outcome)  # decided; the move unconfirmed
                raise
            if not owed.get("rescue"):
                self.tell(caller_uuid, outcome)
            elif moved:
                state.refresh()
                if not state.get(JOINED):
                    log.info("warm transfer for %s: the agent left before joining", caller_uuid)
                    state[OUTCOME] = outcome
                    self.tell(caller_uuid, outcome)
            return moved
        finally:
            # A store that cannot forget (or fails to) leaves the claim to lapse.
            with contextlib.suppress(NotImplementedError, StateError):
                store.forget_all([claim])

    @staticmethod
    def _owe_again(state: CallState, owed: dict[str, Any]) -> None:
        """Owe a move that surely was not applied again, unless start() began another
        attempt meanwhile (its own hold and debt supersede it)."""
        state.refresh()
        if state.get(ATTEMPT) == owed.get("attempt") and state.get(MOVE_OWED) is None:
            state[MOVE_OWED] = owed
