"""Signatures forgotten after the webhook that asked for it, from a background thread.

A status callback answered 503 must have its signature forgotten, or the retry Vobiz sends
is refused as a replay of itself and the callback (a Hangup) is lost. Forgetting takes the
state store, and the 503 is often the store's own failure: asked again inside the webhook,
a store that stalled stalls again (up to its busy timeout, about 2 s more), and the 503
reaches Vobiz after the 3 s it waits. So once a webhook has run long, or its store has
failed, it answers at once and a thread forgets the signature when the store answers again,
trying for RETRY_FOR seconds; Vobiz's retries come with backoff, and one that arrives first
is refused (403) and sent again.

Only a signature whose record this delivery wrote is forgotten so (the dispatcher decides):
if the record may never have been written, a retry may be taken first and record it anew,
and a late forget would then erase that record and let a replay through.

One thread per owner (a flow's dispatcher), started on first use, again in a forked child
and again if it ended: a store that stays down, or a forget that never returns, holds up
only its own flow's jobs. Each job keeps its own backoff.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

#: Seconds the background keeps trying to forget one signature.
RETRY_FOR = 60.0

#: Pauses between tries (the last repeats).
PAUSES = (0.25, 0.5, 1.0, 2.0, 4.0)


class NoRetry(Exception):
    """Raised by a job's forget when trying again could do harm (a delete that may have
    taken effect: tried again after a retry was taken, it would erase that retry's record);
    the job ends with it (the store's error is its ``__cause__``)."""


@dataclass
class Job:
    """``forget()`` until it returns (True: forgotten; False: its retries are used up) or
    RETRY_FOR passes; ``told(outcome)`` hears which, or the last exception."""

    forget: Callable[[], bool]
    told: Callable[[bool | BaseException], None]
    give_up_at: float
    next_try: float = 0.0
    tries: int = 0


@dataclass
class _Queue:
    """One owner's jobs and the thread that works them."""

    jobs: list[Job] = field(default_factory=list)
    thread: threading.Thread | None = None


class LateForgetting:
    """The process's signatures still to forget, one queue and thread per owner."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pid = os.getpid()
        self._queues: dict[int, _Queue] = {}
        if hasattr(os, "register_at_fork"):
            this = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _forget_parent(this))

    def forget_parent(self) -> None:
        """In a forked child: a fresh lock (the parent's may have been held by a thread the
        child does not have) and no queues (their threads stayed in the parent)."""
        self._cond = threading.Condition()
        self._pid = os.getpid()
        self._queues = {}

    def add(
        self,
        owner: object,
        forget: Callable[[], bool],
        told: Callable[[bool | BaseException], None],
        for_seconds: float = RETRY_FOR,
    ) -> None:
        """Try ``forget`` for at most ``for_seconds`` (and RETRY_FOR) from now."""
        with self._cond:
            if self._pid != os.getpid():  # a forked child: the parent's threads are not here
                self._pid = os.getpid()
                self._queues = {}
            queue = self._queues.setdefault(id(owner), _Queue())
            give_up = time.monotonic() + min(for_seconds, RETRY_FOR)
            queue.jobs.append(Job(forget, told, give_up))
            if queue.thread is None or not queue.thread.is_alive():
                queue.thread = threading.Thread(
                    target=self._run,
                    args=(id(owner), queue),
                    name="answerkit-forget-signatures",
                    daemon=True,
                )
                queue.thread.start()
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Jobs not yet done, of every owner (for tests and the curious)."""
        with self._cond:
            return sum(len(q.jobs) for q in self._queues.values())

    def _run(self, key: int, queue: _Queue) -> None:
        while True:
            with self._cond:
                if self._queues.get(key) is not queue:
                    return  # inherited through fork, or replaced: another thread has it
                if not queue.jobs:
                    del self._queues[key]  # the next add() starts afresh
                    return
                now = time.monotonic()
                due = [job for job in queue.jobs if job.next_try <= now]
                if not due:
                    self._cond.wait(min(job.next_try for job in queue.jobs) - now)
                    continue
            for job in due:
                outcome = _try(job)
                if outcome is None:
                    continue  # failed, with time left: tried again after its pause
                with self._cond:
                    queue.jobs.remove(job)
                # A log handler that raises must not end the thread.
                with contextlib.suppress(BaseException):
                    job.told(outcome)


def _try(job: Job) -> bool | BaseException | None:
    """One try: the outcome, or None to try again later."""
    try:
        return job.forget()
    except NoRetry as stop:
        return stop
    # Any failure, BaseException too (a store on an async client raises CancelledError):
    # one that ended the thread would leave every later job of its owner unrun.
    except BaseException as exc:
        now = time.monotonic()
        if now >= job.give_up_at:
            return exc
        job.next_try = now + PAUSES[min(job.tries, len(PAUSES) - 1)]
        job.tries += 1
        return None


def _forget_parent(ref: weakref.ref[LateForgetting]) -> None:
    forgetting = ref()
    if forgetting is not None:
        forgetting.forget_parent()


late_forgetting = LateForgetting()
