"""The expiry of a call's state after its Hangup, run on a thread of its own and waited
for only as long as the status callback's deadline leaves.

A status callback must be answered within 3 s (spec §2.12). The expiry comes after the
handler, and a store that stalls there (a Redis paused, a SQLite file locked) held the
answer past that, so Vobiz sent the Hangup again, refused as a replay. It cannot be cut
short where it runs: the deadline's SIGALRM is put off inside a Redis command (a reply
left unread would desynchronise the pooled connection), and the handler threads belong to
the handlers. So it runs here, one thread per process, and the webhook waits for it within
what is left of the deadline: an expiry that fails in time still gets its 503 (the retry
finds the state and the store back), and one still running then finishes here while the
webhook answers 200 (the handler did its work; a 503 would run it again, on a state the
late expiry may have cleared).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

log = logging.getLogger("answerkit")

_Task = tuple[Callable[[], None], "Future[None]"]


class ExpiryThread:
    """One daemon thread per process working a queue of expiries (made again in a forked
    child, which has the queue but not the thread, and again if it ever ended)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_parent)

    def _forget_parent(self) -> None:
        # A lock held by a parent's thread at the fork would be held in the child for ever.
        self._lock = threading.Lock()
        self._queue = queue.SimpleQueue()
        self._thread = None
        self._pid = os.getpid()

    def submit(self, expire: Callable[[], None]) -> Future[None]:
        """Run ``expire()`` on the thread; its future tells how it ended."""
        future: Future[None] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=_work, args=(self._queue,), name="answerkit-expiry", daemon=True
                )
                self._thread.start()
                self._pid = os.getpid()
            self._queue.put((expire, future))
        return future


def _work(tasks: queue.SimpleQueue[_Task]) -> None:
    while True:
        expire, future = tasks.get()
        if not future.set_running_or_notify_cancel():
            continue
        try:
            expire()
        except BaseException as exc:  # told to whoever waits, or logged (see dispatch)
            future.set_exception(exc)
        else:
            future.set_result(None)


#: The process's expiry thread (every flow's dispatcher shares it).
expiries = ExpiryThread()
