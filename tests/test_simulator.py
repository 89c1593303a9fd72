"""The call simulator: every element path, every failure cause, several calls, both transports."""

from __future__ import annotations

import argparse
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask import Response as FlaskResponse
from werkzeug.serving import make_server

from answerkit.app import CallFlow
from answerkit.client import VobizClient
from answerkit.elements import (
    DTMF,
    Conference,
    Dial,
    Gather,
    Hangup,
    Number,
    Play,
    PreAnswer,
    Record,
    Redirect,
    Response,
    Speak,
    Stream,
    User,
    Wait,
)
from answerkit.errors import CallNotActiveError, ConfigurationError
from answerkit.request import CallRequest, Event
from answerkit.state import MemoryStore
from answerkit.testing.simulator import CallSimulator, sign_request, signed_post
from answerkit.testing.terminal import run_terminal_call

PUBLIC = "https://voice.example.com"
TOKEN = "sim-token-0123456789abcdef"
MUSIC = "https://cdn.example.com/hold.mp3"


def make_flow(**kwargs: Any) -> CallFlow:
    """A flow with one route per element path the tests drive."""
    flow = CallFlow("sim", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(), **kwargs)
    seen: list[CallRequest] = []
    flow.seen = seen  # type: ignore[attr-defined]

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        seen.append(call)
        return Response(
            Speak("Welcome to Example."),
            Gather(
                Speak("Press 1 for sales, 2 for support."),
                action=flow.url_for("menu"),
                input_type="dtmf",
                num_digits=1,
            ),
            Speak("We did not get your choice."),
        )

    @flow.route("/answer", event=Event.Hangup)
    def hung_up(call: CallRequest) -> None:
        seen.append(call)

    @flow.route("/menu")
    def menu(call: CallRequest) -> Response:
        seen.append(call)
        if call.digits == "1":
            return Response(Speak("Sales it is."), Redirect(flow.url_for("goodbye")))
        return Response(Speak(f"You chose {call.digits or 'nothing'}."))

    @flow.route("/goodbye")
    def goodbye(call: CallRequest) -> Response:
        seen.append(call)
        return Response(Speak("Goodbye."), Hangup())

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        seen.append(call)
        return Response(Speak("Please hold."), Play(MUSIC))

    @flow.route("/events", status_callback=True)
    def events(call: CallRequest) -> None:
        seen.append(call)

    return flow


def doc_flow(doc: Response, **routes: Response) -> CallFlow:
    """A flow whose answer route returns ``doc`` (and other routes their fixed documents)."""
    flow = CallFlow("doc", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    seen: list[CallRequest] = []
    flow.seen = seen  # type: ignore[attr-defined]

    def fixed(reply: Response | None) -> Any:
        def handler(call: CallRequest) -> Response | None:
            seen.append(call)
            return reply

        return handler

    flow.add_route("/answer", fixed(doc), name="answer")
    for name, reply in routes.items():
        flow.add_route(f"/{name}", fixed(reply), name=name)
    flow.add_route("/events", fixed(None), name="events", status_callback=True)
    return flow


def url(path: str) -> str:
    return PUBLIC + path


def events_of(flow: CallFlow, event: str) -> list[CallRequest]:
    return [c for c in flow.seen if c.event == event]  # type: ignore[attr-defined]


# -- one call, element by element ------------------------------------------------------------


def test_ivr_call_plays_gather_redirect_and_hangup() -> None:
    flow = make_flow()
    sim = CallSimulator(flow)
    t = sim.call("answer", digits="1").run()
    assert t.heard == [
        "Welcome to Example.",
        "Press 1 for sales, 2 for support.",
        "Sales it is.",
        "Goodbye.",
    ]
    assert t.digits_sent == ["1"]
    assert t.ended and t.hangup_cause_code == 4000 and t.hangup_source == "Answer XML"
    assert [h.event for h in t.webhooks] == ["StartApp", "", "Redirect", "Hangup"]
    assert all(h.status == 200 for h in t.webhooks)  # every webhook passed verification
    start = t.webhooks[0].params
    assert start["From"] == "14155550100" and start["To"] == "14155550199"
    assert start["CallStatus"] == "ringing" and start["Direction"] == "inbound"
    assert t.webhooks[1].params["Digits"] == "1"
    assert t.webhooks[1].params["InputType"] == "dtmf"
    hangup = t.webhooks[-1].params
    assert hangup["HangupCauseCode"] == "4000" and hangup["CallStatus"] == "completed"
    assert hangup["HangupCauseName"] == "Normal Hangup"
    assert int(hangup["BillDuration"]) % 60 == 0
    assert [c.event for c in flow.seen] == [  # type: ignore[attr-defined]
        Event.StartApp,
        "",
        Event.Redirect,
        Event.Hangup,
    ]
    text = str(t)
    assert 'hears: "Welcome to Example."' in text
    assert "presses: 1" in text
    assert "POST /answer (Event=StartApp) -> 200" in text
    assert "call ended: 4000 Normal Hangup (Answer XML)" in text
    assert TOKEN not in text and "Signature" not in text


def test_running_off_the_end_is_4010_and_hangup_goes_to_the_answer_url() -> None:
    flow = make_flow()
    t = CallSimulator(flow).call(digits=["2"]).run()
    assert t.heard[-1] == "You chose 2."
    assert t.hangup_cause_code == 4010 and t.hangup_cause_name == "End Of XML Instructions"
    assert t.webhooks[-1].url == url("/answer") and t.webhooks[-1].event == "Hangup"
    assert str(t).endswith("POST /answer (Event=Hangup) -> 200")
    assert "call ended: 4010 End Of XML Instructions" in str(t)


def test_gather_without_input_goes_on_or_posts_empty() -> None:
    flow = make_flow()
    t = CallSimulator(flow).call(digits="-").run()
    assert t.heard[-1] == "We did not get your choice."
    assert "gives no input" in str(t)
    assert [h.event for h in t.webhooks] == ["StartApp", "Hangup"]

    flow = make_flow()
    t = CallSimulator(flow, gather_timeout="post-empty").call().run()
    action = t.webhooks[1]
    assert action.params["Digits"] == "" and action.params["Speech"] == ""
    assert t.heard[-1] == "You chose nothing."


def test_gather_digits_rules_speech_and_redirect_false() -> None:
    doc = Response(
        Gather(
            Speak("PIN?"),
            action=url("/events"),
            input_type="dtmf",
            finish_on_key="#",
            log=False,
            redirect=False,
        ),
        Gather(
            Speak("Two digits."),
            action=url("/events"),
            input_type="dtmf",
            num_digits=2,
            redirect=False,
        ),
        Gather(Speak("Say a department."), action=url("/after"), input_type="dtmf speech"),
    )
    flow = doc_flow(doc, after=Response(Speak("Thanks.")))
    t = CallSimulator(flow).call(digits="1234#9,987", speech=["sales"]).run()
    assert t.digits_sent == ["1234", "98"]
    assert t.speech_sent == ["sales"]
    assert "presses: ****" in str(t)  # log=false masks the PIN in the text form
    speech = t.webhooks_for(path="/after")[0].params
    assert speech["InputType"] == "speech" and speech["Speech"] == "sales"
    assert float(speech["SpeechConfidenceScore"]) > 0
    assert t.heard[-1] == "Thanks."


def test_media_preanswer_wait_dtmf_stream() -> None:
    doc = Response(
        PreAnswer(Speak("Early words.")),
        Wait(length=2),
        Play(MUSIC, loop=2),
        DTMF("12w#"),
        Stream("wss://media.example.com/s", status_callback_url=url("/events")),
    )
    flow = doc_flow(doc)
    t = CallSimulator(flow).call().run()
    assert t.heard == ["Early words.", MUSIC, MUSIC]
    assert t.dtmf == ["12w#"]
    assert t.streams == ["wss://media.example.com/s"]
    assert 'hears: "Early words." (early media)' in str(t)
    assert events_of(flow, "StartStream")[0].service_url == "wss://media.example.com/s"
    assert t.hangup_cause_code == 4010


def test_hangup_first_rejects_and_reasons() -> None:
    t = CallSimulator(doc_flow(Response(Hangup()))).call().run()
    assert t.hangup_cause == "CALL_REJECTED" and t.duration == 0
    t = CallSimulator(doc_flow(Response(Hangup(reason="busy")))).call().run()
    assert t.hangup_cause == "USER_BUSY"


def test_loop_forever_blocks_until_hung_up() -> None:
    flow = doc_flow(Response(Play(MUSIC, loop=0)))
    call = CallSimulator(flow).call()
    t = call.run()
    assert not t.ended and call.state == "blocked"
    call.hangup()
    assert t.ended and t.hangup_source == "Caller" and t.hangup_cause_code == 4000


def test_max_steps_stops_a_redirect_loop() -> None:
    flow = doc_flow(Response(Redirect(url("/answer"))))
    t = CallSimulator(flow).call(max_steps=20).run()
    assert t.step_limit_reached and t.hangup_source == "Caller"
    assert "max_steps" in str(t)


# -- Dial ------------------------------------------------------------------------------------


def dial_flow(**dial: Any) -> CallFlow:
    dial.setdefault("action", url("/after"))
    dial.setdefault("callback_url", url("/events"))
    doc = Response(
        Dial(
            Number("+14156667890"), User("sip:agent@example.com"), caller_id="+14155551234", **dial
        ),
        Speak("After the dial."),
    )
    return doc_flow(doc, after=Response(Speak("Dial finished.")))


def test_dial_answer_sends_callbacks_then_action() -> None:
    flow = dial_flow()
    t = CallSimulator(flow).call(dial=["answer"]).run()
    assert [c.event for c in flow.seen][:6] == [  # type: ignore[attr-defined]
        Event.StartApp,
        Event.DialAnswer,
        Event.DialHangup,
        Event.DialConnected,
        Event.DialHangup,
        Event.Redirect,  # the Dial action (spec §6 item 8)
    ]
    answer = events_of(flow, "DialAnswer")[0]
    assert answer.dial_b_leg_to == "+14156667890" and answer.dial_b_leg_position == 1
    lost, done = events_of(flow, "DialHangup")
    assert lost.dial_b_leg_hangup_cause == "LOSE_RACE" and lost.dial_b_leg_hangup_cause_code == 9000
    assert done.dial_b_leg_hangup_cause == "NORMAL_CLEARING"
    action = events_of(flow, "Redirect")[0]
    assert action.dial_status == "completed" and action.dial_ring_status is True
    assert action.dial_a_leg_uuid == t.call_uuid
    assert action.dial_b_leg_uuid == answer.dial_b_leg_uuid
    assert t.heard == ["Dial finished."]
    assert "dial +14156667890, sip:agent@example.com -> answered by +14156667890" in str(t)
    assert t.dials[0]["answered_by"] == "+14156667890"


@pytest.mark.parametrize(
    ("outcome", "status", "cause"),
    [
        ("busy", "busy", "USER_BUSY"),
        ("no-answer", "no-answer", "NO_ANSWER"),
        ("failed", "failed", "DESTINATION_OUT_OF_ORDER"),
    ],
)
def test_dial_failures_reach_the_action(outcome: str, status: str, cause: str) -> None:
    flow = dial_flow()
    t = CallSimulator(flow).call(dial=outcome).run()
    action = events_of(flow, "Redirect")[0]
    assert action.dial_status == status and action.dial_hangup_cause == cause
    assert action.dial_b_leg_uuid is None  # empty when nothing answered
    assert f"-> {status}" in str(t)
    assert len(events_of(flow, "DialHangup")) == 2


def test_dial_second_target_answers_and_redirect_false_goes_on() -> None:
    flow = dial_flow(redirect=False)
    t = CallSimulator(flow).call(dial=[["no-answer", "answer"]]).run()
    assert t.dials[0]["answered_by"] == "sip:agent@example.com"
    assert t.heard == ["After the dial."]  # the action's XML is ignored
    assert events_of(flow, "Redirect")[0].dial_status == "completed"


def test_dial_bridge_blocks_until_the_b_leg_hangs_up() -> None:
    flow = dial_flow()
    call = CallSimulator(flow).call(dial="bridge")
    call.run()
    assert call.state == "blocked" and call.bridge is not None
    call.end_bridge()
    t = call.run()
    assert t.heard == ["Dial finished."] and t.hangup_cause_code == 4010


def test_caller_hangs_up_mid_bridge_action_after_hangup() -> None:
    flow = dial_flow()
    call = CallSimulator(flow).call(dial="bridge")
    call.run()
    t = call.hangup()
    events = [h.event for h in t.webhooks]
    # spec §2.13: DialHangup, then the hangup webhook, then the Dial action.
    assert events[-3:] == ["DialHangup", "Hangup", "Redirect"]
    assert t.hangup_source == "Caller"


# -- Record ----------------------------------------------------------------------------------


def test_record_action_early_and_record_stop_after_hangup() -> None:
    doc = Response(
        Record(action=url("/events"), callback_url=url("/events"), record_session=True),
        Speak("Recording."),
    )
    flow = doc_flow(doc)
    t = CallSimulator(flow).call().run()
    assert [h.event for h in t.webhooks] == ["StartApp", "Record", "Hangup", "RecordStop"]
    rec_id = t.recordings[0]
    assert events_of(flow, "Record")[0].recording_id == rec_id
    stop = events_of(flow, "RecordStop")[0]
    assert stop.recording_id == rec_id and stop.recording_end_reason == "HungUp"


def test_a_record_stop_reaching_no_handler_is_told_once(caplog: pytest.LogCaptureFixture) -> None:
    # One route for the Record action and its callback_url, with a default handler only:
    # RecordStop, the one webhook with the file's URL, gets an empty 200 and no handler.
    flow = CallFlow("vm", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        url = flow.url_for("voicemail")
        return Response(Record(action=url, callback_url=url), Speak("Thanks."))

    @flow.route("/voicemail")
    def voicemail(call: CallRequest) -> Response:
        return Response()  # the action of a Record with redirect=false: an empty document

    sim = CallSimulator(flow)
    with caplog.at_level("WARNING", logger="answerkit"):
        first = sim.call("answer").run()
        second = sim.call("answer").run()
    for t in (first, second):
        assert [h.event for h in t.webhooks][-1] == "RecordStop"
        assert t.unhandled_callbacks == [
            "voicemail: a RecordStop callback reached no handler, so its fields were dropped "
            "(a route's default handler never runs for one): declare a handler for it with "
            "@flow.route('/voicemail', event='RecordStop'), or, if the route only takes "
            "callbacks (a Conference's or a Stream's), declare it with status_callback=True "
            "so that its handler runs for every event"
        ]
        assert t.ended_normally  # told, not failed
        assert t.events_of("note")[-1].text == t.unhandled_callbacks[0]
    told = [r for r in caplog.records if "RecordStop callback reached no handler" in r.message]
    assert len(told) == 1  # once per route and event, not per call


def test_a_record_stop_with_its_handler_is_not_told() -> None:
    flow = CallFlow("vm", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.route("/answer")(lambda call: Response(Record(callback_url=flow.url_for("stored"))))
    flow.route("/stored", event="RecordStop")(lambda call: None)
    t = CallSimulator(flow).call("answer").run()
    assert [h.event for h in t.webhooks][-1] == "RecordStop" and t.unhandled_callbacks == []


def test_a_simulated_call_shows_the_state_its_handlers_wrote() -> None:
    flow = CallFlow("st", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        call.state["greeted"] = True
        call.state.incr("visits")
        return Response(Speak("Hi."))

    call = CallSimulator(flow).call("answer")
    assert call.call_state == {}
    call.run()
    assert call.state == "ended" and call.call_state == {"greeted": True, "visits": 1}
    by_url = CallSimulator("http://127.0.0.1:9").call("http://127.0.0.1:9/answer")
    with pytest.raises(ConfigurationError, match=r"CallSimulator\(flow\)"):
        _ = by_url.call_state


def test_a_route_handling_some_status_events_by_name_is_not_told_of_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A Dial callback route with a DialHangup handler leaves DialAnswer and DialConnected
    # alone on purpose: no warning, nothing listed.
    flow = CallFlow("dial", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", callback_url=url("/legs"))
    flow.route("/answer")(lambda call: Response(dial))
    flow.route("/legs", event="DialHangup")(lambda call: None)
    with caplog.at_level("WARNING", logger="answerkit"):
        t = CallSimulator(flow).call("answer", dial="answer").run()
    events = [h.event for h in t.webhooks_for(path="/legs")]
    assert events[:2] == ["DialAnswer", "DialConnected"] and "DialHangup" in events
    assert t.unhandled_callbacks == [] and not caplog.records


def test_a_hangup_reaching_no_handler_is_not_told() -> None:
    flow = doc_flow(Response(Speak("Hi.")))
    t = CallSimulator(flow).call().run()
    assert [h.event for h in t.webhooks][-1] == "Hangup" and t.unhandled_callbacks == []


# -- failures Vobiz would drop the call for ------------------------------------------------


def raw_app(flow: CallFlow) -> Flask:
    """The flow's app plus routes that answer the way Vobiz punishes."""
    app = flow.create_app()

    @app.post("/raw/500")
    def error() -> FlaskResponse:
        return FlaskResponse("boom", status=500)

    @app.post("/raw/html")
    def html() -> FlaskResponse:
        return FlaskResponse("<Response/>", content_type="text/html")

    @app.post("/raw/bad")
    def bad() -> FlaskResponse:
        return FlaskResponse("<Response><Speak>unclosed</Response>", content_type="application/xml")

    flaky = iter([503, 502])

    @app.post("/raw/flaky")  # fails twice, then answers
    def flaky_answer() -> FlaskResponse:
        status = next(flaky, 200)
        if status != 200:
            return FlaskResponse("busy", status=status)
        return FlaskResponse(Response(Speak("Hello.")).to_bytes(), content_type="application/xml")

    return app


@pytest.mark.parametrize(
    ("answer", "code"),
    [("/raw/500", 7011), ("/raw/html", 8011), ("/raw/bad", 8011), ("/missing", 7011)],
)
def test_answer_url_failures(answer: str, code: int) -> None:
    flow = make_flow()
    t = CallSimulator(flow, app=raw_app(flow)).call(answer).run()
    assert t.hangup_cause_code == code and t.hangup_source == "Error"
    assert f"call ended: {code}" in str(t)
    # Spec §0 rule 4, §2.1: invalid answer XML is dropped after the call was answered
    # (billed, about a second later); an answer URL Vobiz cannot reach never answers.
    hangup = t.webhooks_for("Hangup")[-1].params
    if code == 8011:
        assert hangup["AnswerTime"] and hangup["Duration"] == "1"
    else:
        assert hangup["AnswerTime"] == "" and hangup["Duration"] == "0"


@pytest.mark.parametrize(
    ("target", "code"),
    [("/raw/500", 7012), ("/raw/bad", 8012), ("https://elsewhere.example.org/x", 7012)],
)
def test_gather_action_failures(target: str, code: int) -> None:
    action = target if "://" in target else url(target)
    flow = doc_flow(Response(Gather(Speak("Go"), action=action, input_type="dtmf")))
    t = CallSimulator(flow, app=raw_app(flow)).call(digits="5").run()
    assert t.hangup_cause_code == code


@pytest.mark.parametrize(("target", "code"), [("/raw/500", 7014), ("/raw/html", 8014)])
def test_redirect_failures(target: str, code: int) -> None:
    flow = doc_flow(Response(Redirect(url(target))))
    t = CallSimulator(flow, app=raw_app(flow)).call().run()
    assert t.hangup_cause_code == code


@pytest.mark.parametrize(("target", "code"), [("/raw/500", 7013), ("/raw/bad", 8013)])
def test_transfer_failures(target: str, code: int) -> None:
    flow = doc_flow(Response(Play(MUSIC, loop=0)))
    sim = CallSimulator(flow, app=raw_app(flow))
    call = sim.call()
    call.run()
    assert sim.transfer(call.call_uuid, target)
    t = call.run()
    assert t.hangup_cause_code == code


def test_wrong_token_is_refused_like_vobiz_would_be() -> None:
    flow = make_flow()
    t = CallSimulator(flow, auth_token="not-the-token").call().run()
    assert t.webhooks[0].status == 403 and t.hangup_cause_code == 7011


def test_fallback_url_takes_over_a_failed_answer() -> None:
    flow = make_flow()
    t = CallSimulator(flow, app=raw_app(flow)).call("/raw/500", fallback_url="hold").run()
    assert t.heard[0] == "Please hold."
    # Spec §2.12: the answer URL had 3 retries first.
    assert [w.status for w in t.webhooks if w.event == "StartApp"] == [500, 500, 500, 500, 200]


def test_an_answer_url_that_recovers_within_its_retries_plays() -> None:
    # A transient 503 dropped the call with 7011; Vobiz retries the answer URL 3 times.
    flow = make_flow()
    t = CallSimulator(flow, app=raw_app(flow)).call("/raw/flaky").run()
    assert t.heard == ["Hello."] and t.hangup_cause_code == 4010
    assert [w.status for w in t.webhooks if w.event == "StartApp"] == [503, 502, 200]


# -- transfers -------------------------------------------------------------------------------


def test_transfer_interrupts_a_gather_prompt() -> None:
    flow = make_flow()
    sim = CallSimulator(flow)
    call = sim.call(digits="1")
    call.run(until="gather")
    assert call.state == "blocked"
    assert call.transcript.heard[-1] == "Press 1 for sales, 2 for support."
    assert sim.transfer(call.call_uuid, "hold")
    t = call.run()
    assert t.digits_sent == []  # the Gather never got its input
    assert t.heard[-2:] == ["Please hold.", MUSIC]
    assert t.transfers == [url("/hold")]
    transfer = t.webhooks_for("Transfer")[0]
    assert transfer.params["CallStatus"] == "in-progress"
    assert "transferred to /hold" in str(t)
    assert not t.webhooks_for(path="/menu")


def test_transfer_requested_by_a_handler_takes_effect_when_it_returns() -> None:
    flow = CallFlow("xfer", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    box: dict[str, CallSimulator] = {}

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Gather(Speak("Press 1."), action=flow.url_for("menu"), input_type="dtmf"))

    @flow.route("/menu")
    def menu(call: CallRequest) -> Response:
        box["sim"].transfer(call.call_uuid, "hold")
        return Response(Speak("This is never heard."))

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        return Response(Speak("Moved."))

    sim = box["sim"] = CallSimulator(flow)
    t = sim.call(digits="1").run()
    assert "This is never heard." not in t.heard
    assert t.heard[-1] == "Moved."


def test_transfer_of_an_unknown_or_ended_call_is_refused() -> None:
    sim = CallSimulator(make_flow())
    assert not sim.transfer("no-such-call", "hold")
    call = sim.call(digits="2")
    call.run()
    assert not sim.transfer(call.call_uuid, "hold")


def test_bridged_b_leg_transfer_becomes_its_own_call() -> None:
    flow = dial_flow()
    sim = CallSimulator(flow)
    caller = sim.call(dial="bridge")
    caller.run()
    assert sim.transfer(caller.call_uuid, "events", leg="bleg")
    sim.run_until_idle()
    assert caller.ended and caller.transcript.heard == ["Dial finished."]
    bleg = sim.calls[1]
    assert bleg.transcript.webhooks[0].event == "Transfer"
    assert bleg.transcript.webhooks[0].params["ALegUUID"] == caller.call_uuid
    assert not bleg.transcript.webhooks_for("Hangup")  # a B-leg sends no hangup webhook


def test_a_bridged_b_leg_is_named_by_its_own_call_uuid_on_local_vobiz(
    call_simulator: Any, local_vobiz: Any
) -> None:
    # The vendor's Transfer page: "transfer both call legs independently using their
    # respective UUIDs". LocalVobiz used to answer 404 for a B-leg's own DialBLegUUID.
    api = local_vobiz.client()
    sim = call_simulator(dial_flow())
    caller = sim.call(dial="bridge")
    caller.run()
    bleg_uuid = caller.bridge.target.uuid
    live = api.get_live_call(bleg_uuid)
    assert (live.call_status, live.to, live.direction) == (
        "in-progress",
        "+14156667890",
        "outbound",
    )
    api.transfer(bleg_uuid, aleg_url=url("/events"))
    sim.run_until_idle()
    moved = sim.calls[1]
    assert moved.call_uuid == bleg_uuid
    assert moved.transcript.webhooks[0].event == "Transfer"
    assert caller.ended and caller.transcript.heard == ["Dial finished."]

    caller = sim.call(dial="bridge")
    caller.run()
    bleg_uuid = caller.bridge.target.uuid
    api.hangup(bleg_uuid)
    sim.run_until_idle()
    assert caller.ended and caller.transcript.heard == ["Dial finished."]
    assert local_vobiz.call(bleg_uuid).status == "completed"
    with pytest.raises(CallNotActiveError):
        api.get_live_call(bleg_uuid)


# -- conferences -----------------------------------------------------------------------------


def room_flow() -> CallFlow:
    flow = CallFlow("room", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    seen: list[CallRequest] = []
    flow.seen = seen  # type: ignore[attr-defined]

    @flow.route("/caller")
    def caller(call: CallRequest) -> Response:
        return Response(
            Conference(
                "support",
                stay_alone=True,
                start_conference_on_enter=False,
                wait_sound=flow.url_for("music"),
                callback_url=flow.url_for("room"),
            ),
            Speak("The agent left."),
        )

    @flow.route("/agent")
    def agent(call: CallRequest) -> Response:
        return Response(
            Conference("support", end_conference_on_exit=True, callback_url=flow.url_for("room")),
            Hangup(),
        )

    @flow.route("/lonely")
    def lonely(call: CallRequest) -> Response:
        return Response(Conference("empty-room"), Speak("Nobody here."))

    @flow.route("/music")
    def music(call: CallRequest) -> Response:
        seen.append(call)
        return Response(Play(MUSIC, loop=0))

    @flow.route("/room", status_callback=True)
    def room(call: CallRequest) -> None:
        seen.append(call)

    return flow


def test_two_calls_meet_in_a_conference_and_end_on_exit() -> None:
    flow = room_flow()
    sim = CallSimulator(flow)
    caller = sim.call("caller")
    caller.run()
    assert caller.state == "blocked"
    assert caller.transcript.heard == [MUSIC]  # the waitSound while the room waits
    agent = sim.call("agent", from_="+14155550111")
    sim.run_until_idle()
    assert sim.conference("support").members == [caller, agent]
    assert 'joins conference "support"' in str(agent.transcript)
    enters = events_of(flow, "ConferenceEnter")
    assert [e.conference_first_member for e in enters] == [True, False]
    assert enters[0].conference_member_id != enters[1].conference_member_id
    music = events_of(flow, "ConferenceRemoteSounds")[0]
    assert music.conference_action == "waitSound"

    agent.hangup()  # endConferenceOnExit: everyone is let out
    sim.run_until_idle()
    assert caller.transcript.heard[-1] == "The agent left."
    assert caller.transcript.ended and caller.transcript.hangup_cause_code == 4010
    exits = events_of(flow, "ConferenceExit")
    assert len(exits) == 2 and exits[-1].conference_last_member is True
    assert sim.conference("support").members == []


def test_lone_member_without_stay_alone_is_disconnected() -> None:
    t = CallSimulator(room_flow()).call("lonely").run()
    assert t.heard == ["Nobody here."]
    assert 'leaves conference "empty-room" (alone in the conference)' in str(t)


def test_kicked_member_with_nothing_after_reports_callee() -> None:
    flow = room_flow()
    sim = CallSimulator(flow)
    agent = sim.call("agent")
    first = sim.call("caller")
    first.run()
    agent.run()
    first.hangup()
    sim.run_until_idle()
    # agent is alone now (no stayAlone) and is let out; its Hangup element ends the call
    assert agent.transcript.hangup_cause_code == 4000


# -- outbound calls --------------------------------------------------------------------------


def test_outbound_call_answers_with_outbound_fields() -> None:
    flow = make_flow()
    sim = CallSimulator(flow)
    call = sim.outbound_call("goodbye", from_="+14155550199", to="+919876543210", ring_url="events")
    t = call.run()
    assert [h.event for h in t.webhooks] == ["Ring", "StartApp", "Hangup"]
    start = t.webhooks[1].params
    assert start["Direction"] == "outbound" and start["CallStatus"] == "in-progress"
    assert start["RequestUUID"] == call.call_uuid == start["ALegUUID"]
    assert start["To"] == "919876543210"


def test_outbound_call_not_answered() -> None:
    flow = make_flow()
    t = CallSimulator(flow).outbound_call("goodbye", outcome="busy", hangup_url="events").run()
    assert [h.event for h in t.webhooks] == ["Hangup"]
    assert t.webhooks[0].params["CallStatus"] == "busy"
    assert t.hangup_cause == "USER_BUSY"


# -- over real HTTP --------------------------------------------------------------------------


@pytest.fixture
def served_flow() -> Iterator[tuple[CallFlow, str]]:
    flow = make_flow()
    server = make_server("127.0.0.1", 0, flow.create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield flow, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def test_http_mode_gives_the_same_transcript(served_flow: tuple[CallFlow, str]) -> None:
    _flow, base = served_flow
    over_http = CallSimulator(base, auth_token=TOKEN, public_url=PUBLIC)
    t_http = over_http.call("/answer", digits="1").run()
    t_local = CallSimulator(make_flow()).call("answer", digits="1").run()
    assert str(t_http) == str(t_local)
    assert t_http.hangup_cause_code == 4000
    assert all(h.status == 200 for h in t_http.webhooks)
    over_http.close()


def test_http_mode_unreachable_server_is_7011() -> None:
    sim = CallSimulator("http://127.0.0.1:9", auth_token=TOKEN, timeout=2)
    t = sim.call("/answer").run()
    assert t.hangup_cause_code == 7011 and t.webhooks[0].status == 0


# -- helpers ---------------------------------------------------------------------------------


def test_signed_post_helper_passes_verification() -> None:
    flow = make_flow()
    client = flow.create_app().test_client()
    params = {"CallUUID": "c-1", "From": "1415", "To": "1416", "Event": "StartApp"}
    assert signed_post(client, flow, "/answer", params).status_code == 200
    headers = sign_request(flow, "/answer")
    assert client.post("/answer", data=params, headers=headers).status_code == 200
    assert client.post("/answer", data=params).status_code == 403


def test_listener_sees_events_as_they_happen() -> None:
    sim = CallSimulator(make_flow())
    seen: list[str] = []
    sim.add_listener(lambda call, event: seen.append(event.kind))
    sim.call(digits="2").run()
    assert seen[0] == "webhook" and "hear" in seen and seen[-1] == "webhook"


# -- with LocalVobiz (the plugin's fixtures) ----------------------------------------------------


def agent_flow(local_vobiz: Any) -> CallFlow:
    flow = CallFlow(
        "agents",
        public_url=PUBLIC,
        auth_token=TOKEN,
        state=MemoryStore(),
        client=local_vobiz.client(),
    )
    seen: list[CallRequest] = []
    flow.seen = seen  # type: ignore[attr-defined]

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        flow.transfers.client.make_call(
            "+14155550199",
            "+14155550111",
            flow.url_for("agent", caller=call.call_uuid),
            hangup_url=flow.url_for("agent_status"),
        )
        return Response(
            Speak("Calling an agent."),
            Conference("desk", stay_alone=True, callback_url=flow.url_for("events")),
        )

    @flow.route("/agent")
    def agent(call: CallRequest) -> Response:
        seen.append(call)
        return Response(
            Gather(
                Speak("Press 1 to take the call."),
                action=flow.url_for("take"),
                input_type="dtmf",
                num_digits=1,
            ),
            Hangup(),
        )

    @flow.route("/take")
    def take(call: CallRequest) -> Response:
        return Response(Conference("desk", end_conference_on_exit=True), Hangup())

    @flow.route("/agent_status", status_callback=True)
    def agent_status(call: CallRequest) -> None:
        seen.append(call)

    @flow.route("/events", status_callback=True)
    def events(call: CallRequest) -> None:
        seen.append(call)

    return flow


def test_make_call_through_local_vobiz_is_simulated(call_simulator: Any, local_vobiz: Any) -> None:
    flow = agent_flow(local_vobiz)
    sim = call_simulator(flow)
    sim.expect_outbound("+14155550111", digits="1")
    caller = sim.call()
    caller.run()
    assert local_vobiz.call(caller.call_uuid).status == "in-progress"
    sim.run_until_idle()
    agent = sim.calls[1]
    assert agent.direction == "outbound" and agent.to == "+14155550111"
    start = agent.transcript.webhooks[0].params
    assert start["Event"] == "StartApp" and start["CallStatus"] == "in-progress"
    assert start["RequestUUID"] == agent.call_uuid
    assert agent.transcript.digits_sent == ["1"]
    assert sim.conference("desk").members == [caller, agent]
    caller.hangup()
    sim.run_until_idle()
    assert agent.ended and agent.transcript.hangup_source == "Answer XML"
    assert agent.transcript.webhooks[-1].url == url("/agent_status")
    assert local_vobiz.call(agent.call_uuid).status == "completed"


def test_unscripted_outbound_call_that_is_busy(call_simulator: Any, local_vobiz: Any) -> None:
    flow = agent_flow(local_vobiz)
    sim = call_simulator(flow)
    sim.expect_outbound(outcome="busy")
    sim.call().run()
    sim.run_until_idle()
    agent = sim.calls[1]
    assert [h.event for h in agent.transcript.webhooks] == ["Hangup"]
    assert agent.transcript.hangup_cause == "USER_BUSY"


def test_transfer_through_local_vobiz_interrupts_at_once(
    call_simulator: Any, local_vobiz: Any
) -> None:
    flow = make_flow()
    sim = call_simulator(flow)
    call = sim.call(digits="1")
    call.run(until="gather")
    client = local_vobiz.client()
    client.transfer(call.call_uuid, aleg_url=url("/hold"))
    t = call.run()
    assert t.heard[-2:] == ["Please hold.", MUSIC]
    assert not t.webhooks_for(path="/menu")


def test_rest_hangup_of_a_simulated_call(call_simulator: Any, local_vobiz: Any) -> None:
    flow = doc_flow(Response(Play(MUSIC, loop=0)))
    sim = call_simulator(flow)
    call = sim.call()
    call.run()
    local_vobiz.client().hangup(call.call_uuid)
    t = call.run()
    assert t.ended and t.hangup_source == "API Request"
    assert t.webhooks[-1].event == "Hangup"


def test_warm_transfer_recipe_end_to_end(call_simulator: Any, local_vobiz: Any) -> None:
    from answerkit.recipes import WarmTransfer

    flow = CallFlow(
        "warm",
        public_url=PUBLIC,
        auth_token=TOKEN,
        state=MemoryStore(),
        client=local_vobiz.client(),
    )
    warm = WarmTransfer(
        flow, agent="+14155550111", caller_id="+14155550199", fallback="sorry", hold_music=MUSIC
    )

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(
            Gather(
                Speak("Press 0 for an agent."),
                action=flow.url_for("menu"),
                input_type="dtmf",
                num_digits=1,
            )
        )

    @flow.route("/menu")
    def menu(call: CallRequest) -> Response:
        warm.start(call.call_uuid, {"reason": "billing"})
        return Response(Speak("Transferring."))

    @flow.route("/sorry")
    def sorry(call: CallRequest) -> Response:
        return Response(Speak("Nobody is free."), Hangup())

    sim = call_simulator(flow)
    sim.expect_outbound("+14155550111", digits="1")
    caller = sim.call(digits="0")
    caller.run()
    sim.run_until_idle()
    agent = sim.calls[1]
    room = warm.room_for(caller.call_uuid)
    assert sim.conference(room).members == [caller, agent]
    assert "Transferring." not in caller.transcript.heard  # the transfer won
    assert warm.outcome(caller.call_uuid) == "accepted"
    caller.hangup()
    sim.run_until_idle()
    assert agent.ended


# -- answerkit call ------------------------------------------------------------------------------

APP_FILE = """
from answerkit.app import CallFlow
from answerkit.elements import Gather, Hangup, Response, Speak
from answerkit.state import MemoryStore

flow = CallFlow("term", auth_token="term-token-0123456789", state=MemoryStore())


@flow.route("/answer")
def answer(call):
    return Response(Gather(Speak("Press 1 for sales."), action=flow.url_for("menu"),
                           input_type="dtmf", num_digits=1), Speak("No choice."))


@flow.route("/menu")
def menu(call):
    return Response(Speak("You pressed " + (call.digits or "nothing") + "."), Hangup())
"""


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def terminal_args(app: Path, **kwargs: Any) -> argparse.Namespace:
    values = {
        "app": str(app),
        "route": None,
        "from_": "+14155550100",
        "to": "+14155550199",
        "digits": None,
        "speech": None,
        "dial": None,
    }
    values.update(kwargs)
    return argparse.Namespace(**values)


def test_terminal_call_scripted(tmp_path: Path) -> None:
    app = tmp_path / "termapp.py"
    app.write_text(APP_FILE)
    out = io.StringIO()
    code = run_terminal_call(terminal_args(app, digits="1"), stdin=io.StringIO(""), stdout=out)
    text = out.getvalue()
    assert code == 0
    assert 'hears: "Press 1 for sales."' in text
    assert "presses: 1" in text
    assert 'hears: "You pressed 1."' in text
    assert "POST /menu" in text and "ok: call ended with 4000" in text


def test_terminal_call_never_waits_without_a_terminal(tmp_path: Path) -> None:
    app = tmp_path / "termapp2.py"
    app.write_text(APP_FILE)
    out = io.StringIO()
    code = run_terminal_call(terminal_args(app), stdin=io.StringIO("1\n"), stdout=out)
    assert code == 0
    assert 'hears: "No choice."' in out.getvalue()  # stdin was not read


def test_terminal_call_asks_on_a_terminal(tmp_path: Path) -> None:
    app = tmp_path / "termapp3.py"
    app.write_text(APP_FILE)
    out = io.StringIO()
    code = run_terminal_call(terminal_args(app), stdin=FakeTTY("7\n"), stdout=out)
    assert code == 0
    assert "> caller input (digits" in out.getvalue()
    assert 'hears: "You pressed 7."' in out.getvalue()


def test_terminal_call_reports_a_dropped_call(tmp_path: Path) -> None:
    app = tmp_path / "termapp4.py"
    app.write_text(APP_FILE.replace('flow.url_for("menu")', '"http://localhost/nowhere"'))
    out = io.StringIO()
    code = run_terminal_call(terminal_args(app, digits="1"), stdin=io.StringIO(""), stdout=out)
    assert code == 1
    assert "FAILED: call ended with 7012" in out.getvalue()


def test_get_methods_and_dial_shorthand_and_interim_speech() -> None:
    doc = Response(
        Gather(
            Speak("Say it."),
            action=url("/events"),
            input_type="speech",
            redirect=False,
            interim_speech_results_callback=url("/events"),
        ),
        Dial("+14156667890", action=url("/events"), method="GET", redirect=False),
        Redirect(url("/after"), method="GET"),
    )
    flow = doc_flow(doc, after=Response(Speak("Done.")))
    t = CallSimulator(flow, dial_action_event="DialAction").call(speech="billing").run()
    interim = t.webhooks[1]
    assert interim.params["StableSpeech"] == "billing" and interim.params["SequenceNumber"] == "1"
    assert t.dials[0]["numbers"] == ["+14156667890"]
    redirect = events_of(flow, "Redirect")[0]
    assert redirect.method == "GET" and redirect.call_uuid == t.call_uuid
    assert events_of(flow, "DialAction")[0].method == "GET"
    assert t.heard[-1] == "Done."


def test_a_call_never_run_sends_nothing_when_hung_up() -> None:
    flow = make_flow()
    call = CallSimulator(flow).call()
    t = call.hangup()
    assert t.ended and t.webhooks == []


def test_the_flows_rest_calls_go_to_the_local_vobiz_of_the_simulator(
    call_simulator: Any, local_vobiz: Any
) -> None:
    """A flow that moves its own calls (flow.transfer) needs no client wiring in a test;
    the loan ends with the simulator, and a client the flow was given is left alone."""
    flow = moving_flow("lend", on_key=False)
    sim = call_simulator(flow)
    t = sim.call("answer").run()
    assert t.said("On hold.") and t.ended_normally, t
    sim.close()
    assert flow.transfers.swap_client(None) is None  # the loan was taken back
    own = local_vobiz.client()
    flow.transfers.client = own
    with CallSimulator(flow, local_vobiz=local_vobiz):
        assert flow.transfers.client is own
    assert flow.transfers.client is own


def test_bad_simulator_targets_and_scripts_are_configuration_errors() -> None:
    flow = CallFlow("bad", public_url="https://v.example.com", auth_token="t" * 20,
                    state=MemoryStore())  # fmt: skip

    @flow.route("/a")
    def a(call: CallRequest) -> Response:
        return Response(Hangup())

    with pytest.raises(ConfigurationError, match=r"CallSimulator\(flow, app=app\)"):
        CallSimulator(flow.create_app())  # type: ignore[arg-type]
    sim = CallSimulator(flow)
    for script in ({"digits": 2}, {"speech": 3}):
        with pytest.raises(ConfigurationError, match="must be text such as"):
            sim.call("a", **script)  # type: ignore[arg-type]
    # max_steps=-1 played nothing (heard == [], the step limit 'reached'); a timeout of -1
    # was taken: each refused when given, naming the setting.
    for steps in (-1, 0, True, 2.5):
        with pytest.raises(ConfigurationError, match=r"max_steps must be .* at least 1"):
            sim.call("a", max_steps=steps)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=r"max_steps must be"):
            sim.outbound_call("https://v.example.com/a", max_steps=steps)  # type: ignore[arg-type]
    for seconds in (-1, 0, float("nan"), float("inf"), "10"):
        with pytest.raises(ConfigurationError, match="timeout must be"):
            CallSimulator(flow, timeout=seconds)  # type: ignore[arg-type]


# -- several simulators on one flow: handler errors and lent clients stay with their own --------


@pytest.mark.parametrize(
    ("element", "told"),
    [
        (Wait(length=5), "silence: 1s (cut short by the scheduled hang-up, of 5s)"),
        (Speak("A rather long announcement that takes several seconds to say."),
         "(cut short after 1s by the scheduled hang-up)"),
        (Record(action="https://voice.example.com/saved", max_length=30),
         "recording ends after 1 s: HungUp"),
    ],
)  # fmt: skip
def test_the_clock_never_runs_past_a_scheduled_hang_up(element: Any, told: str) -> None:
    # A 5 s silence was listed at 5 s, then the hang-up due at 1 s at 1 s: a listener saw
    # time run backwards, and a pause longer than the call.
    flow = doc_flow(Response(Hangup(schedule=1), element))
    with CallSimulator(flow) as sim:
        t = sim.call("answer").run()
    times = [event.at for event in t.events]
    assert times == sorted(times) and max(times) == 1 and t.duration == 1
    assert any(told in event.text for event in t.events), [e.text for e in t.events]


def test_running_a_call_from_inside_its_own_step_is_refused_with_the_reason() -> None:
    # A listener that ran the call (or every call) got Python's bare "ValueError:
    # generator already executing".
    for run in ("call", "sim"):
        with CallSimulator(doc_flow(Response(Speak("Hi"), Wait(length=1)))) as sim:

            def listener(call: Any, event: Any, run: str = run) -> None:
                if event.kind == "hear":
                    call.run() if run == "call" else sim.run_until_idle()

            sim.add_listener(listener)
            with pytest.raises(ConfigurationError, match="a listener may hang up, transfer"):
                sim.call("answer").run()


def test_a_call_uuid_already_used_by_the_simulator_is_refused() -> None:
    # Two calls under one CallUUID shared their state, and the second's Hangup ended
    # neither for good: the first went on, and sent a Hangup of its own.
    with CallSimulator(doc_flow(Response(Speak("Hi")))) as sim:
        sim.call("answer", call_uuid="same").run()
        with pytest.raises(ConfigurationError, match="'same' is already a call of this"):
            sim.call("answer", call_uuid="same")
        with pytest.raises(ConfigurationError, match="'same' is already a call of this"):
            sim.outbound_call("answer", call_uuid="same")
    # Nor a bridged B-leg's: the Hang-up API naming it ended the new call.
    bridged = doc_flow(Response(Dial(Number("+14155550142"), caller_id="+14155550100")))
    with CallSimulator(bridged) as sim:
        caller = sim.call("answer", dial="bridge")
        caller.run()  # blocked in the bridge, its B-leg up
        bleg_uuid = caller.dial_bleg
        assert bleg_uuid is not None
        with pytest.raises(ConfigurationError, match="or the live B-leg of one"):
            sim.call("answer", call_uuid=bleg_uuid)


def test_a_hang_up_asked_for_at_the_transfer_event_stops_the_transfer() -> None:
    # The Hangup webhook went out, then the Transfer one, and the moved-to document played
    # on the ended call.
    flow = CallFlow("late", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.route("/answer")(lambda call: Response(Speak("Hello"), Wait(length=10)))
    flow.route("/moved")(lambda call: Response(Speak("You were moved")))
    with CallSimulator(flow) as sim:

        def listener(call: Any, event: Any) -> None:
            if event.kind == "hear" and event.text == 'hears: "Hello"':
                sim.transfer(call.call_uuid, "moved")
            if event.kind == "transfer":
                call.hangup()  # the caller hangs up just as the transfer is taken

        sim.add_listener(listener)
        t = sim.call("answer").run()
    assert [w.params["Event"] for w in t.webhooks] == ["StartApp", "Hangup"]
    assert t.heard == ["Hello"] and t.hangup_source == "Caller"


def test_a_handler_error_in_the_transcript_carries_the_logs_hint() -> None:
    # A handler ported from a Plivo view read flask.request: the log line said to read the
    # call's fields, but t.handler_errors had only Flask's "Consult the documentation".
    import flask

    flow = CallFlow("habits", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak(f"You pressed {flask.request.form['Digits']}"))

    with CallSimulator(flow) as sim:
        t = sim.call("answer").run()
    [error] = t.handler_errors
    assert error.startswith("answer: RuntimeError: Working outside of request context.")
    assert error.endswith("read call.params or the typed fields such as call.digits, not "
                          "flask.request)")  # fmt: skip


def test_two_simulators_in_two_threads_each_get_their_own_handler_errors() -> None:
    """A broken call's error is filed under that call, not under the newest watcher."""
    good_inside, reported = threading.Event(), threading.Event()
    hooked: list[str] = []

    def own_hook(exc: BaseException, call: Any, route: str) -> None:
        hooked.append(route)  # the tap has recorded it by now
        reported.set()

    flow = CallFlow("two", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(),
                    on_error=own_hook)  # fmt: skip

    @flow.route("/good")
    def good(call: CallRequest) -> Response:
        good_inside.set()  # both webhooks are watched from here on
        reported.wait(10)
        return Response(Speak("ok"))

    @flow.route("/broken")
    def broken(call: CallRequest) -> Response:
        good_inside.wait(10)  # the good call's watcher is the newest one now
        raise RuntimeError("boom")

    results: dict[str, Any] = {}

    def play(route: str) -> None:
        results[route] = CallSimulator(flow).call(route).run()

    threads = [threading.Thread(target=play, args=(route,)) for route in ("broken", "good")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["broken"].handler_errors == ["broken: RuntimeError: boom"]
    assert results["good"].handler_errors == [] and results["good"].ended_normally
    assert hooked == ["broken"]


def test_the_error_tap_files_errors_by_call_uuid_whatever_the_thread() -> None:
    """A webhook served in another thread (a live server) still reaches its own watcher."""
    from types import SimpleNamespace

    from answerkit.testing.sim_transport import HandlerErrorTap

    flow = make_flow()
    dispatcher = flow.dispatcher()
    tap = HandlerErrorTap(dispatcher)
    first: list[str] = []
    second: list[str] = []

    def report(call: Any) -> None:
        worker = threading.Thread(
            target=dispatcher.on_error, args=(RuntimeError("x"), call, "menu")
        )
        worker.start()
        worker.join()

    with tap.watching(first, "CA-1"), tap.watching(second, "CA-2"):
        report(SimpleNamespace(call_uuid="CA-1"))
        report(None)  # no request parsed, another thread: nobody's
        report(SimpleNamespace(call_uuid="CA-9"))  # not a watched call
        dispatcher.on_error(RuntimeError("y"), None, "answer")  # this thread: the innermost
    assert first == ["menu: RuntimeError: x"]
    assert second == ["answer: RuntimeError: y"]


def test_the_error_tap_never_turns_on_error_back_to_none() -> None:
    """The dispatcher reads on_error twice: it must not become None in between. The tap
    stays on a flow with no hook of its own (it only forwards), and check.handler_errors
    still collects meanwhile."""
    from answerkit.check import handler_errors

    flow = CallFlow("none", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        raise RuntimeError("boom")

    dispatcher = flow.dispatcher()
    assert dispatcher.on_error is None
    sim = CallSimulator(flow)
    assert sim.call("answer").run().handler_errors == ["answer: RuntimeError: boom"]
    tap = dispatcher.on_error
    assert tap is not None
    with handler_errors([flow]) as errors:
        t = sim.call("answer").run()
    assert errors == ["answer: RuntimeError: boom"] == t.handler_errors
    assert dispatcher.on_error is tap
    assert sim.call("answer").run().handler_errors == ["answer: RuntimeError: boom"]
    sim.close()
    assert dispatcher.on_error is tap


def moving_flow(name: str, *, on_key: bool = True, client: VobizClient | None = None) -> CallFlow:
    """A flow that moves its own call (flow.transfer, a REST call) to /hold ("On hold."):
    after a key press (``on_key``), or straight after its greeting."""
    flow = CallFlow(name, public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(), client=client)

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        if not on_key:
            return Response(Speak("Hello."), Redirect(flow.url_for("move")))
        return Response(Gather(Speak("Press 1."), action=flow.url_for("move"),
                               input_type="dtmf", num_digits=1))  # fmt: skip

    @flow.route("/move")
    def move(call: CallRequest) -> Response:
        flow.transfer(call.call_uuid, aleg="hold")
        return Response(Play(MUSIC, loop=0))

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        return Response(Speak("On hold."), Hangup())

    return flow


def test_lending_never_leaves_a_flow_without_its_client(local_vobiz: Any) -> None:
    """Another thread's flow.transfer() must never find None there: it would make a client
    from the environment (the real platform), which would then stay on the flow."""
    flow = moving_flow("peek")
    planner = flow.transfers
    keep = CallSimulator(flow, local_vobiz=local_vobiz)
    swaps: list[Any] = []
    swap = planner.swap_client

    def spy(client: Any) -> Any:
        swaps.append(client)
        return swap(client)

    planner.swap_client = spy  # type: ignore[method-assign]
    for _ in range(3):
        CallSimulator(flow, local_vobiz=local_vobiz).close()
    assert swaps and None not in swaps
    keep.close()
    assert swaps[-1] is None and planner.peek_client() is None  # what was there before


def test_a_loan_survives_a_restart_of_its_local_vobiz(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loan of a LocalVobiz stopped on a fixed port stays while others come and go."""
    from answerkit.testing.local_vobiz import LocalVobiz

    for name in ("VOBIZ_AUTH_ID", "VOBIZ_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    flow = moving_flow("restart")
    with LocalVobiz() as probe:  # a free port (taken back at once, as a restart would)
        port = probe.port
    server = LocalVobiz(port=port).start()
    try:
        sim = CallSimulator(flow, local_vobiz=server)
        lent = flow.transfers.peek_client()
        server.stop()  # a fixture restarting its server, say
        with LocalVobiz() as other, CallSimulator(flow, local_vobiz=other):
            pass  # another simulator meanwhile, closed properly
        assert flow.transfers.peek_client() is lent
        server.start()
        t = sim.call("answer", digits="1").run()
        assert t.heard[-1] == "On hold." and t.ended_normally, t
        sim.close()
        assert flow.transfers.peek_client() is None
    finally:
        server.stop()


def test_a_local_vobiz_on_a_port_of_its_own_choosing_takes_its_loans_back() -> None:
    """Started again it would listen elsewhere: its lent clients could never reach it."""
    from answerkit.testing.local_vobiz import LocalVobiz

    flow = moving_flow("gone")
    with LocalVobiz() as server:
        CallSimulator(flow, local_vobiz=server)  # never closed
        assert flow.transfers.peek_client() is not None
    assert flow.transfers.peek_client() is None


def test_one_flow_cannot_lend_its_client_to_two_running_local_vobiz() -> None:
    """One flow has one client: the older simulator's REST calls would reach the newer
    one's server (404 there), so the second simulator is refused, not the call."""
    from answerkit.testing.local_vobiz import LocalVobiz

    flow = moving_flow("two-servers")
    with LocalVobiz() as first, LocalVobiz() as second:
        sim = CallSimulator(flow, local_vobiz=first)
        lent = flow.transfers.peek_client()
        with pytest.raises(ConfigurationError, match="use one LocalVobiz per flow"):
            CallSimulator(flow, local_vobiz=second)
        assert flow.transfers.peek_client() is lent  # the refused one changed nothing
        t = sim.call("answer", digits="1").run()
        assert t.heard[-1] == "On hold." and t.ended_normally, t
        sim.close()
        with CallSimulator(flow, local_vobiz=second) as other:  # once closed, fine
            t = other.call("answer", digits="1").run()
            assert t.heard[-1] == "On hold." and t.ended_normally, t


def test_two_simulators_share_one_local_vobiz_and_closing_one_keeps_the_other(
    local_vobiz: Any,
) -> None:
    """Each simulator takes over the calls it plays; closing the later one used to unhook
    both, and the earlier one's transfers then went to LocalVobiz itself."""

    first = CallSimulator(moving_flow("first", on_key=False), local_vobiz=local_vobiz)
    second = CallSimulator(moving_flow("second", on_key=False), local_vobiz=local_vobiz)
    t = second.call("answer").run()
    assert t.said("On hold.") and t.ended_normally, t
    second.close()
    t = first.call("answer").run()  # its transfer is still taken over by its simulator
    assert t.said("On hold.") and t.ended_normally, t
    first.close()
    assert local_vobiz.on_transfer_request is None and local_vobiz.on_hangup_request is None


def test_the_transcript_says_when_a_gather_posts_no_input() -> None:
    # With post-empty, a timeout posts the action with nothing in it: it read "(dtmf input)".
    flow = doc_flow(Response(Gather(Speak("Go"), action=url("/after"), input_type="dtmf")),
                    after=Response(Speak("Done.")))  # fmt: skip
    t = CallSimulator(flow, gather_timeout="post-empty").call(digits=[None]).run()
    assert "(no dtmf input)" in str(t) and "(dtmf input)" not in str(t)
    t = CallSimulator(flow).call(digits="5").run()
    assert "(dtmf input)" in str(t)


def test_an_agent_called_from_a_handler_whose_caller_waits_in_a_room_is_played(
    call_simulator: Any,
) -> None:
    # The caller's document is only the room, so its first step blocks: the agent call the
    # handler placed was never played by run_until_idle. flow.client is the simulator's
    # local Vobiz API, not the real one.
    flow = CallFlow("centre", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        flow.client.make_call("+14155550100", "+14155550142", flow.url_for("agent"))
        return Response(Conference("room", stay_alone=True))

    @flow.route("/agent")
    def agent(call: CallRequest) -> Response:
        return Response(Speak("Agent here."), Conference("room", end_conference_on_exit=True))

    sim = call_simulator(flow)
    sim.call("answer")
    sim.run_until_idle()
    assert [(c.direction, c.state) for c in sim.calls] == [
        ("inbound", "blocked"),
        ("outbound", "blocked"),
    ]
    assert sim.calls[1].transcript.said("Agent here.")
    assert sorted(m.call_uuid for m in sim.conference("room").members) == sorted(
        c.call_uuid for c in sim.calls
    )
