"""The expiry of a call's state after its Hangup, run on a thread of its own and waited
for only as long as the status callback's deadline leaves.

A status callback must be answered within 3 s (spec §2.12). The expiry comes after the
handler, and a store that stalls there (a Redis paused, a SQLite file locked) held the
answer past that, so Vobiz sent the Hangup again, refused as a replay. It cannot be cut
short where it runs: the deadline's SIGALRM is put off inside a Redis command (a reply
left unread would desynchronise the pooled connection), and the handler threads belong to
the handlers. So each expiry runs on a short-lived thread of its own, and the webhook waits
for it within what is left of the deadline: one that fails in time still gets its 503 (the
retry finds the state and the store back), and one still running then finishes on its
thread while the webhook answers 200 (the handler did its work; a 503 would run it again,
on a state the late expiry may have cleared).

A thread per expiry, not one shared: a store call that never returns holds up only its own
call, and the thread's SQLite connection closes with it (none lingers to cross a fork).
Expiries still running after their webhook stopped waiting are counted: past MAX_RUNNING of
them (a store that hangs every call) an expiry is not tried, and the state lives until its
TTL. Those a webhook still waits for are not counted: a burst of Hangups on a healthy store
has as many as there are Hangups under way. At exit, running ones are waited for a moment.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

log = logging.getLogger("answerkit")

#: Expiries still running after their webhooks stopped waiting, at most, before another is
#: not tried (each holds a thread).
MAX_RUNNING = 16

#: Seconds the process waits at exit for expiries still running.
DRAIN_AT_EXIT = 2.0


class Expiries:
    """The process's expiry threads (every flow's dispatcher shares them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[threading.Thread] = set()
        self._abandoned: set[Future[None]] = set()  # no webhook waits for them any more
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_parent)
        atexit.register(self._drain)

    def _forget_parent(self) -> None:
        # The parent's threads are not in the child; a lock held by one of them at the
        # fork would be held in the child for ever.
        self._lock = threading.Lock()
        self._running = set()
        self._abandoned = set()

    def submit(self, expire: Callable[[], None]) -> Future[None] | None:
        """Run ``expire()`` on a thread of its own; its future tells how it ended. None
        when MAX_RUNNING abandoned ones are still running: it is not tried."""
        future: Future[None] = Future()
        with self._lock:
            if len(self._abandoned) >= MAX_RUNNING:
                return None
            self._running = {thread for thread in self._running if thread.is_alive()}
            thread = threading.Thread(
                target=_run, args=(expire, future), name="answerkit-expiry", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:  # the interpreter is shutting down: no new threads
                _run(expire, future)
                return future
            self._running.add(thread)
        return future

    def abandon(self, future: Future[None]) -> None:
        """The webhook stopped waiting for ``future`` (its deadline passed): counted
        towards MAX_RUNNING until it ends."""
        with self._lock:
            self._abandoned.add(future)
        future.add_done_callback(self._ended)

    def _ended(self, future: Future[None]) -> None:
        with self._lock:
            self._abandoned.discard(future)

    def _drain(self) -> None:
        """At exit: a moment for the expiries still running (a recycled worker's last
        Hangups), then the ones left are said, since their calls' state lives on."""
        with self._lock:
            running = list(self._running)
        until = time.monotonic() + DRAIN_AT_EXIT
        for thread in running:
            thread.join(max(0.0, until - time.monotonic()))
        left = sum(thread.is_alive() for thread in running)
        if left:
            log.warning(
                "%d expiries of call state were still running at exit: those calls' state "
                "lives until its TTL",
                left,
            )


def _run(expire: Callable[[], None], future: Future[None]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        expire()
    except BaseException as exc:  # told to whoever waits, or logged (see dispatch)
        future.set_exception(exc)
    else:
        future.set_result(None)


#: The process's expiries (every flow's dispatcher shares them).
expiries = Expiries()
