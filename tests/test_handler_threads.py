"""The daemon threads that run handlers under a deadline off the main thread."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import free_port

from answerkit._handler_threads import HandlerThreads


def test_results_and_exceptions_reach_the_caller() -> None:
    threads = HandlerThreads(2)
    assert threads.submit(lambda a, b: a + b, 2, 3).result(timeout=5) == 5

    def fails() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        threads.submit(fails).result(timeout=5)


def test_an_idle_thread_is_reused() -> None:
    threads = HandlerThreads(8, name="reuse-test")
    names = [threads.submit(lambda: threading.current_thread().name).result(5) for _ in range(20)]
    assert set(names) == {"reuse-test_1"}
    assert threading.current_thread().name not in names


def test_work_past_max_threads_waits_its_turn() -> None:
    threads = HandlerThreads(2)
    release = threading.Event()
    busy = [threads.submit(release.wait, 30) for _ in range(2)]
    queued = threads.submit(lambda: "ran")
    time.sleep(0.1)
    assert not queued.done()  # both threads are taken, and no third was started
    release.set()
    assert queued.result(timeout=5) == "ran"
    assert all(f.result(timeout=5) for f in busy)


def test_max_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_threads"):
        HandlerThreads(0)


def test_a_handler_that_never_returns_does_not_keep_the_process_alive() -> None:
    # A ThreadPoolExecutor's threads are joined at exit: this process would wait 60 s.
    script = textwrap.dedent(
        """
        import threading, time
        from answerkit.dispatch import DeadlineRunner, HandlerTimeout

        runner = DeadlineRunner(0.2)

        def stuck(call):
            time.sleep(60)
            print("the stuck handler returned", flush=True)

        def serve():  # a server's request thread: the deadline takes the thread path
            try:
                runner.run(stuck, None)
            except HandlerTimeout:
                print("fallback served", flush=True)

        t = threading.Thread(target=serve)
        t.start()
        t.join()
        """
    )
    # The run may take longer than the stuck handler's 60 s: a process kept alive for it
    # fails below (the handler's line is printed), not on this timeout.
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stderr
    # Exited with the handler still asleep: had the process waited for it, its line
    # would follow.
    assert done.stdout.strip() == "fallback served"


def in_a_forked_child(check: Callable[[], bool]) -> str:
    """Fork; the child runs ``check`` and reports "ok", "wrong" or what it raised."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)  # a hung child dies instead of hanging the test run
        try:
            os.write(write, b"ok" if check() else b"wrong")
        except BaseException as exc:
            os.write(write, repr(exc).encode()[:200])
        finally:
            os._exit(0)
    os.close(write)
    _pid, status = os.waitpid(pid, 0)
    got = os.read(read, 256).decode()
    os.close(read)
    return got if status == 0 else f"{got} (status {status})"


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
fork_with_threads = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+ warns


@needs_fork
@fork_with_threads
def test_a_forked_child_starts_its_own_threads() -> None:
    threads = HandlerThreads(1)
    assert threads.submit(lambda: 1).result(timeout=5) == 1  # the parent's thread, now idle
    # The child: the parent's idle thread does not exist there.
    assert in_a_forked_child(lambda: threads.submit(lambda: 41 + 1).result(timeout=5) == 42) == "ok"


def test_a_handler_still_queued_at_its_deadline_never_runs() -> None:
    from answerkit.dispatch import DeadlineRunner, HandlerTimeout

    runner = DeadlineRunner(0.2, max_workers=1)
    release = threading.Event()
    ran: list[str] = []
    done = threading.Event()
    busy = threading.Event()

    def blocker(call: object) -> None:
        busy.set()
        release.wait(10)
        done.set()

    def late(call: object) -> None:
        ran.append("late")  # a transfer, say, for a call already told to hang up

    outcomes: list[str] = []

    def serve(handler: object) -> None:  # a threaded server's request thread
        try:
            runner.run(handler, None)  # type: ignore[arg-type]
        except HandlerTimeout:
            outcomes.append("fallback")

    first = threading.Thread(target=serve, args=(blocker,))
    first.start()
    assert busy.wait(5)  # the one handler thread is now taken
    second = threading.Thread(target=serve, args=(late,))
    second.start()  # queued behind it, and past its deadline before the thread frees up
    first.join()
    second.join()
    release.set()
    assert done.wait(5)
    time.sleep(0.2)  # room for the queued handler to start, were it still queued
    assert outcomes == ["fallback", "fallback"] and ran == []


def test_handler_threads_all_held_past_their_deadline_fail_the_next_at_once() -> None:
    # 32 stuck handlers (a CRM call without a timeout) made every later webhook of the
    # process wait its whole deadline in the queue, then blamed its handler; the health
    # endpoint said "ok" meanwhile.
    from answerkit import CallFlow
    from answerkit.dispatch import DeadlineRunner, HandlerTimeout
    from answerkit.state import MemoryStore

    runner = DeadlineRunner(0.1, max_workers=2)
    release = threading.Event()

    def stuck(call: object) -> None:
        release.wait(10)

    def serve(handler: Any) -> str:
        # Off the main thread, as a threaded server's request thread: the thread path.
        out: list[str] = []

        def request() -> None:
            try:
                runner.run(handler, None)  # type: ignore[arg-type]
                out.append("ran")
            except HandlerTimeout as exc:
                out.append(str(exc))

        thread = threading.Thread(target=request)
        thread.start()
        thread.join(10)
        return out[0]

    def settle(saturated: bool) -> None:
        for _ in range(200):
            if runner.saturated is saturated:
                return
            time.sleep(0.01)
        raise AssertionError(f"saturated never became {saturated}")

    slow = DeadlineRunner(2.0, max_workers=1)

    def wait_slowly() -> None:  # off the main thread: the thread path
        with contextlib.suppress(HandlerTimeout):
            slow.run(stuck, None)  # type: ignore[arg-type]

    waiting = threading.Thread(target=wait_slowly)
    waiting.start()
    waiting.join(10)
    # Just past its deadline, a handler may only be slow: the next webhook is let in (the
    # 2 s until it counts as stuck dwarf this test's own steps).
    assert not slow.saturated

    assert serve(stuck) == serve(stuck) == "handler deadline passed"
    settle(True)  # both held past their deadline as long again: stuck, not slow
    ran: list[object] = []
    why = serve(ran.append)  # refused before it is queued: no wait for its deadline
    assert "handler never started: all 2 handler threads" in why and ran == []
    release.set()
    settle(False)  # the stuck ones return; the process serves again
    assert serve(lambda call: None) == "ran"

    flow = CallFlow("sat", public_url="https://voice.example.com", auth_token="t" * 20,
                    state=MemoryStore())  # fmt: skip
    flow.add_health_endpoint()
    client = flow.create_app().test_client()
    flow._deadline = runner  # the flow's own runner, saturated as above
    release.clear()
    serve(stuck), serve(stuck)
    settle(True)
    assert client.get("/_answerkit/health").status_code == 503
    release.set()
    settle(False)
    assert client.get("/_answerkit/health").status_code == 200


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@needs_fork
def test_a_forked_child_of_a_saturated_process_starts_free() -> None:
    from answerkit.dispatch import DeadlineRunner, HandlerTimeout

    runner = DeadlineRunner(0.05, max_workers=1)
    release = threading.Event()

    def request() -> None:  # off the main thread: the thread path
        with contextlib.suppress(HandlerTimeout):
            runner.run(lambda call: release.wait(10), None)  # type: ignore[arg-type, return-value]

    worker = threading.Thread(target=request)
    worker.start()
    worker.join(10)
    for _ in range(200):
        if runner.saturated:
            break
        time.sleep(0.01)
    assert runner.saturated
    pid = os.fork()
    if pid == 0:  # the child has none of the parent's threads, so none is held
        os._exit(0 if not runner.saturated else 1)
    _, status = os.waitpid(pid, 0)
    release.set()
    assert os.WEXITSTATUS(status) == 0


@needs_fork
@fork_with_threads
def test_a_child_forked_while_the_pool_lock_is_held_can_submit() -> None:
    threads = HandlerThreads(2)
    with threads._lock:  # as if a request thread were inside submit() at the fork
        got = in_a_forked_child(lambda: threads.submit(lambda: "child").result(5) == "child")
    assert got == "ok"


def test_a_handler_failing_after_its_deadline_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    from answerkit.dispatch import DeadlineRunner, HandlerTimeout

    runner = DeadlineRunner(0.2)
    release = threading.Event()

    def crm_lookup(call: object) -> None:
        release.wait(10)
        raise ConnectionError("crm unreachable")  # long after the caller heard the fallback

    outcomes: list[str] = []

    def serve() -> None:  # a threaded server's request thread
        try:
            runner.run(crm_lookup, None)  # type: ignore[arg-type]
        except HandlerTimeout:
            outcomes.append("fallback")

    request_thread = threading.Thread(target=serve)
    request_thread.start()
    request_thread.join()
    assert outcomes == ["fallback"]
    with caplog.at_level("ERROR", logger="answerkit"):
        release.set()
        for _ in range(500):  # the abandoned handler ends on its own thread
            if any("crm unreachable" in r.getMessage() for r in caplog.records):
                break
            time.sleep(0.01)
    late = [r for r in caplog.records if "crm unreachable" in r.getMessage()]
    assert len(late) == 1 and "after its deadline" in late[0].getMessage()
    assert late[0].exc_info is not None  # with its traceback, like any handler failure


def test_an_idle_thread_keeps_no_result_alive() -> None:
    import gc
    import weakref

    class Reply:
        pass

    threads = HandlerThreads(1)
    made: list[weakref.ref[Reply]] = []

    def handler() -> Reply:
        reply = Reply()
        made.append(weakref.ref(reply))
        return reply

    assert isinstance(threads.submit(handler).result(timeout=5), Reply)
    for _ in range(500):  # the thread drops its references once the future is done
        gc.collect()
        if made[0]() is None:
            break
        time.sleep(0.01)
    assert made[0]() is None  # the caller dropped it; the idle thread must not hold it


def test_a_transfer_asked_for_after_the_deadline_is_not_sent(local_vobiz: object) -> None:
    """Off the main thread the deadline cannot stop a handler: the caller gets the fallback
    and Vobiz moves on, so a transfer the handler asks for afterwards must not be sent (it
    would move a call that was told to hang up)."""
    from answerkit import HandlerTimeout
    from answerkit.testing import LocalVobiz

    assert isinstance(local_vobiz, LocalVobiz)
    live = local_vobiz.add_call()
    raised = _transfer_past_the_deadline(local_vobiz.client(), live.call_uuid, late=0.8)
    # A HandlerTimeout, of the kind that says nothing was sent (the move may be made again).
    assert type(raised).__name__ == "LateTransferRefused", raised
    assert isinstance(raised, HandlerTimeout)
    assert not [r for r in local_vobiz.requests if r.method == "POST"]


# -- a transfer the client would retry, in a handler given up at its deadline -------------------


def _transfer_past_the_deadline(
    client: object, call_uuid: str, *, late: float = 0.0
) -> BaseException | None:
    """Serve one webhook whose handler transfers the call after ``late`` seconds, on a
    request thread (as a threaded server does), with a 0.3 s deadline; wait (bounded) for
    the abandoned handler to finish, and return what its transfer raised (None: it was
    sent and accepted)."""
    from answerkit import CallFlow, CallRequest, Hangup, Response, VobizClient, sign

    assert isinstance(client, VobizClient)
    flow = CallFlow("late", public_url="https://v.example.com", auth_token="t" * 20,
                    state="memory://", deadline=0.3, client=client)  # fmt: skip
    finished = threading.Event()
    outcome: list[BaseException | None] = []

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        try:
            time.sleep(late)
            flow.transfer(call.call_uuid, aleg="hold")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
            raise
        finally:
            finished.set()
        return Response(Hangup())

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        return Response(Hangup())

    test_client = flow.create_app().test_client()
    replies: list[bytes] = []

    def post() -> None:
        headers = sign("https://v.example.com/answer", "t" * 20)
        replies.append(
            test_client.post("/answer", data={"CallUUID": call_uuid}, headers=headers).data
        )

    worker = threading.Thread(target=post)
    worker.start()
    worker.join()
    assert b"Hangup" in replies[0]  # the fallback, at the deadline
    assert finished.wait(10), "the abandoned handler never finished its transfer"
    return outcome[0]


def test_a_rate_limited_transfer_is_not_sent_again_after_the_deadline(local_vobiz: object) -> None:
    """The retry loop waited out the 429's Retry-After and sent the transfer again, long
    after the caller was answered with the fallback: Vobiz accepted it and moved a call that
    was told to hang up."""
    from answerkit import HandlerTimeout
    from answerkit.dispatch import LateTransferRefused
    from answerkit.testing import LocalVobiz

    assert isinstance(local_vobiz, LocalVobiz)
    live = local_vobiz.add_call()
    local_vobiz.rate_limit_next(1, retry_after=1)  # well past the 0.3 s deadline
    raised = _transfer_past_the_deadline(local_vobiz.client(), live.call_uuid)
    # The 429 meant Vobiz did nothing: of the kind that says the move was not made.
    assert isinstance(raised, LateTransferRefused) and isinstance(raised, HandlerTimeout), raised
    assert "not sent again" in str(raised) and live.call_uuid in str(raised)
    assert [r.method for r in local_vobiz.requests] == ["POST"]  # the one rate limited
    assert local_vobiz.transfers == []


def test_a_transfer_that_could_not_connect_is_not_retried_after_the_deadline() -> None:
    import requests

    from answerkit import VobizClient
    from answerkit.dispatch import LateTransferRefused

    class CountingSession(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self.attempts = 0

        def request(self, *args: Any, **kwargs: Any) -> requests.Response:
            self.attempts += 1
            return super().request(*args, **kwargs)

    # Nothing listens there: each attempt is refused, and the backoff (1 s) outlasts the
    # deadline (0.3 s).
    session = CountingSession()
    client = VobizClient("MA_X0000001", "t", base_url=f"http://127.0.0.1:{free_port()}/api/v1",
                         allow_http=True, session=session, backoff=1.0)  # fmt: skip
    raised = _transfer_past_the_deadline(client, "c-1")
    assert isinstance(raised, LateTransferRefused), raised
    assert "ConnectError" in str(raised)
    assert session.attempts == 1  # no retry once the handler was given up


def test_a_client_outside_any_webhook_still_waits_and_retries(local_vobiz: object) -> None:
    """The check is the handler's: a client used by a worker thread of the app's own (no
    webhook, no deadline) retries a 429 as before."""
    from answerkit.testing import LocalVobiz

    assert isinstance(local_vobiz, LocalVobiz)
    live = local_vobiz.add_call()
    local_vobiz.rate_limit_next(1, retry_after=0.05)
    results: list[object] = []
    client = local_vobiz.client()
    worker = threading.Thread(
        target=lambda: results.append(
            client.transfer(live.call_uuid, aleg_url="https://v.example.com/hold")
        )
    )
    worker.start()
    worker.join(10)
    assert results and [r.method for r in local_vobiz.requests] == ["POST", "POST"]


def test_a_given_up_handler_is_woken_from_its_retry_wait(local_vobiz: object) -> None:
    """A 429's Retry-After (20 s here) was slept out whole by a handler already given up,
    holding one of the bounded pool's threads: it now ends when it is given up (the helper
    waits at most 10 s for it)."""
    from answerkit.dispatch import LateTransferRefused
    from answerkit.testing import LocalVobiz

    assert isinstance(local_vobiz, LocalVobiz)
    live = local_vobiz.add_call()
    local_vobiz.rate_limit_next(1, retry_after=20)
    raised = _transfer_past_the_deadline(local_vobiz.client(), live.call_uuid)
    assert isinstance(raised, LateTransferRefused), raised
    assert [r.method for r in local_vobiz.requests] == ["POST"]
