"""Threaded serving: real gunicorn with gthread workers (``-w 2 --threads 4``).

There the handler deadline cannot use SIGALRM (requests run off the main thread), so each
handler runs on one of the flow's daemon handler threads (answerkit/_handler_threads.py).
These tests drive many requests at once and assert on counts and state, never on speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import free_port, wait_for_port

from answerkit import parse, sign

TOKEN = "gthread-token-0123456789"

APP = """
import os, threading, time
from flask import jsonify
from answerkit import CallFlow, Hangup, Response, Speak

flow = CallFlow("threaded", auth_token=os.environ["VOBIZ_AUTH_TOKEN"],
                public_url=os.environ["ANSWERKIT_PUBLIC_URL"],
                state=os.environ["ANSWERKIT_STATE_URL"], deadline=0.5, hangup_linger=0)

@flow.route("/answer")
def answer(call):
    visits = call.state.incr("visits")
    return Response(Speak(f"visit {visits} pid {os.getpid()}"))

@flow.route("/peek")
def peek(call):
    return Response(Speak("state " + ",".join(sorted(call.state))))

@flow.route("/slow")
def slow(call):
    # Past the deadline, then a write: the caller was already told to hang up.
    time.sleep(float(call.query.get("sleep", "1")))
    try:
        call.state["late"] = True
    finally:  # tells the test the late handler is done, whatever its write did
        open(os.path.join(os.environ["MARKER_DIR"], call.call_uuid), "w").close()
    return Response(Speak("too late"))

@flow.route("/answer", event="Hangup")
def hangup(call):
    return None

app = flow.create_app()

@app.route("/_stats")
def stats():
    state_dir = os.path.dirname(os.environ["ANSWERKIT_STATE_URL"].partition(":///")[2])
    fds = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds += os.readlink(f"/proc/self/fd/{fd}").startswith(state_dir or "/nonexistent")
        except OSError:
            pass
    return jsonify(pid=os.getpid(), threads=threading.active_count(), state_fds=fds)
"""

CALL = {"From": "14155550100", "To": "14155550199", "Event": "StartApp",
        "CallStatus": "in-progress", "Direction": "inbound"}  # fmt: skip


class Server:
    """A running gunicorn and how to send it signed webhooks."""

    def __init__(self, public: str, proc: subprocess.Popen[bytes], marker_dir: Path) -> None:
        self.public = public
        self.proc = proc
        self.marker_dir = marker_dir

    def post(self, path: str, call_uuid: str, headers: dict[str, str] | None = None,
             **params: str) -> requests.Response:  # fmt: skip
        url = self.public + path
        data = {**CALL, "CallUUID": call_uuid, **params}
        return requests.post(url, data=data, headers=headers or sign(url, TOKEN), timeout=30)

    def spoken(self, response: requests.Response) -> str:
        assert response.status_code == 200, response.text
        return parse(response.content).children[0].text or ""

    def wait_for_marker(self, name: str) -> None:
        """Wait (10 s at most) for a late handler to say it is done."""
        for _ in range(1000):
            if (self.marker_dir / name).exists():
                return
            time.sleep(0.01)
        pytest.fail(f"the late handler for {name} never finished")

    def stats(self) -> list[dict[str, Any]]:
        """Each worker's stats (new connections until both workers have answered)."""
        seen: dict[int, dict[str, Any]] = {}
        for _ in range(200):
            got = requests.get(self.public + "/_stats", headers={"Connection": "close"}).json()
            seen[got["pid"]] = got
            if len(seen) == 2:
                break
        return list(seen.values())


def start_gunicorn(tmp_path: Path, state: str, *extra: str) -> Iterator[Server]:
    (tmp_path / "threaded_app.py").write_text(APP)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = {**os.environ, "VOBIZ_AUTH_TOKEN": TOKEN, "ANSWERKIT_PUBLIC_URL": public,
           "ANSWERKIT_STATE_URL": state, "MARKER_DIR": str(tmp_path)}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "--worker-class", "gthread",
         "--threads", "4", "-b", f"127.0.0.1:{port}", "--chdir", str(tmp_path), *extra,
         "threaded_app:app"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    wait_for_port(port, proc, "gunicorn")
    try:
        yield Server(public, proc, tmp_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=["sqlite", "redis"])
def server(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> Iterator[Server]:
    if request.param == "sqlite":
        state = f"sqlite:///{tmp_path / 'state.db'}"
    else:  # a database of its own: the session's Redis is shared by other tests
        state = redis_url.rsplit("/", 1)[0] + "/3"
    yield from start_gunicorn(tmp_path, state)


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    yield from start_gunicorn(tmp_path, f"sqlite:///{tmp_path / 'state.db'}")


def at_once(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """``fn(0)`` ... ``fn(n - 1)`` on n threads, released together."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait(10)
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_incr_from_many_threads_loses_no_update(server: Server) -> None:
    call = f"incr-{time.monotonic_ns()}"

    def visits(i: int) -> list[int]:
        return [int(server.spoken(server.post("/answer", call)).split()[1]) for _ in range(20)]

    counted = [v for batch in at_once(8, visits) for v in batch]
    assert sorted(counted) == list(range(1, 161))  # each visit once: none lost, none twice


def test_identical_concurrent_requests_exactly_one_passes(server: Server) -> None:
    for attempt in range(10):
        call = f"replay-{attempt}-{time.monotonic_ns()}"
        headers = sign(server.public + "/answer", TOKEN)  # one signature, sent 8 times at once
        send = partial(server.post, "/answer", call, headers)
        statuses = at_once(8, lambda i, send=send: send().status_code)
        assert sorted(statuses) == [200] + [403] * 7


def test_a_handler_past_its_deadline_writes_no_state(server: Server) -> None:
    call = f"late-{time.monotonic_ns()}"
    assert "visit 1 " in server.spoken(server.post("/answer", call))
    # The caller gets the fallback at the deadline (0.5 s) and hangs up; the state is
    # cleared at the Hangup (hangup_linger=0).
    assert server.spoken(server.post("/slow", call)) != "too late"
    assert server.post("/answer", call, Event="Hangup").content == b""
    server.wait_for_marker(call)
    # The abandoned handler's write came after all that: it must not bring the call's
    # state back (for the whole TTL), nor show to a later webhook of the call.
    assert server.spoken(server.post("/peek", call)) == "state"


def test_threads_and_connections_stay_bounded(sqlite_server: Server) -> None:
    server = sqlite_server

    def load(i: int) -> None:
        for n in range(25):
            if n % 10 == 0:  # some handlers overrun the deadline and hold a thread a while
                server.post("/slow?sleep=0.7", f"grow-{i}-{n}")
            server.post("/answer", f"grow-{i}-{n}")

    counts = []
    for _round in range(3):
        at_once(8, load)
        counts.append(server.stats())
    for stats in counts[-1]:
        # main + 4 request threads + at most 32 handler threads + the WAL checkpointer
        assert stats["threads"] <= 1 + 4 + 32 + 1 + 2


def test_flask_threaded_dev_server_closes_each_threads_connection(tmp_path: Path) -> None:
    # The development server starts a thread per request, each with its own SQLite
    # connection (its replay record); a finished thread's connection must close with it.
    import gc

    from werkzeug.serving import make_server

    from answerkit import CallFlow, CallRequest, Response, Speak
    from answerkit.state_sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "dev.db")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    flow = CallFlow("devserver", auth_token=TOKEN, public_url=public, state=store)

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak(f"visit {call.state.incr('visits')}"))

    app = flow.create_app()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    serving = threading.Thread(target=httpd.serve_forever, daemon=True)
    serving.start()
    try:
        server = Server(public, None, tmp_path)  # type: ignore[arg-type]

        def visits(i: int) -> list[int]:
            return [int(server.spoken(server.post("/answer", "dev-1")).split()[1])
                    for _ in range(15)]  # fmt: skip

        counted = [v for batch in at_once(8, visits) for v in batch]
        assert sorted(counted) == list(range(1, 121))
    finally:
        httpd.shutdown()
        serving.join(10)
    gc.collect()
    # 120 request threads came and went, each having opened a connection (its replay
    # record): left are this thread's and those of the flow's handler threads, which stay
    # (no more of them than requests at once).
    assert 0 < len(store._all) <= 1 + 8
    store.close()
