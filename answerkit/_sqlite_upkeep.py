"""Background upkeep of the SQLite state file, off the webhooks' path: WAL checkpoints and
restarts, purging expired rows, and keeping all of it safe across ``fork``.

Used by :class:`answerkit.state_sqlite.SQLiteStore`, whose connections
(answerkit/_sqlite_connections.py) start one :class:`Checkpointer` per process and file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, Protocol, TypeVar

from answerkit._state_store import _PURGE_INTERVAL

_T = TypeVar("_T")


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """True for SQLITE_BUSY (another connection holds the lock); worth retrying."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return code & 0xFF == 5  # SQLITE_BUSY and its extended codes
    return "database is locked" in str(exc)


PURGE_BATCH = 512
"""Expired rows deleted per write transaction: each holds the write lock for well under a
millisecond, so webhooks waiting behind it barely notice."""


def purge_expired(conn: sqlite3.Connection, now: float | None = None) -> int:
    """Delete every row that expired by ``now``, in short batches; returns how many.

    Runs in each process's background thread (see Checkpointer) every _PURGE_INTERVAL
    seconds; a busy database is retried briefly and otherwise left for the next round.
    """
    when = time.time() if now is None else now
    return _purge_table(conn, "nonces", ("key",), when) + _purge_table(
        conn, "calls", ("call_uuid", "key"), when
    )


def _purge_table(
    conn: sqlite3.Connection, table: str, columns: tuple[str, ...], when: float
) -> int:
    # Keyset pagination over the primary key: read a batch of expired keys (a WAL reader
    # takes no write lock), then delete that key range in one short write. One pass reads
    # the table once, in key order.
    cols = ", ".join(columns)
    marks = ", ".join("?" * len(columns))
    # ">=": the first batch starts at the smallest key ("" included). A later batch starts
    # at the previous one's last key, which is gone by then (or was refreshed meanwhile,
    # and so is not expired).
    select = (
        f"SELECT {cols} FROM {table} WHERE ({cols}) >= ({marks}) AND expires_at <= ? "
        f"ORDER BY {cols} LIMIT ?"
    )
    delete = (
        f"DELETE FROM {table} WHERE ({cols}) BETWEEN ({marks}) AND ({marks}) AND expires_at <= ?"
    )
    removed = 0
    after: tuple[Any, ...] = ("",) * len(columns)
    while True:
        keys = conn.execute(select, (*after, when, PURGE_BATCH)).fetchall()
        if not keys:
            return removed
        bounds = (*keys[0], *keys[-1], when)
        removed += _retry_busy(partial(_rowcount, conn, delete, bounds))
        if len(keys) < PURGE_BATCH:
            return removed
        after = tuple(keys[-1])


def _rowcount(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
    return int(conn.execute(sql, params).rowcount)


def _retry_busy(fn: Callable[[], _T], tries: int = 50) -> _T:
    """``fn()`` retried for a while (1 ms apart) when another connection holds the lock."""
    for _ in range(tries - 1):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            time.sleep(0.001)
    return fn()


CHECKPOINT_INTERVAL = 0.5
"""Seconds between the background WAL checkpoints of each process (see Checkpointer)."""

RESTART_INTERVAL = 2.0
"""Seconds between the background checkpoints that also restart the WAL (see below)."""

RESTART_MIN_FRAMES = 256
"""A WAL holding fewer frames than this is not worth a restart's two fsyncs."""

RESTART_WAIT_MS = 200
"""How long a restarting checkpoint waits for the writer and readers of the moment."""

# SQLite's own checkpoint-on-commit stays on as a backstop, at a WAL size the background
# checkpoints keep it from reaching. It must stay out of reach: once the WAL passes it,
# every commit of every worker tries a checkpoint, two fsyncs each (this halved throughput).
AUTOCHECKPOINT_PAGES = 100_000


def file_id(path: str) -> tuple[int, int] | None:
    """The file at ``path`` as (device, inode), or None when there is none: a store whose
    file was deleted or replaced under it must notice, or processes would split between
    the old file and a new one without a word."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Checkpointer:
    """Copies the WAL back into the database file, and purges expired rows, from a
    background thread.

    SQLite does this on commit once the WAL holds 1,000 pages, so one webhook in a few
    hundred waited for the copy and two fsyncs: milliseconds, a busy worker's p99. Here a
    daemon thread of each process runs a PASSIVE checkpoint (it never blocks readers or
    writers, and gives way to a checkpoint already running) every CHECKPOINT_INTERVAL
    seconds, with its own connection; every _PURGE_INTERVAL it also runs
    :func:`purge_expired`.
    """

    live: ClassVar[weakref.WeakSet[Checkpointer]] = weakref.WeakSet()

    def __init__(self, path: str) -> None:
        self.pid = Process.pid
        self.stopped = threading.Event()
        # Held while the thread is inside SQLite, and by os.fork (_pause_for_fork): a child
        # must not inherit SQLite's internal locks in the middle of a checkpoint.
        self.busy = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None
        self._thread = threading.Thread(
            target=self._loop, args=(path,), name="answerkit-sqlite-checkpoint", daemon=True
        )
        Checkpointer.live.add(self)
        self._thread.start()

    def _loop(self, path: str) -> None:
        next_purge = 0.0  # the first round purges what expired while nobody ran
        next_restart = 0.0
        while not self.stopped.wait(CHECKPOINT_INTERVAL):
            with self.busy:
                try:
                    if self._conn is not None and file_id(path) != self._file:
                        self.close_connection()  # the file was deleted or replaced
                    if self._conn is None:
                        if file_id(path) is None:
                            continue  # gone: the store's next use creates it again
                        self._conn = sqlite3.connect(
                            path, timeout=0, isolation_level=None, check_same_thread=False
                        )
                        self._file = file_id(path)
                    conn = self._conn
                    _busy, frames, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames >= RESTART_MIN_FRAMES and time.monotonic() >= next_restart:
                        next_restart = time.monotonic() + RESTART_INTERVAL
                        self._restart(conn)
                    if time.monotonic() >= next_purge:
                        next_purge = time.monotonic() + _PURGE_INTERVAL
                        purge_expired(self._conn)
                except sqlite3.Error:
                    # Busy (another process is checkpointing) or a broken file, which the
                    # webhooks' own statements report: try again next time.
                    continue
        with self.busy:
            self.close_connection()

    @staticmethod
    def _restart(conn: sqlite3.Connection) -> None:
        """Checkpoint and make the next writer start the WAL over from its beginning.

        Under steady writes a passive checkpoint never catches up with the last frame, so
        SQLite never restarts the WAL and it grows until the backstop above makes every
        commit checkpoint. A RESTART checkpoint holds new writers off while it copies the
        few frames the passive one left and waits for the readers of the moment: a pause
        of about a millisecond, once per RESTART_INTERVAL.
        """
        conn.execute(f"PRAGMA busy_timeout = {RESTART_WAIT_MS}")
        try:
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        finally:
            conn.execute("PRAGMA busy_timeout = 0")

    def close_connection(self) -> None:
        """Close the thread's connection (it reopens on its next round); hold ``busy``."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        self.stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


_paused: list[Checkpointer] = []
_inherited: list[Checkpointer] = []
# Held from the before-fork hook to the after-fork one, so two threads forking at once take
# turns (they share _paused); a child gets a fresh one.
_fork_lock = threading.Lock()


class ForkAware(Protocol):
    def close_for_fork(self) -> None:
        """Close what this thread has open in SQLite (called just before os.fork)."""


#: Stores whose connections must not cross a fork (see _pause_for_fork).
fork_aware: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def _pause_for_fork() -> None:
    # No SQLite connection may cross a fork: SQLite keeps one record per open file per
    # process, and a child that inherits it never takes the file's locks itself (the
    # parent's POSIX locks are not inherited), so other processes could reset the WAL
    # under it. The checkpoint threads' connections and the forking thread's own are closed
    # here (they reopen on next use); a gunicorn --preload master then forks clean.
    _fork_lock.acquire()
    _paused[:] = list(Checkpointer.live)
    for checkpointer in _paused:
        checkpointer.busy.acquire()
        checkpointer.close_connection()
    for store in list(fork_aware):
        store.close_for_fork()


def _resume_after_fork() -> None:
    for checkpointer in _paused:
        checkpointer.busy.release()
    _paused.clear()
    _fork_lock.release()


class Process:
    """This process's id, kept current across fork: os.getpid() is a system call."""

    pid = os.getpid()


def _forget_after_fork() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()
    Process.pid = os.getpid()
    # The child has no checkpoint threads; their connections belong to the parent and are
    # kept, never closed (closing could release this process's own SQLite locks).
    _inherited.extend(Checkpointer.live)
    Checkpointer.live.clear()
    _paused.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_pause_for_fork,
        after_in_parent=_resume_after_fork,
        after_in_child=_forget_after_fork,
    )
