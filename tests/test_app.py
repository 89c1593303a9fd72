"""CallFlow: routes, dispatch by event, verification, safe failure, state, URLs."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any
from unittest.mock import patch
from urllib.parse import urlencode

import pytest
from flask import Flask
from lxml import etree
from test_handler_threads import fork_with_threads, in_a_forked_child, needs_fork

from answerkit import (
    CallFlow,
    CallRequest,
    ConfigurationError,
    Event,
    Gather,
    Hangup,
    Redirect,
    Response,
    Speak,
    TransferArgumentError,
    parse,
    sign,
)
from answerkit.state import MemoryStore

PUBLIC = "https://voice.example.com"
TOKEN = "test-token-0123456789"


def make_flow(**kwargs: Any) -> CallFlow:
    kwargs.setdefault("public_url", PUBLIC)
    kwargs.setdefault("auth_token", TOKEN)
    kwargs.setdefault("state", MemoryStore())
    flow = CallFlow("support", **kwargs)

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        call.state["visits"] = call.state.get("visits", 0) + 1
        return Response(
            Gather(Speak("Press 1"), action=flow.url_for("menu", attempt=1, lang="en")),
            Redirect(flow.url_for("answer")),
        )

    @flow.route("/menu")
    def menu(call: CallRequest) -> Response:
        return Response(Speak(f"You pressed {call.digits}. Visits {call.state.get('visits')}"))

    @flow.route("/answer", event=Event.Hangup)
    def hung_up(call: CallRequest) -> None:
        flow.hangups.append(call.call_uuid)  # type: ignore[attr-defined]

    @flow.route("/boom")
    def boom(call: CallRequest) -> Response:
        raise RuntimeError("handler bug")

    @flow.route("/not-xml")
    def not_xml(call: CallRequest) -> Response:
        return "<Response/>"  # type: ignore[return-value]

    @flow.route("/events", status_callback=True)
    def events(call: CallRequest) -> None:
        flow.events_seen.append(str(call.event))  # type: ignore[attr-defined]

    flow.hangups = []  # type: ignore[attr-defined]
    flow.events_seen = []  # type: ignore[attr-defined]
    return flow


def post(
    client: Any,
    path: str,
    params: dict[str, str],
    *,
    url: str | None = None,
    token: str = TOKEN,
    headers: dict[str, str] | None = None,
) -> Any:
    signed = sign(url or PUBLIC + path, token)
    return client.post(path, data=params, headers={**signed, **(headers or {})})


CALL = {
    "CallUUID": "c-1",
    "From": "14155550100",
    "To": "14155550199",
    "Direction": "inbound",
    "CallStatus": "ringing",
    "Event": "StartApp",
}


@pytest.fixture
def flow() -> CallFlow:
    return make_flow()


@pytest.fixture(params=[True, False], ids=["direct", "through-flask"])
def client(flow: CallFlow, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Both ways into a route: answered straight from WSGI (the default) and by Flask."""
    yield flow.create_app(direct=request.param).test_client()


def test_answer_route_returns_valid_vobizxml(client: Any) -> None:
    r = post(client, "/answer", CALL)
    assert r.status_code == 200
    assert r.content_type.startswith("application/xml")
    doc = parse(r.data)
    gather = doc.children[0]
    assert gather.get("action") == f"{PUBLIC}/menu?attempt=1&lang=en"
    assert b"attempt=1&amp;lang=en" in r.data  # escaped on the wire
    etree.fromstring(r.data)


def test_state_is_kept_across_webhooks_and_cleared_on_hangup(client: Any, flow: CallFlow) -> None:
    post(client, "/answer", CALL)
    r = post(client, "/menu", {**CALL, "Event": "Gather", "Digits": "1"})
    assert b"You pressed 1. Visits 1" in r.data
    r = post(client, "/answer", {**CALL, "Event": "Hangup", "CallStatus": "completed"})
    assert r.status_code == 200 and r.data == b""
    assert flow.hangups == ["c-1"]  # type: ignore[attr-defined]
    # Kept for the webhooks that follow a Hangup (spec §2.13), then gone.
    r = post(client, "/menu", {**CALL, "Event": "DialAction", "Digits": "1"})
    assert b"Visits 1" in r.data
    assert flow.store.get_all("c-1") == {"visits": 1}
    with patch("time.time", return_value=time.time() + flow.hangup_linger + 1):
        assert flow.store.get_all("c-1") == {}


def test_hangup_linger_zero_clears_state_at_once() -> None:
    flow = make_flow(hangup_linger=0)
    client = flow.create_app().test_client()
    post(client, "/answer", CALL)
    assert flow.store.get_all("c-1") == {"visits": 1}
    post(client, "/answer", {**CALL, "Event": "Hangup", "CallStatus": "completed"})
    assert flow.store.get_all("c-1") == {}


@pytest.mark.parametrize("linger", [-1, float("nan"), float("inf")])
def test_hangup_linger_must_not_be_negative(linger: float) -> None:
    with pytest.raises(ConfigurationError, match="hangup_linger"):
        make_flow(hangup_linger=linger)


def test_hangup_at_answer_route_never_runs_answer_handler() -> None:
    flow = CallFlow("plain", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    ran: list[str] = []

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        ran.append(str(call.event))
        return Response(Hangup())

    c = flow.create_app().test_client()
    r = post(c, "/answer", {**CALL, "Event": "Hangup"})
    assert r.status_code == 200 and r.data == b"" and ran == []


def test_a_route_that_only_gets_hangups_says_its_handler_never_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A Plivo hangup_url view ported as a plain route: its handler never ran, silently.
    flow = CallFlow("ported", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.route("/hangup")(lambda call: None)
    flow.route("/answer")(lambda call: Response(Hangup()))
    c = flow.create_app().test_client()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        assert post(c, "/answer", CALL).status_code == 200
        for n in range(4):  # a worker may see a call's Hangup and not its answer: quiet
            post(c, "/hangup", {**CALL, "CallUUID": f"c-{n}", "Event": "Hangup"})
        assert "its handler ran for none" not in caplog.text
        for n in range(4, 12):
            post(c, "/hangup", {**CALL, "CallUUID": f"c-{n}", "Event": "Hangup"})
            post(c, "/answer", {**CALL, "CallUUID": f"c-{n}", "Event": "Hangup"})
    told = [r.getMessage() for r in caplog.records if "its handler ran for none" in r.getMessage()]
    assert len(told) == 1 and "route hangup:" in told[0]  # once, and not the answer route's
    assert "@flow.route('/hangup', status_callback=True)" in told[0]
    assert "an answer route (which gets Hangups too" in told[0]


def test_unsigned_wrong_token_retargeted_and_replayed_requests_get_403(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert client.post("/answer", data=CALL).status_code == 403
    assert post(client, "/answer", CALL, token="wrong").status_code == 403
    # signed for another path of the same host
    assert post(client, "/answer", CALL, url=PUBLIC + "/menu").status_code == 403
    headers = sign(PUBLIC + "/answer", TOKEN)
    assert client.post("/answer", data=CALL, headers=headers).status_code == 200
    assert client.post("/answer", data=CALL, headers=headers).status_code == 403
    text = caplog.text
    assert TOKEN not in text
    assert headers["X-Vobiz-Signature-V3"] not in text
    assert f"{PUBLIC}/answer" in text  # the log names the URL that was tried
    # And says what to do: an account Vobiz does not sign refuses every call (spec §3.1).
    assert "no signature headers" in text and "verify=False" in text
    assert "signature mismatch" in text and "public_url" in text


def test_missing_call_uuid_is_400(client: Any) -> None:
    r = post(client, "/answer", {"From": "1"})
    assert r.status_code == 400 and b"CallUUID" in r.data
    assert b"application/json" not in r.data


def test_a_json_body_is_told_vobiz_posts_forms(client: Any) -> None:
    headers = sign(f"{PUBLIC}/answer", TOKEN)
    r = client.post("/answer", json={"CallUUID": "c-1", "Event": "StartApp"}, headers=headers)
    assert r.status_code == 400
    assert b"The body is application/json: Vobiz posts form fields" in r.data


def test_failing_handler_answers_fallback_and_reports(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, str]] = []
    flow = make_flow(on_error=lambda exc, call, route: seen.append((route, type(exc).__name__)))
    c = flow.create_app().test_client()
    for path in ("/boom", "/not-xml"):
        r = post(c, path, CALL)
        assert r.status_code == 200
        doc = parse(r.data)
        assert isinstance(doc.children[-1], Hangup)
    assert seen == [("boom", "RuntimeError"), ("not_xml", "ElementError")]
    assert "c-1" in caplog.text and "boom" in caplog.text


def test_a_handler_reading_flask_request_is_told_what_to_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The route is answered ahead of Flask's dispatch: flask.request raised a bare
    # "Working outside of request context".
    from flask import request

    flow = make_flow()

    def plivo_style(call: CallRequest) -> Response:
        return Response(Speak(request.form["Digits"]))

    flow.add_route("/plivo-style", plivo_style)
    r = post(flow.create_app().test_client(), "/plivo-style", CALL)
    assert r.status_code == 200 and isinstance(parse(r.data).children[-1], Hangup)
    assert "read call.params" in caplog.text


def test_custom_fallback_document() -> None:
    flow = make_flow(fallback=Response(Speak("Custom sorry"), Hangup()))
    r = post(flow.create_app().test_client(), "/boom", CALL)
    assert b"Custom sorry" in r.data


def test_status_callback_route_answers_empty_200_even_on_error(flow: CallFlow) -> None:
    c = flow.create_app().test_client()
    r = post(c, "/events", {**CALL, "Event": "DialAnswer"})
    assert r.status_code == 200 and r.data == b""
    assert flow.events_seen == ["DialAnswer"]  # type: ignore[attr-defined]


def test_get_callbacks_work(flow: CallFlow) -> None:
    c = flow.create_app().test_client()
    r = c.get("/menu", query_string={**CALL, "Digits": "7"}, headers=sign(PUBLIC + "/menu", TOKEN))
    assert r.status_code == 200 and b"You pressed 7" in r.data


def add_sleeper(flow: CallFlow, path: str) -> list[str]:
    """A route whose handler would sleep for 30 s: the deadline must cut it short. Returns
    the list the handler appends to once (if ever) its sleep is over."""
    woke: list[str] = []

    def sleeper(call: CallRequest) -> Response:
        time.sleep(30)
        woke.append(path)
        return Response()

    flow.add_route(path, sleeper, name="sleeper")
    return woke


def assert_fallback_in_time(client: Any, path: str, woke: list[str]) -> None:
    r = post(client, path, CALL)
    assert r.status_code == 200 and b"Hangup" in r.data
    # The fallback came while the handler was still asleep (or interrupted in its sleep),
    # not after its 30 s.
    assert woke == []


def test_handler_deadline_serves_fallback_in_time() -> None:
    flow = CallFlow("slow", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(), deadline=0.3)
    woke = add_sleeper(flow, "/answer")
    assert_fallback_in_time(flow.create_app().test_client(), "/answer", woke)


def test_status_callbacks_have_their_own_shorter_deadline() -> None:
    # Vobiz waits 3 s for a status callback, then retries it (spec §2.12): answered later,
    # its work would run twice. With no general deadline at all, the status one still cuts.
    errors: list[str] = []
    flow = CallFlow(
        "slow", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(), deadline=None,
        status_deadline=0.3, on_error=lambda exc, call, route: errors.append(type(exc).__name__),
    )  # fmt: skip

    def slow_status(call: CallRequest) -> None:
        time.sleep(30)

    flow.add_route("/events", slow_status, status_callback=True)
    c = flow.create_app().test_client()
    headers = sign(PUBLIC + "/events", TOKEN)
    r = c.post("/events", data=CALL, headers=headers)
    # Cut off, its work undone: Vobiz is asked to send it again (503), as it would have
    # after its own 3 s, and the retry's signature is not refused as a replay.
    assert (r.status_code, r.data) == (503, b"")
    assert errors == ["HandlerTimeout"]
    assert c.post("/events", data=CALL, headers=headers).status_code == 503
    assert CallFlow("d", public_url=PUBLIC, auth_token=TOKEN)._deadline.status_seconds == 2.5
    tight = CallFlow("d", public_url=PUBLIC, auth_token=TOKEN, deadline=1)
    assert (tight._deadline.seconds, tight._deadline.status_seconds) == (1, 1)


@pytest.mark.parametrize("bad", [-1, math.inf, math.nan, "5", True])
def test_a_deadline_that_is_not_seconds_is_refused(bad: object) -> None:
    for name in ("deadline", "status_deadline"):
        with pytest.raises(ConfigurationError, match=name):
            CallFlow("d", public_url=PUBLIC, auth_token=TOKEN, **{name: bad})  # type: ignore[arg-type]


def test_retry_later_asks_vobiz_to_resend_a_status_callback_only() -> None:
    from answerkit import RetryLater

    seen: list[str] = []
    flow = make_flow(on_error=lambda exc, call, route: seen.append(type(exc).__name__))

    def not_yet(call: CallRequest) -> None:
        raise RetryLater("the CRM is down")

    def answer_not_yet(call: CallRequest) -> Response:
        raise RetryLater("an answer cannot be retried")

    flow.add_route("/crm", not_yet, status_callback=True)
    flow.add_route("/later", answer_not_yet)
    c = flow.create_app().test_client()
    headers = sign(PUBLIC + "/crm", TOKEN)
    r = c.post("/crm", data=CALL, headers=headers)
    assert (r.status_code, r.data) == (503, b"")  # spec §2.12: Vobiz retries it
    # Its 3 retries may carry the same signature: not refused as replays; a fourth copy
    # (a captured one, sent again and again) is.
    assert [c.post("/crm", data=CALL, headers=headers).status_code for _ in range(4)] == [
        503, 503, 503, 403
    ]  # fmt: skip
    assert seen == []  # asked for, not an error
    # On a webhook that must answer a document, it is an error: the caller gets the fallback.
    r = post(c, "/later", CALL)
    assert r.status_code == 200 and isinstance(parse(r.data).children[-1], Hangup)
    assert seen == ["RetryLater"]


def test_a_hangup_to_be_sent_again_keeps_the_call_state_for_its_retry() -> None:
    from answerkit import Event, RetryLater

    seen: list[object] = []
    flow = CallFlow("linger", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    hangup_linger=0)  # fmt: skip
    tries = iter([True, False])

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        call.state["visits"] = 1
        return Response(Hangup())

    @flow.route("/answer", event=Event.Hangup)
    def hung_up(call: CallRequest) -> None:
        seen.append(call.state.get("visits"))
        if next(tries):
            raise RetryLater("the CRM is down")

    c = flow.create_app().test_client()
    post(c, "/answer", CALL)
    assert post(c, "/answer", {**CALL, "Event": "Hangup"}).status_code == 503
    assert post(c, "/answer", {**CALL, "Event": "Hangup"}).status_code == 200
    assert seen == [1, 1]  # hangup_linger=0 cleared it before the retry came


def test_a_status_handler_whose_store_write_fails_is_sent_again() -> None:
    from answerkit.state import RedisStore

    # The replay check passed (verify off here); the handler's own write met the outage.
    flow = CallFlow("down", public_url=PUBLIC, state=RedisStore("redis://127.0.0.1:1/0"),
                    verify=False)  # fmt: skip

    def log_it(call: CallRequest) -> None:
        call.state["ended"] = True

    flow.add_route("/events", log_it, status_callback=True)
    r = flow.create_app().test_client().post("/events", data={**CALL, "Event": "Hangup"})
    assert (r.status_code, r.data) == (503, b"")


def test_a_status_handler_writing_what_the_state_cannot_keep_is_not_sent_again() -> None:
    # call.total_cost is a Decimal, which JSON cannot carry: the write fails the same way
    # on every retry, so the Hangup is answered 200 once (the error reported), not 503
    # four times with the handler's side effects repeated.
    from answerkit import Event, StateValueError

    ran: list[str] = []
    reported: list[BaseException] = []
    flow = CallFlow("cost", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    on_error=lambda exc, call, route: reported.append(exc))  # fmt: skip
    flow.route("/answer")(lambda call: Response(Hangup()))

    @flow.route("/answer", event=Event.Hangup)
    def hung_up(call: CallRequest) -> None:
        ran.append("crm")
        call.state["cost"] = call.total_cost

    c = flow.create_app().test_client()
    r = post(c, "/answer", {**CALL, "Event": "Hangup", "TotalCost": "0.01200"})
    assert (r.status_code, r.data) == (200, b"") and ran == ["crm"]
    assert len(reported) == 1 and isinstance(reported[0], StateValueError)
    assert "store str(value) to keep it exact, or float(value)" in str(reported[0])


def test_a_status_callback_route_answers_an_action_with_an_empty_document() -> None:
    # A Record's action (redirect=false) must get an empty <Response> (spec §2.6); a
    # status callback's body is ignored (§2.12), so it keeps its empty 200.
    flow = make_flow()
    ran: list[str] = []
    flow.add_route("/noted", lambda call: ran.append(str(call.event)), status_callback=True)
    c = flow.create_app().test_client()
    r = post(c, "/noted", {**CALL, "Event": "Record", "RecordingID": "r-1"})
    assert (r.status_code, r.data, r.content_type) == (
        200, Response().to_bytes(), "application/xml; charset=utf-8"
    )  # fmt: skip
    assert parse(r.data) == Response()
    r = post(c, "/noted", {**CALL, "Event": "Hangup"})
    assert (r.status_code, r.data) == (200, b"") and len(ran) == 2
    r = post(c, "/noted", {k: v for k, v in CALL.items() if k != "Event"})
    assert (r.status_code, r.data) == (200, b"")  # no Event: a status callback, as before


@pytest.mark.parametrize("failure", ["retry-later", "store-down-in-handler", "store-down"])
def test_an_action_on_a_status_route_is_never_answered_503(failure: str) -> None:
    # Vobiz sends status callbacks again on a non-200, not actions: a Record's action
    # (redirect=false) whose handler cannot finish still gets its empty Response, and the
    # error is reported; a Hangup on the same route gets its 503.
    from answerkit import RetryLater
    from answerkit.state import RedisStore

    reported: list[str] = []
    down = RedisStore("redis://127.0.0.1:1/0")
    flow = CallFlow(
        "act",
        public_url=PUBLIC,
        auth_token=TOKEN,
        state=down if failure == "store-down" else MemoryStore(),
        on_error=lambda exc, call, route: reported.append(type(exc).__name__),
    )

    def noted(call: CallRequest) -> None:
        if failure == "retry-later":
            raise RetryLater("later")
        if failure == "store-down-in-handler":
            call.state.store = down
            call.state["noted"] = True

    flow.add_route("/noted", noted, status_callback=True)
    c = flow.create_app().test_client()
    r = post(c, "/noted", {**CALL, "Event": "Record", "RecordingID": "r-1"})
    assert (r.status_code, r.data) == (200, Response().to_bytes())
    assert reported == ["RetryLater" if failure == "retry-later" else "StateError"]
    r = post(c, "/noted", {**CALL, "CallUUID": "c-2", "Event": "Hangup"})
    assert (r.status_code, r.data) == (503, b"")


def test_a_route_without_replay_check_still_verifies_and_answers_with_the_store_down() -> None:
    from answerkit import Play
    from answerkit.state import RedisStore

    # Hold music is the same for everyone, every time: its replays are harmless, and while
    # the store was down the caller on hold heard the apology document instead.
    flow = CallFlow("music", public_url=PUBLIC, auth_token=TOKEN,
                    state=RedisStore("redis://127.0.0.1:1/0"))  # fmt: skip

    @flow.route("/music", replay_check=False)
    def music(call: CallRequest) -> Response:
        return Response(Play("https://cdn.example.com/hold.mp3", loop=0))

    c = flow.create_app().test_client()
    headers = sign(PUBLIC + "/music", TOKEN)
    for _ in range(2):  # the same signature twice: both answered, with the store down
        r = c.post("/music", data=CALL, headers=headers)
        assert r.status_code == 200 and b"<Play" in r.data
    assert c.post("/music", data=CALL).status_code == 403  # still verified
    other = CallFlow("other", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    other.add_route("/music", lambda call: None, replay_check=False)
    with pytest.raises(ConfigurationError, match="replay_check is per URL"):
        other.add_route("/music", lambda call: None, event="Hangup")


def test_a_replay_free_route_takes_no_status_handler_and_acts_on_no_hangup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from answerkit import Play

    # A replay-free route's signatures are never recorded: one captured hold-music fetch,
    # sent again with Event=Hangup and a victim's CallUUID, ran the hangup listeners (a
    # WarmTransfer abandoned, its agent hung up) and ended that call's state, at any time.
    store = MemoryStore()
    flow = CallFlow("music", public_url=PUBLIC, auth_token=TOKEN, state=store)
    told: list[str] = []
    flow.add_hangup_listener(lambda call: told.append(call.call_uuid))

    @flow.route("/music", replay_check=False, sound=True)
    def music(call: CallRequest) -> Response:
        return Response(Play("https://cdn.example.com/hold.mp3", loop=0))

    for kwargs in ({"status_callback": True}, {"event": "Hangup"}, {"event": "DialHangup"}):
        with pytest.raises(ConfigurationError, match="leave replay_check on") as info:
            flow.add_route("/events", lambda call: None, replay_check=False, **kwargs)
        assert "replay_check=False is for a route whose answer is the same" in str(info.value)
    assert "/events" not in [route.path for route in flow.routes]  # nothing half-made kept
    store.state("victim").update({"step": "on hold"})
    c = flow.create_app().test_client()
    headers = sign(PUBLIC + "/music", TOKEN)  # one genuine fetch's headers, captured
    assert c.post("/music", data={**CALL, "CallUUID": "victim"}, headers=headers).status_code == 200
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        for _ in range(2):
            r = c.post("/music", data={**CALL, "CallUUID": "victim", "Event": "Hangup"},
                       headers=headers)  # fmt: skip
            assert (r.status_code, r.data) == (200, b"")
    assert told == [] and dict(store.state("victim")) == {"step": "on hold"}
    notes = [m for m in caplog.messages if "was answered without being acted on" in m]
    assert len(notes) == 1 and "hangup_url" in notes[0]


def test_status_callback_is_per_url_and_a_mismatch_is_refused() -> None:
    # Marking only the Hangup handler of an answer URL status_callback=True once emptied
    # every answer of that URL: each inbound call got no XML and was dropped.
    flow = CallFlow("flags", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak("Welcome"))

    with pytest.raises(ConfigurationError, match="status_callback is per URL") as info:
        flow.add_route("/answer", lambda call: None, event="Hangup", status_callback=True)
    assert "already get an empty 200; drop status_callback=True" in str(info.value)
    # The other way round changes nothing: the URL stays a status URL, as before.
    flow.add_route("/events", lambda call: None, status_callback=True)
    flow.add_route("/events", lambda call: None, event="Hangup")
    assert flow.get_route("/events").status_callback
    c = flow.create_app().test_client()
    r = post(c, "/answer", CALL)
    assert r.status_code == 200 and b"<Speak>Welcome</Speak>" in r.data
    hung_up = post(c, "/answer", {**CALL, "Event": "Hangup"})
    assert hung_up.status_code == 200 and hung_up.data == b""


def test_unreachable_state_store_still_answers() -> None:
    from answerkit.state import RedisStore

    flow = make_flow(state=RedisStore("redis://127.0.0.1:1/0"))
    c = flow.create_app().test_client()
    r = post(c, "/answer", CALL)
    assert r.status_code == 200
    assert isinstance(parse(r.data).children[-1], Hangup)
    # A status callback's handler could not run either, and its answer is no document:
    # a 503 has Vobiz send it again (spec §2.12), when the store may be back.
    for path, event in (("/answer", "Hangup"), ("/events", "DialHangup")):
        r = post(c, path, {**CALL, "Event": event})
        assert (r.status_code, r.data) == (503, b""), path


def test_mount_prefix_is_signed_and_in_urls() -> None:
    app = Flask("host")
    a = make_flow()
    b = CallFlow("sales", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @b.route("/answer")
    def answer_b(call: CallRequest) -> Response:
        return Response(Speak("sales"))

    a.register(app, url_prefix="/support")
    b.register(app, url_prefix="/sales")
    c = app.test_client()
    r = c.post("/support/answer", data=CALL, headers=sign(PUBLIC + "/support/answer", TOKEN))
    assert r.status_code == 200
    assert f"{PUBLIC}/support/menu?attempt=1" in parse(r.data).children[0].get("action")  # type: ignore[operator]
    r = c.post("/sales/answer", data=CALL, headers=sign(PUBLIC + "/sales/answer", TOKEN))
    assert b"sales" in r.data
    # a signature for the unprefixed path does not open the prefixed one
    r = c.post("/sales/answer", data=CALL, headers=sign(PUBLIC + "/answer", TOKEN))
    assert r.status_code == 403


def test_a_prefix_flask_adds_at_registration_is_in_urls_and_signatures() -> None:
    # register_blueprint's own url_prefix, or a parent blueprint's: url_for once left it
    # out, and every Gather action it built led to a 404.
    from flask import Blueprint

    for mount in ("flask option", "nested"):
        flow = make_flow()
        app = Flask("host")
        if mount == "flask option":
            app.register_blueprint(flow.blueprint(), url_prefix="/voice")
        else:
            parent = Blueprint("api", __name__, url_prefix="/api")
            parent.register_blueprint(flow.blueprint(), url_prefix="/voice")
            app.register_blueprint(parent)
        path = "/voice/answer" if mount == "flask option" else "/api/voice/answer"
        assert flow.url_for("answer") == PUBLIC + path
        r = app.test_client().post(path, data=CALL, headers=sign(PUBLIC + path, TOKEN))
        assert r.status_code == 200, mount
        menu = parse(r.data).children[0].get("action")
        assert menu.startswith(f"{PUBLIC}{path.replace('answer', 'menu')}?"), mount  # type: ignore[union-attr]


def test_a_flow_served_at_one_prefix_is_not_served_at_another() -> None:
    flow = make_flow()
    Flask("one").register_blueprint(flow.blueprint(), url_prefix="/voice")
    Flask("two").register_blueprint(flow.blueprint(), url_prefix="/voice")  # a factory, again
    three = Flask("three")
    with pytest.raises(ConfigurationError, match="two public addresses"):
        three.register_blueprint(flow.blueprint())
    assert flow.url_for("answer") == PUBLIC + "/voice/answer"
    # Refused before any rule was added: the app was left serving the flow at "/".
    assert [r.rule for r in three.url_map.iter_rules() if r.endpoint != "static"] == []


def test_mount_checks_see_the_prefix_flask_adds() -> None:
    # They ran when the blueprint was made, before Flask gave the prefix: a trigger's
    # routes= entry naming the right (prefixed) URL was refused as serving no route.
    from answerkit.recipes import TransferTrigger

    flow = make_flow()
    TransferTrigger(flow, secret="s" * 24, routes=[PUBLIC + "/voice/menu"])
    Flask("host").register_blueprint(flow.blueprint(), url_prefix="/voice")
    other = make_flow()
    TransferTrigger(other, secret="s" * 24, routes=[PUBLIC + "/voice/nowhere"])
    with pytest.raises(ConfigurationError, match="where it serves no route"):
        Flask("host").register_blueprint(other.blueprint(), url_prefix="/voice")


def test_a_registration_a_mount_check_refuses_leaves_the_flow_and_app_as_they_were() -> None:
    # The refused registration left the blueprint recorded on the app ("already has a flow
    # named ...") and the flow mounted ("already mounted; declare route ..."): the route
    # the check asked for could not be added, nor the flow registered again.
    from answerkit.recipes import IVRMenu

    flow = CallFlow("mend", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/bye", lambda call: Response(Hangup()), name="bye")
    IVRMenu(flow, "main", prompt="Press 1.", options={"1": "sales"}, fallback="bye")
    app = Flask("host")
    with pytest.raises(ConfigurationError, match="sales"):
        flow.register(app)
    assert "mend" not in app.blueprints
    flow.add_route("/sales", lambda call: Response(Speak("Sales.")), name="sales")
    flow.register(app)
    assert flow.url_for("sales") == PUBLIC + "/sales"


def test_a_blueprint_made_before_a_refused_registration_is_not_served() -> None:
    # Registered again once the missing route was declared, it served the routes of then
    # (the new route a 404) through a dispatcher the flow had dropped.
    from answerkit.recipes import IVRMenu

    flow = CallFlow("stale", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/bye", lambda call: Response(Hangup()), name="bye")
    IVRMenu(flow, "main", prompt="Press 1.", options={"1": "sales"}, fallback="bye")
    app, bp = Flask("host"), flow.blueprint()
    with pytest.raises(ConfigurationError, match="sales"):
        app.register_blueprint(bp)
    flow.add_route("/sales", lambda call: Response(Speak("Sales.")), name="sales")
    with pytest.raises(ConfigurationError, match="make a new one with flow"):
        app.register_blueprint(bp)
    app.register_blueprint(flow.blueprint())
    assert b"Sales." in post(app.test_client(), "/sales", CALL).data


def test_a_check_added_before_mounting_runs_even_after_a_simulator_built_the_pipeline() -> None:
    # Refused as "already mounted" once flow.dispatcher() had run (a CallSimulator made
    # first): the flow was not mounted, and the check must still run when it is.
    from answerkit.recipes import TransferTrigger

    flow = make_flow()
    flow.dispatcher()
    TransferTrigger(flow, secret=None, routes=["nowhere"])
    with pytest.raises(ConfigurationError, match="nowhere"):
        flow.create_app()


def test_a_check_added_after_mounting_is_refused() -> None:
    # It would never run: a TransferTrigger with no secret (no endpoint) made late passed.
    from answerkit.recipes import TransferTrigger

    flow = make_flow()
    flow.create_app()
    with pytest.raises(ConfigurationError, match="already mounted; make recipes"):
        TransferTrigger(flow, secret=None, routes=["nowhere"])


def test_a_transfer_to_a_routes_own_url_refuses_the_names_vobiz_sends() -> None:
    # Only a route's name was checked: its absolute URL carried Digits=9 to a GET callback.
    flow = make_flow()
    for leg in ("menu", flow.url_for("menu")):
        with pytest.raises(TransferArgumentError, match="'Digits' has the name of a field"):
            flow.transfer("c-1", aleg=leg, params={"Digits": "9"})


def test_forwarded_headers_only_with_trusted_proxies() -> None:
    for hops, expected in ((0, 403), (1, 200)):
        flow = CallFlow("px", auth_token=TOKEN, state=MemoryStore(), trusted_proxies=hops)

        @flow.route("/answer")
        def answer(call: CallRequest) -> Response:
            return Response(Speak("hi"))

        c = flow.create_app().test_client()
        headers = {
            **sign("https://tunnel.example.org/answer", TOKEN),
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "tunnel.example.org",
        }
        assert c.post("/answer", data=CALL, headers=headers).status_code == expected


def test_several_tokens_for_rotation() -> None:
    flow = make_flow(auth_token=["new-token", TOKEN])
    c = flow.create_app().test_client()
    assert post(c, "/menu", CALL, token="new-token").status_code == 200
    assert post(c, "/menu", CALL, token=TOKEN).status_code == 200


def test_tokens_given_as_a_list_are_stripped_like_the_comma_separated_form() -> None:
    # Read from a secrets file, a token ends in a newline: every webhook was a 403.
    flow = make_flow(auth_token=["new-token\n", f" {TOKEN} "])
    assert flow.auth_tokens == ("new-token", TOKEN)
    c = flow.create_app().test_client()
    assert post(c, "/menu", CALL, token="new-token").status_code == 200


def test_no_token_refuses_to_start_and_verify_false_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("VOBIZ_AUTH_TOKEN", raising=False)
    flow = CallFlow("x", public_url=PUBLIC, state=MemoryStore())
    flow.route("/a")(lambda call: Response())
    with pytest.raises(ConfigurationError, match="auth token"):
        flow.create_app()
    open_flow = CallFlow("y", public_url=PUBLIC, state=MemoryStore(), verify=False)
    open_flow.route("/a")(lambda call: Response(Speak("open")))
    c = open_flow.create_app().test_client()
    assert "verification is OFF" in caplog.text
    assert c.post("/a", data=CALL).status_code == 200


def test_configuration_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSWERKIT_PUBLIC_URL", "https://env.example.com/")
    monkeypatch.setenv("VOBIZ_AUTH_TOKEN", "env-token, old-token")
    monkeypatch.setenv("ANSWERKIT_STATE_URL", "memory://")
    flow = CallFlow("env")
    flow.route("/a")(lambda call: Response(Speak("env")))
    assert flow.url_for("a") == "https://env.example.com/a"
    c = flow.create_app().test_client()
    r = c.post("/a", data=CALL, headers=sign("https://env.example.com/a", "old-token"))
    assert r.status_code == 200


def test_route_declaration_errors(flow: CallFlow) -> None:
    with pytest.raises(ConfigurationError, match="already has a handler"):
        flow.route("/answer")(lambda call: None)
    with pytest.raises(ConfigurationError, match="no route 'nowhere'"):
        flow.url_for("nowhere")
    with pytest.raises(ConfigurationError, match="query parameters"):
        flow.route("/x/<id>")(lambda call: None)
    # V3 signs url + "." + nonce, V2 url + nonce: a V3 signature for /hold was a V2 one for
    # /hold. (a replay-free /hold. took a captured /hold fetch's headers for good).
    with pytest.raises(ConfigurationError, match=r"would take the signatures of '/hold'"):
        flow.route("/hold.")(lambda call: None)
    with pytest.raises(ConfigurationError, match="public URL"):
        f = CallFlow("nourl", auth_token=TOKEN, state=MemoryStore())
        f.route("/a")(lambda call: None)
        f.url_for("a")


def test_url_for_query_values() -> None:
    flow = make_flow()
    assert flow.url_for("menu") == f"{PUBLIC}/menu"
    assert flow.url_for("menu", retry=True, n=2, skip=None) == f"{PUBLIC}/menu?retry=true&n=2"


@pytest.mark.parametrize(
    "value", [[1, 2], {"a": 1}, b"raw", {1, 2}, range(3), (i for i in "ab"), object()]
)
def test_url_for_refuses_a_value_a_query_string_cannot_carry(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"url_for\('menu'\): query parameter 'tried'"):
        make_flow().url_for("menu", tried=value)


@pytest.mark.parametrize(
    ("name", "instead"),
    [
        ("To", "to"),
        ("CallUUID", "calluuid"),
        ("Event", "event"),
        ("X-PH-Agent", "Agent"),
        ("Digits", "digits"),
        ("Name", "name"),
        ("Timestamp", "my_timestamp"),
        ("recording_id", "my_recording_id"),
    ],
)
def test_url_for_refuses_the_name_of_a_field_vobiz_sends(name: str, instead: str) -> None:
    # On a GET callback Vobiz appends its fields to the query string, after ours: a 'To'
    # of ours was once taken for the caller's number, a 'Digits' for the key pressed, and
    # either vanished from call.query (which leaves out every name Vobiz sends).
    with pytest.raises(ConfigurationError, match=f"query parameter '{name}' has the name") as e:
        make_flow().url_for("menu", **{name: "agent-7"})
    assert f"(say '{instead}')" in str(e.value)
    assert make_flow().url_for("menu", **{instead: "agent-7"}).endswith(f"?{instead}=agent-7")


def test_url_for_writes_single_values_of_any_kind_as_text() -> None:
    import datetime
    import decimal
    import enum
    import uuid

    class Tier(enum.Enum):
        GOLD = "gold"

    tag = uuid.UUID(int=1)
    url = make_flow().url_for(
        "menu", price=decimal.Decimal("1.50"), id=tag, day=datetime.date(2024, 1, 2)
    )
    assert url == f"{PUBLIC}/menu?price=1.50&id={tag}&day=2024-01-02"
    assert make_flow().url_for("menu", tier=Tier.GOLD).endswith("?tier=gold")  # its value


# ----------------------------------------------------------------------- the view's body reading


def echo_flow() -> tuple[CallFlow, list[CallRequest]]:
    flow = make_flow()
    seen: list[CallRequest] = []

    @flow.route("/echo")
    def echo(call: CallRequest) -> Response:
        seen.append(call)
        return Response(Speak("ok"))

    return flow, seen


@pytest.mark.parametrize("size", [10, 64 * 1024 + 10])  # parsed by the view; by Werkzeug
def test_form_fields_read_in_order_with_repeats_either_side_of_the_fast_path(size: int) -> None:
    flow, seen = echo_flow()
    body = urlencode([*CALL.items(), ("Digits", "1"), ("Digits", "2"), ("Speech", "s" * size),
                      ("Name", "a b&c=d%é")])  # fmt: skip
    r = flow.create_app().test_client().post(
        "/echo", data=body, headers={**sign(PUBLIC + "/echo", TOKEN),
                                     "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert r.status_code == 200
    call = seen[-1]
    assert call.call_uuid == "c-1" and call.digits == "1" and call.speech == "s" * size
    assert call.checkpoint_name == "a b&c=d%é"
    if size < 64 * 1024:  # the view keeps every value; Werkzeug's path keeps the first
        assert call.getlist("Digits") == ["1", "2"]


def test_body_stays_readable_after_the_view_parsed_it() -> None:
    flow, _seen = echo_flow()
    app = flow.create_app()
    read: list[str | None] = []

    @app.after_request
    def after(response: Any) -> Any:
        from flask import request

        read.append(request.form.get("CallUUID"))
        return response

    assert post(app.test_client(), "/echo", CALL).status_code == 200
    assert read == ["c-1"]


def test_multipart_and_charset_bodies_still_parse() -> None:
    flow, seen = echo_flow()
    c = flow.create_app().test_client()
    r = c.post("/echo", data=CALL, content_type="multipart/form-data",
               headers=sign(PUBLIC + "/echo", TOKEN))  # fmt: skip
    assert r.status_code == 200 and seen[-1].call_uuid == "c-1"
    r = c.post("/echo", data=urlencode(CALL), headers={**sign(PUBLIC + "/echo", TOKEN),
               "Content-Type": "Application/X-WWW-Form-Urlencoded; charset=utf-8"})  # fmt: skip
    assert r.status_code == 200 and seen[-1].from_ == "+14155550100"


@pytest.mark.usefixtures("runner_timer_paused")
def test_deadline_alarm_installed_once_forwards_stray_alarms() -> None:
    """The SIGALRM path (a sync worker's main thread, no outer timer): the handler is cut
    short, ours stays installed, and a SIGALRM outside any deadline reaches the handler
    that was there before."""
    import os
    import signal

    from answerkit import _deadline

    before = signal.getsignal(signal.SIGALRM)
    stray: list[int] = []
    signal.signal(signal.SIGALRM, lambda signum, frame: stray.append(signum))
    try:
        flow = make_flow(deadline=0.3)
        woke = add_sleeper(flow, "/slow")
        c = flow.create_app().test_client()
        assert_fallback_in_time(c, "/slow", woke)
        assert post(c, "/answer", CALL).status_code == 200
        assert signal.getsignal(signal.SIGALRM) is _deadline._alarm
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # no timer of ours left running
        os.kill(os.getpid(), signal.SIGALRM)
        time.sleep(0.01)
        assert stray == [signal.SIGALRM]
    finally:
        signal.signal(signal.SIGALRM, before)


def test_form_body_without_content_type_is_read_as_a_form(client: Any) -> None:
    from urllib.parse import urlencode

    body = urlencode(CALL).encode()
    headers = {**sign(PUBLIC + "/menu", TOKEN), "Content-Type": ""}
    r = client.post("/menu", data=body, headers=headers)
    assert r.status_code == 200 and b"You pressed" in r.data


def test_a_signed_request_refused_with_400_still_spends_its_signature() -> None:
    """The body is not signed (spec §3.2): a signature is recorded as soon as it checks out,
    so headers first sent without a CallUUID cannot come back with a forged body."""
    for direct in (True, False):
        client = make_flow().create_app(direct=direct).test_client()
        headers = sign(PUBLIC + "/answer", TOKEN)
        first = client.post("/answer", data={"From": "14155550100"}, headers=headers)
        assert first.status_code == 400
        replay = client.post("/answer", data={"CallUUID": "forged", "From": "666"}, headers=headers)
        assert replay.status_code == 403, f"direct={direct}: replayed signature accepted"


def test_head_probe_answers_without_running_the_flow(client: Any, flow: CallFlow) -> None:
    # Monitors and link checkers probe with HEAD; the handler must not run (it could
    # transfer a call) and no replay record may be spent, even for a signed probe.
    headers = sign(PUBLIC + "/answer", TOKEN)
    r = client.head("/answer", query_string=CALL, headers=headers)
    assert r.status_code == 200 and r.data == b""
    assert r.content_type.startswith("application/xml")
    assert flow.store.get_all("c-1") == {}
    r = client.get("/answer", query_string=CALL, headers=headers)
    assert r.status_code == 200 and b"<Gather" in r.data  # the probe spent no nonce
    assert flow.store.get_all("c-1") == {"visits": 1}


def test_route_without_its_path_is_refused() -> None:
    flow = make_flow()
    with pytest.raises(ConfigurationError, match=r"@flow.route\('/path'\)"):

        @flow.route  # type: ignore[arg-type]
        def forgot(call: CallRequest) -> Response:
            return Response(Hangup())


@pytest.mark.parametrize("arity", ["none", "two"])
def test_a_handler_that_cannot_take_the_call_is_refused_when_declared(arity: str) -> None:
    flow = make_flow()

    def no_call() -> Response:
        return Response(Hangup())

    def two(call: CallRequest, extra: str) -> Response:
        return Response(Hangup())

    with pytest.raises(ConfigurationError, match="must take one argument, the CallRequest"):
        flow.add_route("/odd", no_call if arity == "none" else two)  # type: ignore[arg-type]
    # A default for a second parameter, or *args, is fine.
    flow.add_route("/ok", lambda call, extra="x": Response(Hangup()))
    flow.add_route("/ok2", lambda *args: Response(Hangup()))


def test_a_handler_that_forgot_its_return_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    flow = make_flow()

    @flow.route("/forgot")
    def forgot(call: CallRequest) -> Response:
        Response(Speak("Never said."))
        return None  # type: ignore[return-value]

    client = flow.create_app().test_client()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        reply = post(client, "/forgot", CALL)
        post(client, "/forgot", {**CALL, "Event": "DialAction"})  # an action may mean it
    assert reply.status_code == 200 and b"<Response/>" in reply.data
    warned = [r.getMessage() for r in caplog.records if "returned None" in r.getMessage()]
    assert len(warned) == 1 and "return the Response" in warned[0]


def test_a_handler_returning_xml_text_is_told_about_parse(caplog: pytest.LogCaptureFixture) -> None:
    client = make_flow().create_app().test_client()
    with caplog.at_level(logging.ERROR, logger="answerkit"):
        post(client, "/not-xml", CALL)
    assert any("answerkit.parse(text)" in r.getMessage() for r in caplog.records)


# 4e9: past 100 years, taken here and refused by the store on every webhook (the apology).
@pytest.mark.parametrize("window", [0, -1, float("nan"), float("inf"), True, 4e9])
def test_a_replay_window_that_is_no_positive_number_is_refused_at_start(window: Any) -> None:
    with pytest.raises(ConfigurationError, match="replay_window must be"):
        make_flow(replay_window=window)


def test_a_wrapped_handler_is_judged_by_its_wrapper() -> None:
    """A decorator that supplies arguments (functools.wraps) wraps a function taking more
    than the call; the wrapper, which takes the call alone, is what runs."""
    import functools

    def with_db(handler: Any) -> Any:
        @functools.wraps(handler)
        def wrapper(call: CallRequest) -> Response:
            return handler(call, "db")  # type: ignore[no-any-return]

        return wrapper

    flow = make_flow()

    @flow.route("/wrapped")
    @with_db
    def wrapped(call: CallRequest, db: str) -> Response:
        return Response(Speak(f"with {db}"), Hangup())

    assert b"with db" in post(flow.create_app().test_client(), "/wrapped", CALL).data


def test_a_decimal_replay_window_is_taken() -> None:
    import decimal

    assert make_flow(replay_window=decimal.Decimal("60")).replay_window == 60.0


def test_stand_ins_ended_out_of_order_leave_the_flows_own_store() -> None:
    """Blocks on two threads may end in any order: the last one out must not leave its
    stand-in behind."""
    own = MemoryStore()
    flow = make_flow(state=own)
    first, second = MemoryStore(), MemoryStore()
    a = flow.standing_in(store=first)
    b = flow.standing_in(store=second)
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    b.__exit__(None, None, None)
    assert flow.store is own


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://voice.example.com:443", "https://voice.example.com"),
        ("https://Voice.Example.COM/Base/", "https://voice.example.com/Base"),
        ("HTTP://voice.example.com:80", "http://voice.example.com"),
        ("https://voice.example.com:8443", "https://voice.example.com:8443"),
    ],
)
def test_public_url_is_kept_in_the_form_the_signature_check_verifies(given: str, kept: str) -> None:
    # url_for's URLs are what Vobiz calls and signs: with :443 or capitals kept, Vobiz could
    # sign a form other than the one checked (spec §6 item 1), and every webhook got 403.
    flow = CallFlow("norm", public_url=given, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Hangup())

    assert flow.public_url == kept
    url = flow.url_for("answer")
    assert url == kept + "/answer"
    c = flow.create_app().test_client()  # public_url's path is the proxy's, not the app's
    assert c.post("/answer", data=CALL, headers=sign(url, TOKEN)).status_code == 200


@pytest.mark.parametrize(
    "given",
    [
        "https://alice:s3cret@voice.example.com",
        "https://voice.example.com:x",
        "https://alice:s3cret@voice.example.com/?x=1",
        "htps://alice:s3cret@voice.example.com",
        "alice:s3cret@voice.example.com",
    ],
)
def test_public_url_with_credentials_or_a_bad_port_is_refused(given: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        CallFlow("creds", public_url=given, auth_token=TOKEN, state=MemoryStore())
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("given", "part"),
    [
        ("https://voice.example.com#frag", "a fragment (#...)"),
        ("https://v.example.com/?token=s3cret", "a query (?...)"),
        ("https://v.example.com/x?token=s3cret#f", "a query (?...) and a fragment (#...)"),
    ],
)
def test_public_url_with_a_query_or_fragment_is_refused_saying_which(given: str, part: str) -> None:
    with pytest.raises(ConfigurationError, match="must not carry a query or fragment") as caught:
        CallFlow("qf", public_url=given, auth_token=TOKEN, state=MemoryStore())
    assert f"has {part}:" in str(caught.value) and "give the base URL alone" in str(caught.value)
    assert "s3cret" not in str(caught.value)  # a query may hold a secret: never shown


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("fallback", Speak("Sorry."), r"fallback must be a Response, got Speak: wrap it"),
        ("fallback", "Sorry.", "fallback must be a Response"),
        ("trusted_proxies", "1", "trusted_proxies must be a whole number"),
        ("trusted_proxies", -1, "trusted_proxies must be a whole number"),
        ("trusted_proxies", 1.5, "trusted_proxies must be a whole number"),
        ("hangup_linger", "300", "hangup_linger must be a number of seconds"),
        ("on_error", "log", "on_error must be a function"),
        ("client", "x", "client must be a VobizClient"),
        ("transfer_hosts", "crm.example.com", "transfer_hosts must be a list of host names"),
        ("transfer_hosts", [None], "each entry is a host name"),
        ("transfer_hosts", ["https://crm.example.com"], "no scheme or path"),
        ("state", MemoryStore, r"pass an instance, state=MemoryStore\(\)"),
        ("state", 5, "state must be a StateStore or a URL"),
        ("state", "postgres://db/calls", "unknown state store URL"),
        ("state", "redis//localhost", "unknown state store URL"),
        ("auth_token", b"tok", "auth_token must be text"),
        ("auth_token", [b"tok"], "every token must be text"),
        # Taken, each refused every genuine webhook (403, the caller dropped).
        ("auth_token", "\ufeff" + TOKEN, "the token: character 1 of 22 is not printable ASCII"),
        ("auth_token", TOKEN + "\u200b", "byte order mark from a file saved as UTF-8 with BOM"),
        ("auth_token", f"{TOKEN} old-token", "character 22 of 31 is a space: give several"),
        ("auth_token", ["old-token", "new\ttoken"], r"auth_token: token 2 of 2: character 4"),
        ("auth_token", ["new-token,old-token"], "the token: it holds a ',': give each token"),
        ("public_url", b"https://voice.example.com", "public_url must be text"),
        ("public_url", "https://voice example.com", "must name one host"),
        ("public_url", "https://:8000", "must name one host"),
        ("public_url", "https://voice.exa\nmple.com", "must name one host"),
        ("public_url", "https://a.example.com,https://b.example.com", "must name one host"),
    ],
)
def test_a_setting_of_the_wrong_kind_is_refused_when_the_flow_is_made(
    setting: str, value: object, says: str
) -> None:
    settings: dict[str, Any] = {"public_url": PUBLIC, "auth_token": TOKEN, "state": "memory://"}
    settings[setting] = value
    with pytest.raises(ConfigurationError, match=says):
        CallFlow("kinds", **settings)


def test_a_token_from_the_environment_with_an_invisible_character_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOBIZ_AUTH_TOKEN", "\ufeff" + TOKEN)  # a secrets file saved with BOM
    with pytest.raises(ConfigurationError, match="VOBIZ_AUTH_TOKEN: the token: character 1") as e:
        CallFlow("envtoken", public_url=PUBLIC)
    assert TOKEN not in str(e.value)  # where the flaw is, never the token


def test_a_flow_name_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="CallFlow name"):
        CallFlow(123, public_url=PUBLIC, auth_token=TOKEN)  # type: ignore[arg-type]


def test_a_bad_state_url_from_the_environment_is_refused_when_the_flow_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANSWERKIT_STATE_URL", "postgres://db/calls")
    with pytest.raises(ConfigurationError, match="unknown state store URL"):
        CallFlow("envstate", public_url=PUBLIC, auth_token=TOKEN)


@pytest.mark.parametrize(
    "public_url",
    ["https://voice.example.com:8443", "https://[::1]:8443", "http://127.0.0.1:8000/voice"],
)
def test_public_urls_with_a_port_or_an_address_are_taken(public_url: str) -> None:
    CallFlow("hosts", public_url=public_url, auth_token=TOKEN, state=MemoryStore())


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ("hangup", r"did you mean Event.Hangup \('Hangup'\)"),
        ("start_app", r"did you mean Event.StartApp"),
        ("DIALACTION", r"did you mean Event.DialAction"),
        (5, "event must be an Event"),
    ],
)
def test_a_misspelt_event_is_refused_when_declared(event: Any, says: str) -> None:
    flow = CallFlow("events", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    with pytest.raises(ConfigurationError, match=says):
        flow.add_route("/h", lambda call: None, event=event)


def test_an_event_the_spec_does_not_list_is_taken_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow = CallFlow("events", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        flow.add_route("/h", lambda call: None, event="FutureEvent", status_callback=True)
        flow.add_route("/h", lambda call: None, event="Hangup")  # a listed one: no warning
    assert [r.getMessage() for r in caplog.records if "FutureEvent" in r.getMessage()]
    assert not [r for r in caplog.records if "'Hangup'" in r.getMessage()]


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda flow: flow.add_route("/x", None), "the handler must be a function"),
        (lambda flow: flow.add_route("/x", "answer"), "the handler must be a function"),
        (lambda flow: flow.route(None)(lambda call: None), "route path must start with '/'"),
        (lambda flow: flow.add_route("/x", lambda c: None, name="x.y"), "without dots"),
        # Names are looked up before paths: "/b" took over the route at /b.
        (lambda flow: flow.add_route("/x", lambda c: None, name="/b"), "not starting with '/'"),
    ],
)
def test_route_declaration_misuse_is_a_configuration_error(call: Any, says: str) -> None:
    flow = CallFlow("decl", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    with pytest.raises(ConfigurationError, match=says):
        call(flow)


def test_two_flows_of_one_name_on_one_app_are_refused() -> None:
    app = Flask("two")
    for i in range(2):
        flow = CallFlow("same", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
        flow.add_route(f"/r{i}", lambda call: None, status_callback=True)
        if i == 0:
            flow.register(app)
    with pytest.raises(ConfigurationError, match="its own name"):
        flow.register(app)


@pytest.mark.parametrize("app_view_first", [False, True], ids=["two-flows", "app-view"])
def test_a_route_at_a_path_the_app_serves_already_is_refused(app_view_first: bool) -> None:
    # Flask answers the rule registered first: the second flow's route was never reached
    # (its calls checked against the other flow's token: 403), while its url_for handed
    # out that very URL.
    app = Flask("shared")
    if app_view_first:
        app.add_url_rule("/answer", "own", lambda: "app's own view", methods=["POST"])
    else:
        sales = CallFlow("sales", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
        sales.add_route("/answer", lambda call: Response(Speak("sales")), name="answer")
        sales.register(app)
    support = make_flow()
    with pytest.raises(ConfigurationError, match="route 'answer' at '/answer' is already served"):
        support.register(app)
    support.register(app, url_prefix="/support")  # its own prefix: served
    r = post(app.test_client(), "/support/answer", CALL, url=PUBLIC + "/support/answer")
    assert r.status_code == 200 and b"Press 1" in r.data


def test_a_route_is_named_by_its_default_handler_whatever_the_order() -> None:
    # Declared first, a Hangup handler named the route "hung_up": url_for("answer") failed
    # on every call (each got the apology).
    flow = CallFlow("order", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/answer", event=Event.Hangup)
    def hung_up(call: CallRequest) -> None:
        return None

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak("hi"), Redirect(flow.url_for("answer")))

    @flow.route("/menu", event=Event.Hangup, name="menu")
    def menu_hangup(call: CallRequest) -> None:
        return None

    @flow.route("/menu")
    def menu_answer(call: CallRequest) -> Response:
        return Response(Speak("menu"))

    assert [route.name for route in flow.routes] == ["answer", "menu"]
    assert flow.url_for("answer") == PUBLIC + "/answer"
    assert flow.url_for("menu") == PUBLIC + "/menu"
    r = post(flow.create_app().test_client(), "/answer", CALL)
    assert b"<Redirect>https://" in r.data and b"Hangup" not in r.data
    with pytest.raises(ConfigurationError, match="already has a route named 'answer'"):
        flow2 = CallFlow("o2", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
        flow2.add_route("/answer", answer)
        flow2.add_route("/other", hung_up, event=Event.Hangup)
        flow2.add_route("/other", answer)  # the same default handler's name, another route


def test_handlers_shared_by_routes_name_each_route_as_declared() -> None:
    # Two languages' routes sharing their handlers: refused once default handlers had to
    # be unique names even on routes named already.
    flow = CallFlow("shared", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    def on_hangup(call: CallRequest) -> None:
        return None

    def answer(call: CallRequest) -> Response:
        return Response(Speak("hi"))

    for lang in ("en", "hi"):
        flow.add_route(f"/{lang}/answer", on_hangup, event=Event.Hangup, name=f"{lang}_answer")
        flow.add_route(f"/{lang}/answer", answer)
    # One Hangup handler declared first at two routes, each named by its default later.
    for lang in ("fr", "de"):
        flow.add_route(f"/{lang}/menu", on_hangup, event=Event.Hangup)
    flow.add_route("/fr/menu", answer, name="fr_menu")
    flow.add_route("/de/menu", lambda call: Response(Speak("Hallo")), name="de_menu")
    names = [route.name for route in flow.routes]
    assert names == ["en_answer", "hi_answer", "fr_menu", "de_menu"]
    assert flow.url_for("de_menu") == PUBLIC + "/de/menu"
    flow.create_app()


def record_end(call: CallRequest) -> None:
    return None


def answer_here(call: CallRequest) -> Response:
    return Response(Speak("hi"))


def cleanup(call: CallRequest) -> None:
    return None


# (path, handler, keywords): declarations whose every order must be taken alike.
_DECLARATION_SETS: list[list[tuple[str, Any, dict[str, Any]]]] = [
    [
        ("/answer", record_end, {"event": Event.Hangup}),
        ("/status", record_end, {"status_callback": True}),
        ("/answer", answer_here, {}),
    ],
    [
        ("/a", cleanup, {"event": Event.Hangup}),
        ("/cleanup", cleanup, {"event": Event.Hangup}),
        ("/a", answer_here, {"name": "a_menu"}),
        ("/cleanup", answer_here, {"name": "cleanup"}),
    ],
    [
        ("/a", cleanup, {"event": Event.Hangup}),
        ("/b", cleanup, {"event": Event.Hangup}),
        ("/b", answer_here, {"name": "a"}),
        ("/a", record_end, {"event": Event.RecordStop}),
    ],
    [  # one Transfer handler for two routes, each named by its default handler later
        ("/sales", cleanup, {"event": Event.Transfer}),
        ("/support", cleanup, {"event": Event.Transfer}),
        ("/sales", answer_here, {}),
        ("/support", record_end, {}),
    ],
]


@pytest.mark.parametrize(
    "declarations", _DECLARATION_SETS, ids=["status", "path", "lent", "transfer"]
)
def test_a_lent_name_gives_way_alike_in_every_order_of_these_declarations(
    declarations: list[tuple[str, Any, dict[str, Any]]],
) -> None:
    # A Hangup handler declared first lent its route its name, and a later declaration
    # naming another route so was refused in one order and taken in another.
    import itertools

    for order in itertools.permutations(declarations):
        flow = CallFlow("orders", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
        for path, handler, keywords in order:
            flow.add_route(path, handler, **keywords)
        names = {route.path: route.name for route in flow.routes}
        assert len(set(names.values())) == len(names), order
        for path, name in names.items():
            assert flow.get_route(name).path == path and flow.url_for(name) == PUBLIC + path
        given = {path: k["name"] for path, _h, k in order if "name" in k}
        for path, handler, keywords in order:  # every name given names its route
            if "name" in keywords:
                assert flow.get_route(keywords["name"]).path == path
            elif "event" not in keywords and path not in given:
                assert names[path] == handler.__name__, order
        app = flow.create_app()
        assert {f"orders.{name}" for name in names.values()} <= set(app.view_functions)


def test_a_default_handler_declared_after_a_name_still_reaches_its_route() -> None:
    # With a Hangup handler's name="main" first, url_for("answer") failed on every call;
    # declared the other way round, it worked.
    flow = CallFlow("late", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/a", record_end, event=Event.Hangup, name="main")
    flow.add_route("/a", answer_here)
    assert flow.url_for("main") == flow.url_for("answer_here") == PUBLIC + "/a"
    with pytest.raises(ConfigurationError, match="already has a route named 'answer_here'"):
        flow.add_route("/b", cleanup, name="answer_here")


def test_a_name_a_recipe_keeps_is_held_for_its_route() -> None:
    # A lent name a menu's option used was given back to a Forwarding declared later: the
    # option went to the Forwarding instead, with a warning only.
    from answerkit.recipes import Forwarding, IVRMenu

    flow = CallFlow("held", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    def sales(call: CallRequest) -> Response:
        return Response(Speak("sales desk"))

    flow.add_route("/desk", sales, event=Event.Redirect)
    IVRMenu(flow, "main", prompt="Press 1.", options={"1": "sales"})
    with pytest.raises(ConfigurationError, match="already has a route named 'sales'"):
        Forwarding(flow, "sales", numbers=["+14155550101"], caller_id="+14155550100")
    # The route is still named by its default handler, which takes its name back from a
    # route it was lent to; the held name stays one of its names.
    flow.add_route("/other", cleanup, event=Event.Hangup, name=None)
    flow.add_route("/elsewhere", answer_here, event=Event.Hangup)
    flow.add_route("/desk", answer_here)
    assert flow.get_route("/desk").name == "answer_here"
    assert flow.url_for("answer_here") == flow.url_for("sales") == PUBLIC + "/desk"
    assert flow.get_route("/elsewhere").name == "elsewhere"


def test_a_default_handler_alias_takes_its_name_back_from_a_route_it_was_lent_to() -> None:
    # url_for("answer_here") went to a Hangup-only route declared first, in one order only.
    for order in ((0, 1, 2), (1, 2, 0)):
        flow = CallFlow("alias", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
        declarations = [
            ("/x", answer_here, {"event": Event.Hangup}),
            ("/a", cleanup, {"event": Event.Hangup, "name": "main"}),
            ("/a", answer_here, {}),
        ]
        for index in order:
            path, handler, keywords = declarations[index]
            flow.add_route(path, handler, **keywords)
        assert flow.url_for("answer_here") == flow.url_for("main") == PUBLIC + "/a", order


def test_a_lent_name_given_back_is_told(caplog: pytest.LogCaptureFixture) -> None:
    # A Redirect-only route's handler name, lent, was taken by a route declared later with
    # no word: a menu's option by that name then went to the other route.
    flow = CallFlow("lent", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    def support(call: CallRequest) -> Response:
        return Response(Speak("help"))

    flow.add_route("/help", support, event=Event.Redirect)
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        flow.add_route("/support", answer_here, name="support")
    assert flow.get_route("support").path == "/support" and flow.get_route("help")
    assert "the route at /help (handlers for one event only, so far) was named 'support'" in (
        caplog.text
    )


def test_url_for_refuses_what_no_url_can_carry_with_the_flows_error() -> None:
    # A lone surrogate raised UnicodeEncodeError, an int past Python's digit limit
    # ValueError: neither the ConfigurationError url_for raises for a bad parameter.
    flow = make_flow()
    with pytest.raises(ConfigurationError, match="lone surrogate"):
        flow.url_for("menu", v="\ud800")
    with pytest.raises(ConfigurationError, match="lone surrogate"):
        flow.url_for("menu", **{"\udc80": 1})
    with pytest.raises(ConfigurationError, match="query parameter 'n': cannot be written out"):
        flow.url_for("menu", n=10**5000)


def test_url_for_takes_a_flag_member_as_its_value() -> None:
    import enum

    class Perm(enum.IntFlag):
        R = 4

    assert make_flow().url_for("menu", p=Perm.R).endswith("?p=4")
    with pytest.raises(ConfigurationError, match="query parameter 'v'"):
        make_flow().url_for("menu", v={"a": 1}.values())


def test_a_signature_that_cannot_be_forgotten_is_told_once_and_truly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The store failing to forget it also logged "this signature was sent again 3 times
    # already", on the first delivery.
    from answerkit import RetryLater
    from answerkit.errors import StateError

    class ForgetsNothing(MemoryStore):
        def remember_all(self, keys: Any, ttl: float) -> bool:
            if any(":retry" in key for key in keys):
                raise StateError("store down")
            return super().remember_all(keys, ttl)

    flow = make_flow(state=ForgetsNothing())

    def later(call: CallRequest) -> None:
        raise RetryLater("not yet")

    flow.add_route("/later", later, status_callback=True)
    c = flow.create_app().test_client()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        r = post(c, "/later", {**CALL, "Event": "Hangup"})
    assert r.status_code == 503
    assert "could not be forgotten" in caplog.text
    assert "sent again 3 times" not in caplog.text


def test_a_prefix_from_script_name_that_public_url_lacks_is_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # gunicorn --env SCRIPT_NAME=/svc: the signature check took the request, but every
    # URL url_for built (a Gather's action) left /svc out, so Vobiz went where no app was.
    flow = make_flow()
    c = flow.create_app().test_client()
    signed = sign(PUBLIC + "/svc/answer", TOKEN)
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        r = c.post("/answer", data=CALL, headers=signed, base_url="https://x.example/svc")
        assert r.status_code == 200
        c.post("/answer", data=CALL, headers=sign(PUBLIC + "/svc/answer", TOKEN),
               base_url="https://x.example/svc")  # fmt: skip
    assert caplog.text.count("served under /svc (SCRIPT_NAME)") == 1
    assert "put /svc at the end of public_url" in caplog.text
    caplog.clear()
    # An unsigned request with prefixes of its own choosing (SCRIPT_NAME may come from a
    # header) leaves nothing behind: not a log line, not a memo entry each.
    told = len(flow.dispatcher()._told)
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        for n in range(50):
            unsigned = c.post("/answer", data=CALL, base_url=f"https://x.example/p{n}")
            assert unsigned.status_code == 403
    assert "SCRIPT_NAME" not in caplog.text and len(flow.dispatcher()._told) == told
    caplog.clear()
    ok = make_flow(public_url=PUBLIC + "/svc")
    c = ok.create_app().test_client()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        r = c.post("/answer", data=CALL, headers=signed, base_url="https://x.example/svc")
    assert r.status_code == 200 and "SCRIPT_NAME" not in caplog.text
    assert ok.url_for("menu").startswith(PUBLIC + "/svc/menu")


def test_the_health_endpoint_says_whether_the_store_takes_a_write(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # With the store down every call got the apology while every probe of the app (a
    # route's HEAD) said 200.
    from answerkit.state import RedisStore

    up = make_flow(state=RedisStore(redis_url))
    up.add_health_endpoint()
    r = up.create_app().test_client().get("/_answerkit/health")
    assert (r.status_code, r.get_json()) == (200, {"status": "ok"})
    assert r.headers["Cache-Control"] == "no-store"
    down = make_flow(state=RedisStore("redis://:secret-pw@127.0.0.1:1/0"))
    down.add_health_endpoint("/healthz")
    c = down.create_app().test_client()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        r = c.get("/healthz")
    assert (r.status_code, r.get_json()) == (503, {"status": "unavailable"})
    assert "health check failed" in caplog.text and "secret-pw" not in caplog.text
    assert c.head("/healthz").status_code == 503
    assert post(c, "/answer", CALL).status_code == 200  # the webhooks answer as before


def test_a_flood_of_health_probes_writes_one_record_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The endpoint takes no signature: each probe wrote a record (19,617 rows in 5 s).
    from answerkit import _flow_health
    from answerkit.errors import StateError

    class Counting(MemoryStore):
        writes = 0
        down = False

        def remember_all(self, keys: Sequence[str], ttl: float) -> bool:
            if self.down:
                raise StateError("the store is down")
            Counting.writes += 1
            return super().remember_all(keys, ttl)

    now = [1000.0]
    monkeypatch.setattr(_flow_health, "monotonic", lambda: now[0])
    store = Counting()
    flow = make_flow(state=store)
    flow.add_health_endpoint()
    c = flow.create_app().test_client()
    for _ in range(50):
        assert c.get("/_answerkit/health").status_code == 200
    assert Counting.writes == 1
    now[0] += 1.0  # a second later the store is asked again, and its failure shows at once
    store.down = True
    assert c.get("/_answerkit/health").status_code == 503
    assert c.get("/_answerkit/health").status_code == 503  # a failure is never kept
    store.down = False
    assert c.get("/_answerkit/health").status_code == 200 and Counting.writes == 2


def test_health_probes_that_come_during_a_slow_write_wait_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each probe that came while a write was under way (a slow store) wrote too: 40 writes
    # for 100 probes against a store taking 0.3 s.
    import threading

    from answerkit import _flow_health

    started, release = threading.Event(), threading.Event()

    class Slow(MemoryStore):
        writes = 0

        def remember_all(self, keys: Sequence[str], ttl: float) -> bool:
            Slow.writes += 1
            started.set()
            release.wait(10)
            return super().remember_all(keys, ttl)

    monkeypatch.setattr(_flow_health, "monotonic", lambda: 1000.0)
    flow = make_flow(state=Slow())
    flow.add_health_endpoint()
    app = flow.create_app()
    codes: list[int] = []

    def probe() -> None:
        codes.append(app.test_client().get("/_answerkit/health").status_code)

    first = threading.Thread(target=probe)
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=probe) for _ in range(5)]
    for t in others:
        t.start()
    time.sleep(0.2)  # let them reach the write under way (not a timing assertion)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert codes == [200] * 6 and Slow.writes == 1


@needs_fork
@fork_with_threads
def test_a_forked_child_answers_health_probes_while_the_parent_was_writing() -> None:
    # The write lock, held by a probe under way when the process forked, was held for ever
    # in the child (by a thread it does not have): every probe of the child hung.
    import threading

    started, release = threading.Event(), threading.Event()

    class Slow(MemoryStore):
        def remember_all(self, keys: Sequence[str], ttl: float) -> bool:
            started.set()
            release.wait(10)
            return super().remember_all(keys, ttl)

    flow = make_flow(state=Slow())
    flow.add_health_endpoint()
    app = flow.create_app()
    probe = threading.Thread(target=lambda: app.test_client().get("/_answerkit/health"))
    probe.start()
    assert started.wait(10)
    try:

        def child_probe() -> bool:
            release.set()  # the child's store answers; its lock was the parent's probe's
            return app.test_client().get("/_answerkit/health").status_code == 200

        assert in_a_forked_child(child_probe) == "ok"
    finally:
        release.set()
        probe.join(10)


def test_a_health_endpoint_beside_a_route_named_health_and_another_path() -> None:
    # A route named "health" (or a second health endpoint) raised Flask's AssertionError
    # when the flow was mounted.
    flow = make_flow()

    @flow.route("/health")
    def health(call: CallRequest) -> Response:
        return Response(Speak("fine"))

    flow.add_health_endpoint()
    flow.add_health_endpoint("/healthz")
    with pytest.raises(ConfigurationError, match="already serves an endpoint at '/healthz'"):
        flow.add_health_endpoint("/healthz")
    c = flow.create_app().test_client()
    assert c.get("/_answerkit/health").status_code == 200
    assert c.get("/healthz").status_code == 200
    assert b"fine" in post(c, "/health", CALL).data


def test_a_route_path_beyond_ascii_is_taken_and_one_with_a_space_refused() -> None:
    flow = make_flow()
    flow.add_route("/menú", lambda call: Response(Speak("hola")), name="menu_es")
    assert flow.url_for("menu_es").endswith("/men%C3%BA")
    with pytest.raises(ConfigurationError, match="has a space or an invisible character"):
        flow.add_route("/main menu", lambda call: Response(Speak("x")))


@pytest.mark.parametrize("path", ["/main%20menu", "/caf%C3%A9", "/a//b", "/hold\\room"])
def test_a_route_path_that_cannot_be_served_as_written_is_refused(path: str) -> None:
    # Flask matched the decoded path (404), redirected "//" (a 308 Vobiz does not follow),
    # and the client refused a backslash in the URL to transfer a call to.
    with pytest.raises(ConfigurationError, match="cannot be served as written"):
        make_flow().add_route(path, lambda call: Response(Speak("x")))
    with pytest.raises(ConfigurationError, match="cannot be served as written"):
        make_flow().add_health_endpoint(path)


def test_a_percent_sign_that_starts_no_escape_is_served() -> None:
    flow = make_flow()
    flow.add_route("/50%off", lambda call: Response(Speak("half")), name="sale")
    assert b"half" in post(flow.create_app().test_client(), "/50%off", CALL).data
    # Signed over url_for's "/50%25off", on a server that keeps no raw URI (the decoded
    # path alone): its own spelling was never a candidate, and the signature was refused.
    client = flow.create_app().test_client()
    answer = client.post(
        "/50%25off",
        data=CALL,
        headers=sign(flow.url_for("sale"), TOKEN),
        environ_overrides={"RAW_URI": "", "REQUEST_URI": ""},
    )
    assert b"half" in answer.data
    # Only a decoded path gets that spelling: "/50%off%21" as received (a raw URI) must
    # not verify a signature for "/50%25off%2521", which decodes to another path.
    flow = make_flow()
    flow.add_route("/50%off!", lambda call: Response(Speak("bang")), name="bang")
    other = flow.create_app().test_client()
    forged = other.post(
        "/50%off%21",
        data=CALL,
        headers=sign(PUBLIC + "/50%25off%2521", TOKEN),
        environ_overrides={"RAW_URI": "/50%off%21"},
    )
    assert forged.status_code == 403


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize(
    ("path", "wire"),
    [("/menú", "/men%C3%BA"), ("/50%off", "/50%25off"), ("/a|b{c}", "/a%7Cb%7Bc%7D")],
)
def test_url_for_gives_the_path_as_sent_and_signed(path: str, wire: str, direct: bool) -> None:
    # url_for gave "/menú" while the request came as "/men%C3%BA" (the raw path, which
    # gunicorn keeps and the signature is checked on): a signature over the URL handed to
    # Vobiz was refused there, and every call to the route dropped.
    flow = make_flow()
    flow.add_route(path, lambda call: Response(Speak("here")), name="odd")
    url = flow.url_for("odd")
    assert url == PUBLIC + wire
    c = flow.create_app(direct=direct).test_client()
    assert b"here" in post(c, wire, CALL, url=url).data


def test_an_endpoint_and_a_route_never_share_a_path_or_a_name() -> None:
    # At a route's path the route answered the probe (unsigned: 403); a route named after an
    # endpoint raised Flask's AssertionError when mounted.
    from answerkit.recipes import TransferTrigger

    flow = make_flow()
    with pytest.raises(ConfigurationError, match="share the path or the name of a route"):
        flow.add_health_endpoint("/answer")
    TransferTrigger(flow, secret="s" * 24)
    with pytest.raises(ConfigurationError, match="share the path or the name of an endpoint"):
        flow.add_route("/other", lambda call: None, name="answerkit_transfer_trigger")
    with pytest.raises(ConfigurationError, match="share the path or the name of an endpoint"):
        flow.add_route("/_answerkit/transfer", lambda call: None)
    flow.create_app()


def test_hangup_listeners_hear_every_hangup_and_a_failing_one_changes_nothing() -> None:
    errors: list[str] = []
    flow = CallFlow("listen", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    on_error=lambda exc, call, route: errors.append(str(exc)))  # fmt: skip
    heard: list[str] = []

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak("Welcome"))

    def broken(call: CallRequest) -> None:
        raise RuntimeError("listener bug")

    flow.add_hangup_listener(lambda call: heard.append(call.call_uuid))
    flow.add_hangup_listener(broken)
    c = flow.create_app().test_client()
    assert b"Welcome" in post(c, "/answer", CALL).data and heard == []  # StartApp: not told
    r = post(c, "/answer", {**CALL, "Event": "Hangup"})
    assert r.status_code == 200 and r.data == b""
    assert heard == [CALL["CallUUID"]] and errors == ["listener bug"]
    with pytest.raises(ConfigurationError, match="already mounted"):
        flow.add_hangup_listener(lambda call: None)


@pytest.mark.parametrize(
    ("public_url", "warned"),
    [
        ("http://voice.example.com", True),
        ("https://voice.example.com", False),
        ("http://127.0.0.1:5000", False),
        ("http://localhost:8000", False),
        ("http://[::1]:8000", False),
        ("http://127.evil.example", True),  # only starts like this machine
    ],
)
def test_a_plain_http_public_url_is_warned_of_unless_it_is_this_machine(
    public_url: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    flow = CallFlow("http", public_url=public_url, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/answer", lambda call: None, status_callback=True)
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        flow.create_app()
    assert ("is plain http: Vobiz calls only https URLs" in caplog.text) is warned


def test_a_hangup_whose_state_cannot_be_cleared_is_asked_for_again() -> None:
    # Answered 200, the state outlived the call for the whole TTL (hangup_linger=0 asks it
    # gone at once); a 503 has Vobiz send the Hangup again, and the retry clears it.
    from answerkit.errors import StateError

    class Flaky(MemoryStore):
        fail_clear = 1

        def clear(self, call_uuid: str) -> None:
            if self.fail_clear:
                self.fail_clear -= 1
                raise StateError("store unreachable")
            super().clear(call_uuid)

    store = Flaky()
    flow = CallFlow("forget", public_url=PUBLIC, auth_token=TOKEN, state=store, hangup_linger=0)
    ended: list[str] = []

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        call.state["secret"] = "card-1234"
        return Response(Speak("Welcome"))

    @flow.route("/answer", event="Hangup")
    def hung_up(call: CallRequest) -> None:
        ended.append(call.call_uuid)

    c = flow.create_app().test_client()
    assert post(c, "/answer", CALL).status_code == 200
    hangup = {**CALL, "Event": "Hangup"}
    assert post(c, "/answer", hangup).status_code == 503
    assert store.get_all(CALL["CallUUID"]) == {"secret": "card-1234"}
    assert post(c, "/answer", hangup).status_code == 200
    assert store.get_all(CALL["CallUUID"]) == {} and len(ended) == 2  # the handler ran again


@pytest.mark.parametrize("params", [{"": "x"}, {"n": float("nan")}, {"n": float("-inf")}])
def test_url_for_refuses_a_parameter_no_handler_could_read(params: dict[str, Any]) -> None:
    # "?=x" and "n=nan" were written into the URL as given.
    flow = CallFlow("f", public_url="https://voice.example.com", verify=False, state="memory://")
    flow.route("/menu")(lambda call: None)
    with pytest.raises(ConfigurationError, match=r"must not be empty|finite number"):
        flow.url_for("menu", **params)
