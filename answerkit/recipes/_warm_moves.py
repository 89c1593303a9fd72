"""A warm transfer's move of the caller to the fallback, owed until it is done.

The move is a REST call made from inside a webhook, and it can fail (the API refuses, or
the webhook runs out of time) or still be in flight when another webhook of the same
transfer arrives. So the record says a move is owed (``MOVE_OWED``) before it is made and
forgets it only once it is done; any later status callback of the transfer, or Vobiz's
retry of the one that failed, completes it (:meth:`FallbackMove.settle`). A ticket
(``MOVING``) keeps two webhooks from moving the caller at once: the second is asked to
come back later (:class:`MoveInFlight`, a RetryLater in a status callback).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from answerkit.errors import RetryLater, VobizError
from answerkit.recipes._warm_state import JOINED, MOVE_OWED, MOVING, MOVING_AT, OUTCOME
from answerkit.request import CallRequest
from answerkit.state import CallState

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = logging.getLogger("answerkit")

#: Seconds after which a move still marked in flight is taken as lost (its worker was
#: killed mid-call): the next webhook makes it again.
MOVE_STALE = 30.0


class MoveInFlight(Exception):
    """Another webhook of the transfer is moving the caller right now."""


class FallbackMove:
    """Moves one recipe's callers to its fallback route, at least once, never twice at once.

    ``tell(caller_uuid, outcome)`` is told once a move is done.
    """

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
        """Owe the caller a move for ``outcome`` and make it: whether they were moved
        (False: they had gone). ``rescue``: an accepted transfer whose agent never reached
        the room; ``outcome`` is recorded once the caller is moved, unless the agent's room
        event came meanwhile. Raises MoveInFlight, or the REST error or handler deadline,
        with the move still owed."""
        state = self.state_of(caller_uuid)
        state[MOVE_OWED] = {"outcome": outcome, "rescue": rescue}
        return self._make(caller_uuid, state)

    def settle(self, caller_uuid: str) -> None:
        """Make the move an earlier webhook owes, if any (raises as :meth:`owe`)."""
        state = self.state_of(caller_uuid)
        if state.get(MOVE_OWED):
            self._make(caller_uuid, state)

    def status_callback(self, call: CallRequest, body: Callable[[CallRequest], None]) -> None:
        """Run a status callback of the transfer (``?xfer=`` names the caller): first the
        move an earlier webhook still owes the caller, then ``body``. A move that fails,
        or that another webhook is making, has Vobiz send the callback again (RetryLater,
        spec §2.12), which makes the move then."""
        caller = call.query.get("xfer") or ""
        try:
            if caller:
                self.settle(caller)
            body(call)
        except (VobizError, MoveInFlight) as exc:
            raise RetryLater(
                f"warm transfer for {caller}: the caller's move to the fallback is still "
                f"to be made: {exc}"
            ) from exc

    def _make(self, caller_uuid: str, state: CallState) -> bool:
        if state.incr(MOVING) != 1:
            started = state.get(MOVING_AT)
            if not isinstance(started, (int, float)) or time.time() - started < MOVE_STALE:
                raise MoveInFlight(f"the caller {caller_uuid} is being moved by another webhook")
            log.warning("warm transfer for %s: a lost move is made again", caller_uuid)
        state[MOVING_AT] = time.time()
        owed: Any = state.get(MOVE_OWED) or {}
        try:
            moved = self.flow.try_transfer(caller_uuid, aleg=self.fallback) is not None
        except BaseException:
            state.pop(MOVING, None)  # still owed: a retry or a later event makes it
            raise
        state.pop(MOVE_OWED, None)
        state.pop(MOVING, None)
        outcome = str(owed.get("outcome", ""))
        if not owed.get("rescue"):
            self.tell(caller_uuid, outcome)
        elif moved and not state.get(JOINED):
            # Only once the caller was moved (not when they had gone, nor when a room event
            # of the agent came in meanwhile): the record then says why they are there.
            log.info("warm transfer for %s: the agent left before joining", caller_uuid)
            state[OUTCOME] = outcome
            self.tell(caller_uuid, outcome)
        return moved
