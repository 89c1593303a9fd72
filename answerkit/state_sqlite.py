"""Per-call state in one SQLite file shared by every worker on a host (:class:`SQLiteStore`).

Import it from :mod:`answerkit.state`, which re-exports it and documents the store contract.
This module holds the store's operations; how each thread reaches the file (its connection,
fork safety, busy retries, transactions) is answerkit/_sqlite_connections.py, the tables and
statements answerkit/_sqlite_schema.py, and the background checkpoints and purge
answerkit/_sqlite_upkeep.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

from answerkit._sqlite_connections import SQLiteConnections
from answerkit._sqlite_schema import _GET_ALL, _GET_ONE, _NONCE_CHUNK, _PUT, _SCHEMA, _recorder
from answerkit._sqlite_upkeep import purge_expired
from answerkit._state_store import _overrides
from answerkit._state_values import (
    _added,
    _check_amount,
    _check_key,
    _check_seconds,
    _dumps,
    _read_key,
)
from answerkit.errors import ConfigurationError
from answerkit.state import DEFAULT_SQLITE_PATH, DEFAULT_TTL, MISSING, StateStore

__all__ = ["SQLiteStore"]

BUSY_TIMEOUT = 2.0
"""Seconds a statement waits by default for another connection's write lock before failing
(``SQLiteStore(busy_timeout=)``, ``?busy_timeout=`` on a sqlite URL). Below the 3 s Vobiz
waits for a status callback (spec §2.12), so a lock held for long (a backup, a VACUUM, an
open sqlite3 shell) costs a webhook its fallback answer, not the callback itself."""


class SQLiteStore(SQLiteConnections, StateStore):
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
        if given.endswith(("/", os.sep)) or os.path.isdir(given):
            # As its URL is refused: a directory (an unset variable at the path's end) made
            # a file of the directory's name, or failed on every webhook.
            raise ConfigurationError(
                f"SQLiteStore path {given!r} names a directory, not a file (an unset "
                "environment variable at its end?): give the file's path, such as "
                f"{os.path.join(given, 'state.sqlite3')!r}"
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
        self._start_connections()
        self._run("open", lambda conn: conn.executescript(_SCHEMA))

    def purge_expired(self) -> int:
        """Delete the expired rows now; returns how many. The background thread does this
        every minute by itself; call it to purge at a time of your choosing."""
        return self._run("purge expired rows", purge_expired)

    def _exec(self, action: str, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        return self._run(action, lambda conn: conn.execute(sql, params))

    def _put(self, conn: sqlite3.Connection, call_uuid: str, key: str, raw: str) -> None:
        """Write one key and refresh the whole call's expiry, in one statement."""
        now = time.time()
        conn.execute(
            _PUT, {"call": call_uuid, "key": key, "value": raw, "until": now + self.ttl, "now": now}
        )

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

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, ttl={self.ttl}, busy_timeout={self.busy_timeout})"
