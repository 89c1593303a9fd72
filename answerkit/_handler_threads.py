"""Daemon threads for handlers that run under a deadline away from the main thread.

Not :class:`concurrent.futures.ThreadPoolExecutor`: Python joins its threads at interpreter
exit, so one handler stuck for good (a network call without a timeout) would keep the
process from ever exiting, long after its webhook was answered with the fallback. A handler
past its deadline is abandoned here, and its daemon thread ends with the process.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

_T = TypeVar("_T")

_Work = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...]]


class HandlerThreads:
    """Up to ``max_threads`` daemon threads, started as work arrives and kept while idle.

    Work beyond ``max_threads`` busy threads waits in the queue (its deadline still runs).
    Safe across fork: a child process starts its own threads on first use, with a fresh
    lock even if a thread of the parent held it at the fork.
    """

    def __init__(self, max_threads: int, name: str = "answerkit-handler") -> None:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, got {max_threads}")
        self.max_threads = max_threads
        self.name = name
        self._reset()
        _every.add(self)

    def _reset(self) -> None:
        """A state of no threads, for a new pool and for a forked child."""
        self._lock = threading.Lock()
        self._work: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)  # one release per thread waiting for work
        self._started = 0
        # Work given up by its caller that still holds a thread, and when the last of it
        # counts as stuck (time.monotonic()): see stuck_since.
        self._held = 0
        self._stuck_at = 0.0

    def hold(self, future: Future[Any], grace: float) -> None:
        """Count ``future``'s thread as held by work its caller gave up on, until it ends;
        stuck once ``grace`` more seconds have passed."""
        with self._lock:
            # The time first: a reader that sees the new count sees it too.
            self._stuck_at = max(self._stuck_at, time.monotonic() + grace)
            self._held += 1
        future.add_done_callback(self._release)

    def _release(self, _future: object) -> None:
        with self._lock:
            self._held = max(0, self._held - 1)  # a child reset after the fork counts none

    def stuck_since(self) -> float | None:
        """While every thread is held by given-up work: when the last of it counts as
        stuck (time.monotonic(); maybe still ahead). None while a thread is free."""
        with self._lock:
            return self._stuck_at if self._held >= self.max_threads else None

    def submit(self, fn: Callable[..., _T], /, *args: Any) -> Future[_T]:
        """Run ``fn(*args)`` on one of the threads; its outcome arrives in the future."""
        future: Future[_T] = Future()
        with self._lock:
            self._work.put((future, fn, args))
            start = not self._idle.acquire(blocking=False) and self._started < self.max_threads
            if start:
                self._started += 1
                number, work, idle = self._started, self._work, self._idle
        if start:  # outside the lock: starting a thread waits for it to run
            threading.Thread(
                target=self._serve, args=(work, idle), name=f"{self.name}_{number}", daemon=True
            ).start()
        return future

    @staticmethod
    def _serve(work: queue.SimpleQueue[_Work], idle: threading.Semaphore) -> None:
        while True:
            future, fn, args = work.get()
            if not future.set_running_or_notify_cancel():  # cancelled while queued
                idle.release()
            else:
                try:
                    result = fn(*args)
                except BaseException as exc:  # handed to the waiting caller, as an executor does
                    # Idle before the caller hears: its next submit finds this thread free
                    # rather than starting another.
                    idle.release()
                    future.set_exception(exc)
                else:
                    idle.release()
                    future.set_result(result)
                    del result  # the handler's Response: the caller holds it if it wants it
            # Drop the finished work's references before waiting: an idle thread must not
            # keep a request's objects alive.
            del future, fn, args


_every: weakref.WeakSet[HandlerThreads] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The parent's threads do not exist here, and a lock one of them held is held forever.
    for pool in list(_every):
        pool._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
