"""Faults: a hanging handler, Redis going away and coming back, a failing Vobiz API,
a gunicorn worker killed under load.

Everything runs for real on 127.0.0.1: a werkzeug server, a dedicated redis-server,
LocalVobiz, gunicorn. No time limit is asserted: that something was cut short is shown
by what had not happened yet when the answer came (the hanging handler had not woken, the
slow API had not applied the transfer, Redis was still stopped).
"""

from __future__ import annotations

import contextlib
import gc
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from answerkit import (
    CallFlow,
    CallRequest,
    ConnectError,
    Gather,
    RateLimitedError,
    Response,
    ServerError,
    Speak,
    StateError,
    TimeoutError,
    TransportError,
    parse,
    sign,
)
from answerkit.dispatch import DeadlineRunner, HandlerTimeout
from answerkit.state import MemoryStore, RedisStore
from answerkit.testing.local_vobiz import LocalVobiz

PUBLIC = "https://voice.example.com"
TOKEN = "faults-token-0c1d2e3f4a5b"
ROOT = Path(__file__).resolve().parent.parent
CALL = {"CallUUID": "fault-call-1", "From": "14155550100", "To": "14155550199",
        "Direction": "inbound", "CallStatus": "in-progress", "Event": "StartApp"}  # fmt: skip
FALLBACK = Response(Speak("Sorry, something went wrong"))


def post(client: Any, path: str, params: dict[str, str] | None = None) -> Any:
    return client.post(path, data=params or CALL, headers=sign(PUBLIC + path, TOKEN))


def is_fallback(body: bytes) -> bool:
    return parse(body) == FALLBACK


# --------------------------------------------------------------------------- a hanging handler


def hanging_flow(
    release: threading.Event, errors: list[BaseException], woke: list[str]
) -> CallFlow:
    """Handlers that hang for 30 s; each records in ``woke`` when (if ever) it gets past
    its hang, so an answer that came first shows the deadline cut it short."""
    flow = CallFlow("hang", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    deadline=0.5, fallback=FALLBACK,
                    on_error=lambda exc, call, route: errors.append(exc))  # fmt: skip

    @flow.route("/sleep")
    def sleeps(call: CallRequest) -> Response:
        time.sleep(30)  # interruptible only by the SIGALRM path
        woke.append("/sleep")
        return Response(Speak("too late"))

    @flow.route("/wait")
    def waits(call: CallRequest) -> Response:
        release.wait(30)
        woke.append("/wait")
        return Response(Speak("too late"))

    @flow.route("/status", status_callback=True)
    def status(call: CallRequest) -> None:
        release.wait(30)
        woke.append("/status")

    return flow


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # lets the abandoned handler threads finish


@pytest.mark.usefixtures("runner_timer_paused")
def test_hanging_handler_is_cut_short_in_the_main_thread(release: threading.Event) -> None:
    """gunicorn sync workers run handlers in the main thread: SIGALRM interrupts them."""
    assert threading.current_thread() is threading.main_thread()
    errors: list[BaseException] = []
    woke: list[str] = []
    client = hanging_flow(release, errors, woke).create_app().test_client()
    response = post(client, "/sleep")
    assert woke == []  # interrupted in its 30 s sleep, not answered after it
    assert response.status_code == 200 and is_fallback(response.data)
    assert [type(e) for e in errors] == [HandlerTimeout]


def test_deadline_keeps_an_outer_interval_timer() -> None:
    flow = CallFlow("timer", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    deadline=5.0)  # fmt: skip

    @flow.route("/quick")
    def quick(call: CallRequest) -> Response:
        return Response(Speak("quick"))

    client = flow.create_app().test_client()
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    signal.setitimer(signal.ITIMER_REAL, 100.0)
    try:
        assert post(client, "/quick").status_code == 200
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert remaining > 50, "the outer 100 s timer was cancelled"


def deadline_flow(name: str) -> tuple[CallFlow, list[BaseException]]:
    """A flow with a 0.2 s handler deadline, and the errors its on_error hook is given."""
    errors: list[BaseException] = []
    flow = CallFlow(name, public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    deadline=0.2, fallback=FALLBACK,
                    on_error=lambda exc, call, route: errors.append(exc))  # fmt: skip
    return flow, errors


@pytest.mark.usefixtures("runner_timer_paused")
@pytest.mark.parametrize("swallows", ["in a retry loop", "once, then returns late"])
def test_a_handler_catching_its_deadline_is_still_cut_short(swallows: str) -> None:
    # SIGALRM raises HandlerTimeout, an Exception: a handler's `except Exception` (a retry
    # loop, or logging swallowing what is raised in an emit) caught it, and the handler then
    # ran unbounded in the main thread (a gunicorn sync worker) while Vobiz gave up.
    assert threading.current_thread() is threading.main_thread()
    flow, errors = deadline_flow("swallow")
    attempts: list[int] = []

    @flow.route("/retry")
    def retry(call: CallRequest) -> Response:
        for attempt in range(600 if swallows == "in a retry loop" else 1):
            attempts.append(attempt)
            try:
                time.sleep(0.05 if swallows == "in a retry loop" else 0.4)
                raise ConnectionError("the lookup failed")
            except Exception:
                continue
        return Response(Speak("answered after all"))

    response = post(flow.create_app().test_client(), "/retry")
    assert len(attempts) < 600 or swallows != "in a retry loop"  # cut short, not run out
    assert response.status_code == 200 and is_fallback(response.data)
    assert [type(e) for e in errors] == [HandlerTimeout]
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # the timer was stopped


@pytest.mark.usefixtures("runner_timer_paused")
def test_a_handler_that_caught_its_deadline_writes_no_state_and_moves_no_call() -> None:
    # Its answer is the fallback: a write after the deadline (an `except Exception` path
    # recording the error, or a handler whose first HandlerTimeout logging swallowed) once
    # landed on sync workers, where an abandoned thread's is refused.
    flow, errors = deadline_flow("late")
    tried: list[str] = []

    @flow.route("/pay")
    def pay(call: CallRequest) -> Response:
        try:
            time.sleep(0.5)  # the payment gateway, slow today
        except Exception as exc:
            tried.append("caught")
            call.state["payment_error"] = str(exc)  # refused: the caller hears the fallback
        return Response(Speak("paid"))

    response = post(flow.create_app().test_client(), "/pay")
    assert response.status_code == 200 and is_fallback(response.data) and tried == ["caught"]
    assert flow.store.get_all(CALL["CallUUID"]) == {}
    assert [type(e) for e in errors] == [HandlerTimeout]
    assert "state write refused" in str(errors[0])


@pytest.mark.usefixtures("runner_timer_paused")
def test_the_deadline_never_leaves_a_logging_handler_locked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before Python 3.13 logging takes a handler's lock outside a try: a HandlerTimeout
    # raised right after it left the lock held, and every other thread logging through
    # that handler then blocked for good.
    import io
    import logging

    from answerkit import _deadline

    # The alarms after the first come sooner, so that a handler whose first HandlerTimeout
    # logging swallowed (handleError) ends quickly too.
    monkeypatch.setattr(_deadline, "REPEAT_AFTER", 0.02)
    monkeypatch.setattr(logging, "raiseExceptions", False)
    runner = DeadlineRunner(0.02)
    log = logging.getLogger("answerkit-test-busy")
    handler = logging.StreamHandler(io.StringIO())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    def busy(call: Any) -> None:
        while True:
            try:
                log.info("working on %s", call)
                raise ConnectionError("the lookup failed")
            except Exception:
                continue  # a retry loop that catches the first HandlerTimeout too

    try:
        for _ in range(150):
            with pytest.raises(HandlerTimeout):
                runner.run(busy, None)  # type: ignore[arg-type]
            assert handler.lock is not None and handler.lock.acquire(timeout=0)
            handler.lock.release()
    finally:
        log.removeHandler(handler)


@pytest.mark.usefixtures("runner_timer_paused")
def test_a_warm_transfers_clean_up_at_the_deadline_is_not_cut_short() -> None:
    # WarmTransfer records the outcome and the move it owes in its except HandlerTimeout:
    # with a slow store (a Redis round trip, SQLite waiting for a lock), the deadline's
    # later alarms cut that short, leaving an outcome with no debt (the caller on hold).
    from answerkit.recipes import WarmTransfer
    from answerkit.recipes._warm_state import ATTEMPT, MOVE_OWED

    class SlowStore(MemoryStore):
        def set(self, *args: Any) -> None:
            time.sleep(0.03)
            super().set(*args)

        def incr(self, *args: Any, **kwargs: Any) -> int:
            time.sleep(0.03)
            return super().incr(*args, **kwargs)

    flow = CallFlow("slow", public_url=PUBLIC, auth_token=TOKEN, state=SlowStore())
    flow.route("/sales")(lambda call: Response(Speak("sales")))

    def slow_agent(ctx: Any) -> str:
        time.sleep(5)  # cut short at the deadline
        return "+14155550142"

    warm = WarmTransfer(flow, agent=slow_agent, caller_id="+14155550100", fallback="sales")
    warm._moves.settle_later = lambda caller_uuid, after=0.5: None  # type: ignore[method-assign]
    state = warm._state("c-1")
    state[ATTEMPT] = 1
    with pytest.raises(HandlerTimeout):
        DeadlineRunner(0.1).run(lambda call: warm._call_agent("c-1", 1, {}), None)  # type: ignore[arg-type, return-value]
    state.refresh()
    assert warm.outcome("c-1") == "agent-unreachable"
    assert state.get(MOVE_OWED) == {"outcome": "agent-unreachable", "rescue": False, "attempt": 1}


@pytest.mark.usefixtures("runner_timer_paused")
def test_the_deadline_timer_never_reaches_the_apps_own_alarm_handler() -> None:
    # A handler finishing right at its deadline: the SIGALRM pending as the timer stops is
    # the deadline's own, not the app's.
    runner = DeadlineRunner(0.002)
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        for i in range(300):

            def handler(call: Any, lag: float = (i % 30) * 1e-5) -> None:
                end = time.perf_counter() + 0.002 - lag
                while time.perf_counter() < end:
                    pass

            with contextlib.suppress(HandlerTimeout):
                runner.run(handler, None)  # type: ignore[arg-type]
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        time.sleep(0.05)
        signal.setitimer(signal.ITIMER_REAL, 0.01)  # the app's own alarm, after
        time.sleep(0.2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired == [signal.SIGALRM]


class Served:
    """A WSGI app on a real threaded HTTP server on 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


def test_hanging_handler_is_cut_short_in_a_threaded_server(release: threading.Event) -> None:
    """A threaded server runs handlers off the main thread: the caller stops waiting."""
    errors: list[BaseException] = []
    woke: list[str] = []
    served = Served(hanging_flow(release, errors, woke).create_app())
    try:
        for path in ("/wait", "/status"):
            response = requests.post(served.base_url + path, data=CALL,
                                     headers=sign(PUBLIC + path, TOKEN), timeout=60)  # fmt: skip
            # Answered while its handler still waits (release is set only below): the
            # caller was not kept for the handler's 30 s.
            assert woke == [] and not release.is_set()
            if path == "/wait":
                assert response.status_code == 200 and is_fallback(response.content)
            else:  # a status callback cut off is sent again by Vobiz: an empty 503
                assert (response.status_code, response.content) == (503, b"")
    finally:
        release.set()
        served.close()
    assert [type(e) for e in errors] == [HandlerTimeout, HandlerTimeout]


# --------------------------------------------------------------------------- Redis goes away


class RedisServer:
    """A dedicated redis-server on a fixed port, to stop and start again."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not on PATH")
        self.binary = binary
        self.workdir = workdir
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail("redis-server did not answer")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def is_stopped(self) -> bool:
        """Whether the process is stopped (SIGSTOP) right now, as the kernel reports it."""
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status")
        if not status.exists():  # no procfs: only pause() and resume() change it here
            return True
        state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
        return state.split()[1] in ("T", "t")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.resume()
        server.kill()


def counting_flow(state: str, errors: list[BaseException]) -> CallFlow:
    flow = CallFlow(
        "redis",
        public_url=PUBLIC,
        auth_token=TOKEN,
        state=state,
        fallback=FALLBACK,
        on_error=lambda exc, call, route: errors.append(exc),
    )

    @flow.route("/ivr")
    def ivr(call: CallRequest) -> Response:
        visit = call.state.incr("visits")
        return Response(Gather(Speak(f"Visit {visit}"), action=flow.url_for("ivr"), num_digits=1))

    return flow


def test_redis_killed_and_restarted(own_redis: RedisServer) -> None:
    errors: list[BaseException] = []
    flow = counting_flow(own_redis.url, errors)
    client = flow.create_app().test_client()
    first = post(client, "/ivr")
    assert first.status_code == 200 and b"Visit 1" in first.data

    own_redis.kill()
    for _ in range(3):
        response = post(client, "/ivr")
        assert response.status_code == 200 and is_fallback(response.data)
    assert errors and all(isinstance(e, StateError) for e in errors)

    own_redis.start()  # same port, empty (no persistence)
    recovered = [post(client, "/ivr") for _ in range(3)]
    assert all(r.status_code == 200 for r in recovered)
    assert [b"Visit" in r.data for r in recovered] == [True, True, True]
    assert b"Visit 3" in recovered[-1].data
    assert flow.store.get(CALL["CallUUID"], "visits") == 3


def test_redis_frozen_answers_the_fallback_then_recovers(own_redis: RedisServer) -> None:
    """A Redis that accepts but never answers (SIGSTOP) costs a socket timeout, not a call."""
    errors: list[BaseException] = []
    client = counting_flow(own_redis.url, errors).create_app().test_client()
    assert b"Visit 1" in post(client, "/ivr").data
    own_redis.pause()
    try:
        response = post(client, "/ivr")
        # Answered while Redis is still stopped (it is resumed only below): the store gave
        # up on it, since a stopped Redis never answers.
        assert own_redis.is_stopped()
        assert response.status_code == 200 and is_fallback(response.data)
    finally:
        own_redis.resume()
    assert isinstance(errors[-1], StateError)
    response = post(client, "/ivr")
    assert response.status_code == 200 and b"Visit" in response.data


class ReplyDropper:
    """A TCP proxy in front of Redis that can lose exactly one reply: Redis has run the
    command, the client never hears so, and redis-py runs it again on a new connection."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.drop_next = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while data := src.recv(65536):
                if replies and self.drop_next.is_set():
                    self.drop_next.clear()
                    break  # the reply is lost; both sides are closed below
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def dropper(redis_url: str) -> Iterator[ReplyDropper]:
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    proxy = ReplyDropper((host, int(port)))
    yield proxy
    proxy.close()


def test_redis_reply_lost_after_the_write_counts_once(dropper: ReplyDropper) -> None:
    # redis-py runs a command again when its reply is lost; neither a nonce record nor an
    # increment may then count twice (a genuine webhook refused as a replay: a dropped call).
    store = RedisStore(dropper.url, prefix=f"lost-reply-{time.monotonic_ns()}:")
    store.ping()
    dropper.drop_next.set()
    assert store.remember_all(["sig:first", "sig:second"], 300) is True
    assert dropper.drop_next.is_set() is False  # a reply really was lost
    assert store.remember_all(["sig:first"], 300) is False  # and a replay is still one
    dropper.drop_next.set()
    assert store.incr("c-1", "attempts") == 1
    assert dropper.drop_next.is_set() is False
    assert store.incr("c-1", "attempts") == 2
    assert store.get("c-1", "attempts") == 2
    store.close()


# --------------------------------------------------------------------------- Vobiz API faults


def transfer_flow(vobiz: LocalVobiz, **client_options: Any) -> CallFlow:
    client_options.setdefault("backoff", 0.01)
    flow = CallFlow("xfer", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    client=vobiz.client(**client_options))  # fmt: skip

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        return Response(Speak("Please hold"))

    return flow


@pytest.fixture
def vobiz(local_vobiz: LocalVobiz) -> Iterator[LocalVobiz]:
    # Accepted transfers are not fetched: the public URL is not on loopback.
    local_vobiz.on_transfer_request = lambda *args: True
    yield local_vobiz
    local_vobiz.on_transfer_request = None


def api_requests(vobiz: LocalVobiz) -> int:
    return sum(1 for r in vobiz.requests if r.path.startswith("/api/"))


def test_transfer_to_a_slow_api_times_out_without_retrying() -> None:
    with LocalVobiz() as slow:  # its own server: the delayed request sleeps on after the test
        applied: list[Any] = []

        def accept(*args: Any) -> bool:
            applied.append(args)
            return True

        slow.on_transfer_request = accept
        flow = transfer_flow(slow, timeout=0.5, max_retries=3)
        call = slow.add_call()
        slow.delay_next(1, seconds=15)
        with pytest.raises(TimeoutError):
            flow.transfer(call.call_uuid, aleg="hold")
        # Given up while the API still sleeps on the request: it applies (and answers) the
        # transfer only after its 15 s.
        assert applied == []
        assert api_requests(slow) == 1  # a transfer may have been applied: never repeated


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_transfer_on_5xx_raises_server_error_without_retrying(
    vobiz: LocalVobiz, status: int
) -> None:
    flow = transfer_flow(vobiz, max_retries=3)
    call = vobiz.add_call()
    vobiz.fail_next(10, status=status)
    with pytest.raises(ServerError) as caught:
        flow.transfer(call.call_uuid, aleg="hold")
    assert caught.value.status == status
    assert api_requests(vobiz) == 1


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_transfer_rate_limited_retries_within_the_bound(
    vobiz: LocalVobiz, max_retries: int
) -> None:
    flow = transfer_flow(vobiz, max_retries=max_retries)
    call = vobiz.add_call()
    vobiz.rate_limit_next(20, retry_after=0)
    with pytest.raises(RateLimitedError) as caught:
        flow.transfer(call.call_uuid, aleg="hold")
    assert caught.value.status == 429
    assert api_requests(vobiz) == max_retries + 1


def test_transfer_rate_limited_then_accepted(vobiz: LocalVobiz) -> None:
    flow = transfer_flow(vobiz, max_retries=3)
    call = vobiz.add_call()
    vobiz.rate_limit_next(2, retry_after=0)
    flow.transfer(call.call_uuid, aleg="hold")
    assert api_requests(vobiz) == 3


def test_rate_limit_longer_than_the_retry_budget_is_not_waited_for(
    vobiz: LocalVobiz, monkeypatch: pytest.MonkeyPatch
) -> None:
    from answerkit import _retry
    from answerkit._deadline import sleep_unless_given_up as real_sleep

    waits: list[float] = []

    def recorded_sleep(seconds: float) -> None:
        waits.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(_retry, "sleep_unless_given_up", recorded_sleep)
    flow = transfer_flow(vobiz, max_retries=3, max_retry_time=1.0)
    call = vobiz.add_call()
    vobiz.rate_limit_next(5, retry_after=30)
    with pytest.raises(RateLimitedError) as caught:
        flow.transfer(call.call_uuid, aleg="hold")
    assert waits == []  # Retry-After asked for 30 s: not slept, not retried
    assert caught.value.retry_after == 30
    assert api_requests(vobiz) == 1


def test_transfer_on_connection_reset_raises_transport_error(vobiz: LocalVobiz) -> None:
    flow = transfer_flow(vobiz, max_retries=3)
    call = vobiz.add_call()
    vobiz.reset_next(5)
    with pytest.raises(TransportError) as caught:
        flow.transfer(call.call_uuid, aleg="hold")
    assert not isinstance(caught.value, (ConnectError, TimeoutError))
    assert api_requests(vobiz) == 1  # it may have been applied: a POST is not repeated


def test_idempotent_requests_retry_a_reset_within_the_bound(vobiz: LocalVobiz) -> None:
    client = vobiz.client(max_retries=2, backoff=0.01)
    call = vobiz.add_call()
    vobiz.reset_next(10)
    with pytest.raises(TransportError):
        client.get_live_call(call.call_uuid)
    assert api_requests(vobiz) == 3
    client.close()


def test_transfer_to_an_api_that_is_down_raises_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    from answerkit.client import VobizClient

    client = VobizClient("MA_DOWN0000", "token-down", base_url=f"http://127.0.0.1:{port}/api/v1",
                         allow_http=True, max_retries=2, backoff=0.01)  # fmt: skip
    flow = CallFlow("down", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    client=client)  # fmt: skip

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        return Response(Speak("Please hold"))

    with pytest.raises(ConnectError):
        flow.transfer("some-call", aleg="hold")
    client.close()


# --------------------------------------------------------------------------- gunicorn worker kill


def test_gunicorn_worker_killed_under_load() -> None:
    """benchmarks/load.py for 5 s with SQLite state, SIGKILLing a worker twice.

    The properties, not the speed: every answer a 200 with the IVR document, no lost
    update, no counter above what was sent, extra updates only where a request died
    with its worker, and gunicorn replaced every killed worker.
    """
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load.py"), "--seconds", "5", "--state",
         "sqlite", "--kills", "2", "--procs", "3", "--calls", "100", "--json", "-"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert done.stdout.strip(), done.stderr[-3000:]
    [figures] = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["problems"] == [], figures
    assert figures["ok_200"] > 0 and figures["non_200"] == 0
    assert figures["fallback_answers"] == 0 and figures["invalid_xml"] == 0
    assert figures["lost_updates"] == 0
    assert figures["calls_stored_over_sent"] == 0
    assert figures["applied_unanswered"] <= figures["connection_failures"]
    kills = figures["worker_kills"]
    assert kills["restarted"] and len(kills["killed_pids"]) == 2
    assert kills["ok_after_first_kill"] > 0
    assert done.returncode == 0


@pytest.mark.usefixtures("runner_timer_paused")
def test_a_deadline_never_strikes_inside_redis_py(redis_url: str) -> None:
    # gunicorn sync workers: a SIGALRM raised between redis-py sending a command and reading
    # its reply returned the connection to the pool with that reply unread. The worker's
    # next webhooks then read each other's replies: state reads of the wrong type, and
    # fresh signatures refused as replays.
    assert threading.current_thread() is threading.main_thread()
    store = RedisStore(redis_url)
    flow = CallFlow("spin", public_url=PUBLIC, auth_token=TOKEN, state=store, deadline=0.02)

    @flow.route("/spin")
    def spin(call: CallRequest) -> Response:
        while True:  # state traffic until the deadline cuts it short
            call.state.incr("n")
            call.state.refresh()
            call.state.get("n")

    @flow.route("/check")
    def check(call: CallRequest) -> Response:
        call.state["seen"] = {"ok": True}
        assert call.state.get("seen") == {"ok": True}
        return Response(Speak("checked"))

    client = flow.create_app().test_client()
    bad: list[str] = []
    for i in range(300):  # the old code failed about 1 round in 70
        post(client, "/spin", {"CallUUID": f"spin-{i}"})
        r = post(client, "/check", {"CallUUID": f"check-{i}"})
        if r.status_code != 200 or b"checked" not in r.data:
            bad.append(f"{r.status_code} {r.data[:60]!r}")
    store.close()
    assert bad == []


def record_reads(store: RedisStore) -> list[str]:
    """How each read of a call's state (HGETALL) by ``store`` ends: ``"returned"``, or
    ``"cut by <exception>"`` when something (the deadline) interrupts it inside the store
    call. Recorded inside the store call, where a deadline put off does not strike."""
    reads: list[str] = []
    client = store._client
    real = client.execute_command  # the store reads a hash as bytes, through it

    def execute_command(*args: Any, **options: Any) -> Any:
        if args[:1] != ("HGETALL",):
            return real(*args, **options)
        try:
            values = real(*args, **options)
        except BaseException as exc:
            reads.append(f"cut by {type(exc).__name__}")
            raise
        reads.append("returned")
        return values

    client.execute_command = execute_command  # type: ignore[method-assign]
    return reads


@pytest.mark.usefixtures("runner_timer_paused")
def test_a_deadline_put_off_by_a_store_call_is_taken_before_the_next_write(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deadline strikes while a RedisStore read waits on a stalled Redis (CLIENT PAUSE):
    # put off until the read returns, it must be raised before the handler's next state
    # write, which would otherwise land past the deadline.
    import redis

    from answerkit import _deadline

    # The read waits out the whole stall, however long a busy machine makes it.
    monkeypatch.setattr(_deadline, "STORE_PUT_OFF_LIMIT", 60.0)
    store = RedisStore(redis_url, socket_timeout=30.0)
    reads = record_reads(store)
    flow = CallFlow("stall", public_url=PUBLIC, auth_token=TOKEN, state=store, deadline=0.5,
                    fallback=FALLBACK)  # fmt: skip
    staller = redis.Redis.from_url(redis_url)
    reached: list[str] = []

    @flow.route("/stall")
    def stall(call: CallRequest) -> Response:
        # Synchronous: Redis is paused before the read is sent, and the read can only
        # return when the pause ends, 1.5 s later, past the 0.5 s deadline.
        staller.execute_command("CLIENT", "PAUSE", "1500")  # type: ignore[no-untyped-call]
        reached.append("paused")
        call.state.get("anything")  # waits out the stall, past the deadline
        reached.append("read")
        call.state["late"] = True  # must not land
        reached.append("wrote")
        return Response(Speak("too late"))

    client = flow.create_app().test_client()
    try:
        r = post(client, "/stall", {**CALL, "CallUUID": "stalled-1"})
    finally:
        staller.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
    assert is_fallback(r.data)
    # The deadline fell due inside the read, which it did not cut (put off), and was taken
    # before the handler's next write.
    assert reached == ["paused"] and reads == ["returned"]
    assert store.get_all("stalled-1") == {}
    staller.close()
    store.close()


@pytest.mark.usefixtures("runner_timer_paused")
def test_a_handlers_own_blocking_redis_call_is_still_cut_at_the_deadline(
    redis_url: str,
) -> None:
    # Only the store's own calls hold the deadline off: a BLPOP (or a lock, a pubsub
    # listen) on the handler's own client ran on to its own timeout, or for ever.
    import redis

    own = redis.Redis.from_url(redis_url)
    flow = CallFlow("own", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    deadline=0.3, fallback=FALLBACK)  # fmt: skip
    ended: list[str] = []

    @flow.route("/wait")
    def wait(call: CallRequest) -> Response:
        try:
            own.blpop(["answerkit-test-never-filled"], timeout=5)
        except BaseException as exc:
            ended.append(f"cut by {type(exc).__name__}")
            raise
        ended.append("BLPOP returned")  # after its 5 s: the deadline waited it out
        return Response(Speak("never"))

    r = post(flow.create_app().test_client(), "/wait")
    assert is_fallback(r.data)
    assert ended == ["cut by HandlerTimeout"]  # cut inside BLPOP, not left to its 5 s
    own.close()


@pytest.mark.usefixtures("runner_timer_paused")
def test_a_deadline_that_falls_due_in_a_grace_is_taken_when_the_grace_ends() -> None:
    # The SIGALRM that came inside deadline_grace() was swallowed and not re-armed: the
    # handler then ran unbounded, and its late answer was served.
    from answerkit._deadline import deadline_grace

    ran_on: list[str] = []
    flow = CallFlow("grace", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    deadline=0.2, fallback=FALLBACK)  # fmt: skip

    @flow.route("/grace")
    def grace(call: CallRequest) -> Response:
        with deadline_grace():
            time.sleep(0.4)  # past the deadline, inside the grace: not cut here
        ran_on.append("after the grace")
        time.sleep(3)
        ran_on.append("late")
        return Response(Speak("late"))

    r = post(flow.create_app().test_client(), "/grace")
    assert is_fallback(r.data)
    assert ran_on == ["after the grace"]


@pytest.mark.usefixtures("runner_timer_paused")
def test_a_grace_held_by_a_stalled_store_is_cut_at_the_put_off_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A recipe's decision and debt are written in a grace; a store that stalls there once
    # held a sync worker for as long as it stalled.
    from answerkit import _deadline
    from answerkit._deadline import deadline_grace

    monkeypatch.setattr(_deadline, "STORE_PUT_OFF_LIMIT", 0.2)
    ran_on: list[str] = []

    def handler(call: Any) -> None:
        with deadline_grace():
            time.sleep(30)  # the store, stalled
            ran_on.append("the stall ended")

    with pytest.raises(HandlerTimeout):
        DeadlineRunner(0.05).run(handler, None)  # type: ignore[arg-type]
    assert ran_on == [] and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.usefixtures("runner_timer_paused")
def test_a_strike_as_a_grace_ends_leaves_no_timer_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    # Struck inside contextlib's __exit__ of the grace, the grace's finally ran only after
    # the runner had ended, and started the timer again: the worker's next code got a
    # SIGALRM (39 of 3,000 runs). Graces ending around the limit, each run checked after.
    import random

    from answerkit import _deadline
    from answerkit._deadline import _Alarm, deadline_grace

    monkeypatch.setattr(_deadline, "STORE_PUT_OFF_LIMIT", 0.02)
    rng = random.Random(7)
    for _ in range(300):
        busy = 0.03 + rng.uniform(-0.0002, 0.0002)

        def handler(call: Any, busy: float = busy) -> str:
            start = time.monotonic()
            with deadline_grace():
                while time.monotonic() < start + busy:
                    pass
            return "ok"

        with contextlib.suppress(HandlerTimeout):
            DeadlineRunner(0.01).run(handler, None)  # type: ignore[arg-type]
        gc.collect()  # a grace left suspended is finalised here
        assert (_Alarm.armed, _Alarm.in_grace) == (False, False)
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.usefixtures("runner_timer_paused")
def test_a_store_call_holds_the_deadline_off_for_a_bounded_time_and_stays_a_deadline(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past STORE_PUT_OFF_LIMIT the deadline strikes inside the store call, and reaches the
    # handler as HandlerTimeout: wrapped as a StateError, an ``except StateError`` meant
    # for an outage swallowed it.
    import redis

    from answerkit import _deadline

    monkeypatch.setattr(_deadline, "STORE_PUT_OFF_LIMIT", 0.5)
    store = RedisStore(redis_url, socket_timeout=5.0)
    reads = record_reads(store)
    reported: list[BaseException] = []
    caught: list[str] = []
    after_read: list[str] = []
    flow = CallFlow(
        "cap", public_url=PUBLIC, auth_token=TOKEN, state=store, deadline=0.1,
        fallback=FALLBACK, on_error=lambda exc, call, route: reported.append(exc),
    )  # fmt: skip
    pauser = redis.Redis.from_url(redis_url)

    @flow.route("/cap")
    def cap(call: CallRequest) -> Response:
        pauser.execute_command("CLIENT", "PAUSE", "3000")
        try:
            call.state.get("anything")  # stalled for 3 s: longer than the limit
            after_read.append("the read returned")
        except StateError:
            caught.append("swallowed as a store outage")
        return Response(Speak("served late"))

    try:
        r = post(flow.create_app().test_client(), "/cap", {**CALL, "CallUUID": "capped-1"})
    finally:
        pauser.execute_command("CLIENT", "UNPAUSE")
    assert is_fallback(r.data) and caught == [] and after_read == []
    assert [type(e) for e in reported] == [HandlerTimeout]
    # Cut inside the store call (past the put-off limit), not let run to the stall's end.
    assert reads == ["cut by HandlerTimeout"]
    pauser.close()
    store.close()
