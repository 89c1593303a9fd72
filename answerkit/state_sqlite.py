"""Per-call state in one SQLite file shared by every worker on a host (:class:`SQLiteStore`).

Import it from :mod:`answerkit.state`, which re-exports it and documents the store contract.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from functools import lru_cache, partial
from typing import Any, ClassVar, TypeVar

from answerkit.errors import ConfigurationError, StateError
from answerkit.state import (
    _PURGE_INTERVAL,
    DEFAULT_SQLITE_PATH,
    DEFAULT_TTL,
    StateStore,
    _check_int,
    _dumps,
)

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

# Each table is its primary key (WITHOUT ROWID) and has no other index, so a write touches
# one B-tree page per row: a webhook commits twice (its replay record, its state), and each
# extra page was another write to the WAL. Expired rows are found by a scan in the
# background (see purge_expired), off the webhooks' path. Files made by earlier versions
# (rowid tables with expiry indexes) keep working unchanged.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_uuid  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (call_uuid, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
    key        TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""


# One statement, so atomic without a transaction: upsert the key and push the expiry of
# the call's other live rows forward (re-upserting them unchanged). Expired rows are left
# expired, never revived; the purge removes them.
_PUT = (
    "INSERT INTO calls (call_uuid, key, value, expires_at) "
    "SELECT ?1, ?2, ?3, ?4 "
    "UNION ALL SELECT call_uuid, key, value, ?4 FROM calls "
    "WHERE call_uuid = ?1 AND expires_at > ?5 AND key <> ?2 "
    "ON CONFLICT (call_uuid, key) DO UPDATE "
    "SET value = excluded.value, expires_at = excluded.expires_at"
)

BUSY_TIMEOUT = 5.0
"""Seconds a statement waits for another connection's write lock before failing."""

# Pauses between tries while another worker holds the write lock. SQLite's own busy
# handler sleeps 1 ms at first, far longer than the write transactions here hold the
# lock (tens of microseconds), so two busy workers would spend most of their waits idle.
_BACKOFF = (0, 0, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005)

_NONCE_CHUNK = 16

_yield: Callable[[], None] = getattr(os, "sched_yield", lambda: time.sleep(0))


@lru_cache(maxsize=_NONCE_CHUNK)
def _remember_sql(rows: int) -> str:
    values = ", ".join(["(?, ?)"] * rows)
    return (
        f"INSERT INTO nonces (key, expires_at) VALUES {values} ON CONFLICT (key) "
        "DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?"
    )


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """True for SQLITE_BUSY (another connection holds the lock); worth retrying."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return code & 0xFF == 5  # SQLITE_BUSY and its extended codes
    return "database is locked" in str(exc)


class _Connection(sqlite3.Connection):
    """A plain connection that, unlike the base class, can be weakly referenced."""


def _enable_wal(conn: sqlite3.Connection) -> None:
    # Switching to WAL can fail with "database is locked" without consulting the busy
    # handler when several workers open a fresh file at once; WAL is persistent, so check
    # first and retry the switch for as long as a busy statement would wait.
    deadline = time.monotonic() + 5.0
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


PURGE_BATCH = 512
"""Expired rows deleted per write transaction: each holds the write lock for well under a
millisecond, so webhooks waiting behind it barely notice."""

def purge_expired(conn: sqlite3.Connection, now: float | None = None) -> int:
    """Delete every row that expired by ``now``, in short batches; returns how many.

    Runs in each process's background thread (see _Checkpointer) every _PURGE_INTERVAL
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
    select = (
        f"SELECT {cols} FROM {table} WHERE ({cols}) > ({marks}) AND expires_at <= ? "
        f"ORDER BY {cols} LIMIT ?"
    )
    delete = (
        f"DELETE FROM {table} WHERE ({cols}) BETWEEN ({marks}) AND ({marks}) "
        "AND expires_at <= ?"
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
            if not _is_busy(exc):
                raise
            time.sleep(0.001)
    return fn()


CHECKPOINT_INTERVAL = 0.5
"""Seconds between the background WAL checkpoints of each process (see _Checkpointer)."""

RESTART_INTERVAL = 2.0
"""Seconds between the background checkpoints that also restart the WAL (see below)."""

RESTART_MIN_FRAMES = 256
"""A WAL holding fewer frames than this is not worth a restart's two fsyncs."""

RESTART_WAIT_MS = 200
"""How long a restarting checkpoint waits for the writer and readers of the moment."""

# SQLite's own checkpoint-on-commit stays on as a backstop, at a WAL size the background
# checkpoints keep it from reaching. It must stay out of reach: once the WAL passes it,
# every commit of every worker tries a checkpoint, two fsyncs each (this halved throughput).
_AUTOCHECKPOINT_PAGES = 100_000


class _Checkpointer:
    """Copies the WAL back into the database file, and purges expired rows, from a
    background thread.

    SQLite does this on commit once the WAL holds 1,000 pages, so one webhook in a few
    hundred waited for the copy and two fsyncs: milliseconds, a busy worker's p99. Here a
    daemon thread of each process runs a PASSIVE checkpoint (it never blocks readers or
    writers, and gives way to a checkpoint already running) every CHECKPOINT_INTERVAL
    seconds, with its own connection; every _PURGE_INTERVAL it also runs
    :func:`purge_expired`.
    """

    live: ClassVar[weakref.WeakSet[_Checkpointer]] = weakref.WeakSet()

    def __init__(self, path: str) -> None:
        self.pid = _Process.pid
        self.stopped = threading.Event()
        # Held while the thread is inside SQLite, and by os.fork (_pause_for_fork): a child
        # must not inherit SQLite's internal locks in the middle of a checkpoint.
        self.busy = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._thread = threading.Thread(
            target=self._loop, args=(path,), name="answerkit-sqlite-checkpoint", daemon=True
        )
        _Checkpointer.live.add(self)
        self._thread.start()

    def _loop(self, path: str) -> None:
        next_purge = 0.0  # the first round purges what expired while nobody ran
        next_restart = 0.0
        while not self.stopped.wait(CHECKPOINT_INTERVAL):
            with self.busy:
                try:
                    if self._conn is None:
                        self._conn = sqlite3.connect(
                            path, timeout=0, isolation_level=None, check_same_thread=False
                        )
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
            if self._conn is not None:
                self._conn.close()
                self._conn = None

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

    def stop(self) -> None:
        self.stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


_paused: list[_Checkpointer] = []
_inherited: list[_Checkpointer] = []


def _pause_for_fork() -> None:
    _paused[:] = list(_Checkpointer.live)
    for checkpointer in _paused:
        checkpointer.busy.acquire()


def _resume_after_fork() -> None:
    for checkpointer in _paused:
        checkpointer.busy.release()
    _paused.clear()


class _Process:
    """This process's id, kept current across fork: os.getpid() is a system call."""

    pid = os.getpid()


def _forget_after_fork() -> None:
    _Process.pid = os.getpid()
    # The child has no checkpoint threads; their connections belong to the parent and are
    # kept, never closed (closing could release this process's own SQLite locks).
    _inherited.extend(_Checkpointer.live)
    _Checkpointer.live.clear()
    _paused.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_pause_for_fork,
        after_in_parent=_resume_after_fork,
        after_in_child=_forget_after_fork,
    )


class SQLiteStore(StateStore):
    """State in one SQLite file, shared by every process and thread on the host.

    WAL journal; a statement waits up to 5 s (:data:`BUSY_TIMEOUT`) for another connection's
    write lock, retrying at short intervals; one connection per thread (and per process: a
    connection inherited through ``fork`` is never reused). A write is one statement, and
    ``incr`` runs in a ``BEGIN IMMEDIATE`` transaction, so concurrent workers lose no update.
    A background thread per process checkpoints the WAL, keeping that work (and its fsyncs)
    off the webhooks' path. Expired rows are ignored on read and purged about once a
    minute. Keep the file on a local disk: SQLite locking is not reliable on network file
    systems.
    """

    def __init__(
        self, path: str | os.PathLike[str] = DEFAULT_SQLITE_PATH, *, ttl: float = DEFAULT_TTL
    ) -> None:
        super().__init__(ttl=ttl)
        self.path = os.fspath(path)
        if self.path == ":memory:" or self.path.startswith("file::memory:"):
            raise ConfigurationError(
                "SQLiteStore needs a file (each thread has its own connection, so an in-memory "
                "database would not be shared); use MemoryStore or 'memory://' instead"
            )
        self._local = threading.local()
        # Weak, so a connection dies with its thread (a threaded server may start a thread
        # per request) while close() can still reach the live ones.
        self._all: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._all_lock = threading.Lock()
        self._abandoned: list[sqlite3.Connection] = []
        self._checkpointer: _Checkpointer | None = None
        self._run("open", lambda conn: conn.executescript(_SCHEMA))

    def _error(self, action: str, exc: BaseException) -> StateError:
        return StateError(
            f"SQLite state store {self.path!r} failed to {action}: {exc}. Check that the "
            f"directory exists and is writable by every worker, that the disk is not full, "
            f"and that the file is on a local disk (not NFS)."
        )

    def _connect(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == _Process.pid:
            return conn
        return self._open(conn)

    def _open(self, conn: sqlite3.Connection | None) -> sqlite3.Connection:
        """A new connection for this thread (``conn``: the one it had before a fork)."""
        pid = _Process.pid
        if conn is not None:
            # Inherited through fork: SQLite forbids using it in the child, and closing it
            # here could disturb the parent's locks, so it is only set aside.
            self._abandoned.append(conn)
        # timeout=0: no SQLite busy handler; _run retries instead (see _BACKOFF).
        conn = sqlite3.connect(
            self.path,
            timeout=0,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
        try:
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint = {_AUTOCHECKPOINT_PAGES}")
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        self._local.pid = pid
        with self._all_lock:
            self._all.add(conn)
            if self._checkpointer is None or self._checkpointer.pid != pid:
                self._checkpointer = _Checkpointer(self.path)
                # A store dropped without close() stops its thread too.
                weakref.finalize(self, self._checkpointer.stopped.set)
        return conn

    def _run(self, action: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """``fn(connection)``, retried while another connection holds the write lock.

        ``fn`` must be safe to repeat: it is either one statement, which SQLite refuses as a
        whole when the database is busy, or a transaction that rolls back on failure.
        """
        tries = 0
        give_up = 0.0
        while True:
            try:
                return fn(self._connect())
            except StateError:
                raise
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise self._error(action, exc) from exc
                now = time.monotonic()
                if not give_up:
                    give_up = now + BUSY_TIMEOUT
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
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return self._run(action, run)

    def purge_expired(self) -> int:
        """Delete the expired rows now; returns how many. The background thread does this
        every minute by itself; call it to purge at a time of your choosing."""
        return self._run("purge expired rows", purge_expired)

    def _exec(self, action: str, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        return self._run(action, lambda conn: conn.execute(sql, params))

    def _put(self, conn: sqlite3.Connection, call_uuid: str, key: str, raw: str) -> None:
        """Write one key and refresh the whole call's expiry, in one statement."""
        now = time.time()
        conn.execute(_PUT, (call_uuid, key, raw, now + self.ttl, now))

    def get_all(self, call_uuid: str) -> dict[str, Any]:
        sql = "SELECT key, value FROM calls WHERE call_uuid = ? AND expires_at > ?"
        rows = self._exec("read call state", sql, (call_uuid, time.time())).fetchall()
        return {key: json.loads(value) for key, value in rows}

    def get(self, call_uuid: str, key: str) -> Any:
        sql = "SELECT value FROM calls WHERE call_uuid = ? AND key = ? AND expires_at > ?"
        row = self._exec("read call state", sql, (call_uuid, key, time.time())).fetchone()
        if row is None:
            raise KeyError(key)
        return json.loads(row[0])

    def set(self, call_uuid: str, key: str, value: Any) -> None:
        raw = _dumps(call_uuid, key, value)
        self._run("write call state", lambda conn: self._put(conn, call_uuid, key, raw))

    def delete(self, call_uuid: str, key: str) -> None:
        sql = "DELETE FROM calls WHERE call_uuid = ? AND key = ?"
        self._exec("delete call state", sql, (call_uuid, key))

    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        def add(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT value FROM calls WHERE call_uuid = ? AND key = ? AND expires_at > ?",
                (call_uuid, key, time.time()),
            ).fetchone()
            new = amount + (0 if row is None else _check_int(call_uuid, key, json.loads(row[0])))
            self._put(conn, call_uuid, key, str(new))
            return new

        return self._transaction("increment call state", add)

    def clear(self, call_uuid: str) -> None:
        self._exec("clear call state", "DELETE FROM calls WHERE call_uuid = ?", (call_uuid,))

    def remember_once(self, key: str, ttl: float) -> bool:
        return self.remember_all((key,), ttl)

    def remember_all(self, keys: Sequence[str], ttl: float) -> bool:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return True
        now = time.time()
        chunks = [unique[i : i + _NONCE_CHUNK] for i in range(0, len(unique), _NONCE_CHUNK)]

        def record(conn: sqlite3.Connection) -> int:
            # One statement per chunk, so atomic: inserts new keys and revives expired ones;
            # an unexpired key makes the WHERE false and counts no change.
            changed = 0
            for chunk in chunks:
                params: list[Any] = []
                for key in chunk:
                    params += (key, now + ttl)
                params.append(now)
                changed += conn.execute(_remember_sql(len(chunk)), params).rowcount
            return changed

        action = "record webhook nonces"
        if len(chunks) == 1:
            changed = self._run(action, record)
        else:  # a hostile request with many signature entries: keep it one transaction
            changed = self._transaction(action, record)
        return changed == len(unique)

    def ping(self) -> None:
        self._run("answer a ping", lambda conn: conn.execute("SELECT 1").fetchone())

    def close(self) -> None:
        with self._all_lock:
            conns = list(self._all)
            self._all.clear()
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None and checkpointer.pid == _Process.pid:
            checkpointer.stop()
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, ttl={self.ttl})"
