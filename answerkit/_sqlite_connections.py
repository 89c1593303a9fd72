"""Each thread's connection to the SQLite state file (:class:`SQLiteConnections`): opened on
first use in WAL mode, never carried across a ``fork``, reopened when the file is deleted or
replaced, closed with its thread; statements retried while another worker holds the write
lock, and transactions that never leave it held.

The base of :class:`answerkit.state_sqlite.SQLiteStore`, which keeps the store's operations;
this is how every one of them reaches the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

from answerkit._log import QuietLog
from answerkit._sqlite_schema import _SCHEMA
from answerkit._sqlite_upkeep import (
    AUTOCHECKPOINT_PAGES,
    Checkpointer,
    Process,
    file_id,
    fork_aware,
    is_busy,
)
from answerkit.errors import StateError

_T = TypeVar("_T")

log = QuietLog("answerkit")

FILE_CHECK_INTERVAL = 1.0
"""Seconds between two checks, per thread, that the file is still the one opened."""

# Pauses between tries while another worker holds the write lock. SQLite's own busy
# handler sleeps 1 ms at first, far longer than the write transactions here hold the
# lock (tens of microseconds), so two busy workers would spend most of their waits idle.
_BACKOFF = (0, 0, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005)

_yield: Callable[[], None] = getattr(os, "sched_yield", lambda: time.sleep(0))


class _Connection(sqlite3.Connection):
    """A plain connection that, unlike the base class, can be weakly referenced."""


class _ThreadEnd:
    """Kept in a thread's ``threading.local``, so it dies with the thread (or the store)."""

    __slots__ = ("__weakref__",)


def _close_owned(conn: sqlite3.Connection, pid: int) -> None:
    # Closed when its thread ends: left to the garbage collector, a connection warns
    # (ResourceWarning "unclosed database", Python 3.13+) once per finished thread, and a
    # threaded server finishes one per request. A connection inherited through fork is not
    # this process's to close (see _open).
    # os.getpid(), not Process.pid: a thread's locals are freed inside os.fork(), in the
    # child, before the fork hooks bring Process.pid up to date.
    if os.getpid() == pid:
        with contextlib.suppress(sqlite3.Error):
            conn.close()


def _make_private(path: str) -> None:
    """Create the state file readable by its owner only, if it is not there yet: it holds
    the calls' state (a CRM record a WarmTransfer was given, say), and SQLite would make it
    as the umask allows, often readable by every local user. SQLite gives its -wal and
    -shm files the database file's permissions."""
    # OSError: there already (another worker made it), or SQLite will say why it cannot.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _enable_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    # Switching to WAL can fail with "database is locked" without consulting the busy
    # handler when several workers open a fresh file at once; WAL is persistent, so check
    # first and retry the switch for as long as a busy statement would wait.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SQLiteConnections:
    """One connection per thread (and per process) to the file at ``path``, and the
    retries and transactions the store's operations run in.

    The subclass sets ``path`` (absolute) and ``busy_timeout``, then calls
    :meth:`_start_connections` before its first statement.
    """

    path: str
    busy_timeout: float

    def _start_connections(self) -> None:
        self._local = threading.local()
        # Weak, so a connection dies with its thread (a threaded server may start a thread
        # per request) while close() can still reach the live ones.
        self._all: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._all_lock = threading.Lock()
        self._abandoned: list[sqlite3.Connection] = []
        self._closed = False
        self._checkpointer: Checkpointer | None = None
        fork_aware.add(self)

    def close_for_fork(self) -> None:
        """Close this thread's connection before a fork (it reopens on next use); see
        ``_sqlite_upkeep._pause_for_fork``. Left open while this thread is inside a store
        operation (a fork from a signal handler) or a transaction."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if (
            conn is None
            or getattr(local, "pid", None) != Process.pid
            or getattr(local, "in_use", False)
            or conn.in_transaction
            or not self._all_lock.acquire(blocking=False)
        ):
            return
        try:
            self._all.discard(conn)  # type: ignore[arg-type]
        finally:
            self._all_lock.release()
        local.conn = None
        conn.close()

    def _error(self, action: str, exc: BaseException) -> StateError:
        if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
            # Another connection held the write lock past busy_timeout: the file is fine,
            # so the directory and the disk are the wrong things to check.
            return StateError(
                f"SQLite state store {self.path!r} failed to {action}: {exc}: another "
                f"connection held the file's write lock for over {self.busy_timeout:g} s "
                f"(busy_timeout). Look for what holds it (a backup, VACUUM, an open sqlite3 "
                f"shell, a worker stopped mid-transaction), or raise ?busy_timeout=SECONDS "
                f"on the state URL."
            )
        return StateError(
            f"SQLite state store {self.path!r} failed to {action}: {exc}. Check that the "
            f"directory exists and is writable by every worker, that the disk is not full, "
            f"and that the file is on a local disk (not NFS)."
        )

    def _connect(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == Process.pid:
            now = time.monotonic()
            if now >= local.check_at:
                local.check_at = now + FILE_CHECK_INTERVAL
                if file_id(self.path) != local.file_id:
                    return self._reopen_replaced(conn)
            if conn.in_transaction:
                # Left open by an exception that struck between two statements (an
                # asynchronous one, say): holding it would stall every other worker's writes.
                conn.execute("ROLLBACK")
            return conn
        return self._open(conn)

    def _reopen_replaced(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """The file was deleted or replaced under this thread's connection: say so, and
        open the file now at the path (created afresh if need be), where every process
        converges within FILE_CHECK_INTERVAL."""
        log.warning(
            "SQLite state store %s: the file was deleted or replaced while in use; reopening "
            "it (state and replay records in the old file are gone)",
            self.path,
        )
        self._local.conn = None
        with self._all_lock:
            self._all.discard(conn)  # type: ignore[arg-type]
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        return self._open(None)

    def _open(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        """A new connection for this thread (``conn``: the one it had before a fork)."""
        if self._closed:
            # Reopening would also start a checkpoint thread that nothing stops any more.
            raise StateError(f"SQLite state store {self.path}: closed; open a new store")
        pid = Process.pid
        if conn is not None:
            # Inherited through fork: SQLite forbids using it in the child, and closing it
            # here could disturb the parent's locks, so it is only set aside.
            self._abandoned.append(conn)
        _make_private(self.path)
        # timeout=0: no SQLite busy handler; _run retries instead (see _BACKOFF).
        conn = sqlite3.connect(
            self.path,
            timeout=0,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
        try:
            _enable_wal(conn, self.busy_timeout)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
            # Every new connection: the file may have been deleted and created afresh by
            # anyone (IF NOT EXISTS makes this cheap when the tables are there).
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        # Everything _connect reads is set before the connection itself: an exception
        # landing in between (a deadline's SIGALRM) leaves the thread to open another.
        self._local.pid = pid
        self._local.file_id = file_id(self.path)
        self._local.check_at = time.monotonic() + FILE_CHECK_INTERVAL
        thread_end = _ThreadEnd()
        # Not at interpreter exit (atexit): closing a connection a daemon thread is still
        # using (an abandoned handler, a warm transfer's move) crashed the process (SIGSEGV)
        # on its way out; the exit releases it anyway.
        weakref.finalize(thread_end, _close_owned, conn, pid).atexit = False
        self._local.thread_end = thread_end
        self._local.conn = conn
        with self._all_lock:
            self._all.add(conn)
            if self._checkpointer is None or self._checkpointer.pid != pid:
                self._checkpointer = Checkpointer(self.path)
                # A store dropped without close() stops its thread too.
                weakref.finalize(self, self._checkpointer.stopped.set)
        return conn

    def _run(self, action: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """``fn(connection)``, retried while another connection holds the write lock.

        ``fn`` must be safe to repeat: it is either one statement, which SQLite refuses as a
        whole when the database is busy, or a transaction that rolls back on failure.
        """
        local = self._local
        outer = getattr(local, "in_use", False)
        local.in_use = True  # a fork from a signal handler meanwhile leaves the connection be
        try:
            return self._retrying(action, fn)
        finally:
            local.in_use = outer

    def _retrying(self, action: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        tries = 0
        give_up = 0.0
        while True:
            try:
                return fn(self._connect())
            except StateError:
                raise
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise self._error(action, exc) from exc
                now = time.monotonic()
                if not give_up:
                    give_up = now + self.busy_timeout
                elif now >= give_up:
                    raise self._error(action, exc) from exc
                pause = _BACKOFF[min(tries, len(_BACKOFF) - 1)]
                if pause:
                    time.sleep(pause)
                else:
                    _yield()
                tries += 1
            except (sqlite3.Error, OSError) as exc:
                raise self._error(action, exc) from exc

    def _transaction(self, action: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        def run(conn: sqlite3.Connection) -> _T:
            # BEGIN inside the try: an exception raised asynchronously right after it (the
            # handler deadline's SIGALRM) must not leave the write lock held.
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return self._run(action, run)

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            conns = list(self._all)
            self._all.clear()
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None and checkpointer.pid == Process.pid:
            checkpointer.stop()
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
