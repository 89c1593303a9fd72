"""Per-call state kept across the webhooks of one call, keyed by CallUUID.

Backends share one contract (:class:`StateStore`): values are JSON, entries of a call expire
``ttl`` seconds after the call's last write, ``incr`` is atomic across processes and hosts,
and every failure is a :class:`~answerkit.errors.StateError` whose message names the store and
what to check (never a password).

* :class:`SQLiteStore`: the default; one file shared by every worker on a host (WAL).
* :class:`RedisStore`: for several hosts; one hash per call plus ``PEXPIRE``.
* :class:`MemoryStore`: one process only; for tests.

The store also remembers webhook nonces (:meth:`StateStore.remember_once`) so replay
protection holds across workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from answerkit.errors import ConfigurationError, StateError

if TYPE_CHECKING:
    import redis

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "DEFAULT_TTL",
    "CallState",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "StateStore",
    "open_store",
]

DEFAULT_TTL = 4 * 3600.0
"""Seconds a call's state lives after its last write (longer than any sane call)."""

DEFAULT_SQLITE_PATH = "./answerkit-state.sqlite3"

_T = TypeVar("_T")

_PURGE_INTERVAL = 60.0


def _dumps(call_uuid: str, key: str, value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StateError(
            f"cannot store {type(value).__name__} under {key!r} for call {call_uuid}: "
            f"state values must be JSON-serialisable (str, int, float, bool, None, list, dict) "
            f"({exc})"
        ) from exc


def _check_int(call_uuid: str, key: str, current: Any) -> int:
    if isinstance(current, bool) or not isinstance(current, int):
        raise StateError(
            f"cannot increment {key!r} for call {call_uuid}: it holds "
            f"{type(current).__name__} {current!r}, not an integer"
        )
    return current


class StateStore(ABC):
    """Where per-call state lives. Subclasses must be safe to share between threads."""

    def __init__(self, *, ttl: float = DEFAULT_TTL) -> None:
        if ttl <= 0:
            raise ConfigurationError(f"state ttl must be a positive number of seconds, not {ttl}")
        self.ttl = float(ttl)

    @abstractmethod
    def get_all(self, call_uuid: str) -> dict[str, Any]:
        """Every live key of the call (an empty dict for an unknown call)."""

    @abstractmethod
    def get(self, call_uuid: str, key: str) -> Any:
        """One value; ``KeyError`` if absent or expired."""

    @abstractmethod
    def set(self, call_uuid: str, key: str, value: Any) -> None:
        """Store a JSON-serialisable value and refresh the call's expiry."""

    @abstractmethod
    def delete(self, call_uuid: str, key: str) -> None:
        """Remove one key (no error if it is absent)."""

    @abstractmethod
    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        """Atomically add ``amount`` (a missing key counts as 0) and return the new value."""

    @abstractmethod
    def clear(self, call_uuid: str) -> None:
        """Forget everything about the call (done on its ``Hangup`` event)."""

    @abstractmethod
    def remember_once(self, key: str, ttl: float) -> bool:
        """True the first time ``key`` is seen within ``ttl`` seconds, False on a repeat."""

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`StateError` if the store cannot be used."""

    def close(self) -> None:  # noqa: B027 - optional hook; most stores hold nothing to close
        """Release connections. The store must not be used afterwards."""

    def state(self, call_uuid: str) -> CallState:
        """A :class:`CallState` mapping bound to ``call_uuid``."""
        return CallState(self, call_uuid)


# --------------------------------------------------------------------------- memory


class MemoryStore(StateStore):
    """State in this process's memory. For tests and single-process development only.

    Values go through JSON like every other backend, so code that works here works there.
    """

    def __init__(self, *, ttl: float = DEFAULT_TTL) -> None:
        super().__init__(ttl=ttl)
        self._lock = threading.Lock()
        self._calls: dict[str, tuple[float, dict[str, str]]] = {}
        self._nonces: dict[str, float] = {}
        self._next_purge = time.time() + _PURGE_INTERVAL

    def _live(self, call_uuid: str, now: float) -> dict[str, str] | None:
        entry = self._calls.get(call_uuid)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._calls[call_uuid]
            return None
        return entry[1]

    def _write(self, call_uuid: str, now: float) -> dict[str, str]:
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_INTERVAL
            self._calls = {k: v for k, v in self._calls.items() if v[0] > now}
            self._nonces = {k: v for k, v in self._nonces.items() if v > now}
        values = self._live(call_uuid, now) or {}
        self._calls[call_uuid] = (now + self.ttl, values)
        return values

    def get_all(self, call_uuid: str) -> dict[str, Any]:
        with self._lock:
            values = dict(self._live(call_uuid, time.time()) or {})
        return {k: json.loads(v) for k, v in values.items()}

    def get(self, call_uuid: str, key: str) -> Any:
        with self._lock:
            raw = (self._live(call_uuid, time.time()) or {})[key]
        return json.loads(raw)

    def set(self, call_uuid: str, key: str, value: Any) -> None:
        raw = _dumps(call_uuid, key, value)
        with self._lock:
            self._write(call_uuid, time.time())[key] = raw

    def delete(self, call_uuid: str, key: str) -> None:
        with self._lock:
            (self._live(call_uuid, time.time()) or {}).pop(key, None)

    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        with self._lock:
            values = self._write(call_uuid, time.time())
            current = _check_int(call_uuid, key, json.loads(values.get(key, "0")))
            values[key] = str(current + amount)
            return current + amount

    def clear(self, call_uuid: str) -> None:
        with self._lock:
            self._calls.pop(call_uuid, None)

    def remember_once(self, key: str, ttl: float) -> bool:
        now = time.time()
        with self._lock:
            expires = self._nonces.get(key)
            if expires is not None and expires > now:
                return False
            self._nonces[key] = now + ttl
            return True

    def ping(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"MemoryStore(ttl={self.ttl})"


# --------------------------------------------------------------------------- SQLite

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


# --------------------------------------------------------------------------- Redis


def redact_url(url: str) -> str:
    """``url`` with any password (userinfo or ``?password=``) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, sep, _password = userinfo.partition(":")
            # A lone userinfo is a username to redis-py, but people do put passwords there.
            netloc = f"{user}:***@{hostport}" if sep else f"***@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, "***" if k.lower() in ("password", "pass", "pwd") else v) for k, v in pairs],
                safe="*",
            )
        # Not urlunsplit: it turns "unix:///path" into "unix:/path".
        return f"{parts.scheme}://{netloc}{parts.path}{'?' if query else ''}{query}"
    except ValueError:
        return "<unparseable URL>"


def _url_secrets(url: str) -> list[str]:
    """The password(s) in ``url``, raw and decoded, to scrub from error messages."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
        found += [v for k, v in parse_qsl(parts.query) if k.lower() in ("password", "pass", "pwd")]
    except ValueError:
        return []
    return [s for v in found if v for s in {v, unquote(v)} if len(s) >= 3]


class RedisStore(StateStore):
    """State in Redis, for several hosts: one hash per call plus ``PEXPIRE``.

    Keys are ``{prefix}call:{CallUUID}`` (a hash of JSON values) and ``{prefix}nonce:{key}``.
    Sockets time out after ``socket_timeout`` seconds (1 s by default) and a failed command is
    retried once without delay, so an unreachable Redis costs a webhook about a second, not a
    dropped call. Needs ``pip install 'answerkit[redis]'``.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = DEFAULT_TTL,
        prefix: str = "answerkit:",
        socket_timeout: float = 1.0,
        client: redis.Redis | None = None,
    ) -> None:
        super().__init__(ttl=ttl)
        self.url = redact_url(url)
        self._secrets = _url_secrets(url)
        self.prefix = prefix
        self._ttl_ms = max(1, int(ttl * 1000))
        if client is not None:
            self._client = client
            return
        try:
            import redis as redis_module
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise ConfigurationError(
                f"state URL {self.url} needs the redis package: pip install 'answerkit[redis]'"
            ) from exc
        try:
            self._client = redis_module.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry=Retry(NoBackoff(), 1),
                decode_responses=True,
            )
        except (ValueError, redis_module.RedisError) as exc:
            detail = self._scrub(str(exc))
            raise ConfigurationError(f"invalid Redis state URL {self.url}: {detail}") from None

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, action: str, exc: BaseException) -> StateError:
        return StateError(
            f"Redis state store {self.url} failed to {action}: "
            f"{type(exc).__name__}: {self._scrub(str(exc))}. "
            f"Check that Redis is running and reachable from this host, and the URL, "
            f"password and TLS settings."
        )

    def _call(self, action: str, fn: Callable[[redis.Redis], _T]) -> _T:
        try:
            return fn(self._client)
        except StateError:
            raise
        except Exception as exc:  # redis-py raises many types; all mean "store failed"
            raise self._error(action, exc) from None

    def _key(self, call_uuid: str) -> str:
        return f"{self.prefix}call:{call_uuid}"

    def get_all(self, call_uuid: str) -> dict[str, Any]:
        raw = cast(
            "dict[str, str]",
            self._call("read call state", lambda r: r.hgetall(self._key(call_uuid))),
        )
        return {k: json.loads(v) for k, v in raw.items()}

    def get(self, call_uuid: str, key: str) -> Any:
        raw = self._call("read call state", lambda r: r.hget(self._key(call_uuid), key))
        if raw is None:
            raise KeyError(key)
        return json.loads(raw)

    def set(self, call_uuid: str, key: str, value: Any) -> None:
        raw = _dumps(call_uuid, key, value)

        def write(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=True)
            pipe.hset(self._key(call_uuid), key, raw)
            pipe.pexpire(self._key(call_uuid), self._ttl_ms)
            pipe.execute()

        self._call("write call state", write)

    def delete(self, call_uuid: str, key: str) -> None:
        self._call("delete call state", lambda r: r.hdel(self._key(call_uuid), key))

    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        def add(r: redis.Redis) -> int:
            pipe = r.pipeline(transaction=True)
            pipe.hincrby(self._key(call_uuid), key, amount)
            pipe.pexpire(self._key(call_uuid), self._ttl_ms)
            result = pipe.execute(raise_on_error=False)
            if isinstance(result[0], Exception):
                current = r.hget(self._key(call_uuid), key)
                raise StateError(
                    f"cannot increment {key!r} for call {call_uuid}: it holds {current!r}, "
                    f"not an integer"
                )
            return int(result[0])

        return self._call("increment call state", add)

    def clear(self, call_uuid: str) -> None:
        self._call("clear call state", lambda r: r.delete(self._key(call_uuid)))

    def remember_once(self, key: str, ttl: float) -> bool:
        ttl_ms = max(1, int(ttl * 1000))
        created = self._call(
            "record a webhook nonce",
            lambda r: r.set(f"{self.prefix}nonce:{key}", "1", nx=True, px=ttl_ms),
        )
        return bool(created)

    def ping(self) -> None:
        self._call("answer a ping", lambda r: r.ping())

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection has nothing to report
            self._client.close()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, ttl={self.ttl})"


# --------------------------------------------------------------------------- factory


def open_store(url: str | None = None, *, ttl: float = DEFAULT_TTL) -> StateStore:
    """Open the store a URL names.

    * ``None`` or ``"sqlite://"``: SQLite at ``./answerkit-state.sqlite3``;
    * ``"sqlite:///relative/path.db"`` or ``"sqlite:////absolute/path.db"``;
    * ``"memory://"``: this process only (tests);
    * ``"redis://[:password@]host[:port][/db]"``, ``"rediss://..."``, ``"unix://..."``.
    """
    if url is None or not url.strip():
        return SQLiteStore(DEFAULT_SQLITE_PATH, ttl=ttl)
    url = url.strip()
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        rest = url.partition("://")[2]
        path = rest[1:] if rest.startswith("/") else rest
        return SQLiteStore(unquote(path) or DEFAULT_SQLITE_PATH, ttl=ttl)
    if scheme == "memory":
        return MemoryStore(ttl=ttl)
    if scheme in ("redis", "rediss", "unix"):
        return RedisStore(url, ttl=ttl)
    raise ConfigurationError(
        f"unknown state store URL {redact_url(url)!r}: use 'sqlite:///path/to/file.sqlite3', "
        f"'redis://host:6379/0' or 'memory://'"
    )


# --------------------------------------------------------------------------- mapping


class CallState(MutableMapping[str, Any]):
    """The state of one call, as a mapping (``call.state["attempts"] = 2``).

    Writes go straight to the store. Reads come from a snapshot of the whole call taken on
    first read and kept up to date with this object's own writes; a write made meanwhile by
    another worker shows only after :meth:`refresh`. Use :meth:`incr` for counters that
    several webhooks may bump at once.
    """

    __slots__ = ("_cache", "call_uuid", "store")

    def __init__(self, store: StateStore, call_uuid: str) -> None:
        self.store = store
        self.call_uuid = call_uuid
        self._cache: dict[str, Any] | None = None

    def _snapshot(self) -> dict[str, Any]:
        if self._cache is None:
            self._cache = self.store.get_all(self.call_uuid)
        return self._cache

    def refresh(self) -> None:
        """Forget the snapshot; the next read fetches the store again."""
        self._cache = None

    def __getitem__(self, key: str) -> Any:
        return self._snapshot()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.store.set(self.call_uuid, key, value)
        if self._cache is not None:
            # Round-trip so the cached value matches what a later read would return.
            self._cache[key] = json.loads(_dumps(self.call_uuid, key, value))

    def __delitem__(self, key: str) -> None:
        if key not in self._snapshot():
            raise KeyError(key)
        self.store.delete(self.call_uuid, key)
        del self._snapshot()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._snapshot()))

    def __len__(self) -> int:
        return len(self._snapshot())

    def __contains__(self, key: object) -> bool:
        return key in self._snapshot()

    def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add ``amount`` to an integer (0 if missing) and return the new value."""
        value = self.store.incr(self.call_uuid, key, amount)
        if self._cache is not None:
            self._cache[key] = value
        return value

    def clear(self) -> None:
        """Forget all state of this call."""
        self.store.clear(self.call_uuid)
        self._cache = {}

    def __repr__(self) -> str:
        shown = "<not loaded>" if self._cache is None else repr(self._cache)
        return f"CallState({self.call_uuid!r}, {shown})"
