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
from collections.abc import Callable
from typing import Any, TypeVar

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_uuid  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (call_uuid, key)
);
CREATE INDEX IF NOT EXISTS calls_expires ON calls (expires_at);
CREATE TABLE IF NOT EXISTS nonces (
    key        TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
"""


class _Connection(sqlite3.Connection):
    """A plain connection that, unlike the base class, can be weakly referenced."""


def _enable_wal(conn: sqlite3.Connection) -> None:
    # Switching to WAL can fail with "database is locked" without consulting the busy
    # handler when several workers open a fresh file at once; WAL is persistent, so check
    # first and retry the switch for as long as busy_timeout would have waited.
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


class SQLiteStore(StateStore):
    """State in one SQLite file, shared by every process and thread on the host.

    WAL journal, ``busy_timeout`` 5 s, one connection per thread (and per process: a
    connection inherited through ``fork`` is never reused). ``incr`` runs in a
    ``BEGIN IMMEDIATE`` transaction, so concurrent workers lose no update. Expired rows are
    ignored on read and purged about once a minute. Keep the file on a local disk: SQLite
    locking is not reliable on network file systems.
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
        self._next_purge = 0.0
        self._run("open", lambda conn: conn.executescript(_SCHEMA))

    def _error(self, action: str, exc: BaseException) -> StateError:
        return StateError(
            f"SQLite state store {self.path!r} failed to {action}: {exc}. Check that the "
            f"directory exists and is writable by every worker, that the disk is not full, "
            f"and that the file is on a local disk (not NFS)."
        )

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        pid = os.getpid()
        if conn is not None and self._local.pid == pid:
            return conn
        if conn is not None:
            # Inherited through fork: SQLite forbids using it in the child, and closing it
            # here could disturb the parent's locks, so it is only set aside.
            self._abandoned.append(conn)
        conn = sqlite3.connect(
            self.path,
            timeout=5.0,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        self._local.conn = conn
        self._local.pid = pid
        with self._all_lock:
            self._all.add(conn)
        return conn

    def _run(self, action: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return fn(self._connect())
        except StateError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise self._error(action, exc) from exc

    def _transaction(self, action: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        def run(conn: sqlite3.Connection) -> _T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        result = self._run(action, run)
        self._maybe_purge()
        return result

    def _maybe_purge(self) -> None:
        now = time.time()
        if now < self._next_purge:
            return
        self._next_purge = now + _PURGE_INTERVAL

        def purge(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM calls WHERE expires_at <= ?", (now,))
            conn.execute("DELETE FROM nonces WHERE expires_at <= ?", (now,))

        self._run("purge expired rows", purge)

    def _exec(self, action: str, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        return self._run(action, lambda conn: conn.execute(sql, params))

    def _put(self, conn: sqlite3.Connection, call_uuid: str, key: str, raw: str) -> None:
        """Upsert one row and push the whole call's expiry forward (inside a transaction)."""
        now = time.time()
        # Expired rows of this call must not come back to life when the call is refreshed.
        conn.execute("DELETE FROM calls WHERE call_uuid = ? AND expires_at <= ?", (call_uuid, now))
        conn.execute(
            "INSERT INTO calls (call_uuid, key, value, expires_at) VALUES (?, ?, ?, 0) "
            "ON CONFLICT (call_uuid, key) DO UPDATE SET value = excluded.value",
            (call_uuid, key, raw),
        )
        conn.execute(
            "UPDATE calls SET expires_at = ? WHERE call_uuid = ?", (now + self.ttl, call_uuid)
        )

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
        self._transaction("write call state", lambda conn: self._put(conn, call_uuid, key, raw))

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
        now = time.time()
        # One statement, so atomic: inserts a new key, or revives an expired one; an unexpired
        # key makes the WHERE false and changes nothing (rowcount 0).
        sql = (
            "INSERT INTO nonces (key, expires_at) VALUES (?, ?) ON CONFLICT (key) "
            "DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?"
        )
        cursor = self._exec("record a webhook nonce", sql, (key, now + ttl, now))
        self._maybe_purge()
        return cursor.rowcount == 1

    def ping(self) -> None:
        self._run("answer a ping", lambda conn: conn.execute("SELECT 1").fetchone())

    def close(self) -> None:
        with self._all_lock:
            conns = list(self._all)
            self._all.clear()
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, ttl={self.ttl})"
