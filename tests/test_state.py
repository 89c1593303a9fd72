from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest.mock import patch

import pytest
from conftest import StoreFactory, new_call_uuid, wait_until

from answerkit.errors import ConfigurationError, StateError
from answerkit.state import (
    CallState,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    StateStore,
    open_store,
)
from answerkit.state_urls import redact_url as _redact_url

# --------------------------------------------------------------------------- contract


def test_set_get_delete_clear(store: StateStore) -> None:
    call = new_call_uuid()
    assert store.get_all(call) == {}
    with pytest.raises(KeyError):
        store.get(call, "missing")
    store.set(call, "name", "Ada")
    store.set(call, "data", {"menu": [1, 2], "ok": True, "none": None, "pi": 1.5})
    store.set(call, "tuple", (1, 2))
    store.set(call, "null", None)
    assert store.get(call, "name") == "Ada"
    assert store.get(call, "null") is None
    assert store.get_all(call) == {
        "name": "Ada",
        "data": {"menu": [1, 2], "ok": True, "none": None, "pi": 1.5},
        "tuple": [1, 2],
        "null": None,
    }
    store.set(call, "name", "Grace")
    assert store.get(call, "name") == "Grace"
    store.delete(call, "name")
    store.delete(call, "never-there")
    assert "name" not in store.get_all(call)
    other = new_call_uuid()
    store.set(other, "name", "Other")
    store.clear(call)
    assert store.get_all(call) == {}
    assert store.get_all(other) == {"name": "Other"}


@pytest.mark.usefixtures("no_background_purge")
def test_expire_brings_the_end_forward_never_back(make_store: StoreFactory) -> None:
    store = make_store(ttl=60)
    soon, within, later, other = (new_call_uuid() for _ in range(4))
    for call in (soon, within, later, other):
        store.set(call, "n", 1)
    store.expire(within, 30)  # sooner than the TTL, but far off
    store.expire(later, 600)  # later than the TTL: the TTL stands
    store.expire("never-seen", 0.3)  # nothing to do, no error
    store.expire(soon, 0.3)  # sooner than the TTL: taken
    wait_until(lambda: store.get_all(soon) == {}, "the call given 0.3 s is there")
    assert store.get_all(within) == {"n": 1}  # still there within the time given
    assert store.get_all(later) == {"n": 1} and store.get_all(other) == {"n": 1}
    assert store.get_all("never-seen") == {}
    # The TTL is not extended: a call given 600 s by a store of 0.5 s goes at the TTL.
    short = make_store(ttl=0.5)
    call = new_call_uuid()
    short.set(call, "n", 1)
    short.expire(call, 600)
    wait_until(lambda: short.get_all(call) == {}, "the call given past its TTL is there")


def test_values_must_be_json(store: StateStore) -> None:
    call = new_call_uuid()
    with pytest.raises(StateError, match="JSON"):
        store.set(call, "bad", object())
    with pytest.raises(StateError):
        store.set(call, "nan", float("nan"))
    assert store.get_all(call) == {}


def test_incr(store: StateStore) -> None:
    call = new_call_uuid()
    assert store.incr(call, "n") == 1
    assert store.incr(call, "n", 5) == 6
    assert store.incr(call, "n", -2) == 4
    assert store.get(call, "n") == 4
    assert isinstance(store.get(call, "n"), int)
    store.set(call, "text", "abc")
    with pytest.raises(StateError, match="integer"):
        store.incr(call, "text")
    store.set(call, "flag", True)
    with pytest.raises(StateError):
        store.incr(call, "flag")
    store.set(call, "m", 10)
    assert store.incr(call, "m") == 11


@pytest.mark.usefixtures("no_background_purge")
def test_entries_expire_and_do_not_come_back(make_store: StoreFactory) -> None:
    short = make_store(ttl=0.3)  # gone at the TTL
    gone = new_call_uuid()
    short.set(gone, "old", 1)
    short.incr(gone, "count")
    wait_until(lambda: short.get_all(gone) == {}, "the call is there past its TTL")
    with pytest.raises(KeyError):
        short.get(gone, "old")
    # Written again after it expired (here by expire(), in a store whose TTL is long, so
    # the new keys stay for the checks): the old keys do not come back.
    store = make_store(ttl=60)
    call = new_call_uuid()
    store.set(call, "old", 1)
    store.incr(call, "count")
    store.expire(call, 0.3)
    wait_until(lambda: store.get_all(call) == {}, "the call is there past its expiry")
    with pytest.raises(KeyError):
        store.get(call, "old")
    store.set(call, "new", 2)
    assert store.get_all(call) == {"new": 2}
    assert store.incr(call, "count") == 1


@pytest.mark.usefixtures("no_background_purge")
def test_remember_once(make_store: StoreFactory) -> None:
    store = make_store()
    key = f"nonce-{uuid.uuid4()}"
    assert store.remember_once(key, 60) is True
    assert store.remember_once(key, 60) is False
    assert store.remember_once(key + "-other", 60) is True
    brief = f"nonce-{uuid.uuid4()}"
    assert store.remember_once(brief, 0.3) is True
    # Forgotten once its window has passed: recorded again (for 60 s, so it is refused
    # again below). A refused try changes nothing, so the polling does not hold it.
    wait_until(lambda: store.remember_once(brief, 60), "the nonce is held past its window")
    assert store.remember_once(brief, 60) is False


@pytest.mark.usefixtures("no_background_purge")
def test_remember_all_records_every_key_and_refuses_any_repeat(make_store: StoreFactory) -> None:
    store = make_store()
    a, b, c = (f"nonce-{uuid.uuid4()}" for _ in range(3))
    assert store.remember_all([a, b], 60) is True
    assert store.remember_all([b], 60) is False  # one key of the pair dropped: still a repeat
    assert store.remember_all([c, a], 60) is False
    assert store.remember_once(c, 60) is False  # recorded although its request was refused
    assert store.remember_all([], 60) is True
    d = f"nonce-{uuid.uuid4()}"
    assert store.remember_all([d, d], 60) is True  # a key twice in one request is one key
    many = [f"nonce-{uuid.uuid4()}" for _ in range(40)]  # more than one SQLite statement
    assert store.remember_all(many, 60) is True
    assert store.remember_all([many[-1]], 60) is False
    # Every key is forgotten once its window has passed, a key recorded by a refused
    # request too: "last", recorded after all of them with the same window, goes no sooner.
    e, f, g, last = (f"nonce-{uuid.uuid4()}" for _ in range(4))
    brief_many = [f"nonce-{uuid.uuid4()}" for _ in range(40)]
    assert store.remember_all([e, f], 0.3) is True
    assert store.remember_all([g, a], 0.3) is False  # "a" is held: refused, "g" recorded
    assert store.remember_all(brief_many, 0.3) is True
    assert store.remember_once(last, 0.3) is True
    wait_until(lambda: store.remember_once(last, 60), "the nonce is held past its window")
    assert store.remember_all([e, f, g, *brief_many], 60) is True


@pytest.mark.usefixtures("no_background_purge")
def test_a_write_keeps_expired_keys_expired(make_store: StoreFactory) -> None:
    store = make_store(ttl=60)
    call, idle = new_call_uuid(), new_call_uuid()
    store.set(call, "old", 1)
    store.set(idle, "old", 1)
    store.expire(call, 0.3)
    store.expire(idle, 0.3)  # later than the call's: gone no sooner
    # Waited for on the idle call, so that the first thing to reach the call's expired
    # key is the write.
    wait_until(lambda: store.get_all(idle) == {}, "the idle call is there past its expiry")
    store.set(call, "new", 2)
    store.set(call, "new", 3)
    assert store.get_all(call) == {"new": 3}


def test_ping(store: StateStore) -> None:
    store.ping()


def test_threads_lose_no_update(store: StateStore) -> None:
    call = new_call_uuid()

    failures: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(50):
                store.incr(call, "n")
        except BaseException as exc:  # reported below: a thread's exception is easy to miss
            failures.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert store.get(call, "n") == 200


def test_ttl_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        MemoryStore(ttl=0)


# --------------------------------------------------------------------------- CallState


def test_call_state_mapping(store: StateStore) -> None:
    call = new_call_uuid()
    state = store.state(call)
    assert isinstance(state, CallState)
    assert len(state) == 0 and list(state) == []
    state["attempts"] = 1
    state["menu"] = {"choice": "sales"}
    assert state["attempts"] == 1
    assert dict(state) == {"attempts": 1, "menu": {"choice": "sales"}}
    assert "menu" in state and "nope" not in state
    assert state.get("nope", "default") == "default"
    assert state.incr("attempts") == 2
    assert state["attempts"] == 2
    del state["menu"]
    with pytest.raises(KeyError):
        del state["menu"]
    assert store.get_all(call) == {"attempts": 2}
    state.update({"x": [1]})
    assert state["x"] == [1]
    state.clear()
    assert len(state) == 0
    assert store.get_all(call) == {}


def test_call_state_reads_a_snapshot_until_refresh(store: StateStore) -> None:
    call = new_call_uuid()
    store.set(call, "a", 1)
    first = CallState(store, call)
    assert first["a"] == 1  # snapshot taken here
    other = CallState(store, call)
    other["b"] = 2
    assert "b" not in first
    first.refresh()
    assert first["b"] == 2


def test_call_state_cached_values_match_stored_values(store: StateStore) -> None:
    state = store.state(new_call_uuid())
    assert len(state) == 0
    state["t"] = (1, 2)
    assert state["t"] == [1, 2]  # what a later webhook would read
    with pytest.raises(StateError):
        state["bad"] = {1, 2}
    assert "bad" not in state


# --------------------------------------------------------------------------- processes


def _incr_worker(kind: str, target: str, call: str, prefix: str, count: int) -> None:
    store: StateStore = (
        SQLiteStore(target) if kind == "sqlite" else RedisStore(target, prefix=prefix)
    )
    for _ in range(count):
        store.incr(call, "n")
    store.close()


def _run_processes(kind: str, target: str, prefix: str = "") -> int:
    call = new_call_uuid()
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_incr_worker, args=(kind, target, call, prefix, 200)) for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    store: StateStore = (
        SQLiteStore(target) if kind == "sqlite" else RedisStore(target, prefix=prefix)
    )
    try:
        value: int = store.get(call, "n")
        return value
    finally:
        store.close()


def test_sqlite_two_processes_lose_no_update(tmp_path: Path) -> None:
    assert _run_processes("sqlite", str(tmp_path / "shared.sqlite3")) == 400


def test_redis_two_processes_lose_no_update(redis_url: str) -> None:
    assert _run_processes("redis", redis_url, prefix=f"test-{uuid.uuid4().hex}:") == 400


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
# Forking a threaded process is the point here (a --preload master): 3.12+ warns about it.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_sqlite_store_inherited_through_fork(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fork.sqlite3")
    call = new_call_uuid()
    store.set(call, "parent", True)  # the parent now holds an open connection
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=lambda: [store.incr(call, "n") for _ in range(100)])]
    procs.append(ctx.Process(target=lambda: [store.incr(call, "n") for _ in range(100)]))
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert store.get_all(call) == {"parent": True, "n": 200}
    store.close()


# --------------------------------------------------------------------------- SQLite


def test_sqlite_file_shared_between_store_instances(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    one, two = SQLiteStore(path), SQLiteStore(str(path))
    call = new_call_uuid()
    one.set(call, "k", "v")
    assert two.get(call, "k") == "v"
    assert two.remember_once("nonce", 60) is True
    assert one.remember_once("nonce", 60) is False
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    one.close()
    two.close()


def test_sqlite_connections_die_with_their_threads(tmp_path: Path) -> None:
    # A threaded server may use a new thread per request: connections must not pile up.
    store = SQLiteStore(tmp_path / "threads.sqlite3")
    call = new_call_uuid()
    for _ in range(30):
        thread = threading.Thread(target=store.incr, args=(call, "n"))
        thread.start()
        thread.join()
    gc.collect()
    assert len(store._all) <= 2
    assert store.get(call, "n") == 30
    store.close()
    assert len(store._all) == 0


def test_sqlite_unwritable_location_is_a_state_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "state.sqlite3"
    with pytest.raises(StateError) as info:
        SQLiteStore(missing)
    assert str(missing) in str(info.value)
    assert "directory" in str(info.value)


def test_sqlite_corrupt_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "not-a-db.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="SQLite"):
        SQLiteStore(path)


def test_sqlite_waits_for_another_connections_write_lock(tmp_path: Path) -> None:
    """No SQLite busy handler: the store retries itself while another process writes."""
    path = tmp_path / "busy.sqlite3"
    store = SQLiteStore(path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    threading.Timer(0.2, other.execute, args=("COMMIT",)).start()
    store.set(new_call_uuid(), "k", 1)  # waits, then succeeds
    other.close()
    store.close()


def test_sqlite_checkpoints_in_the_background_and_stops_on_close(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.sqlite3"
    store = SQLiteStore(path)
    for i in range(200):
        store.set(new_call_uuid(), "k", i)
    wal = Path(f"{path}-wal")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # a checkpoint resets the log for the next writer
        before = wal.stat().st_size
        time.sleep(0.6)
        store.set(new_call_uuid(), "k", 0)
        if wal.stat().st_size <= before:
            break
    checkpointer = store._checkpointer
    assert checkpointer is not None
    store.close()
    assert checkpointer.stopped.is_set() and not checkpointer._thread.is_alive()


def test_sqlite_in_memory_refused() -> None:
    with pytest.raises(ConfigurationError, match="memory://"):
        SQLiteStore(":memory:")


def _counts(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        calls = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        nonces = conn.execute("SELECT count(*) FROM nonces").fetchone()[0]
    finally:
        conn.close()
    return calls, nonces


def test_sqlite_expired_rows_purged_in_batches_live_rows_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from answerkit import _sqlite_upkeep as upkeep

    monkeypatch.setattr(upkeep, "PURGE_BATCH", 7)  # many batches, a partial last one
    path = tmp_path / "purge.sqlite3"
    short = SQLiteStore(path, ttl=0.2)
    long = SQLiteStore(path, ttl=600)
    for i in range(40):
        short.set(f"old-{i:02d}", "k", i)
        short.set(f"old-{i:02d}", "j", i)
        short.remember_once(f"n-old-{i}", 0.2)
    for i in range(5):
        long.set(f"live-{i}", "k", i)
        long.remember_once(f"n-live-{i}", 600)
    time.sleep(0.4)
    assert long.purge_expired() == 40 * 2 + 40
    assert _counts(path) == (5, 5)
    assert long.get_all("live-3") == {"k": 3}
    assert long.remember_once("n-live-3", 600) is False  # still remembered
    assert long.remember_once("n-old-3", 600) is True  # forgotten once expired
    short.close()
    long.close()


def test_sqlite_purge_reaches_the_smallest_keys(tmp_path: Path) -> None:
    from answerkit._sqlite_upkeep import purge_expired

    path = tmp_path / "state.sqlite3"
    store = SQLiteStore(path, ttl=0.01)
    store.set("", "", 1)
    store.set("c-1", "k", 1)
    store.remember_once("", 0.01)
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert purge_expired(conn, now=time.time() + 3600) == 3
    finally:
        conn.close()
    assert _counts(path) == (0, 0)


def test_sqlite_transaction_left_open_is_rolled_back_on_next_use(tmp_path: Path) -> None:
    """An exception striking between two statements (the deadline's SIGALRM) can leave a
    thread's connection inside a transaction, holding the file's write lock."""
    path = tmp_path / "leak.sqlite3"
    # A stuck lock fails fast.
    a, b = SQLiteStore(path, busy_timeout=0.3), SQLiteStore(path, busy_timeout=0.3)
    a.set("c", "k", 1)
    a._connect().execute("BEGIN IMMEDIATE")  # as if interrupted inside a transaction
    assert a.get_all("c") == {"k": 1}  # the thread's next use rolls it back
    b.set("c", "k", 2)  # so another connection can write (else StateError after 0.3 s)
    assert a.get_all("c") == {"k": 2}
    a.close()
    b.close()


def test_sqlite_background_thread_purges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from answerkit import _sqlite_upkeep as upkeep

    monkeypatch.setattr(upkeep, "_PURGE_INTERVAL", 0.2)
    monkeypatch.setattr(upkeep, "CHECKPOINT_INTERVAL", 0.05)
    path = tmp_path / "bg.sqlite3"
    store = SQLiteStore(path, ttl=0.1)
    store.set(new_call_uuid(), "k", 1)
    store.remember_once("n", 0.1)
    deadline = time.monotonic() + 10
    while _counts(path) != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _counts(path) == (0, 0)
    store.close()


def test_sqlite_files_of_the_earlier_schema_keep_working(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE calls (call_uuid TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
        "expires_at REAL NOT NULL, PRIMARY KEY (call_uuid, key));"
        "CREATE INDEX calls_expires ON calls (expires_at);"
        "CREATE TABLE nonces (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);"
        "CREATE INDEX nonces_expires ON nonces (expires_at);"
    )
    conn.close()
    store = SQLiteStore(path, ttl=60)
    store.set("c", "k", 1)
    assert store.incr("c", "n") == 1 and store.get_all("c") == {"k": 1, "n": 1}
    assert store.remember_once("x", 60) and not store.remember_once("x", 60)
    assert store.purge_expired() == 0  # nothing has expired yet
    with patch("time.time", return_value=time.time() + 61):  # past the TTL and the window
        assert store.purge_expired() == 3
    assert _counts(path) == (0, 0)
    store.close()


# --------------------------------------------------------------------------- Redis


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.timeout(15)
def test_redis_unreachable_fails_fast_with_state_error() -> None:
    port = _closed_port()
    store = RedisStore(f"redis://:hunter2secret@127.0.0.1:{port}/0")
    for operation in (
        lambda: store.get_all("c"),
        lambda: store.set("c", "k", 1),
        lambda: store.incr("c", "k"),
        lambda: store.remember_once("n", 10),
        store.ping,
    ):
        with pytest.raises(StateError) as info:
            operation()
        message = str(info.value)
        assert "hunter2secret" not in message
        assert f"redis://:***@127.0.0.1:{port}/0" in message
        assert "Check that Redis is running" in message
    store.close()


def test_redis_wrong_password_is_a_state_error(redis_url: str) -> None:
    # With no password configured Redis ignores a bare password, so name a user that does
    # not exist: the server then answers WRONGPASS.
    bad = redis_url.replace("redis://", "redis://nobody:wrong-password-123@")
    store = RedisStore(bad)
    with pytest.raises(StateError) as info:
        store.ping()
    assert "wrong-password-123" not in str(info.value)
    store.close()


def test_redis_layout(redis_url: str) -> None:
    import redis

    store = RedisStore(redis_url, ttl=100)
    call = new_call_uuid()
    store.set(call, "n", 3)
    store.incr(call, "n")
    assert store.remember_once("abc", 50)
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    assert raw.hgetall(f"answerkit:call:{call}") == {"n": "4"}
    assert 0 < raw.pttl(f"answerkit:call:{call}") <= 100_000
    assert 0 < raw.pttl("answerkit:nonce:abc") <= 50_000
    raw.close()
    store.close()


def test_redis_invalid_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        RedisStore("redis://127.0.0.1:notaport/0")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:pw@host/0", "redis://user:***@host/0"),
        ("redis://pw@host/0", "redis://***@host/0"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("unix:///tmp/r.sock?db=1&password=pw", "unix:///tmp/r.sock?db=1&password=***"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert _redact_url(url) == expected


# --------------------------------------------------------------------------- open_store


def test_a_sqlite_directory_that_is_missing_is_told_when_the_flow_is_mounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Found only at the first webhook, every call got the apology (and every Hangup a 503).
    # Told, not refused: an app factory may make the directory after the flow is built,
    # and the local commands (check in CI) stand in memory state.
    from answerkit import CallFlow
    from answerkit._local_run import local_run

    missing = tmp_path / "not-made-yet"
    url = f"sqlite:///{missing}/state.db"

    def mounted() -> str:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="answerkit"):
            CallFlow("f", verify=False, state=url).create_app()
        return caplog.text

    assert "not-made-yet' does not exist, so every webhook will get the fallback" in mounted()
    with local_run():
        assert "does not exist" not in mounted()
    missing.mkdir()
    assert "not-made-yet" not in mounted()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert "is not writable by this user" in mounted()
    monkeypatch.undo()
    # A symlink's target directory is the one SQLite writes in (its -wal and -shm).
    (tmp_path / "real").mkdir()
    (missing / "state.db").symlink_to(tmp_path / "real" / "state.db")
    (tmp_path / "real").rmdir()
    assert "real' does not exist" in mounted()


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.chdir(tmp_path)
    default = open_store(None)
    assert isinstance(default, SQLiteStore)
    assert (tmp_path / "answerkit-state.sqlite3").exists()
    default.close()
    relative = open_store("sqlite:///rel.sqlite3")
    # Made absolute when opened (a later chdir must not move the file).
    assert isinstance(relative, SQLiteStore)
    assert relative.path == os.path.join(os.getcwd(), "rel.sqlite3")
    relative.close()
    absolute = open_store(f"sqlite:///{tmp_path}/abs.sqlite3", ttl=60)
    assert isinstance(absolute, SQLiteStore) and absolute.path == f"{tmp_path}/abs.sqlite3"
    assert absolute.ttl == 60
    absolute.close()
    assert isinstance(open_store("memory://"), MemoryStore)
    redis_store = open_store(redis_url)
    assert isinstance(redis_store, RedisStore)
    redis_store.ping()
    redis_store.close()
    with pytest.raises(ConfigurationError, match="memory://"):
        open_store("postgres://user:secret@db/x")
    with pytest.raises(ConfigurationError) as info:
        open_store("mongodb://user:secret@db/x")
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigurationError):
        open_store("sqlite:///:memory:")


def test_redis_client_must_decode_responses(redis_url: str) -> None:
    # A client returning bytes keys would never match the str keys handlers read.
    import redis

    raw = redis.Redis.from_url(redis_url)
    with pytest.raises(ConfigurationError, match="decode_responses=True"):
        RedisStore(redis_url, client=raw)
    raw.close()
    decoding = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisStore(redis_url, client=decoding, prefix=f"test-{uuid.uuid4().hex}:")
    call = new_call_uuid()
    store.set(call, "visits", 1)
    assert store.state(call).get("visits") == 1
    store.close()


def test_a_counter_redis_refuses_for_want_of_memory_is_a_store_failure(redis_url: str) -> None:
    # Out of memory (or a read-only replica) is the store failing, to be sent again; only
    # a counter that holds no integer, or would pass 64 bits, is the caller's mistake.
    import redis

    from answerkit.errors import StateValueError

    admin = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisStore(redis_url, prefix=f"t-{uuid.uuid4().hex}:")
    call = new_call_uuid()
    old = admin.config_get("maxmemory")["maxmemory"]
    admin.config_set("maxmemory", 1)
    try:
        with pytest.raises(StateError, match="OutOfMemoryError") as info:
            store.incr(call, "hangups")
        assert not isinstance(info.value, StateValueError)
    finally:
        admin.config_set("maxmemory", old)
        admin.close()
    store.set(call, "name", "x")
    with pytest.raises(StateValueError, match="not an integer"):
        store.incr(call, "name")
    store.close()


def test_a_process_exits_cleanly_while_daemon_threads_use_the_sqlite_store(
    tmp_path: Path,
) -> None:
    # An abandoned handler thread or a warm transfer's move still writing at exit: the
    # exit closed their connections under them, and the process died with SIGSEGV.
    script = f"""
import threading, time
from answerkit.state import SQLiteStore
store = SQLiteStore({str(tmp_path / "exit.sqlite3")!r})
def write(k):
    while True:
        store.set(f"c{{k}}", "k", 1)
        store.incr(f"c{{k}}", "n")
for k in range(4):
    threading.Thread(target=write, args=(k,), daemon=True).start()
time.sleep(0.3)
"""
    codes = [
        subprocess.run([sys.executable, "-c", script], timeout=60, check=False).returncode
        for _ in range(3)
    ]
    assert codes == [0, 0, 0]


def test_a_redis_url_asking_for_bytes_still_gets_text(redis_url: str) -> None:
    # redis-py keeps an unknown URL option as text, and "false" is true to its encoder:
    # the store still reads back what it wrote.
    store = RedisStore(f"{redis_url}?decode_responses=false", prefix=f"t-{uuid.uuid4().hex}:")
    call = new_call_uuid()
    store.set(call, "visits", 1)
    assert store.get(call, "visits") == 1
    store.close()


def test_a_redis_url_turning_decode_responses_off_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A redis-py that reads the option as a boolean would let the URL win over the store's
    # keyword, and every state read would miss (bytes keys): refused, as client= is.
    import redis.connection

    parsers = dict(redis.connection.URL_QUERY_ARGUMENT_PARSERS)
    parsers["decode_responses"] = redis.connection.to_bool
    monkeypatch.setattr(redis.connection, "URL_QUERY_ARGUMENT_PARSERS", parsers)
    with pytest.raises(ConfigurationError, match="turns decode_responses off: remove it"):
        RedisStore("redis://127.0.0.1:6379/0?decode_responses=false")
    RedisStore("redis://127.0.0.1:6379/0?decode_responses=true").close()


def test_a_store_of_your_own_without_expire_clears_at_hangup() -> None:
    # expire() came later than the store contract: a store written before it still works,
    # and forgets the call at once (sooner than any linger, which the contract allows).
    class DictStore(MemoryStore):
        pass

    assert "expire" not in StateStore.__abstractmethods__  # such a store can be created
    DictStore.expire = StateStore.expire  # type: ignore[method-assign]
    store = DictStore()
    store.set("c-1", "n", 1)
    store.expire("c-1", 300)
    assert store.get_all("c-1") == {}


def test_redis_expire_never_passes_the_ttl(redis_url: str) -> None:
    import redis

    store = RedisStore(redis_url, ttl=100, prefix=f"test-{uuid.uuid4().hex}:")
    call = new_call_uuid()
    store.set(call, "n", 1)
    store.expire(call, float("inf"))  # no OverflowError; the TTL stands
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    assert 0 < raw.pttl(f"{store.prefix}call:{call}") <= 100_000
    raw.close()
    store.close()


def _locks_held(pid: int, path: str) -> list[str]:
    """The POSIX locks process ``pid`` holds on ``path`` (from /proc/locks)."""
    inode = os.stat(path).st_ino
    return [line for line in Path("/proc/locks").read_text().splitlines()
            if line.split()[4] == str(pid) and line.split()[5].endswith(f":{inode}")]  # fmt: skip


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="reads /proc/locks")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+: fork with threads
def test_a_child_of_a_process_that_opened_the_store_takes_its_own_locks(tmp_path: Path) -> None:
    # gunicorn --preload: the store is opened in the master. A child that inherited the
    # master's SQLite connections would never take the file's locks itself, so another
    # process could reset the WAL under it once the master is gone.
    path = str(tmp_path / "preload.sqlite3")
    store = SQLiteStore(path)
    store.set("c", "k", 1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)
        try:
            store.set("c", "child", 2)
            os.write(write, b"x")
            time.sleep(2)
        finally:
            os._exit(0)
    os.close(write)  # so a child that died early reads as EOF, not a hang
    try:
        assert os.read(read, 1) == b"x"
        assert _locks_held(pid, path), "the child holds no lock on the database file"
        assert _locks_held(pid, path + "-shm"), "the child holds no lock on the -shm file"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
    assert store.get_all("c") == {"k": 1, "child": 2}  # and the parent goes on using it
    store.close()


FORKING_THREADS = """
import os, sys, threading
from answerkit.state_sqlite import SQLiteStore

store = SQLiteStore(sys.argv[1])
store.set("c", "k", 1)
done = [0, 0]

def forker(i):
    for _ in range(300):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        done[i] += 1

threads = [threading.Thread(target=forker, args=(i,), daemon=True) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join(20)
# The checkpoint thread itself holds the lock for a moment every round: only a lock that
# stays held for seconds was left behind by a fork.
stuck = not store._checkpointer.busy.acquire(timeout=10)
print(done, stuck, flush=True)
os._exit(0)
"""


def test_two_threads_forking_at_once_with_a_store_open(tmp_path: Path) -> None:
    # Both forks' hooks once shared one list: a checkpoint lock stayed held for good and
    # the next fork hung. In a fresh interpreter, as a server process would be.
    ran = subprocess.run(
        [sys.executable, "-c", FORKING_THREADS, str(tmp_path / "forks.sqlite3")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ran.stdout.strip() == "[300, 300] False", ran.stdout + ran.stderr


@pytest.fixture
def deleted_under_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQLiteStore]:
    """A store (checking its file at every operation) whose file, with its -wal and -shm,
    an operator has just deleted."""
    import answerkit._sqlite_connections as sqlite_connections

    monkeypatch.setattr(sqlite_connections, "FILE_CHECK_INTERVAL", 0.0)
    store = SQLiteStore(tmp_path / "state.sqlite3")
    store.set("c", "k", 1)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    yield store
    store.close()


def test_a_deleted_state_file_is_noticed_and_recreated(
    deleted_under_store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    # Processes writing on into a deleted file while new ones create a fresh one would split
    # state and replay records between two files without a word.
    old = deleted_under_store
    old.set("c", "k", 2)  # noticed: written to the file now at the path
    assert "deleted or replaced" in caplog.text
    assert Path(old.path).exists()
    new = SQLiteStore(old.path)
    assert new.get_all("c") == {"k": 2}  # both share the one file again
    new.close()


def test_new_threads_find_the_tables_of_a_recreated_file(deleted_under_store: SQLiteStore) -> None:
    # Only the threads that noticed the deletion used to create the tables again; a thread
    # opening its first connection afterwards found an empty file.
    store = deleted_under_store
    errors: list[BaseException] = []

    def fresh_thread() -> None:
        try:
            store.set("c", "k", 2)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=fresh_thread)
    thread.start()
    thread.join()
    assert errors == [] and store.get_all("c") == {"k": 2}


# --------------------------------------------------------------------------- configuration


def ways_to_open(url: str) -> list[Callable[[], object]]:
    """Every way a state URL reaches a store: opened, checked, and given to a flow (which
    checks it when made)."""
    from answerkit.app import CallFlow
    from answerkit.state_urls import check_store_url

    return [
        lambda: open_store(url),
        lambda: check_store_url(url),
        lambda: CallFlow(
            "s", public_url="https://voice.example.com", auth_token="t" * 20, state=url
        ),
    ]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("socket_timout=0.5", "socket_timout: did you mean socket_timeout?"),
        ("ttl=60&helth_check_interval=5", "did you mean health_check_interval?"),
        ("ssl_cert_reqs=none", "ssl_cert_reqs is a TLS option, for rediss:// URLs only"),
        ("single_connection_client=1", "single_connection_client: no connection option"),
        ("busy_timeout=1", "busy_timeout is for sqlite URLs"),
        ("protocol=4", "protocol must be either 2 or 3"),
    ],
)
def test_a_redis_url_option_redis_py_cannot_use_is_refused_up_front(
    redis_url: str, query: str, says: str
) -> None:
    # Accepted when the flow was made, then every webhook failed with a TypeError wrapped
    # in a StateError ("unexpected keyword argument"), answered with the apology.
    url = redis_url.replace("redis://", "redis://:s3cretPW@") + f"?{query}"
    for attempt in [*ways_to_open(url), lambda: RedisStore(url)]:
        with pytest.raises(ConfigurationError, match=re.escape(says)) as info:
            attempt()
        assert "s3cretPW" not in str(info.value)


@pytest.mark.parametrize(
    ("query", "says", "hidden"),
    [
        ("pasword=hunter2xx", "pasword: did you mean password?", "hunter2xx"),
        ("connection_class=x", "has an option redis-py refuses", "connection_class=x"),
    ],
)
def test_a_refused_redis_option_shows_no_value(
    redis_url: str, query: str, says: str, hidden: str
) -> None:
    # A misspelt password parameter is no less a secret: its value was in the message;
    # a connection_class that is no class raised AttributeError.
    with pytest.raises(ConfigurationError, match=re.escape(says)) as info:
        RedisStore(f"{redis_url}?{query}")
    assert hidden not in str(info.value)


def test_a_redis_url_refused_for_a_bad_value_shows_no_query(redis_url: str) -> None:
    # Only the unknown-option message left the query out: a value redis-py refused was
    # shown, whatever its name.
    with pytest.raises(ConfigurationError) as info:
        RedisStore(f"{redis_url}?socket_timeout=s3cr3tVAL")
    assert "s3cr3tVAL" not in str(info.value)


@pytest.mark.parametrize("prefix", ["{}app:", "app}:", "a{}b{c}:"])
def test_a_redis_prefix_whose_braces_make_no_hash_tag_is_refused(prefix: str) -> None:
    # A call's key and its receipt could not share a cluster slot: del, pop, setdefault
    # and incr failed with CROSSSLOT.
    with pytest.raises(ConfigurationError, match="hash tag"):
        RedisStore("redis://127.0.0.1:1/0", prefix=prefix)
    RedisStore("redis://127.0.0.1:1/0", prefix="{answerkit}:").close()
    # A "}" before the first "{" is text to Redis: the tag here is "y" (it was refused).
    RedisStore("redis://127.0.0.1:1/0", prefix="x}{y}:").close()


def test_a_prefix_with_a_brace_before_its_tag_keeps_every_key_in_the_tags_slot(
    redis_url: str,
) -> None:
    from redis.crc import key_slot

    from answerkit.state_redis import _beside

    prefix = f"x}}{{t{uuid.uuid4().hex[:6]}}}:"
    store = RedisStore(redis_url, prefix=prefix)
    try:
        call = new_call_uuid()
        store.set(call, "k", 1)
        assert store.take(call, "k") == 1  # a script over the call's key and its receipt
        assert store.incr(call, "n") == 1
        name = prefix + call
        assert key_slot(name.encode()) == key_slot(_beside(prefix, name, ":r").encode())
    finally:
        store.close()


def test_redis_url_options_redis_py_knows_still_work(redis_url: str) -> None:
    store = open_store(f"{redis_url}?health_check_interval=5&client_name=ak&socket_timeout=2")
    try:
        call = new_call_uuid()
        store.set(call, "k", 1)
        assert store.get_all(call) == {"k": 1}
    finally:
        store.close()


def test_redis_take_run_twice_after_a_lost_reply_answers_the_same(redis_url: str) -> None:
    # redis-py runs a command again when its reply is lost: the second run must report
    # what the first took, not "nothing there".
    import redis

    from answerkit.state_redis import _TAKE_ONCE

    store = RedisStore(redis_url, prefix=f"test-{uuid.uuid4().hex}:")
    call = new_call_uuid()
    store.set(call, "k", {"a": 1})
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    name, receipt = f"{store.prefix}call:{call}", f"{store.prefix}take:once"
    try:
        first = raw.eval(_TAKE_ONCE, 2, name, receipt, "k")
        assert raw.eval(_TAKE_ONCE, 2, name, receipt, "k") == first == '{"a":1}'
        assert store.get_all(call) == {}
        assert raw.eval(_TAKE_ONCE, 2, name, f"{store.prefix}take:other", "k") == ""
    finally:
        raw.close()
        store.close()


@pytest.mark.parametrize("tag", ["", "answerkit:{tenant-7}:", "weird}:"])
def test_redis_receipts_share_their_calls_cluster_slot(tag: str) -> None:
    # A script's keys must share a slot in Redis Cluster: take's receipt did not, and
    # del and pop failed there with CROSSSLOT.
    from redis.crc import key_slot

    from answerkit.state_redis import _beside

    name = f"{tag}call:CA-{uuid.uuid4()}"
    receipt = _beside(tag, name, ":take:abc")
    assert receipt != name and receipt.startswith(tag)
    if "}" not in tag or "{" in tag:
        assert key_slot(receipt.encode()) == key_slot(name.encode())


def test_redis_set_if_absent_run_twice_after_a_lost_reply_writes_once(redis_url: str) -> None:
    # Re-run after a lost reply, it wrote again a value another worker had taken between
    # the two runs: one claim, consumed twice.
    import redis

    from answerkit.state_redis import _SET_IF_ABSENT

    store = RedisStore(redis_url, prefix=f"test-{uuid.uuid4().hex}:")
    call = new_call_uuid()
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    name = f"{store.prefix}call:{call}"
    receipt = "{" + name + "}:claim:once"
    try:
        assert raw.eval(_SET_IF_ABSENT, 2, name, receipt, "k", '"A"', 60000) == '"A"'
        assert store.take(call, "k") == "A"  # another worker takes it
        assert raw.eval(_SET_IF_ABSENT, 2, name, receipt, "k", '"A"', 60000) == '"A"'
        assert store.get_all(call) == {}  # not written again
    finally:
        raw.close()
        store.close()


def test_redis_setdefault_of_a_key_held_leaves_no_copy_behind(redis_url: str) -> None:
    # Every setdefault of a key held left a 60 s copy of its value: a handler's reads of a
    # large value filled a Redis at its maxmemory.
    import redis

    store = RedisStore(redis_url, prefix=f"test-{uuid.uuid4().hex}:")
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    call = new_call_uuid()
    try:
        state = store.state(call)
        assert state.setdefault("big", "x" * 1000) == "x" * 1000  # written: one receipt
        before = raw.keys(f"*{store.prefix}*")
        for _ in range(5):
            assert state.setdefault("big", "y") == "x" * 1000
        assert raw.keys(f"*{store.prefix}*") == before and len(before) == 2
        assert all(raw.get(k) in (None, "1") for k in before if ":claim:" in k)
    finally:
        raw.close()
        store.close()


def test_sqlite_relative_path_with_the_working_directory_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(ConfigurationError, match="working directory it would be taken from"):
        SQLiteStore("state.sqlite3")
    # The flow's own check of the directory raised FileNotFoundError when it was mounted.
    from answerkit.app import CallFlow

    flow = CallFlow(
        "gone", public_url="https://voice.example.com", auth_token="t" * 20, state="sqlite:///s.db"
    )
    flow.dispatcher()


@pytest.mark.parametrize("path", ["", "   ", "\t\n"])
def test_sqlite_empty_path_refused(path: str) -> None:
    # SQLite opened a private temporary database for "": one per thread, so each webhook
    # saw a state of its own and a replayed webhook passed as new.
    with pytest.raises(ConfigurationError, match="needs a file path"):
        SQLiteStore(path)


def test_sqlite_relative_path_is_fixed_when_the_store_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each new thread's connection opened the path against the directory of the moment:
    # after a chdir, the next webhook found an empty state in another file.
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    stores = [SQLiteStore("rel.sqlite3"), open_store(None)]
    try:
        for store in stores:
            store.set("c1", "menu", "sales")
        monkeypatch.chdir(second)
        seen: list[dict[str, object]] = []
        thread = threading.Thread(target=lambda: seen.extend(s.get_all("c1") for s in stores))
        thread.start()
        thread.join()
        assert seen == [{"menu": "sales"}, {"menu": "sales"}]
        assert list(second.iterdir()) == []
        assert isinstance(stores[0], SQLiteStore)
        assert stores[0].path == str(first / "rel.sqlite3")
        assert str(first / "rel.sqlite3") in repr(stores[0])
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize(
    "url",
    ["sqlite:////tmp/answerkit-%00.db", "sqlite:///rel%00.db", "sqlite:////tmp/a%00b.db?ttl=5"],
)
def test_a_nul_byte_in_a_sqlite_url_or_path_is_a_configuration_error(url: str) -> None:
    # os.path and SQLite raised a bare ValueError ("embedded null byte") when the flow
    # was mounted, or on the first webhook.
    from answerkit.state_urls import sqlite_directory_problem

    for attempt in [*ways_to_open(url), lambda: sqlite_directory_problem(url)]:
        with pytest.raises(ConfigurationError, match="NUL byte"):
            attempt()
    with pytest.raises(ConfigurationError, match="NUL byte"):
        SQLiteStore("/tmp/answerkit-\x00.db")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://", "names no file"),
        ("sqlite:///", "names no file"),
        ("sqlite:///%20?ttl=5", "names no file"),
        ("sqlite:////tmp/", "names no file"),
        ("sqlite:///./", "names no file"),
        ("sqlite:////", "names no file"),
        ("sqlite:////tmp", "names a directory, not a file"),
        ("sqlite:///:memory:", "in-memory SQLite database is not shared"),
        ("sqlite:///file::memory:", "in-memory SQLite database is not shared"),
    ],
)
def test_a_sqlite_url_naming_no_file_is_refused_by_every_way_in(
    url: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from answerkit.app import CallFlow

    # Given to a flow, ':memory:' was taken, and every webhook (the Hangup's too) got the
    # apology: each thread's connection saw an empty database of its own. 'sqlite://'
    # fell back to a file in the working directory, where an unset variable leaves it.
    for attempt in ways_to_open(url):
        with pytest.raises(ConfigurationError, match=says):
            attempt()
    monkeypatch.setenv("ANSWERKIT_STATE_URL", url)
    with pytest.raises(ConfigurationError, match=says):
        CallFlow("s", public_url="https://voice.example.com", auth_token="t" * 20)


def test_a_sqlite_store_path_naming_a_directory_is_refused(tmp_path: Path) -> None:
    for path in (f"{tmp_path}/answerkit/", str(tmp_path)):
        with pytest.raises(ConfigurationError, match="names a directory, not a file"):
            SQLiteStore(path)
    assert list(tmp_path.iterdir()) == []  # no file named like the directory was made


def test_sqlite_busy_timeout_defaults_below_the_status_callback_limit(tmp_path: Path) -> None:
    # 5 s, longer than the 3 s Vobiz waits for a status callback (spec §2.12).
    from answerkit import state_sqlite

    store = SQLiteStore(tmp_path / "d.sqlite3")
    try:
        assert store.busy_timeout == state_sqlite.BUSY_TIMEOUT == 2.0
        assert "busy_timeout=2.0" in repr(store)
    finally:
        store.close()


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), "2", None, True])
def test_sqlite_busy_timeout_must_be_a_positive_finite_number(
    tmp_path: Path, seconds: object
) -> None:
    with pytest.raises(ConfigurationError, match="busy_timeout"):
        SQLiteStore(tmp_path / "b.sqlite3", busy_timeout=seconds)  # type: ignore[arg-type]


def test_sqlite_busy_timeout_is_taken_from_the_url(tmp_path: Path) -> None:
    from answerkit.state_urls import check_store_url

    store = open_store(f"sqlite:///{tmp_path}/u.sqlite3?busy_timeout=0.25&ttl=60")
    try:
        assert isinstance(store, SQLiteStore)
        assert (store.busy_timeout, store.ttl) == (0.25, 60.0)
        assert store.path == f"{tmp_path}/u.sqlite3"
    finally:
        store.close()
    for bad in ("busy_timeout=0", "busy_timeout=abc", "busy_timeout=", "busy_timeout=inf"):
        with pytest.raises(ConfigurationError, match=r"\?busy_timeout= must be"):
            check_store_url(f"sqlite:///{tmp_path}/u.sqlite3?{bad}")
    with pytest.raises(ConfigurationError, match="no query parameter"):
        open_store("memory://?busy_timeout=1")


@pytest.mark.timeout(30)
def test_sqlite_busy_timeout_reaches_the_retry_loop(tmp_path: Path) -> None:
    """A lock held past ``busy_timeout`` fails the write with StateError (the store gave
    up; how fast is not asserted here)."""
    path = tmp_path / "held.sqlite3"
    store = open_store(f"sqlite:///{path}?busy_timeout=0.2")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # held for the whole test
        with pytest.raises(StateError, match="locked") as caught:
            store.set(new_call_uuid(), "k", 1)
        # The fix it names is the lock's, not the directory's or the disk's.
        assert "held the file's write lock for over 0.2 s (busy_timeout)" in str(caught.value)
        assert "?busy_timeout=SECONDS" in str(caught.value)
        assert "writable by every worker" not in str(caught.value)
        with pytest.raises(StateError, match="locked"):
            store.state(new_call_uuid()).setdefault("k", 1)
    finally:
        other.close()
        store.close()


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_sqlite_state_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    # They hold the calls' state (a CRM record given to a WarmTransfer, say); made as the
    # umask allowed, they were readable by every local user.
    import stat

    store = SQLiteStore(str(tmp_path / "private.sqlite3"))
    try:
        store.set(new_call_uuid(), "k", 1)
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in tmp_path.iterdir()}
    finally:
        store.close()
    assert set(modes) >= {"private.sqlite3", "private.sqlite3-wal", "private.sqlite3-shm"}
    assert set(modes.values()) == {0o600}, modes
