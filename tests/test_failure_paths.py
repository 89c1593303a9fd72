"""Failures around the handler keep the caller's answer: logging and the on_error hook that
fail, exceptions that cannot be shown, code that exits off the main thread, status callbacks
whose steps together run past Vobiz's 3 s, a handler that takes SIGALRM over, a store that
fails with an error of its own, a Response subclass that renders itself."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from answerkit import (
    CallFlow,
    CallRequest,
    ConfigurationError,
    Hangup,
    Response,
    Speak,
    parse,
    sign,
)
from answerkit import dispatch as dispatch_module
from answerkit.errors import StateError, VobizError
from answerkit.state import MemoryStore, StateStore

PUBLIC = "https://voice.example.com"
TOKEN = "failure-paths-token-0123"
CALL = {
    "CallUUID": "5d1c8f1e-0000-4000-8000-00000000000f",
    "From": "14155550100",
    "To": "14155550199",
    "Direction": "inbound",
    "CallStatus": "in-progress",
    "Event": "StartApp",
}


def flow_of(**kwargs: Any) -> CallFlow:
    return CallFlow(
        "failing", public_url=PUBLIC, auth_token=TOKEN, **{"state": MemoryStore(), **kwargs}
    )


def send(flow: CallFlow, path: str, direct: bool = True, **fields: str) -> Any:
    client = flow.create_app(direct=direct).test_client()
    return client.post(path, data={**CALL, **fields}, headers=sign(PUBLIC + path, TOKEN))


def broken(call: CallRequest) -> Response:
    raise ValueError("the handler's own bug")


class _RaisingHandler(logging.Handler):
    def __init__(self, error: type[Exception] = ConnectionError) -> None:
        super().__init__()
        self.error = error

    def emit(self, record: logging.LogRecord) -> None:
        raise self.error("the log shipper is down")


@pytest.fixture(params=[ConnectionError, VobizError])
def raising_log(request: pytest.FixtureRequest) -> Iterator[None]:
    # VobizError: a shipper built on answerkit's own client raises answerkit's errors,
    # which went through (only the deadline's HandlerTimeout must).
    handler = _RaisingHandler(request.param)
    logger = logging.getLogger("answerkit")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("direct", [True, False])
def test_a_log_handler_that_raises_leaves_the_fallback(raising_log: None, direct: bool) -> None:
    # The error's log line raised, then the last resort's did: a 500 through Flask, and
    # the exception out of the WSGI app on the direct path (gunicorn dropped the caller).
    flow = flow_of()
    flow.add_route("/answer", broken)
    flow.add_route("/events", broken, name="events", status_callback=True)
    answer = send(flow, "/answer", direct)
    assert answer.status_code == 200 and parse(answer.data).children[-1] == Hangup()
    events = send(flow, "/events", direct, Event="Hangup")
    assert (events.status_code, events.data) == (200, b"")


@pytest.mark.parametrize("error", [asyncio.CancelledError, type("HookStop", (BaseException,), {})])
def test_an_on_error_hook_raising_a_base_exception_leaves_the_fallback(
    error: type[BaseException],
) -> None:
    def hook(exc: BaseException, call: CallRequest | None, route: str) -> None:
        raise error()

    flow = flow_of(on_error=hook)
    flow.add_route("/answer", broken)
    answer = send(flow, "/answer")
    assert answer.status_code == 200 and b"<Hangup/>" in answer.data


def test_system_exit_off_the_main_thread_is_the_handlers_own_error() -> None:
    # A signal raises in the main thread only: elsewhere (a gthread worker's request
    # thread) SystemExit is the handler's code (argparse), and passing it on dropped the
    # caller and took the worker down.
    def parse_args(call: CallRequest) -> Response:
        raise SystemExit(2)

    flow = flow_of()
    flow.add_route("/answer", parse_args)
    app = flow.create_app()
    answers: list[Any] = []

    def serve() -> None:
        client = app.test_client()
        answers.append(client.post("/answer", data=CALL, headers=sign(PUBLIC + "/answer", TOKEN)))

    worker = threading.Thread(target=serve)
    worker.start()
    worker.join()
    assert answers and answers[0].status_code == 200 and b"<Hangup/>" in answers[0].data


def test_a_status_callbacks_listeners_and_handler_share_one_deadline() -> None:
    # Each got status_deadline of its own: three steps of 0.4 s under a 1 s deadline were
    # answered 200 after 1.2 s, past Vobiz's wait, which sends it again.
    ran: list[str] = []

    def step(name: str) -> Any:
        def run(call: CallRequest) -> None:
            ran.append(name)
            time.sleep(0.4)

        return run

    flow = flow_of(deadline=1.0, status_deadline=1.0)
    flow.add_hangup_listener(step("first listener"))
    flow.add_hangup_listener(step("second listener"))
    flow.add_route("/events", step("handler"), name="events", status_callback=True)
    events = send(flow, "/events", Event="Hangup")
    assert events.status_code == 503, ran


@pytest.mark.usefixtures("runner_timer_paused")
def test_a_handler_that_takes_sigalrm_over_is_still_late() -> None:
    # Its own signal handler (a timeout decorator's signal mode) switched the deadline
    # off: the late answer was served as if on time.
    def own_alarm(call: CallRequest) -> Response:
        assert threading.current_thread() is threading.main_thread()  # the SIGALRM path
        previous = signal.signal(signal.SIGALRM, lambda *_: None)
        signal.setitimer(signal.ITIMER_REAL, 0)  # guards a quick call of its own, then
        signal.signal(signal.SIGALRM, previous)
        time.sleep(0.5)
        return Response(Speak("answered late"))

    flow = flow_of(deadline=0.2)
    flow.add_route("/answer", own_alarm)
    answer = send(flow, "/answer")
    assert answer.status_code == 200
    assert b"answered late" not in answer.data and b"<Hangup/>" in answer.data


class _ForeignErrorStore(MemoryStore):
    """A store of the user's whose client raises its own errors, not StateError."""

    def expire(self, call_uuid: str, seconds: float) -> None:
        raise ConnectionError("the store's own error")

    def clear(self, call_uuid: str) -> None:
        raise ConnectionError("the store's own error")


def test_the_last_resort_answers_for_the_event_and_names_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # It answered every failure with the apology and Hangup, the call unknown: a Hangup
    # whose state could not be cleared got a 200 (never sent again), and the log and the
    # hook had no CallUUID.
    seen: list[tuple[str, str | None]] = []

    def hook(exc: BaseException, call: CallRequest | None, route: str) -> None:
        seen.append((type(exc).__name__, call.call_uuid if call else None))

    flow = flow_of(state=_ForeignErrorStore(), on_error=hook)
    flow.add_route("/events", lambda call: None, name="events", status_callback=True)
    events = send(flow, "/events", Event="Hangup")
    assert (events.status_code, events.data) == (503, b"")
    assert seen == [("ConnectionError", CALL["CallUUID"])]
    assert CALL["CallUUID"] in caplog.text


class _ForeignReplayErrorStore(MemoryStore):
    """A store whose replay record fails with the store's own error (a SQLite file whose
    table is missing, say): before the body has been read."""

    def remember_all(self, keys: Any, seconds: float) -> bool:
        raise ConnectionError("the store's own error")


@pytest.mark.parametrize("direct", [True, False])
def test_a_store_failing_at_the_replay_record_answers_for_the_event(
    caplog: pytest.LogCaptureFixture, direct: bool
) -> None:
    # The call was unknown there: a Hangup got the apology document with a 200 (never sent
    # again), and the log said "call - event -".
    seen: list[str | None] = []
    flow = flow_of(
        state=_ForeignReplayErrorStore(),
        on_error=lambda exc, call, route: seen.append(call.event if call else None),
    )
    flow.add_route("/answer", lambda call: Response(Speak("hi")))
    hangup = send(flow, "/answer", direct, Event="Hangup")
    assert (hangup.status_code, hangup.data) == (503, b"")
    answer = send(flow, "/answer", direct, Event="StartApp")
    assert answer.status_code == 200 and b"<Hangup/>" in answer.data  # the fallback
    assert seen == ["Hangup", "StartApp"]
    assert f"call {CALL['CallUUID']} event Hangup" in caplog.text


class _RecordsThenFails(MemoryStore):
    """A store that writes the replay record, then fails once (a Redis reply lost after
    the write was applied): with its client's own error, or as the built-in stores do."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error: Exception | None = error

    def remember_all(self, keys: Any, seconds: float) -> bool:
        fresh = super().remember_all(keys, seconds)
        error, self.error = self.error, None
        if error is not None:
            raise error
        return fresh


@pytest.mark.parametrize(
    "error",
    [ConnectionError("the reply was lost after the write"), StateError("the reply was lost")],
)
def test_a_503_after_a_replay_record_that_failed_midway_readmits_the_retry(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its 503 asked Vobiz to send the Hangup again, and the record its failing store had
    # written refused that very retry (403): the Hangup was lost.
    # A loaded machine must not make the quick failure look slow (the slow case has tests
    # of its own).
    monkeypatch.setattr(dispatch_module, "READMIT_AFTER_FAILING_WITHIN", 60.0)
    flow = flow_of(state=_RecordsThenFails(error))
    flow.add_route("/events", lambda call: None, name="events", status_callback=True)
    client = flow.create_app().test_client()
    headers = sign(PUBLIC + "/events", TOKEN)
    first = client.post("/events", data={**CALL, "Event": "Hangup"}, headers=headers)
    assert first.status_code == 503
    retry = client.post("/events", data={**CALL, "Event": "Hangup"}, headers=headers)
    assert retry.status_code == 200
    again = client.post("/events", data={**CALL, "Event": "Hangup"}, headers=headers)
    assert again.status_code == 403  # answered now: a copy is a replay


class _StallsThenFails(_RecordsThenFails):
    """The same, after a stall (a Redis timeout): counted, to see what the 503 costs."""

    calls = 0
    threads: ClassVar[list[str]] = []

    def remember_all(self, keys: Any, seconds: float) -> bool:
        _StallsThenFails.calls += 1
        _StallsThenFails.threads.append(threading.current_thread().name)
        if self.error is not None:
            time.sleep(0.3)  # longer than a quick failure: a store that stalls
        return super().remember_all(keys, seconds)


@pytest.mark.parametrize("error", [ConnectionError("timed out"), StateError("timed out")])
def test_a_replay_record_that_stalled_is_not_asked_again_before_the_503(
    error: Exception,
) -> None:
    # Forgetting the keys makes up to four more store calls: after a stall, the 503 came
    # past the 3 s Vobiz waits for a status callback. Its retry may then be refused, if
    # the stalled store did write the record (the README says so).
    _StallsThenFails.calls = 0
    _StallsThenFails.threads = []
    flow = flow_of(state=_StallsThenFails(error))
    flow.add_route("/events", lambda call: None, name="events", status_callback=True)
    client = flow.create_app().test_client()
    reply = client.post(
        "/events", data={**CALL, "Event": "Hangup"}, headers=sign(PUBLIC + "/events", TOKEN)
    )
    # Asked once by the webhook; forgetting is left to the background (_readmit_later).
    request_thread = threading.current_thread().name
    assert reply.status_code == 503 and _StallsThenFails.threads.count(request_thread) == 1


def test_a_body_that_fails_to_read_is_not_read_again_by_the_last_resort() -> None:
    import urllib.parse

    from werkzeug.test import EnvironBuilder

    class Stalled:  # a client that stopped sending: its socket times out
        reads = 0

        def read(self, n: int = -1) -> bytes:
            Stalled.reads += 1
            raise TimeoutError("timed out")

        readline = read

    flow = flow_of()
    flow.add_route("/answer", lambda call: Response(Speak("hi")))
    body = urllib.parse.urlencode({**CALL, "Event": "Hangup"})
    env = EnvironBuilder(
        path="/answer", method="POST", data=body,
        headers=list(sign(PUBLIC + "/answer", TOKEN).items()),
        content_type="application/x-www-form-urlencoded",
    ).get_environ()  # fmt: skip
    env["wsgi.input"] = Stalled()
    status: list[str] = []
    b"".join(flow.create_app()(env, lambda s, h, *a: status.append(s)))  # type: ignore[arg-type]
    # Refused (its fields are unknown; the retry a 400 brings is taken), and waited for
    # once, not twice.
    assert status == ["400 BAD REQUEST"] and Stalled.reads == 1


def test_the_last_resort_reads_no_body_whose_signature_did_not_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from answerkit.dispatch import SignatureGate

    def failing_check(self: Any, req: Any) -> Any:
        raise RuntimeError("the check itself failed")

    monkeypatch.setattr(SignatureGate, "check", failing_check)
    seen: list[object] = []
    flow = flow_of(on_error=lambda exc, call, route: seen.append(call))
    flow.add_route("/answer", lambda call: Response(Speak("hi")))
    reply = send(flow, "/answer", Event="Hangup")
    assert reply.status_code == 200 and b"<Hangup/>" in reply.data  # unknown event: fallback
    assert seen == [None]  # the unverified body was never read


class _Unshowable(RuntimeError):
    def __str__(self) -> str:
        raise TypeError("no text")


def test_an_exception_that_cannot_be_shown_is_logged_with_its_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def record_action(call: CallRequest) -> Response:
        raise _Unshowable()

    flow = flow_of()
    flow.add_route("/recorded", record_action)
    # A Record's action wants an empty document whatever happens: the last resort, which
    # this exception reached through the error's hint, answered the apology and Hangup.
    answer = send(flow, "/recorded", Event="Record")
    assert parse(answer.data) == Response()
    assert CALL["CallUUID"] in caplog.text and "_Unshowable" in caplog.text


def test_a_huge_exception_text_is_cut_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    def huge(call: CallRequest) -> Response:
        raise ValueError("x" * 1_000_000)

    flow = flow_of()
    flow.add_route("/answer", huge)
    send(flow, "/answer")
    assert all(len(r.getMessage()) < 10_000 for r in caplog.records)
    assert "1000000 characters in all" in caplog.text
    # The traceback a formatter adds is bounded too: it repeated the whole text, so the
    # log got the million characters anyway (and the exception stays for handlers that
    # read it, a Sentry integration say).
    [failed] = [r for r in caplog.records if r.exc_info]
    formatted = logging.Formatter().format(failed)
    assert len(formatted) < 10_000 and formatted.count(" characters in all)") == 2
    assert isinstance(failed.exc_info[1], ValueError)  # type: ignore[index]


def test_a_short_traceback_is_left_to_the_apps_formatter() -> None:
    # Bounding every traceback skipped an app formatter's own formatException (a one-line
    # traceback for a log collector) on every answerkit record.
    def short(call: CallRequest) -> Response:
        raise ValueError("short")

    class OneLine(logging.Formatter):
        def formatException(self, ei: Any) -> str:
            return "one-line traceback"

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(OneLine())
    logger = logging.getLogger("answerkit")
    logger.addHandler(handler)
    try:
        flow = flow_of()
        flow.add_route("/answer", short)
        send(flow, "/answer")
    finally:
        logger.removeHandler(handler)
    assert "one-line traceback" in out.getvalue()
    assert "Traceback (most recent call last)" not in out.getvalue()


class _SelfRendered(Response):
    def to_bytes(self, pretty: bool = False) -> bytes:
        return b"<Response><Speak>a & b</Speak><Hangup/><Speak>after</Speak></Response>"

    def to_xml(self, pretty: bool = False) -> str:
        return self.to_bytes().decode()


def test_a_response_subclass_is_rendered_as_a_response_is() -> None:
    # Its own to_bytes was served unchecked: a bare '&' and elements after Hangup, which
    # Vobiz refuses (8011, the call dropped).
    flow = flow_of(fallback=_SelfRendered(Speak("Sorry."), Hangup()))
    flow.add_route("/answer", lambda call: _SelfRendered(Speak("Hello & welcome.")))
    flow.add_route("/broken", broken)
    assert parse(send(flow, "/answer").data) == Response(Speak("Hello & welcome."))
    assert parse(send(flow, "/broken").data) == Response(Speak("Sorry."), Hangup())


def test_a_generator_function_is_refused_as_a_handler() -> None:
    # Called, it returns a generator and runs nothing: on a status route, silently.
    def events(call: CallRequest) -> Iterator[None]:
        yield None

    with pytest.raises(ConfigurationError, match="generator function"):
        flow_of().add_route("/events", events, status_callback=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("direct", [True, False])
def test_every_log_call_may_raise_without_changing_the_answer(
    raising_log: None, direct: bool
) -> None:
    # Only the error line was guarded: a forged request got the fallback instead of its
    # 403, and a None on StartApp the apology instead of the empty document.
    flow = flow_of()
    flow.add_route("/answer", lambda call: None)
    client = flow.create_app(direct=direct).test_client()
    forged = client.post("/answer", data=CALL, headers=sign(PUBLIC + "/other", TOKEN))
    assert forged.status_code == 403
    assert parse(send(flow, "/answer", direct).data) == Response()


@pytest.mark.parametrize("failure", ["retry later", "store's own error"])
def test_a_503_readmits_the_signature_for_vobizs_retry(raising_log: None, failure: str) -> None:
    # The last resort's 503 kept the signature recorded, and RetryLater's was never
    # readmitted when its log line raised: the retry Vobiz sends was refused (403).
    from answerkit import RetryLater

    runs: list[int] = []

    def events(call: CallRequest) -> None:
        runs.append(1)
        if failure == "retry later" and len(runs) == 1:
            raise RetryLater("not yet")

    class OnceFailing(MemoryStore):
        failed = False

        def expire(self, call_uuid: str, seconds: float) -> None:
            if not OnceFailing.failed:
                OnceFailing.failed = True
                raise ConnectionError("the store's own error")
            super().expire(call_uuid, seconds)

    store = OnceFailing() if failure != "retry later" else MemoryStore()
    flow = flow_of(state=store)
    flow.add_route("/events", events, name="events", status_callback=True)
    client = flow.create_app().test_client()
    headers = sign(PUBLIC + "/events", TOKEN)
    first = client.post("/events", data={**CALL, "Event": "Hangup"}, headers=headers)
    again = client.post("/events", data={**CALL, "Event": "Hangup"}, headers=headers)
    assert (first.status_code, again.status_code) == (503, 200)
    assert len(runs) == 2


def test_a_decorated_generator_or_an_async_generator_is_caught() -> None:
    import functools

    async def agen(call: CallRequest) -> Any:
        yield None

    with pytest.raises(ConfigurationError, match="generator function"):
        flow_of().add_route("/events", agen, status_callback=True)

    def gen(call: CallRequest) -> Iterator[None]:
        yield None

    @functools.wraps(gen)
    def wrapped(call: CallRequest) -> Any:
        return gen(call)

    with pytest.raises(ConfigurationError, match="generator function"):
        flow_of().add_route("/events", wrapped, status_callback=True)

    # A wrapper that hides it (no __wrapped__): its body never runs, and that is reported.
    reported: list[str] = []
    flow = flow_of(on_error=lambda exc, call, route: reported.append(str(exc)))
    flow.add_route("/events", lambda call: gen(call), name="events", status_callback=True)
    assert send(flow, "/events", Event="Hangup").status_code == 200
    assert reported and "its body never ran" in reported[0]


def test_a_log_call_outside_the_dispatcher_may_raise_too(raising_log: None) -> None:
    # The direct path's warning about a body shorter than announced went through a plain
    # logger: raising there, it turned the answer into the apology. (A body cut short is
    # refused now, never run on part of its fields: the refusal is what must stand.)
    flow = flow_of()
    ran: list[str] = []
    flow.add_route("/answer", lambda call: ran.append(call.call_uuid))
    body = "&".join(f"{k}={v}" for k, v in CALL.items()).encode()
    answer = (
        flow.create_app()
        .test_client()
        .post(
            "/answer",
            data=body,
            headers={
                **sign(PUBLIC + "/answer", TOKEN),
                "Content-Type": "application/x-www-form-urlencoded",
            },
            environ_overrides={"CONTENT_LENGTH": str(len(body) + 10)},
        )
    )
    assert answer.status_code == 400 and b"cut short" in answer.data and ran == []


def test_the_quiet_log_keeps_the_callers_place_and_can_be_patched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from unittest import mock

    from answerkit.dispatch import log

    def where_it_was_said() -> None:
        log.warning("said here")

    with caplog.at_level(logging.WARNING, logger="answerkit"):
        where_it_was_said()
    assert caplog.records[-1].funcName == "where_it_was_said"
    with mock.patch.object(log, "warning") as patched:
        log.warning("x")
    assert patched.called


class _Outage(MemoryStore):
    """A store that is down (state writes and forgetting fail) until ``down`` is cleared;
    it notes which threads asked it to forget."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.forgetting_threads: list[str] = []
        self.forgotten = threading.Event()

    def set(self, call_uuid: str, key: str, value: Any) -> None:
        if self.down:
            # A stall (a lock held, a Redis timeout) past FORGET_IN_WEBHOOK_WITHIN, then the
            # store's error: asked to forget in the webhook, it would stall again.
            time.sleep(dispatch_module.FORGET_IN_WEBHOOK_WITHIN + 0.1)
            raise StateError("store down")
        super().set(call_uuid, key, value)

    def remember_all(self, keys: Any, ttl: float) -> bool:
        if any(":retry" in key for key in keys):
            self.forgetting_threads.append(threading.current_thread().name)
            if self.down:
                raise StateError("store down")
        return super().remember_all(keys, ttl)

    def forget_all(self, keys: Any) -> None:
        super().forget_all(keys)
        self.forgotten.set()


def test_a_status_callback_the_store_failed_is_forgotten_in_the_background() -> None:
    # Asked to forget the signature inside the webhook, a store that had just stalled
    # stalled again: the 503 came past Vobiz's 3 s and the retry it asked for was refused
    # (a Hangup lost). Now the webhook answers at once, and the signature is forgotten
    # once the store is back.
    store = _Outage()
    flow = flow_of(state=store)
    ran: list[str] = []

    def hangup(call: CallRequest) -> None:
        ran.append(call.call_uuid)
        call.state["ended"] = True

    flow.add_route("/events", hangup, name="events", status_callback=True)
    client = flow.create_app().test_client()
    headers = sign(PUBLIC + "/events", TOKEN)
    request_thread = threading.current_thread().name
    first = client.post("/events", data={**CALL, "Event": "Hangup"}, headers=headers)
    assert first.status_code == 503
    assert request_thread not in store.forgetting_threads  # never waited on in the webhook
    early = client.post("/events", data={**CALL, "Event": "Hangup"}, headers=headers)
    assert early.status_code == 403  # still down: not forgotten yet, so refused
    store.down = False
    assert store.forgotten.wait(30)  # by the background, on its next try
    retry = client.post("/events", data={**CALL, "Event": "Hangup"}, headers=headers)
    assert retry.status_code == 200
    assert len(ran) == 2  # the handler ran again on the retry: the Hangup was not lost
    assert store.get_all(CALL["CallUUID"]) == {"ended": True}  # kept for the hangup linger


def test_a_handlers_own_timeout_error_is_its_failure_not_the_deadline() -> None:
    # On the thread path the deadline's wait raises TimeoutError too: a handler's own (a
    # socket timing out) was reported as "handler deadline passed", and on_error got a
    # HandlerTimeout instead of the error.
    reported: list[BaseException] = []
    flow = flow_of(on_error=lambda exc, call, route: reported.append(exc))

    def answer(call: CallRequest) -> Response:
        raise TimeoutError("the CRM did not answer")

    flow.add_route("/answer", answer)
    replies: list[Any] = []
    worker = threading.Thread(target=lambda: replies.append(send(flow, "/answer")))
    worker.start()  # off the main thread: the handler runs on a handler thread
    worker.join()
    assert replies[0].status_code == 200 and b"Hangup" in replies[0].data  # the fallback
    assert [type(exc) for exc in reported] == [TimeoutError]
    assert str(reported[0]) == "the CRM did not answer"


class _RecordRefused(MemoryStore):
    """A store that refuses at once (connection refused) until ``down`` is cleared."""

    down = True

    def remember_all(self, keys: Any, ttl: float) -> bool:
        if self.down:
            raise StateError("connection refused")
        return super().remember_all(keys, ttl)


def test_a_record_that_may_never_have_been_written_is_not_forgotten_in_the_background() -> None:
    # The replay record failed, so none may stand: Vobiz's retry is taken and recorded, and
    # a late background forget (queued for the failed delivery) erased that record, so a
    # replay of the accepted delivery ran the Hangup handler a second time.
    from answerkit._readmit_later import late_forgetting

    store = _RecordRefused()
    flow = flow_of(state=store)
    ran: list[str] = []
    flow.add_route("/events", lambda call: ran.append(call.call_uuid), name="events",
                   status_callback=True)  # fmt: skip
    client = flow.create_app().test_client()
    headers = sign(PUBLIC + "/events", TOKEN)
    hangup = {**CALL, "Event": "Hangup"}
    pending = late_forgetting.pending
    assert client.post("/events", data=hangup, headers=headers).status_code == 503
    assert late_forgetting.pending <= pending  # nothing queued for later
    store.down = False
    assert client.post("/events", data=hangup, headers=headers).status_code == 200
    assert client.post("/events", data=hangup, headers=headers).status_code == 403
    assert ran == [CALL["CallUUID"]]


def test_a_body_cut_short_while_the_store_is_down_is_refused_not_given_the_apology() -> None:
    # The store-down branch read the body for its event; a body cut short read as "no
    # call", and an answer route (a Hangup's default hangup_url) got the apology with 200,
    # which Vobiz never sends again: the Hangup lost.
    flow = flow_of(state=_RecordRefused())
    flow.add_route("/answer", lambda call: Response(Speak("hi")))
    body = urllib.parse.urlencode({**CALL, "Event": "Hangup"})
    reply = flow.create_app().test_client().post(
        "/answer",
        data=body,
        headers={**sign(PUBLIC + "/answer", TOKEN),
                 "Content-Type": "application/x-www-form-urlencoded"},
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 10)},
    )  # fmt: skip
    assert reply.status_code == 400 and b"cut short" in reply.data


def _hangup_sent_again(store: StateStore, refusals: int) -> tuple[Callable[[], Any], list[int]]:
    """A status route whose handler asks for the Hangup again (RetryLater) ``refusals``
    times, on a flow with ``store``; ``send()`` delivers the same signed Hangup, as Vobiz
    retries it. Returns ``send`` and the list the handler appends to on each run."""
    from answerkit import RetryLater

    ran: list[int] = []

    def hangup(call: CallRequest) -> None:
        ran.append(1)
        if len(ran) <= refusals:
            raise RetryLater("the CRM is down")

    flow = flow_of(state=store)
    flow.add_route("/events", hangup, name="events", status_callback=True)
    client = flow.create_app().test_client()
    headers = sign(PUBLIC + "/events", TOKEN)
    return lambda: client.post("/events", data={**CALL, "Event": "Hangup"}, headers=headers), ran


class _ForgetsThenFails(MemoryStore):
    """Deletes the keys asked, then fails as if the reply were lost (a Redis timeout after
    the server ran the DEL)."""

    def forget_all(self, keys: Any) -> None:
        super().forget_all(keys)
        raise StateError("the reply was lost")


def test_a_forget_that_may_have_taken_effect_is_never_done_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Tried again in the background after Vobiz's retry was taken, the delete erased that
    # retry's record: a captured copy then ran the Hangup handler a third time.
    from answerkit._readmit_later import late_forgetting

    send, ran = _hangup_sent_again(_ForgetsThenFails(), refusals=1)
    pending = late_forgetting.pending
    assert send().status_code == 503
    assert "may not have been forgotten" in caplog.text
    assert late_forgetting.pending <= pending  # nothing queued to forget it again later
    assert [send().status_code, send().status_code] == [200, 403]
    assert len(ran) == 2


class _ForgetsThenCancelled(MemoryStore):
    """Deletes the keys asked, then raises CancelledError (a store on an async client)."""

    def forget_all(self, keys: Any) -> None:
        import asyncio

        super().forget_all(keys)
        raise asyncio.CancelledError()


def test_a_forget_cancelled_after_it_deleted_is_never_done_again_nor_escapes() -> None:
    # CancelledError is no Exception: it escaped the webhook (no answer at all) or was
    # retried in the background after the retry was taken, erasing its record.
    send, ran = _hangup_sent_again(_ForgetsThenCancelled(), refusals=1)
    assert [send().status_code, send().status_code, send().status_code] == [503, 200, 403]
    assert len(ran) == 2


def test_a_background_forget_stops_before_the_record_would_expire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Tried for 60 s whatever the replay window: once the delivery's own record expired, a
    # retry was taken and recorded anew, and the late forget erased that record.
    store = _Outage()
    flow = CallFlow("window", public_url=PUBLIC, auth_token=TOKEN, state=store, replay_window=1.0)
    flow.add_route("/events", lambda call: call.state.update(ended=True), name="events",
                   status_callback=True)  # fmt: skip
    client = flow.create_app().test_client()
    headers = sign(PUBLIC + "/events", TOKEN)
    assert (
        client.post("/events", data={**CALL, "Event": "Hangup"}, headers=headers).status_code == 503
    )
    give_up = time.monotonic() + 30
    while "could not be forgotten in time" not in caplog.text and time.monotonic() < give_up:
        time.sleep(0.05)  # the store stays down: the job gives up by itself, well before 60 s
    assert "could not be forgotten in time" in caplog.text
    assert not store.forgotten.is_set()


class _Contended(MemoryStore):
    """A busy store: claiming a readmission slot takes 0.6 s (past the webhook's budget)."""

    def __init__(self) -> None:
        super().__init__()
        self.forgets = 0

    def remember_all(self, keys: Any, ttl: float) -> bool:
        if any(":retry" in key for key in keys):
            time.sleep(dispatch_module.FORGET_IN_WEBHOOK_WITHIN + 0.1)
        return super().remember_all(keys, ttl)

    def forget_all(self, keys: Any) -> None:
        super().forget_all(keys)
        self.forgets += 1


def test_a_slow_forget_in_the_webhook_spends_one_slot_per_503() -> None:
    # The budget was checked again between claiming a slot and the delete: the background
    # then claimed the next slot, one 503 spent two of the three, and Vobiz's last retry
    # of a Hangup was refused.
    store = _Contended()
    send, ran = _hangup_sent_again(store, refusals=3)
    statuses = []
    for delivery in range(4):
        reply = send()
        statuses.append(reply.status_code)
        give_up = time.monotonic() + 30  # Vobiz's retry comes after a backoff: the
        while reply.status_code == 503 and store.forgets <= delivery:  # forget first
            assert time.monotonic() < give_up, "the signature was never forgotten"
            time.sleep(0.02)
    assert statuses == [503, 503, 503, 200] and len(ran) == 4


class _SlowExpiryStore(MemoryStore):
    """A store whose expiry stalls (a Redis paused, a SQLite file locked) until released,
    or fails at once when told to."""

    def __init__(self, *, fail: bool = False) -> None:
        super().__init__()
        self.release = threading.Event()
        self.expired = threading.Event()
        self.fail = fail

    def _stall(self) -> None:
        if self.fail:
            raise StateError("the store is down")
        self.release.wait(30)
        self.expired.set()

    def expire(self, call_uuid: str, seconds: float) -> None:
        self._stall()
        super().expire(call_uuid, seconds)

    def clear(self, call_uuid: str) -> None:
        self._stall()
        super().clear(call_uuid)


def _post_hangup(flow: CallFlow, in_thread: bool) -> Any:
    """A Hangup sent from this (the main) thread, or from a worker thread as a threaded
    server sends it."""
    if not in_thread:
        return send(flow, "/events", Event="Hangup")
    answers: list[Any] = []
    worker = threading.Thread(target=lambda: answers.append(send(flow, "/events", Event="Hangup")))
    worker.start()
    worker.join(60)
    return answers[0]


@pytest.mark.parametrize("linger", [30.0, 0.0])
@pytest.mark.parametrize("in_thread", [False, True])
def test_a_hangup_whose_expiry_stalls_is_answered_within_the_status_deadline(
    linger: float, in_thread: bool, runner_timer_paused: None, caplog: pytest.LogCaptureFixture
) -> None:
    # The expiry of the state after the Hangup's handler ran outside status_deadline: a
    # store that stalled there held the answer past Vobiz's 3 s (3.6 s seen with Redis),
    # and Vobiz's retry meanwhile was refused as a replay. Now it runs on a thread of its
    # own, waited for within what is left of the deadline; still running then, it goes on
    # there and the Hangup, whose handler did its work, is answered 200 (a 503 would run
    # the handler again, on a state the late expiry may have cleared). It takes none of
    # the handlers' threads, on either path of the deadline.
    runs: list[str] = []
    store = _SlowExpiryStore()
    flow = flow_of(state=store, status_deadline=0.3, hangup_linger=linger)
    flow.add_route("/events", lambda call: runs.append(call.call_uuid), status_callback=True)
    try:
        hangup = _post_hangup(flow, in_thread)
        assert (hangup.status_code, hangup.data) == (200, b"")
        assert runs == [CALL["CallUUID"]]
        assert not store.expired.is_set()
        assert "still being expired when the status deadline passed" in caplog.text
    finally:
        store.release.set()
    assert store.expired.wait(30)  # and it did finish, in the background
    _wait_for_abandoned_expiries()


@pytest.mark.parametrize("in_thread", [False, True])
def test_a_hangup_whose_expiry_fails_in_time_is_asked_for_again(
    in_thread: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # The store's failure, known within the deadline: 503, so that Vobiz's retry finds
    # the store back and the state is not left for the whole TTL.
    seen: list[str] = []
    flow = flow_of(
        state=_SlowExpiryStore(fail=True), status_deadline=1.0,
        on_error=lambda exc, call, route: seen.append(type(exc).__name__),
    )  # fmt: skip
    flow.add_route("/events", lambda call: None, status_callback=True)
    hangup = _post_hangup(flow, in_thread)
    assert (hangup.status_code, hangup.data) == (503, b"")
    assert seen == ["StateError"]
    assert "could not expire call state on hangup" in caplog.text


def _wait_for_abandoned_expiries() -> None:
    """Until no expiry a Hangup stopped waiting for is still running (a test's stuck ones,
    released, end on their own threads): they count towards the next test's cap."""
    from answerkit import _expiry_thread

    until = time.monotonic() + 30
    while _expiry_thread.expiries._abandoned and time.monotonic() < until:
        time.sleep(0.01)
    assert not _expiry_thread.expiries._abandoned


class _OneStuckExpiryStore(MemoryStore):
    """A store whose expiry of one call never returns (until released); others are quick."""

    def __init__(self, stuck: str) -> None:
        super().__init__()
        self.stuck = stuck
        self.release = threading.Event()

    def expire(self, call_uuid: str, seconds: float) -> None:
        if call_uuid == self.stuck:
            self.release.wait(30)
        super().expire(call_uuid, seconds)


def test_a_stuck_expiry_holds_up_no_other_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # All expiries ran one after another on one thread: one store call that never
    # returned left every later call's state unexpired, each Hangup waiting its whole
    # deadline. Each has a thread of its own now, and past MAX_RUNNING stuck ones an
    # expiry is not tried (said), rather than queued for ever.
    from answerkit import _expiry_thread

    monkeypatch.setattr(_expiry_thread, "MAX_RUNNING", 2)
    store = _OneStuckExpiryStore(stuck="stuck-1")
    flow = flow_of(state=store, status_deadline=0.3, hangup_linger=30.0)
    flow.add_route("/events", lambda call: None, status_callback=True)
    client = flow.create_app().test_client()

    def hangup(call_uuid: str) -> Any:
        fields = {**CALL, "CallUUID": call_uuid, "Event": "Hangup"}
        return client.post("/events", data=fields, headers=sign(PUBLIC + "/events", TOKEN))

    try:
        store.set("other", "kept", 1)
        assert hangup("stuck-1").status_code == 200
        assert "still being expired" in caplog.text
        caplog.clear()
        assert hangup("other").status_code == 200
        assert "other" not in caplog.text  # expired in time, nothing to say
        assert 0 < store._calls["other"][0] - time.time() <= 30  # the linger, not 4 h
        store.stuck = "stuck-2"
        assert hangup("stuck-2").status_code == 200  # the second of two allowed
        assert hangup("third").status_code == 200
        assert "too many expiries are still running past their Hangups' answers" in caplog.text
    finally:
        store.release.set()
        _wait_for_abandoned_expiries()


def test_hangups_under_way_at_once_all_have_their_state_expired(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The cap counted every expiry thread alive, and each Hangup waits for its own: 32 or
    # more Hangups at once on a healthy Redis had expiries skipped (183 of 400 at 48),
    # their state kept for the whole TTL. Only expiries their webhooks gave up on count.
    from answerkit import _expiry_thread

    _wait_for_abandoned_expiries()
    monkeypatch.setattr(_expiry_thread, "MAX_RUNNING", 1)
    together = threading.Barrier(3, timeout=20)

    class Together(MemoryStore):
        def expire(self, call_uuid: str, seconds: float) -> None:
            together.wait()  # the three expiries run at the same time
            super().expire(call_uuid, seconds)

    store = Together()
    flow = flow_of(state=store, status_deadline=25.0, hangup_linger=30.0)
    flow.add_route("/events", lambda call: None, status_callback=True)
    app = flow.create_app()
    answers: list[int] = []

    def hangup(call_uuid: str) -> None:
        fields = {**CALL, "CallUUID": call_uuid, "Event": "Hangup"}
        reply = app.test_client().post(
            "/events", data=fields, headers=sign(PUBLIC + "/events", TOKEN)
        )
        answers.append(reply.status_code)

    for call_uuid in ("c-1", "c-2", "c-3"):
        store.set(call_uuid, "kept", 1)
    workers = [threading.Thread(target=hangup, args=(u,)) for u in ("c-1", "c-2", "c-3")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert answers == [200, 200, 200]
    assert "not expired" not in caplog.text
    for call_uuid in ("c-1", "c-2", "c-3"):
        assert 0 < store._calls[call_uuid][0] - time.time() <= 30  # the linger, not 4 h
