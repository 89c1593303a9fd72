"""A warm transfer's move of the caller to the fallback: owed until done, never twice.

The move is a REST call made from inside a webhook. It can fail, leave it unknown whether
Vobiz applied it, or still be in flight when another webhook of the same transfer
arrives, so:

* The caller is moved to the recipe's own landing route (``/{name}/landing?move=ID``),
  which records that this move arrived (``LANDED``) and redirects to the fallback. So a
  move whose outcome was unknown (a timeout, a 5xx, the webhook's deadline mid-request)
  can be told apart later: it arrived (Vobiz fetches a transfer URL at once), or the
  caller left the hold room, or it did not, and is made again. Without this, such a move
  was either repeated blindly (the fallback ran twice) or given up (the caller stayed on
  hold for good).
* The record says a move is owed (``MOVE_OWED``) before it is made. A move that failed
  stays owed, and the next status callback of the transfer, or Vobiz's retry of the one
  that failed, settles it (:meth:`FallbackMove.status_callback`).
* A claim in the store (first writer wins, with an expiry, as a webhook's replay record)
  keeps two webhooks from making the move at once; the second is asked to come back
  (:class:`MoveInFlight`, a RetryLater in a status callback). A worker killed mid-move
  leaves a claim that lapses after :data:`CLAIM_TTL`.
* A rescue (an accepted transfer whose agent hung up before any room event came) is
  dropped when the record, read afresh, shows the agent reached the room or the caller
  left it: a room event delivered late must not send a connected caller away.
* The record of each attempt is kept under keys of its own (``_warm_state.at``): a late
  callback of an earlier attempt writes into that attempt's keys, never into the new
  one's (an attempt an earlier version began keeps its bare keys,
  ``_warm_state.numbered``). The attempt's decision (``DECIDED``,
  ``_warm_ticket.take_decision``) or rescue (``RESCUED``) says by itself what it owes,
  and ``MOVE_SETTLED`` marks the attempt's one move as made (or no longer needed): so a
  debt that never reached ``MOVE_OWED`` (the store failed between the two writes) is
  found again by the next callback (:meth:`FallbackMove.owed`). A rescue's outcome is
  written with the move's settlement, not after the move, where a store failing lost it
  for good.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from answerkit._deadline import deadline_grace
from answerkit._log import QuietLog
from answerkit.dispatch import LateTransferRefused
from answerkit.elements import Redirect, Response
from answerkit.errors import (
    APIError,
    ArgumentError,
    ConfigurationError,
    ConnectError,
    RetryLater,
    ServerError,
    StateError,
    VobizError,
)
from answerkit.recipes._warm_state import (
    ATTEMPT,
    CALLER_LEFT,
    JOINED,
    LANDED,
    MOVE_OWED,
    OUTCOME,
    RESCUED,
    at,
    key_of,
    latest_attempt,
    numbered,
)
from answerkit.recipes._warm_ticket import read_decision
from answerkit.request import CallRequest, Event
from answerkit.state import CallState
from answerkit.transfer import recipe_move

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = QuietLog("answerkit")

#: Seconds a claim on a move lasts: longer than the REST client may take to make it (its
#: retries within max_retry_time, 30 s, plus a 10 s timeout), so that only a killed
#: worker's claim ever lapses.
CLAIM_TTL = 45.0

#: Seconds a move whose outcome was unknown is given to arrive before it is made again
#: (Vobiz fetches a transfer URL as soon as it applies the transfer). A callback that comes
#: sooner waits out the rest, within a status callback's 2.5 s deadline.
SENT_GRACE = 2.0
ARRIVAL_POLL = 0.1

#: Seconds a webhook past its deadline leaves its owed move before a thread makes it:
#: time for the webhook to answer Vobiz first.
SETTLE_AFTER = 0.5


#: Seconds a process leaving (a worker at max_requests, a reload) waits at most for the
#: moves settle_later still owes: nothing else may make them (the room may send no callback
#: again), and a daemon thread dies with the process; bounded, so an unreachable API
#: cannot hold the exit for the client's whole retry time.
EXIT_WAIT = 10.0

#: Per attempt (``_warm_state.at``): the attempt's move was sent (the move's id), or found
#: needless (True); falsy while it is owed. An attempt makes one move at most, so a debt
#: recorded again after it (a repeated callback) is dropped.
MOVE_SETTLED = "warm.move_settled"

#: The outcomes that send the caller to the fallback.
MOVING: frozenset[str] = frozenset({"declined", "agent-unavailable", "agent-unreachable"})


_SETTLING: set[threading.Thread] = set()
_SETTLING_LOCK = threading.Lock()


@atexit.register
def _finish_owed_moves() -> None:
    until = time.monotonic() + EXIT_WAIT
    with _SETTLING_LOCK:
        pending = list(_SETTLING)
    for thread in pending:
        thread.join(max(0.0, until - time.monotonic()))


class MoveInFlight(Exception):
    """Another webhook of the transfer is moving the caller right now."""


def surely_not_applied(exc: BaseException) -> bool:
    """Whether a failed transfer is known not to have been applied: nothing was sent (no
    connection; refused locally, past the handler's deadline or for its arguments or
    settings), or Vobiz refused it. A 5xx,
    a timeout or a deadline mid-request may have been applied."""
    # ArgumentError and ConfigurationError are raised before anything is sent (a malformed
    # CallUUID, no REST credentials).
    if isinstance(exc, (ConnectError, LateTransferRefused, ArgumentError, ConfigurationError)):
        return True
    return isinstance(exc, APIError) and not isinstance(exc, ServerError)


class FallbackMove:
    """Moves one recipe's callers to its fallback route, through its landing route: once,
    and again only when the first surely did not arrive. ``tell(caller_uuid, attempt,
    outcome)`` is told once a move is done."""

    def __init__(
        self,
        flow: CallFlow,
        fallback: str,
        landing: str,
        state_of: Callable[[str], CallState],
        tell: Callable[[str, int | None, str], None],
    ) -> None:
        self.flow = flow
        self.fallback = fallback
        self.landing_route = landing
        self.state_of = state_of
        self.tell = tell

    @staticmethod
    def record(
        state: CallState, outcome: str, attempt: int | None, *, rescue: bool = False
    ) -> None:
        """Owe the caller (whose record is ``state``) a move for ``outcome``, ``attempt``'s
        (the decision's own, not the latest: start() may have begun another since): made by
        :meth:`make_owed`, or by the transfer's next status callback (a webhook past its
        deadline makes no REST call). ``rescue``: ``outcome`` is recorded once the caller is
        moved."""
        state[MOVE_OWED] = {"outcome": outcome, "rescue": rescue, "attempt": attempt}

    @staticmethod
    def owed(state: CallState) -> dict[str, Any] | None:
        """The move the caller is owed for the latest attempt, or None: the one recorded
        (:meth:`record`), or else the one the attempt's decision or rescue calls for while
        no move of the attempt was made. The decision is written before the debt, so a
        store that failed in between (or a debt another attempt's late callback wrote over)
        leaves the decision to say what is owed."""
        attempt = latest_attempt(state)
        if state.get(at(MOVE_SETTLED, attempt)):
            return None
        held: Any = state.get(MOVE_OWED)
        if isinstance(held, dict) and held.get("attempt") == attempt:
            return dict(held)
        if not isinstance(attempt, int) or not numbered(state, attempt):
            # An earlier version's record: its decision was written with its debt, and it
            # kept no mark of a move made, so only the debt itself says one is owed.
            return None
        rescue: Any = state.get(at(RESCUED, attempt))
        if isinstance(rescue, dict):
            return {"outcome": str(rescue.get("outcome")), "rescue": True, "attempt": attempt}
        decision, _ = read_decision(state, attempt)
        if decision is not None and decision.get("outcome") in MOVING:
            return {"outcome": str(decision["outcome"]), "rescue": False, "attempt": attempt}
        return None

    def make_owed(self, caller_uuid: str) -> bool:
        """Make the move recorded as owed (:meth:`record`): whether the caller was moved.
        Raises MoveInFlight, or the REST error or deadline (see the module notes)."""
        return self._make(caller_uuid, self.state_of(caller_uuid))

    def settle_later(self, caller_uuid: str, after: float = SETTLE_AFTER) -> None:
        """Make the move owed to ``caller_uuid`` from a thread of its own, ``after``
        seconds from now: for a webhook past its deadline, which answers first and makes
        no REST call itself. The claim keeps it from running beside a status callback
        settling the same debt; a move already made meanwhile is not made again."""

        def settle() -> None:
            try:
                time.sleep(after)
                state = self.state_of(caller_uuid)
                if state.get(MOVE_OWED) or self.owed(state):
                    self._make(caller_uuid, state)
            except MoveInFlight:
                pass  # another webhook is making it
            except Exception:
                log.exception("warm transfer for %s: the owed move failed", caller_uuid)
            finally:
                with _SETTLING_LOCK:
                    _SETTLING.discard(threading.current_thread())

        thread = threading.Thread(target=settle, name="answerkit-warm-move", daemon=True)
        with _SETTLING_LOCK:
            _SETTLING.add(thread)
        thread.start()

    def landing(self, call: CallRequest) -> Response | None:
        """The landing route: the move arrived; the fallback answers it. Its handler runs
        on this very request (Event=Transfer, as for a transfer to it), with the query
        of its own route: none of the landing's parameters."""
        caller, move = call.query.get("xfer"), call.query.get("move")
        if caller and move:
            self.state_of(caller)[LANDED] = move
        event = str(call.event.value if isinstance(call.event, Event) else call.event)
        handler = self.flow.get_route(self.fallback).handler_for(event)
        if handler is None:  # a fallback without a handler for this event: Vobiz asks it
            return Response(Redirect(self.flow.url_for(self.fallback)))
        pairs = [(k, v) for k, values in call.params_multi.items() for v in values]
        own = CallRequest.from_params(pairs, method=call.method, path=call.path, query={})
        own._attach_state(call.state)
        return handler(own)

    def status_callback(self, call: CallRequest, body: Callable[[CallRequest], None]) -> None:
        """Run a status callback of the transfer (``?xfer=`` names the caller): ``body``,
        then the move an earlier webhook still owes the caller (after, so that what the
        body recorded, such as the agent reaching the room, is seen). A move that failed,
        or that another webhook is making, has Vobiz send the callback again (RetryLater,
        spec §2.12)."""
        caller = call.query.get("xfer") or ""
        try:
            body(call)
            if caller:
                state = self.state_of(caller)
                if state.get(MOVE_OWED) or self.owed(state):
                    self._make(caller, state)
        except (VobizError, MoveInFlight) as exc:
            raise RetryLater(
                f"warm transfer for {caller}: the caller's move to the fallback is still "
                f"to be settled: {exc}"
            ) from exc

    def _make(self, caller_uuid: str, state: CallState) -> bool:
        store = self.flow.store
        claim = f"warm-move:{state.call_uuid}"
        claimed = False
        try:
            # Taken and known in one piece: a deadline between the two would leave the
            # claim for CLAIM_TTL, and every retry told another webhook is moving them.
            with deadline_grace():
                claimed = store.remember_all([claim], CLAIM_TTL)
            if not claimed:
                raise MoveInFlight(f"the caller {caller_uuid} is being moved by another webhook")
            state.refresh()  # what other webhooks wrote since this one first read
            held: Any = state.get(MOVE_OWED)
            if isinstance(held, dict) and held.get("attempt") != latest_attempt(state):
                state.pop(MOVE_OWED, None)  # start() began another attempt: superseded
            owed = self.owed(state)
            if owed is None:
                if isinstance(state.get(MOVE_OWED), dict):
                    # Recorded again after the attempt's move was made (a repeated callback):
                    # off the record, or every callback would come here for nothing.
                    state.pop(MOVE_OWED, None)
                return False  # made meanwhile, or nothing owed
            attempt = owed.get("attempt")
            outcome = str(owed.get("outcome", ""))
            sent = owed.get("sent")
            if sent is not None:
                # The debt stays on the record while this waits (under the claim, so
                # another callback is asked to come back, not told there is nothing owed).
                found = self._arrival(state, str(sent), owed.get("sent_at"), attempt)
                if found == "superseded":
                    self._clear(state, owed, True)
                    return False
                if found == "arrived":
                    self._clear(state, owed, True, outcome)
                    return self._done(caller_uuid, state, owed, outcome, moved=True)
            if owed.get("rescue") and (
                state.get(key_of(state, JOINED, attempt))
                or state.get(key_of(state, CALLER_LEFT, attempt))
            ):
                self._clear(state, owed, True)
                return False  # the agent reached the room after all
            # Cleared just before the request: whatever fails after it may have been sent
            # (the store, the deadline), the move is owed again only as "sent, unconfirmed".
            # Inside the try, so that a deadline right after the clear owes it again too.
            move = uuid.uuid4().hex[:12]
            params = {"xfer": caller_uuid, "attempt": owed.get("attempt"), "move": move}
            try:
                self._clear(state, owed, move, outcome)
                with recipe_move():  # the recipe's own landing route, a step no one else sends to
                    moved = (
                        self.flow.try_transfer(caller_uuid, aleg=self.landing_route, params=params)
                        is not None
                    )
            except BaseException as exc:
                with deadline_grace():  # the debt recorded whole, past a deadline too
                    if surely_not_applied(exc):
                        self._owe_again(state, owed)
                    else:
                        # Checked on the next callback of the transfer: it arrived, or the
                        # caller left the room, or it is made again.
                        self._owe_again(state, {**owed, "sent": move, "sent_at": time.time()})
                raise
            return self._done(caller_uuid, state, owed, outcome, moved=moved)
        finally:
            # A store that cannot forget (or fails to) leaves the claim to lapse.
            if claimed:
                with contextlib.suppress(NotImplementedError, StateError):
                    store.forget_all([claim])

    def _done(
        self, caller_uuid: str, state: CallState, owed: dict[str, Any], outcome: str, moved: bool
    ) -> bool:
        attempt = owed.get("attempt")
        attempt = attempt if isinstance(attempt, int) else None
        if not owed.get("rescue"):
            self.tell(caller_uuid, attempt, outcome)
            return moved
        state.refresh()
        if moved:
            # The outcome was written with the move's settlement (_clear): nothing more to
            # write here, where a store failing would have lost it.
            if not state.get(key_of(state, JOINED, attempt)):
                log.info("warm transfer for %s: the agent left before joining", caller_uuid)
                self.tell(caller_uuid, attempt, outcome)
        elif state.get(key_of(state, OUTCOME, attempt)) == outcome:
            # The caller had gone: nobody was moved, the transfer stays accepted.
            state[key_of(state, OUTCOME, attempt)] = "accepted"
        return moved

    @staticmethod
    def _arrival(state: CallState, sent: str, sent_at: object, attempt: object) -> str:
        """Whether a move whose outcome was unknown ``arrived`` (its landing webhook came,
        or the caller left the hold room), is ``absent``, or was ``superseded`` (start()
        began another attempt), waiting until SENT_GRACE after it was sent, and never
        longer than SENT_GRACE (clocks differ between hosts): Vobiz fetches the URL as
        soon as it applies a transfer, and a move made again before a late arrival would
        run the fallback twice."""
        since = sent_at if isinstance(sent_at, (int, float)) else 0.0
        until = time.time() + min(SENT_GRACE, max(0.0, since + SENT_GRACE - time.time()))
        while True:
            state.refresh()
            if state.get(ATTEMPT) != attempt:
                return "superseded"
            if state.get(LANDED) == sent or state.get(key_of(state, CALLER_LEFT, attempt)):
                return "arrived"
            left = until - time.time()
            if left <= 0:
                return "absent"
            time.sleep(min(ARRIVAL_POLL, left))

    @staticmethod
    def _clear(
        state: CallState, owed: dict[str, Any], settled: str | bool, outcome: str | None = None
    ) -> None:
        """Take ``owed`` off the record (unless a newer attempt's debt replaced it) and mark
        its attempt's move ``settled`` (the id of the move about to be sent, or True), in
        one write: a debt recorded again by a repeated callback is then seen as paid. A
        rescue's ``outcome`` goes into the same write: written after the move, a store
        failing there left the outcome ``accepted`` for good (the move settled, nothing
        owed, nobody to write it again). A move that fails takes it back (_owe_again)."""
        state.refresh()
        attempt = owed.get("attempt")
        items: dict[str, Any] = {at(MOVE_SETTLED, attempt): settled}
        current = state.get(MOVE_OWED)
        if isinstance(current, dict) and current.get("attempt") == attempt:
            items[MOVE_OWED] = None
        if outcome and owed.get("rescue") and not state.get(key_of(state, JOINED, attempt)):
            items[key_of(state, OUTCOME, attempt)] = outcome
        state.update(items)

    @staticmethod
    def _owe_again(state: CallState, owed: dict[str, Any]) -> None:
        """Owe the move again (the move sent surely did not arrive, or may not have), unless
        start() began another attempt meanwhile (its own hold and debt supersede it). Over
        a debt of the same attempt recorded again meanwhile (it says no more than this)."""
        state.refresh()
        attempt = owed.get("attempt")
        if latest_attempt(state) == attempt:
            items: dict[str, Any] = {MOVE_OWED: owed, at(MOVE_SETTLED, attempt): None}
            outcome = key_of(state, OUTCOME, attempt)
            if owed.get("rescue") and state.get(outcome) == owed.get("outcome"):
                # Recorded only once the move is made: until then the transfer stays
                # accepted (the outcome a rescue starts from).
                items[outcome] = "accepted"
            state.update(items)
