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
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from answerkit._log import QuietLog
from answerkit._sqlite_upkeep import (
    AUTOCHECKPOINT_PAGES,
    Checkpointer,
    Process,
    file_id,
    fork_aware,
    is_busy,
    purge_expired,
)
from answerkit._state_store import _overrides
from answerkit._state_values import (
    _added,
    _check_amount,
    _check_key,
    _check_seconds,
    _dumps,
    _read_key,
)
from answerkit.errors import ConfigurationError, StateError
from answerkit.state import DEFAULT_SQLITE_PATH, DEFAULT_TTL, MISSING, StateStore

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

# Each table is its primary key (WITHOUT ROWID) and has no other index, so a write touches
# one B-tree page per row: a webhook commits twice (its replay record, its state), and each
# extra page was another write to the WAL. Expired rows are found by a scan in the
# background (answerkit/_sqlite_upkeep.py), off the webhooks' path. Files made by earlier
# versions (rowid tables with expiry indexes) keep working unchanged.
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

log = QuietLog("answerkit")

FILE_CHECK_INTERVAL = 1.0
"""Seconds between two checks, per thread, that the file is still the one opened."""

BUSY_TIMEOUT = 2.0
"""Seconds a statement waits by default for another connection's write lock before failing
(``SQLiteStore(busy_timeout=)``, ``?busy_timeout=`` on a sqlite URL). Below the 3 s Vobiz
waits for a status callback (spec §2.12), so a lock held for long (a backup, a VACUUM, an
open sqlite3 shell) costs a webhook its fallback answer, not the callback itself."""

# Pauses between tries while another worker holds the write lock. SQLite's own busy
# handler sleeps 1 ms at first, far longer than the write transactions here hold the
# lock (tens of microseconds), so two busy workers would spend most of their waits idle.
_GET_ALL = "SELECT key, value FROM calls WHERE call_uuid = ? AND expires_at > ?"

_GET_ONE = "SELECT value FROM calls WHERE call_uuid = ? AND key = ? AND expires_at > ?"

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


def _recorder(unique: list[str], ttl: float, now: float) -> Callable[[sqlite3.Connection], int]:
    """A function recording ``unique`` keys, returning how many were new (or had expired)."""
    chunks = [unique[i : i + _NONCE_CHUNK] for i in range(0, len(unique), _NONCE_CHUNK)]

    def record(conn: sqlite3.Connection) -> int:
        # One statement per chunk, so atomic: inserts new keys and revives expired ones; an
        # unexpired key makes the WHERE false and counts no change.
        changed = 0
        for chunk in chunks:
            params: list[Any] = []
            for key in chunk:
                params += (key, now + ttl)
            params.append(now)
            changed += conn.execute(_remember_sql(len(chunk)), params).rowcount
        return changed

    return record


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


class SQLiteStore(StateStore):
    """State in one SQLite file, shared by every process and thread on the host.

    WAL journal; a statement waits up to ``busy_timeout`` seconds (2 s by default,
    :data:`BUSY_TIMEOUT`) for another connection's write lock, retrying at short intervals,
    then fails with StateError; one connection per thread (and per process: a connection
    inherited through ``fork`` is never reused). A write is one statement, and ``incr``,
    ``set_if_absent`` and ``take`` run in a ``BEGIN IMMEDIATE`` transaction, so concurrent
    workers lose no update. A relative ``path`` is taken from the current directory when the
    store is made (every connection opens that file, whatever the directory later).
    A background thread per process checkpoints the WAL, keeping that work (and its fsyncs)
    off the webhooks' path. Expired rows are ignored on read and purged about once a
    minute. Keep the file on a local disk: SQLite locking is not reliable on network file
    systems.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_SQLITE_PATH,
        *,
        ttl: float = DEFAULT_TTL,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        super().__init__(ttl=ttl)
        self.busy_timeout = _check_seconds("the SQLite busy_timeout", busy_timeout, zero=False)
        given = os.fspath(path)
        if not given.strip():
            # SQLite opens a private temporary database for "" (one per connection, so one
            # per thread): every webhook saw a state of its own and replays passed.
            raise ConfigurationError(
                f"SQLiteStore needs a file path, got {given!r} (an unset environment variable?): "
                f"give a path, or none for the default {DEFAULT_SQLITE_PATH!r}"
            )
        if "\x00" in given:
            raise ConfigurationError(
                f"SQLiteStore path {given!r} holds a NUL byte (%00 in a URL): no file can "
                "have that name; give the path without it"
            )
        if given == ":memory:" or given.startswith("file::memory:"):
            raise ConfigurationError(
                "SQLiteStore needs a file (each thread has its own connection, so an in-memory "
                "database would not be shared); use MemoryStore or 'memory://' instead"
            )
        # Absolute now: each thread opens its own connection, and a relative path was taken
        # from the current directory at that moment, so a chdir (a daemonising helper, app
        # code) split the state between two files.
        try:
            self.path = os.path.abspath(given)
        except OSError as exc:  # the working directory was deleted under the process
            raise ConfigurationError(
                f"SQLiteStore path {given!r} is relative, and the working directory it would "
                f"be taken from is gone ({exc.strerror}): give an absolute path"
            ) from None
        self._local = threading.local()
        # Weak, so a connection dies with its thread (a threaded server may start a thread
        # per request) while close() can still reach the live ones.
        self._all: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._all_lock = threading.Lock()
        self._abandoned: list[sqlite3.Connection] = []
        self._closed = False
        self._checkpointer: Checkpointer | None = None
        fork_aware.add(self)
        self._run("open", lambda conn: conn.executescript(_SCHEMA))

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
        params = (call_uuid, time.time())
        rows = self._run("read call state", lambda conn: conn.execute(_GET_ALL, params).fetchall())
        return {key: json.loads(value) for key, value in rows}

    def get(self, call_uuid: str, key: str) -> Any:
        stored = _read_key(key)
        if stored is None:
            raise KeyError(key)
        params = (call_uuid, stored, time.time())
        row = self._run("read call state", lambda conn: conn.execute(_GET_ONE, params).fetchone())
        if row is None:
            raise KeyError(key)
        return json.loads(row[0])

    def set(self, call_uuid: str, key: str, value: Any) -> None:
        key = _check_key(call_uuid, key)
        self._put_one(call_uuid, key, _dumps(call_uuid, key, value))

    def _put_one(self, call_uuid: str, key: str, raw: str) -> None:
        # One statement is atomic alone: no BEGIN and COMMIT to run.
        self._run("write call state", lambda conn: self._put(conn, call_uuid, key, raw))

    def set_many(self, call_uuid: str, items: Mapping[str, Any]) -> None:
        if type(self).set is not SQLiteStore.set:  # a subclass's own set() sees every write
            return super().set_many(call_uuid, items)
        raws = [
            (_check_key(call_uuid, key), _dumps(call_uuid, key, value))
            for key, value in items.items()
        ]
        if not raws:
            return
        if len(raws) == 1:
            return self._put_one(call_uuid, *raws[0])

        def write(conn: sqlite3.Connection) -> None:
            for key, raw in raws:
                self._put(conn, call_uuid, key, raw)

        self._transaction("write call state", write)

    def set_if_absent(self, call_uuid: str, key: str, value: Any) -> Any:
        if _overrides(self, SQLiteStore, "set", "get"):
            return super().set_if_absent(call_uuid, key, value)
        key = _check_key(call_uuid, key)
        raw = _dumps(call_uuid, key, value)
        # A read first, outside any transaction: a key already held (most claims after the
        # first) takes no write lock, which other workers' webhooks would wait behind.
        params = (call_uuid, key, time.time())
        held = self._run("read call state", lambda conn: conn.execute(_GET_ONE, params).fetchone())
        if held is not None:
            return json.loads(held[0])

        def put(conn: sqlite3.Connection) -> str:
            # An expired row counts as absent: written over (with the call's other live
            # rows refreshed, as set() does), never revived.
            row = conn.execute(_GET_ONE, (call_uuid, key, time.time())).fetchone()
            if row is not None:
                return str(row[0])
            self._put(conn, call_uuid, key, raw)
            return raw

        return json.loads(self._transaction("write call state", put))

    def delete(self, call_uuid: str, key: str) -> None:
        stored = _read_key(key)  # None: nothing can be stored under it, so nothing to delete
        if stored is not None:
            sql = "DELETE FROM calls WHERE call_uuid = ? AND key = ?"
            self._exec("delete call state", sql, (call_uuid, stored))

    def take(self, call_uuid: str, key: str) -> Any:
        stored = _read_key(key)
        if stored is None or _overrides(self, SQLiteStore, "delete", "get"):
            return super().take(call_uuid, key)
        key = stored
        # A read first, outside any transaction: a key not there (a recipe clearing keys
        # that may never have been set) takes no write lock.
        params = (call_uuid, key, time.time())
        if (
            self._run("read call state", lambda conn: conn.execute(_GET_ONE, params).fetchone())
            is None
        ):
            return MISSING

        def remove(conn: sqlite3.Connection) -> str | None:
            # A transaction, not DELETE ... RETURNING: that needs SQLite 3.35, newer than
            # some supported Pythons bring. An expired row is left to the purge.
            row = conn.execute(_GET_ONE, (call_uuid, key, time.time())).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM calls WHERE call_uuid = ? AND key = ?", (call_uuid, key))
            return str(row[0])

        raw = self._transaction("delete call state", remove)
        return MISSING if raw is None else json.loads(raw)

    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        key = _check_key(call_uuid, key)
        amount = _check_amount(call_uuid, key, amount)

        def add(conn: sqlite3.Connection) -> int:
            row = conn.execute(_GET_ONE, (call_uuid, key, time.time())).fetchone()
            new = _added(call_uuid, key, 0 if row is None else json.loads(row[0]), amount)
            self._put(conn, call_uuid, key, str(new))
            return new

        return self._transaction("increment call state", add)

    def clear(self, call_uuid: str) -> None:
        self._exec("clear call state", "DELETE FROM calls WHERE call_uuid = ?", (call_uuid,))

    def expire(self, call_uuid: str, seconds: float) -> None:
        seconds = _check_seconds("the expiry", seconds, zero=True, forever=True)
        sql = "UPDATE calls SET expires_at = MIN(expires_at, ?) WHERE call_uuid = ?"
        self._exec("shorten call state expiry", sql, (time.time() + seconds, call_uuid))

    def remember_once(self, key: str, ttl: float) -> bool:
        return self.remember_all((key,), ttl)

    def remember_all(self, keys: Sequence[str], ttl: float) -> bool:
        ttl = _check_seconds("the replay window", ttl, zero=False)
        unique = list(dict.fromkeys(keys))
        if not unique:
            return True
        record = _recorder(unique, ttl, time.time())
        action = "record webhook nonces"
        if len(unique) <= _NONCE_CHUNK:
            changed = self._run(action, record)
        else:  # a hostile request with many signature entries: keep it one transaction
            changed = self._transaction(action, record)
        return changed == len(unique)

    def forget_all(self, keys: Sequence[str]) -> None:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return
        marks = ", ".join("?" * len(unique))
        self._exec(
            "forget webhook nonces", f"DELETE FROM nonces WHERE key IN ({marks})", (*unique,)
        )

    def ping(self) -> None:
        self._run("answer a ping", lambda conn: conn.execute("SELECT 1").fetchone())

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

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, ttl={self.ttl}, busy_timeout={self.busy_timeout})"
