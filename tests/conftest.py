"""Shared fixtures."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from answerkit.state import DEFAULT_TTL, MemoryStore, RedisStore, SQLiteStore, StateStore


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    """Wait until ``proc`` (a server it started) accepts connections on ``port``; fail the
    test, with the server's error output, if it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    errors = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    pytest.fail(f"{what} did not start: {errors}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Stop a server the test started: terminated, killed if it does not end in time."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real, throwaway ``redis-server`` on loopback (started once per test run).

    Fails, rather than skips, when ``redis-server`` is missing: the Redis backend must be
    tested for real (CI installs it with apt-get).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not on PATH: install it (apt-get install redis-server)")
    workdir: Path = tmp_path_factory.mktemp("redis")
    for _attempt in range(3):  # another process may grab the free port before redis binds it
        port = free_port()
        log = (workdir / f"redis-{port}.log").open("wb")
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            if _redis_answers(port):
                try:
                    yield f"redis://127.0.0.1:{port}/0"
                finally:
                    stop_process(proc, timeout=5)
                    log.close()
                return
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()
    pytest.fail(f"redis-server did not start; see the logs in {workdir}")


# --------------------------------------------------------------------------- state stores

StoreFactory = Callable[..., StateStore]


def new_call_uuid() -> str:
    """A CallUUID of its own, so that tests sharing a store never meet."""
    return str(uuid.uuid4())


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Builds stores of one backend (``ttl`` may be passed); all are closed afterwards."""
    made: list[StateStore] = []
    kind = request.param
    redis_url = request.getfixturevalue("redis_url") if kind == "redis" else ""
    prefix = f"test-{uuid.uuid4().hex}:"

    def factory(ttl: float = DEFAULT_TTL) -> StateStore:
        store: StateStore
        if kind == "memory":
            store = MemoryStore(ttl=ttl)
        elif kind == "sqlite":
            store = SQLiteStore(tmp_path / "state.sqlite3", ttl=ttl)
        else:
            store = RedisStore(redis_url, prefix=prefix, ttl=ttl)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> StateStore:
    """One store of each backend in turn (memory, SQLite, a real Redis)."""
    return make_store()


@pytest.fixture
def runner_timer_paused() -> Iterator[None]:
    """The test runner's own timeout (pytest-timeout's SIGALRM timer) paused for the test.

    A flow's deadline uses SIGALRM in the main thread only while no other real-time timer
    runs (it would cancel it): with pytest-timeout's running, a test meant for the SIGALRM
    path would take the thread path and pass without testing it.
    """
    remaining, interval = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        if remaining:
            signal.setitimer(signal.ITIMER_REAL, remaining, interval)


# Expiry without timing assertions: what must stay is given a long TTL (or expiry) and is
# checked well inside it; what must go is given a short one and polled for until it has
# gone, with a generous bound that only something that never expires reaches.


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` until it is true; fail with ``what`` if it never is."""
    give_up = time.monotonic() + timeout
    while not check():
        if time.monotonic() > give_up:
            pytest.fail(f"{what}: still not so after {timeout:g} s")
        time.sleep(0.02)


@pytest.fixture
def no_background_purge(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's background thread deletes expired rows (its first round within a second),
    which would hide how the store itself treats the expired rows it still holds (never
    revived, a nonce recorded afresh): off for the tests that check that."""
    from answerkit import _sqlite_upkeep

    monkeypatch.setattr(_sqlite_upkeep, "purge_expired", lambda conn, now=None: 0)
