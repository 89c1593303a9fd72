"""The transfers and hang-ups waiting for a simulated call's next step.

A REST request on a call (the test's :meth:`CallSimulator.transfer` or
:meth:`CallSimulator.hangup`, or the flow's own through LocalVobiz, from its server
thread) is queued on the call from any thread (:mod:`~answerkit.testing.sim_call_table`
finds the call), and only the call's own step takes it. Apart from the call because
the queue has rules of its own: the order requests are taken in, the transfers a Dial
takes for its B-leg, and those dropped when the leg they were meant for has gone. A
Hang-up request for a Dial's B-leg before it is bridged waits here too, for the Dial.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from answerkit.testing.sim_signals import Pending
from answerkit.testing.sim_transcript import Cause

__all__ = ["PendingRequests"]


class PendingRequests:
    """One call's queued :class:`~answerkit.testing.sim_signals.Pending` requests (any
    thread may queue or take; the call's own step acts on them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Pending] = []
        # A Hang-up request for that B-leg before it is bridged, for the Dial to take.
        self._bleg_hangup: Cause | None = None

    def __bool__(self) -> bool:
        return bool(self._pending)

    def __iter__(self) -> Iterator[Pending]:
        return iter(self._pending)

    def put(self, pending: Pending) -> None:
        """Queue ``pending`` for the call's next step."""
        with self._lock:
            self._pending.append(pending)

    def take_next(self) -> Pending | None:
        """The request the call's next step acts on, taken off the queue (None if none)."""
        with self._lock:
            if not self._pending:
                return None
            # A hang-up beats everything; with legs=both the B-leg moves first, or the
            # A-leg's leaving would drop it.
            for kind in ("hangup", "transfer-bleg"):
                for i, pending in enumerate(self._pending):
                    if pending.kind == kind:
                        return self._pending.pop(i)
            return self._pending.pop(0)

    def take(self, kind: str) -> Pending | None:
        """The first queued request of ``kind``, taken off the queue (None if none)."""
        with self._lock:
            for i, pending in enumerate(self._pending):
                if pending.kind == kind:
                    return self._pending.pop(i)
        return None

    def take_bleg_transfer(self, bleg: str) -> Pending | None:
        """The first queued transfer of the B-leg ``bleg``, taken off the queue (None if
        none): one asked for another leg is never taken for this one."""
        with self._lock:
            for i, pending in enumerate(self._pending):
                if pending.kind == "transfer-bleg" and pending.bleg == bleg:
                    return self._pending.pop(i)
        return None

    def drop_bleg_transfers(self, bleg: str) -> list[Pending]:
        """Take off the queue every transfer asked for the B-leg ``bleg`` (its Dial ended
        before acting on them), so none moves a later Dial's B-leg."""
        with self._lock:
            dropped: list[Pending] = []
            kept: list[Pending] = []
            for pending in self._pending:
                meant = pending.kind == "transfer-bleg" and pending.bleg == bleg
                (dropped if meant else kept).append(pending)
            self._pending = kept
        return dropped

    def drop_transfers(self) -> list[Pending]:
        """Take every queued transfer off the queue, of either leg (a hang-up stays): the
        caller they would move has gone."""
        with self._lock:
            dropped = [p for p in self._pending if p.kind in ("transfer", "transfer-bleg")]
            self._pending = [
                p for p in self._pending if p.kind not in ("transfer", "transfer-bleg")
            ]
        return dropped

    def clear(self) -> None:
        """Forget every queued request (the call has ended)."""
        self._pending.clear()

    def hang_up_bleg(self, cause: Cause) -> None:
        """Keep the Hang-up API's end of the Dial's unbridged B-leg, for the Dial to take."""
        with self._lock:
            self._bleg_hangup = cause

    def take_bleg_hangup(self) -> Cause | None:
        """How the Hang-up API ended the unbridged B-leg, once (None: it did not)."""
        with self._lock:
            cause, self._bleg_hangup = self._bleg_hangup, None
        return cause
