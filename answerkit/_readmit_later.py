"""Signatures forgotten after the webhook that asked for it, from a background thread.

A status callback answered 503 must have its signature forgotten, or the retry Vobiz sends
is refused as a replay of itself and the callback (a Hangup) is lost. Forgetting takes the
state store, and the 503 is often the store's own failure: asked again inside the webhook,
a store that stalled stalls again (up to its busy timeout, about 2 s more), and the 503
reaches Vobiz after the 3 s it waits. So once the store has failed, the webhook answers at
once and this thread forgets the signature when the store answers again, trying for
RETRY_FOR seconds; Vobiz's retries come with backoff, and one that arrives first is
refused (403) and sent again.

One daemon thread per process, started on first use (again in a forked child); each job
keeps its own backoff.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Seconds the background keeps trying to forget one signature.
RETRY_FOR = 60.0

#: Pauses between tries (the last repeats).
PAUSES = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass
class Job:
    """``forget()`` until it returns (True: forgotten; False: its retries are used up) or
    RETRY_FOR passes; ``told(outcome)`` hears which, or the last exception."""

    forget: Callable[[], bool]
    told: Callable[[bool | Exception], None]
    give_up_at: float
    next_try: float = 0.0
    tries: int = 0


class LateForgetting:
    """The process's signatures still to forget, and its thread. Each job is tried in its
    turn, on a backoff of its own: one store that stays down holds up no other flow's."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pid = -1
        self._jobs: list[Job] = []

    def add(self, forget: Callable[[], bool], told: Callable[[bool | Exception], None]) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked child: no thread yet
                self._pid = os.getpid()
                self._jobs = []
                threading.Thread(
                    target=self._run, name="answerkit-forget-signatures", daemon=True
                ).start()
            self._jobs.append(Job(forget, told, time.monotonic() + RETRY_FOR))
            self._cond.notify()

    @property
    def pending(self) -> int:
        """Jobs not yet done (for tests and the curious)."""
        with self._cond:
            return len(self._jobs)

    def _run(self) -> None:
        pid = os.getpid()
        while True:
            with self._cond:
                if self._pid != pid:
                    return  # a thread inherited through fork: the child started its own
                now = time.monotonic()
                due = [job for job in self._jobs if job.next_try <= now]
                if not due:
                    wake = min((job.next_try for job in self._jobs), default=now + 60.0)
                    self._cond.wait(wake - now)
                    continue
            for job in due:
                outcome = _try(job)
                if outcome is None:
                    continue  # failed, with time left: tried again after its pause
                with self._cond:
                    self._jobs.remove(job)
                # A log handler that raises must not end the thread.
                with contextlib.suppress(Exception):
                    job.told(outcome)


def _try(job: Job) -> bool | Exception | None:
    """One try: the outcome, or None to try again later."""
    try:
        return job.forget()
    except Exception as exc:  # the store's, of any kind: again while there is time
        now = time.monotonic()
        if now >= job.give_up_at:
            return exc
        job.next_try = now + PAUSES[min(job.tries, len(PAUSES) - 1)]
        job.tries += 1
        return None


late_forgetting = LateForgetting()
