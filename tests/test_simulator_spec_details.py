"""Spec details the simulator follows: scheduled hangups of blocked calls, the Hang-up API on a
ringing call, make-call ring and fallback URLs, keepCallAlive streams, ConferenceExit fields,
PreAnswer waits, inbound Dials without callerId, and typed errors for bad scripted input."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask import Response as FlaskResponse
from test_simulator import doc_flow, url  # the simulator tests' own document flow

from answerkit.app import CallFlow
from answerkit.cli import main as cli_main
from answerkit.elements import (
    Conference,
    Dial,
    Element,
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
    Wait,
)
from answerkit.errors import AnswerkitError, ConfigurationError, ValidationError
from answerkit.request import CallRequest, Event
from answerkit.state import MemoryStore
from answerkit.testing.simulator import CallSimulator

PUBLIC = "https://voice.example.com"
TOKEN = "fix-token-0123456789abcdef"
MUSIC = "https://cdn.example.com/hold.mp3"
WSS = "wss://bot.example.com/ws"


def out_flow(local_vobiz: Any) -> CallFlow:
    flow = CallFlow(
        "out", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(), client=local_vobiz.client()
    )
    flow.add_route("/agent", lambda call: Response(Speak("Hello agent."), Hangup()), name="agent")
    flow.add_route("/status", lambda call: None, name="status", status_callback=True)
    return flow


# -- 1. <Hangup schedule> while the call is blocked ----------------------------------------------


def test_scheduled_hangup_ends_looping_hold_music_when_time_passes() -> None:
    flow = doc_flow(Response(Speak("Hold, please."), Hangup(schedule=20), Play(MUSIC, loop=0)))
    sim = CallSimulator(flow)
    call = sim.call()
    call.run()
    assert call.state == "blocked"  # run() never lets simulated time jump
    sim.run_until_idle()
    t = call.transcript
    assert t.ended and t.hangup_cause_code == 4000 and t.hangup_source == "Answer XML"
    assert "scheduled hangup" in str(t)
    assert call.clock == 21 and t.duration == 21  # 1 s of speech, then 20 s scheduled
    assert t.webhooks_for("Hangup")[0].params["Duration"] == "21"


def test_scheduled_hangup_takes_a_call_out_of_a_conference() -> None:
    room = Conference("room", stay_alone=True, callback_url=url("/events"))
    flow = doc_flow(Response(Hangup(schedule=30), room))
    sim = CallSimulator(flow)
    call = sim.call()
    sim.run_until_idle()
    t = call.transcript
    assert t.ended and t.hangup_cause_code == 4000 and call.clock == 30
    assert [h.event for h in t.webhooks][-2:] == ["ConferenceExit", "Hangup"]
    assert sim.conference("room").members == []


def test_scheduled_hangup_ends_a_bridged_dial() -> None:
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", callback_url=url("/events"))
    flow = doc_flow(Response(Hangup(schedule=45), dial))
    sim = CallSimulator(flow)
    call = sim.call(dial="bridge")
    sim.run_until_idle()
    t = call.transcript
    assert t.ended and t.hangup_cause_code == 4000 and call.clock == 45
    assert [h.event for h in t.webhooks][-2:] == ["DialHangup", "Hangup"]


def test_scheduled_hangup_leaves_a_gather_pause_alone() -> None:
    from answerkit.elements import Gather

    doc = Response(Hangup(schedule=5), Gather(Speak("Press 1."), action=url("/events")))
    sim = CallSimulator(doc_flow(doc))
    call = sim.call()
    call.run(until="gather")
    sim.run_until_idle()
    assert call.state == "blocked" and not call.ended  # the test's own pause


# -- 2. Hang-up API on a ringing make-call ---------------------------------------------------------


def test_hangup_api_stops_a_ringing_make_call(call_simulator: Any, local_vobiz: Any) -> None:
    flow = out_flow(local_vobiz)
    sim = call_simulator(flow)
    client = flow.transfers.client
    created = client.make_call(
        "+14155550100", "+14155550142", flow.url_for("agent"), hangup_url=flow.url_for("status")
    )
    [call] = sim.calls
    assert call.state == "new"
    client.hangup(created.request_uuid)
    sim.run_until_idle()
    t = call.transcript
    assert call.ended and not call.answered and t.heard == []
    assert [h.event for h in t.webhooks] == ["Hangup"]  # no StartApp: never answered
    hangup = t.webhooks[0]
    assert hangup.url == url("/status")
    assert hangup.params["HangupSource"] == "API Request" and hangup.params["AnswerTime"] == ""
    assert hangup.params["Duration"] == "0"
    assert local_vobiz.call(created.request_uuid).status == "completed"
    assert local_vobiz.sent_webhooks == []  # the simulator sent the one hangup webhook


def test_hangup_api_stops_a_make_call_not_looked_at_yet(
    call_simulator: Any, local_vobiz: Any
) -> None:
    flow = out_flow(local_vobiz)
    sim = call_simulator(flow)
    client = flow.transfers.client
    created = client.make_call(
        "+14155550100", "+14155550142", flow.url_for("agent"), hangup_url=flow.url_for("status")
    )
    client.hangup(created.request_uuid)  # before the simulator ever listed its calls
    sim.run_until_idle()
    [call] = sim.calls
    assert call.ended and not call.answered
    assert [h.event for h in call.transcript.webhooks] == ["Hangup"]
    assert local_vobiz.sent_webhooks == []  # not sent by LocalVobiz to the public URL


def test_hangup_of_a_call_never_placed_is_refused() -> None:
    sim = CallSimulator(doc_flow(Response(Speak("Hi."))))
    call = sim.call()
    assert sim.hangup(call.call_uuid) is False and call.state == "new"


# -- 3. make-call ring_url and fallback_url --------------------------------------------------------


def test_make_call_keeps_ring_and_fallback_urls(call_simulator: Any, local_vobiz: Any) -> None:
    flow = out_flow(local_vobiz)
    sim = call_simulator(flow)
    client = flow.transfers.client
    created = client.make_call(
        "+14155550100",
        "+14155550142",
        "https://down.example.org/answer",
        ring_url=flow.url_for("status"),
        ring_method="GET",
        fallback_url=flow.url_for("agent"),
        fallback_method="GET",
    )
    record = local_vobiz.call(created.request_uuid)
    assert (record.ring_url, record.ring_method) == (url("/status"), "GET")
    assert (record.fallback_url, record.fallback_method) == (url("/agent"), "GET")
    sim.run_until_idle()
    t = sim.calls[0].transcript
    ring = t.webhooks[0]
    assert ring.event == "Ring" and ring.method == "GET" and ring.params["CallStatus"] == "ringing"
    assert t.heard == ["Hello agent."] and t.hangup_cause_code == 4000
    fallback = t.webhooks_for(path="/agent")[0]
    assert fallback.method == "GET" and fallback.event == "StartApp"


def test_outbound_call_takes_ring_method_and_fallback() -> None:
    flow = doc_flow(Response(Speak("Hi.")), agent=Response(Speak("Fallback.")))
    sim = CallSimulator(flow)
    t = sim.outbound_call(
        "https://down.example.org/answer",
        ring_url="events",
        ring_method="GET",
        fallback_url="agent",
    ).run()
    assert t.webhooks[0].event == "Ring" and t.webhooks[0].method == "GET"
    assert t.heard == ["Fallback."]


# -- 4. Stream keepCallAlive ---------------------------------------------------------------------


def keepalive_flow() -> CallFlow:
    stream = Stream(WSS, bidirectional=True, keep_call_alive=True)
    return doc_flow(Response(stream, Speak("Goodbye."), Hangup()), hold=Response(Speak("Held.")))


def test_keep_call_alive_stream_blocks_until_the_socket_closes() -> None:
    call = CallSimulator(keepalive_flow()).call()
    t = call.run()
    assert call.state == "blocked" and t.heard == [] and t.streams == [WSS]
    call.close_stream()
    call.run()
    assert t.ended and t.heard == ["Goodbye."] and t.hangup_cause_code == 4000
    assert "the stream closed" in str(t)


def test_keep_call_alive_stream_ends_with_a_transfer() -> None:
    sim = CallSimulator(keepalive_flow())
    call = sim.call()
    call.run()
    assert sim.transfer(call.call_uuid, "hold")
    t = call.run()
    assert t.heard == ["Held."] and "the stream closed" not in str(t)


def test_stream_without_keep_call_alive_goes_on() -> None:
    doc = Response(Stream(WSS, bidirectional=True), Speak("Goodbye."))
    t = CallSimulator(doc_flow(doc)).call().run()
    assert t.ended and t.heard == ["Goodbye."]


# -- 5. ConferenceExit fields --------------------------------------------------------------------


def test_conference_exit_has_no_from_to_direction_or_status() -> None:
    room = Conference("room", stay_alone=True, callback_url=url("/events"))
    call = CallSimulator(doc_flow(Response(room))).call()
    call.run()
    t = call.hangup()
    enter = t.webhooks_for("ConferenceEnter")[0].params
    exit_hook = t.webhooks_for("ConferenceExit")[0]
    assert exit_hook.status == 200  # the app takes it without those fields
    exit_ = exit_hook.params
    four = ("From", "To", "Direction", "CallStatus")
    assert all(name in enter for name in four)
    assert not [name for name in four if name in exit_]
    assert exit_["CallUUID"] == call.call_uuid and exit_["ConferenceAction"] == "exit"


# -- 6. Wait inside PreAnswer --------------------------------------------------------------------


def test_wait_inside_preanswer_does_not_answer_the_call() -> None:
    early = PreAnswer(Wait(length=3), Speak("We are closed."))
    call = CallSimulator(doc_flow(Response(early, Hangup(reason="rejected")))).call()
    t = call.run()
    assert not call.answered and t.hangup_cause == "CALL_REJECTED"
    hangup = t.webhooks_for("Hangup")[0].params
    assert (hangup["Duration"], hangup["BillDuration"], hangup["AnswerTime"]) == ("0", "0", "")
    assert "silence: 3s (early media)" in str(t)


def test_preanswer_wait_is_not_billed_once_answered() -> None:
    early = PreAnswer(Wait(length=30), Speak("We are closed."))
    call = CallSimulator(doc_flow(Response(early, Speak("Hello there.")))).call()
    t = call.run()
    assert call.answered_at == 32  # answered by the Speak after the early media
    assert t.duration == 1 and t.webhooks_for("Hangup")[0].params["Duration"] == "1"


# -- 7. Dial without callerId on an inbound call -------------------------------------------------


def nocid_flow(**dial: Any) -> CallFlow:
    doc = Response(
        Dial(Number("+14156667890"), callback_url=url("/events"), **dial),
        Speak("After the dial."),
    )
    return doc_flow(doc, after=Response(Speak("Dial failed.")))


def test_inbound_dial_without_caller_id_fails_like_vobiz() -> None:
    t = CallSimulator(nocid_flow(action=url("/after"))).call(dial="answer").run()
    assert t.dials[0]["outcome"] == "failed" and t.dials[0]["answered_by"] is None
    assert t.webhooks_for(path="/events") == []  # no B-leg, so no Dial callbacks
    action = t.webhooks_for(path="/after")[0].params
    assert action["DialStatus"] == "failed" and action["DialRingStatus"] == "false"
    assert action["DialBLegUUID"] == ""
    assert t.heard == ["Dial failed."]
    assert "not owned by this account" in str(t) and "caller_id" in str(t)


def test_inbound_dial_without_caller_id_and_action_goes_on() -> None:
    t = CallSimulator(nocid_flow()).call(dial="answer").run()
    assert t.heard == ["After the dial."] and "-> failed (no callerId)" in str(t)


def test_outbound_dial_without_caller_id_uses_the_calls_number() -> None:
    sim = CallSimulator(nocid_flow())
    t = sim.outbound_call("answer", from_="+14155550199", dial="answer").run()
    assert t.dials[0]["outcome"] == "answered"
    answer = t.webhooks_for("DialAnswer")[0].params
    assert answer["DialBLegFrom"] == "14155550199"


# -- 8. bad simulator input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"digits": "1x"}, ["digits", "'1x'", "0-9, * and #"]),
        ({"digits": ["1", "2a"]}, ["digits", "'2a'"]),
        ({"dial": "maybe"}, ["dial outcome", "'maybe'", "answer, bridge, busy"]),
        ({"dial": [["answer", "perhaps"]]}, ["'perhaps'"]),
        ({"dial": [5]}, ["dial outcome", "5"]),
    ],
)
def test_bad_scripted_input_is_a_configuration_error(
    kwargs: dict[str, Any], words: list[str]
) -> None:
    sim = CallSimulator(doc_flow(Response(Speak("Hi."))))
    with pytest.raises(ConfigurationError) as info:
        sim.call(**kwargs)
    assert all(word in str(info.value) for word in words)


def test_every_bad_simulator_argument_is_a_configuration_error() -> None:
    flow = doc_flow(Response(Speak("Hi.")))
    with pytest.raises(ConfigurationError, match="gather_timeout"):
        CallSimulator(flow, gather_timeout="later")
    sim = CallSimulator(flow)
    with pytest.raises(ConfigurationError, match="direction"):
        sim.call(direction="sideways")
    with pytest.raises(ConfigurationError, match="outcome"):
        sim.outbound_call("+14155550142", outcome="maybe")
    with pytest.raises(ConfigurationError, match="outcome"):
        sim.expect_outbound(outcome="maybe")
    with pytest.raises(ConfigurationError, match="leg"):
        sim.transfer("c-1", url("/answer"), leg="cleg")
    for confidence in (1.5, -0.2, float("nan"), "high", True):
        # Sent as given (or a ValueError deep in run()): outside the spec's 0.0-1.0.
        with pytest.raises(ConfigurationError, match="speech_confidence must be a number"):
            sim.call(speech_confidence=confidence)  # type: ignore[arg-type]


def test_bad_press_is_a_configuration_error() -> None:
    call = CallSimulator(doc_flow(Response(Speak("Hi.")))).call()
    with pytest.raises(ConfigurationError, match="'9!'"):
        call.press("9!")


APP = """
from answerkit.app import CallFlow
from answerkit.elements import Response, Speak
from answerkit.request import CallRequest, Event
from answerkit.state import MemoryStore

flow = CallFlow("bad", auth_token="bad-token-0123456789", state=MemoryStore())
flow.add_route("/answer", lambda call: Response(Speak("Hi.")), name="answer")
"""


@pytest.mark.parametrize(("option", "value"), [("--digits", "1x"), ("--dial", "maybe")])
def test_cli_reports_bad_input_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    app = tmp_path / f"badapp_{option.strip('-')}.py"
    app.write_text(APP)
    assert cli_main(["call", str(app), option, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("answerkit: ") and repr(value) in err and "Traceback" not in err


# -- an abandoned call sends nothing when it is garbage-collected ---------------------------------


def test_an_abandoned_call_sends_no_webhook_when_collected() -> None:
    import gc

    room = Conference("room", stay_alone=True, callback_url=url("/events"))
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", callback_url=url("/events"))
    sim = CallSimulator(doc_flow(Response(room), bridged=Response(dial)))
    sim.call().run()  # blocked in the room
    sim.call("bridged", dial="bridge").run()  # blocked on a bridged B-leg
    assert [c.state for c in sim.calls] == ["blocked", "blocked"]
    sent = sum(len(c.transcript.webhooks) for c in sim.calls)
    transcripts = [c.transcript for c in sim.calls]
    del sim
    gc.collect()
    # The programs were closed by the collector: no ConferenceExit, no DialHangup.
    assert sum(len(t.webhooks) for t in transcripts) == sent


# -- 9. B-leg transfers (Transfer API legs=bleg/both, spec §4.1) ---------------------------------


def test_transfer_of_both_legs_without_a_bridge_still_moves_the_a_leg() -> None:
    flow = doc_flow(Response(Play(MUSIC, loop=0)), moved=Response(Speak("Moved.")))
    sim = CallSimulator(flow)
    call = sim.call()
    call.run()
    assert sim.transfer(call.call_uuid, "moved", leg="both")
    t = call.run()
    assert t.heard[-1] == "Moved." and t.ended
    assert "no B-leg is bridged" in str(t)


def test_bleg_transfer_asked_for_on_dial_connected_moves_the_b_leg_only() -> None:
    sims: list[CallSimulator] = []

    def events(call: CallRequest) -> None:
        if call.event == Event.DialConnected:
            assert sims[0].transfer(call.call_uuid, "agent", leg="bleg")

    dial = Dial(Number("+14156667890"), caller_id="+14155551234", callback_url=url("/hooks"))
    flow = doc_flow(Response(dial, Speak("After the dial.")), agent=Response(Speak("Briefing.")))
    flow.add_route("/hooks", events, name="hooks", status_callback=True)
    sim = CallSimulator(flow)
    sims.append(sim)
    caller = sim.call(dial="bridge")
    sim.run_until_idle()
    # The caller's document goes on once the agent leaves the bridge (it was not dropped
    # half-way by the B-leg's transfer), and the agent runs its own document.
    assert caller.ended and caller.transcript.heard == ["After the dial."]
    assert caller.transcript.hangup_cause_code == 4010
    agent = sim.calls[1]
    assert agent.transcript.heard == ["Briefing."]
    assert agent.transcript.webhooks[0].event == "Transfer"


@pytest.mark.parametrize("legs", ["bleg", "both"])
def test_bleg_transfer_of_a_call_with_no_dial_is_400_as_on_local_vobiz_alone(
    call_simulator: Any, local_vobiz: Any, legs: str
) -> None:
    flow = doc_flow(Response(Play(MUSIC, loop=0)), agent=Response(Speak("Briefing.")))
    sim = call_simulator(flow)
    call = sim.call()
    call.run()
    urls = {"bleg_url": url("/agent"), **({"aleg_url": url("/agent")} if legs == "both" else {})}
    with pytest.raises(ValidationError, match="no B-leg"):
        local_vobiz.client().transfer(call.call_uuid, legs=legs, **urls)
    call.run()
    # Nothing moved (not even the A-leg with legs=both), and LocalVobiz did not fetch the
    # URL itself (in the A-leg's name, off loopback).
    assert local_vobiz.sent_webhooks == [] and local_vobiz.transfers == []
    assert call.state == "blocked" and call.transcript.transfers == []
    assert call.transcript.heard == [MUSIC] and len(sim.calls) == 1


def test_bleg_transfer_is_taken_over_only_while_a_dial_has_a_b_leg(
    call_simulator: Any, local_vobiz: Any
) -> None:
    dial = Dial(Number("+14156667890"), caller_id="+14155551234")
    flow = doc_flow(
        Response(dial, Play(MUSIC, loop=0)), agent=Response(Speak("Briefing."), Hangup())
    )
    sim = call_simulator(flow)
    caller = sim.call(dial="bridge")
    caller.run()
    assert caller.state == "blocked" and caller.bridge is not None
    client = local_vobiz.client()
    client.transfer(caller.call_uuid, legs="bleg", bleg_url=url("/agent"))  # 202
    sim.run_until_idle()
    agent = sim.calls[1]
    assert agent.transcript.heard == ["Briefing."] and agent.ended
    assert caller.transcript.heard == [MUSIC]  # the bridge is over: the caller went on
    with pytest.raises(ValidationError, match="no B-leg"):
        client.transfer(caller.call_uuid, legs="bleg", bleg_url=url("/agent"))


# -- 10. a failing handler is not a call that ended normally ------------------------------------


def test_a_failing_handler_is_reported_and_the_call_did_not_end_normally() -> None:
    reported: list[str] = []
    flow = doc_flow(
        Response(Gather(Speak("Press 1."), action=url("/menu"), input_type="dtmf")),
    )

    def hook(exc: BaseException, call: CallRequest | None, route: str) -> None:
        reported.append(route)

    flow.on_error = hook

    def menu(call: CallRequest) -> Response:
        raise KeyError("no such option")

    flow.add_route("/menu", menu, name="menu")
    with CallSimulator(flow) as sim:
        t = sim.call(digits="1").run()
        # The app answered its fallback (an apology and a hangup, 4000) with a 200, as it must.
        assert t.ended and t.hangup_cause_code == 4000
        assert t.handler_errors == ["menu: KeyError: 'no such option'"]
        assert not t.ended_normally
        assert [e.text for e in t.events_of("error")] == [
            "handler error: menu: KeyError: 'no such option'"
        ]
    assert reported == ["menu"]  # the flow's own hook still ran, and is back after close()
    assert flow.dispatcher().on_error == hook
    ok = CallSimulator(flow).call(digits="-").run()
    assert ok.handler_errors == [] and ok.ended_normally


# -- 11. Record's transcriptionUrl gets the transcription (spec §2.6) ----------------------------


def test_record_transcription_reaches_the_transcription_url_after_record_stop() -> None:
    record = Record(
        action=url("/events"),
        callback_url=url("/events"),
        transcription_url=url("/events"),
        transcription_method="GET",
    )
    flow = doc_flow(Response(Speak("Leave a message."), record))
    t = CallSimulator(flow).call().run()
    assert [h.event for h in t.webhooks] == ["StartApp", "Record", "Hangup", "RecordStop", ""]
    hook = t.webhooks[-1]
    assert hook.method == "GET"
    assert hook.params["recording_id"] == t.recordings[0]
    assert hook.params["transcription"] and hook.params["transcription_id"]
    # The four fields of the spec's list and nothing else: no CallUUID. The flow still takes
    # it (a refusal would make Vobiz retry, then drop the transcription).
    assert set(hook.params) == {"transcription", "transcription_id", "transcription_url",
                                "recording_id"}  # fmt: skip
    assert hook.status == 200
    seen = flow.seen[-1]  # type: ignore[attr-defined]
    assert (
        seen.recording_id == t.recordings[0] and seen.transcription == hook.params["transcription"]
    )
    assert seen.call_uuid == ""
    assert t.ended_normally


@pytest.mark.parametrize("status_callback", [True, False])
def test_a_transcription_handler_writing_call_state_is_told_the_write_is_kept_nowhere(
    status_callback: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # No CallUUID, so no call state: the write lasts for the webhook only. The handler runs
    # on (its other work is done), and a warning says so, once per route.
    flow = CallFlow("tx", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.route("/answer")(lambda call: Response(Record(transcription_url=flow.url_for("tx"))))
    seen: list[object] = []

    def tx(call: CallRequest) -> None:
        seen.append(dict(call.state))  # starts empty
        call.state["transcript"] = call.transcription
        call.state.incr("n")
        del call.state["n"]
        seen.append(call.transcription)

    flow.add_route("/tx", tx, status_callback=status_callback)
    sim = CallSimulator(flow)
    with caplog.at_level("WARNING", logger="answerkit"):
        first, second = sim.call("answer").run(), sim.call("answer").run()
    for t in (first, second):
        assert t.webhooks[-1].params.keys() >= {"transcription", "recording_id"}
        assert t.webhooks[-1].status == 200 and t.ended_normally
    assert seen == [{}, "simulated transcription"] * 2
    told = [r.message for r in caplog.records if "no CallUUID" in r.message]
    assert len(told) == 1 and "call.recording_id" in told[0]
    assert flow.store.get_all("") == {}  # nothing was written under an empty CallUUID


# -- 12. an unanswered Dial rings for its timeout (spec §1.2 Dial: effectively 120 s) -----------


@pytest.mark.parametrize(
    ("timeout", "heard", "code"), [(None, [], 4000), (20, ["Nobody answered."], 4010)]
)
def test_unanswered_dial_rings_for_its_timeout(
    timeout: int | None, heard: list[str], code: int
) -> None:
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", timeout=timeout)
    flow = doc_flow(Response(Hangup(schedule=60), dial, Speak("Nobody answered.")))
    t = CallSimulator(flow).call(dial="no-answer").run()
    # Unset, the B-leg rings past the scheduled hang-up: the caller never hears the apology.
    # With 20 s the document ends first, and with it the call (spec §1.2).
    assert t.heard == heard and t.ended and t.hangup_cause_code == code


@pytest.mark.parametrize("outcome", ["no-answer", "timeout"])
def test_a_dial_that_rings_out_reports_the_scripted_status(outcome: str) -> None:
    # Spec §2.5 lists both DialStatus values for a Dial nobody answers, without saying when
    # each is sent: a test scripts either.
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", timeout=20,
                action=url("/after"), callback_url=url("/events"))  # fmt: skip
    flow = doc_flow(Response(dial), after=Response(Speak("Nobody answered.")))
    t = CallSimulator(flow).call(dial=outcome).run()
    action = t.webhooks_for(path="/after")[0].params
    assert (action["DialStatus"], action["DialRingStatus"]) == (outcome, "true")
    assert action["DialHangupCause"] == "NO_ANSWER" and t.dials[0]["outcome"] == outcome
    assert t.webhooks_for(path="/after")[0].params["CallUUID"] == t.call_uuid
    assert t.heard == ["Nobody answered."]


def test_a_timeout_dial_cancelled_by_the_caller_is_cancel() -> None:
    from answerkit.errors import ConfigurationError as Refused

    with pytest.raises(Refused, match="'cancel' is the caller hanging up"):
        CallSimulator(doc_flow(Response())).call(dial=[["cancel", "busy"]])
    dial = Dial(Number("+14156667890"), Number("+14156667891"), caller_id="+14155551234",
                action=url("/after"))  # fmt: skip
    t = CallSimulator(doc_flow(Response(dial))).call(dial=[["cancel", "timeout"]]).run()
    assert t.webhooks_for(path="/after")[0].params["DialStatus"] == "cancel"


# -- 13. the Dial action's Event: DialAction or Redirect (spec §2.5, §6 item 8) ------------------


def dial_action_flow() -> CallFlow:
    """A flow whose Dial action route only answers ``Event=DialAction`` (spec §6 says don't)."""
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", action=url("/after"))
    flow = doc_flow(Response(dial))
    flow.add_route(
        "/after",
        lambda call: Response(Speak(f"Dial {call.dial_status}.")),
        name="after",
        event=Event.DialAction,
    )
    return flow


def test_dial_action_event_defaults_to_redirect_so_branching_on_it_shows() -> None:
    t = CallSimulator(dial_action_flow()).call().run()
    [action] = t.webhooks_for(path="/after")
    assert action.event == "Redirect" and action.params["DialStatus"] == "completed"
    # The route has no handler for Redirect: the caller hears the fallback, not the flow,
    # and the transcript says why (the app's 200 alone looks healthy).
    assert "Dial completed." not in t.heard and not t.ended_normally
    [error] = t.handler_errors
    assert "no handler for Event='Redirect'" in error and "branch on DialStatus" in error


def test_an_unhandled_event_is_told_at_a_route_beyond_ascii_too() -> None:
    # url_for writes "/después" percent-encoded, and the simulator matched routes against
    # the decoded path only: the fallback served for want of a handler went untold.
    flow = doc_flow(Response(Gather(Speak("Press a key."), action=url("/despu%C3%A9s"))))
    flow.add_route(
        "/después", lambda call: Response(Speak("Thanks.")), name="later", event=Event.DialAction
    )
    t = CallSimulator(flow).call(digits="1").run()
    assert any("no handler for Event=" in e for e in t.handler_errors), t.handler_errors


def test_dial_action_event_can_be_dial_action() -> None:
    sim = CallSimulator(dial_action_flow(), dial_action_event="DialAction")
    t = sim.call().run()
    assert t.webhooks_for(path="/after")[0].event == "DialAction"
    assert t.heard == ["Dial completed."] and t.ended_normally


def test_dial_action_after_a_hangup_mid_bridge_uses_the_chosen_event() -> None:
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", action=url("/events"))
    call = CallSimulator(doc_flow(Response(dial)), dial_action_event="DialAction").call(
        dial="bridge"
    )
    call.run()
    t = call.hangup()
    assert [h.event for h in t.webhooks][-2:] == ["Hangup", "DialAction"]


def test_a_bad_dial_action_event_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"dial_action_event.*'DialAction' or 'Redirect'"):
        CallSimulator(doc_flow(Response(Speak("Hi."))), dial_action_event="Dial")


# -- 14. Stream status callbacks carry Timestamp and their own URL and method (spec §2.10) -------


def test_stream_status_callback_carries_timestamp_url_and_method() -> None:
    stream = Stream(WSS, status_callback_url=url("/events"), status_callback_method="GET")
    t = CallSimulator(doc_flow(Response(Speak("Hi."), stream))).call().run()
    [start] = t.webhooks_for("StartStream")
    assert start.method == "GET"
    assert start.params["status_callback_url"] == url("/events")
    assert start.params["status_callback_method"] == "GET"
    session = start.params["SessionStart"]
    stamp = start.params["Timestamp"]
    assert len(stamp) == len(session) and stamp > session  # 1 s of speech went before it


# -- 15. Record honours maxLength and its silence timeout (spec §1.2 Record, §2.6) ---------------


@pytest.mark.parametrize(
    ("attrs", "seconds", "reason"),
    [
        ({"max_length": 3}, 3, "maxLength"),
        ({"timeout": 10}, 15, "RecordingTimeout"),  # 5 s of message, then 10 s of silence
        ({}, 60, "maxLength"),  # the defaults: 60 s of silence is cut at maxLength 60
        ({"max_length": 120, "timeout": 60}, 65, "RecordingTimeout"),
    ],
)
def test_record_length_and_end_reason_follow_its_attributes(
    attrs: dict[str, int], seconds: int, reason: str
) -> None:
    record = Record(action=url("/events"), callback_url=url("/events"), **attrs)
    call = CallSimulator(doc_flow(Response(Speak("Hi."), record))).call()
    t = call.run()
    stop = t.webhooks_for("RecordStop")[0].params
    assert stop["RecordingDuration"] == str(seconds) and stop["RecordingEndReason"] == reason
    assert stop["RecordingDurationMs"] == str(seconds * 1000)
    assert int(stop["RecordingEndMs"]) - int(stop["RecordingStartMs"]) == seconds * 1000
    assert call.clock == 1 + seconds and t.duration == 1 + seconds


def test_a_scheduled_hangup_cuts_a_recording_short() -> None:
    record = Record(action=url("/events"), callback_url=url("/events"), max_length=30)
    t = CallSimulator(doc_flow(Response(Speak("Hi."), Hangup(schedule=5), record))).call().run()
    stop = t.webhooks_for("RecordStop")[0].params
    assert stop["RecordingDuration"] == "5" and stop["RecordingEndReason"] == "HungUp"
    assert t.duration == 6
    assert t.events_of("record")[-1].text == "recording ends after 5 s: HungUp"


# -- 16. a scheduled hang-up during a long element ends the call at the scheduled time ----------


@pytest.mark.parametrize(
    "element",
    [
        Wait(length=30),
        Play(MUSIC, loop=3),
        Gather(Speak("Press 1."), action=url("/events"), input_type="dtmf"),
        Dial(Number("+14156667890"), caller_id="+14155551234", timeout=40),
    ],
    ids=["wait", "play", "gather", "dial"],
)
def test_a_scheduled_hangup_during_a_long_element_ends_at_the_scheduled_time(
    element: Any,
) -> None:
    doc = Response(Speak("Hi."), Hangup(schedule=3), element, Speak("Too late."))
    call = CallSimulator(doc_flow(doc)).call(dial="no-answer")
    t = call.run()
    assert t.ended and t.hangup_cause_code == 4000 and "Too late." not in t.heard
    assert call.clock == 4 and t.duration == 4  # 1 s of speech, then the 3 s scheduled
    assert t.webhooks_for("Hangup")[0].params["Duration"] == "4"


def test_a_wait_that_answers_the_call_counts_its_seconds() -> None:
    doc = Response(Hangup(schedule=3), Wait(length=30), Speak("Too late."))
    t = CallSimulator(doc_flow(doc)).call().run()
    assert t.duration == 3 and t.webhooks_for("Hangup")[0].params["Duration"] == "3"


def test_a_scheduled_hangup_during_looping_audio_ends_at_the_scheduled_time() -> None:
    flow = doc_flow(Response(Speak("Hi."), Hangup(schedule=2), Play(MUSIC, loop=0)))
    sim = CallSimulator(flow)
    call = sim.call()
    sim.run_until_idle()
    assert call.transcript.ended and call.clock == 3 and call.transcript.duration == 3


def test_a_dial_cut_by_a_scheduled_hangup_sends_its_action_after_the_hangup() -> None:
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", action=url("/after"), timeout=40)
    flow = doc_flow(Response(Hangup(schedule=3), dial), after=Response(Speak("After.")))
    t = CallSimulator(flow).call(dial="no-answer").run()
    # Spec §2.13: the Dial action follows the hangup webhook; the call is over, so its XML
    # is not played.
    assert [h.event for h in t.webhooks][-2:] == ["Hangup", "Redirect"]
    assert t.heard == [] and t.duration == 3


def test_a_scheduled_hangup_cuts_an_answered_dials_talk_time() -> None:
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", callback_url=url("/events"))
    t = CallSimulator(doc_flow(Response(Hangup(schedule=3), dial))).call(dial="answer").run()
    b_leg = t.webhooks_for("DialHangup")[0].params
    assert b_leg["DialBLegDuration"] == "3" and b_leg["DialBLegHangupSource"] == "Answer XML"
    assert t.duration == 3


# -- 17. scripted speech: a list keeps commas, a string is split on them (the CLI contract) -----


def test_a_speech_list_keeps_its_commas() -> None:
    gather = Gather(action=url("/events"), input_type="speech", redirect=False)
    flow = doc_flow(Response(gather, gather))
    sim = CallSimulator(flow)
    assert sim.call(speech=["sales, please", "yes"]).run().speech_sent == ["sales, please", "yes"]
    assert sim.call(speech=("sales, please",)).run().speech_sent == ["sales, please"]
    assert sim.call(speech="sales,yes").run().speech_sent == ["sales", "yes"]


def test_a_speech_item_that_is_not_text_is_a_configuration_error() -> None:
    sim = CallSimulator(doc_flow(Response(Speak("Hi."))))
    with pytest.raises(ConfigurationError, match=r"speech.*5"):
        sim.call(speech=["sales", 5])  # type: ignore[list-item]


# -- 18. LocalVobiz.wait_for_transfer on a call the simulator plays ------------------------------


def test_wait_for_transfer_of_a_simulated_call_points_at_its_transcript(
    call_simulator: Any, local_vobiz: Any
) -> None:
    flow = doc_flow(Response(Play(MUSIC, loop=0)), moved=Response(Speak("Moved.")))
    call = call_simulator(flow).call()
    call.run()
    local_vobiz.client().transfer(call.call_uuid, aleg_url=url("/moved"))
    with pytest.raises(AssertionError, match="taken over by a CallSimulator"):
        local_vobiz.wait_for_transfer(call.call_uuid)
    t = call.run()
    assert t.heard[-1] == "Moved." and t.webhooks_for("Transfer")


# -- 19. a scheduled hang-up while a Dial rings cancels it (spec §2.5 DialStatus, §2.13) --------


def timed_webhooks(t: Any) -> list[tuple[float, str]]:
    """``(second, Event)`` of every webhook, in the order sent."""
    return [(e.at, e.data["webhook"].event) for e in t.events if e.kind == "webhook"]


@pytest.mark.parametrize("redirect", [True, False])
def test_a_dial_ringing_when_the_scheduled_hangup_falls_is_cancelled(redirect: bool) -> None:
    dial = Dial(
        Number("+14156667890"),
        caller_id="+14155551234",
        callback_url=url("/events"),
        action=url("/after"),
        redirect=redirect,
    )
    flow = doc_flow(Response(Hangup(schedule=30), dial), after=Response(Speak("After.")))
    call = CallSimulator(flow).call(dial="no-answer")  # would ring 120 s (the default timeout)
    t = call.run()
    # The caller leaves at 30 s: the ringing B-leg is cancelled then, not after its 120 s;
    # the action follows the hangup webhook whatever redirect says, and its XML is not played.
    assert timed_webhooks(t)[-3:] == [(30, "DialHangup"), (30, "Hangup"), (30, "Redirect")]
    b_leg = t.webhooks_for("DialHangup")[0].params
    assert b_leg["DialBLegHangupCause"] == "ORIGINATOR_CANCEL"
    action = t.webhooks_for("Redirect")[0].params
    assert action["DialStatus"] == "cancel" and action["DialHangupCause"] == "ORIGINATOR_CANCEL"
    assert t.dials[0]["outcome"] == "cancel"
    assert call.clock == 30 and t.duration == 30 and t.heard == []


def test_a_dial_that_stops_ringing_before_the_scheduled_hangup_is_no_answer() -> None:
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", action=url("/after"), timeout=20)
    flow = doc_flow(Response(Hangup(schedule=30), dial), after=Response(Speak("After.")))
    t = CallSimulator(flow).call(dial="no-answer").run()
    assert t.webhooks_for("Redirect")[0].params["DialStatus"] == "no-answer"
    assert t.heard == ["After."]


def test_an_answered_dials_action_without_redirect_follows_the_scheduled_hangup() -> None:
    dial = Dial(Number("+14156667890"), caller_id="+14155551234", action=url("/events"),
                redirect=False)  # fmt: skip
    t = CallSimulator(doc_flow(Response(Hangup(schedule=3), dial))).call(dial="answer").run()
    assert [event for _at, event in timed_webhooks(t)][-2:] == ["Hangup", "Redirect"]


# -- 20. the Record action goes out as the recording starts (spec §2.6) --------------------------


def test_the_record_action_goes_out_as_the_recording_starts() -> None:
    record = Record(action=url("/rec"), redirect=True, max_length=10, callback_url=url("/events"))
    flow = doc_flow(Response(Speak("Hi."), record), rec=Response(Speak("Thanks.")))
    call = CallSimulator(flow).call()
    t = call.run()
    # Sent at 1 s (after "Hi."), not at 11 s; its XML runs once the recording is done.
    assert (1, "Record") in timed_webhooks(t)
    assert t.heard == ["Hi.", "Thanks."]
    assert [e.at for e in t.events if e.kind == "hear"] == [1, 12]


@pytest.mark.parametrize("redirect", [True, False])
def test_a_record_cut_by_the_scheduled_hangup_still_sent_its_action(redirect: bool) -> None:
    record = Record(action=url("/rec"), redirect=redirect, callback_url=url("/events"))
    doc = Response(Hangup(schedule=20), record, Speak("Too late."))
    flow = doc_flow(doc, rec=Response(Speak("From the action.")) if redirect else Response())
    call = CallSimulator(flow).call()
    t = call.run()
    assert timed_webhooks(t)[1:] == [(0, "Record"), (20, "Hangup"), (20, "RecordStop")]
    assert t.heard == [] and call.clock == 20
    assert t.webhooks_for("RecordStop")[0].params["RecordingEndReason"] == "HungUp"


# -- 21. a Gather whose prompt outlasts the scheduled hang-up takes no input ---------------------


@pytest.mark.parametrize(("schedule", "pressed"), [(3, []), (5, []), (20, ["1"])])
def test_a_gather_takes_no_input_once_the_scheduled_hangup_fell_due(
    schedule: int, pressed: list[str]
) -> None:
    # The prompt lasts 4 s and pressing 2 s more: the caller is gone at 3 s (mid-prompt)
    # and at 5 s (mid-input), but presses at 20 s.
    prompt = Speak("Press one for sales or two for support now")
    gather = Gather(prompt, action=url("/menu"), input_type="dtmf", redirect=False)
    flow = doc_flow(Response(Hangup(schedule=schedule), gather), menu=Response())
    call = CallSimulator(flow).call(digits="1")
    t = call.run()
    assert t.digits_sent == pressed and ("presses: 1" in str(t)) == bool(pressed)
    assert bool(t.webhooks_for(path="/menu")) == bool(pressed)
    assert t.duration == min(schedule, 6)


# -- 22. error taps exist only while a webhook is in flight --------------------------------------


def test_error_taps_never_stack_up_or_outlive_a_webhook() -> None:
    flow = doc_flow(Response(Gather(Speak("Press 1."), action=url("/boom"), input_type="dtmf")))

    def boom(call: CallRequest) -> Response:
        raise RuntimeError("boom")

    flow.add_route("/boom", boom, name="boom")
    hooked: list[str] = []

    def own_hook(exc: BaseException, call: Any, route: str) -> None:
        hooked.append(route)
        raise ValueError("the flow's own hook fails too")

    flow.on_error = own_hook
    dispatcher = flow.dispatcher()
    assert dispatcher.on_error is own_hook
    for _ in range(3):  # never closed: each used to leave a tap on top of the last
        CallSimulator(flow).call(digits="1").run()
    assert dispatcher.on_error is own_hook
    first, second = CallSimulator(flow), CallSimulator(flow)
    t = second.call(digits="1").run()
    # Recorded before the flow's hook ran (and raised); that hook still saw it.
    assert t.handler_errors == ["boom: RuntimeError: boom"] and not t.ended_normally
    assert hooked == ["boom"] * 4  # once per crash, not once per tap
    first.close()  # out of order: nothing of either is left behind
    second.close()
    assert dispatcher.on_error is own_hook


# -- 23. a flow's lent client follows the simulators that lent it -------------------------------


def moving_flow() -> CallFlow:
    """A flow that moves its own call (flow.transfer) after a Gather."""
    flow = doc_flow(Response(Gather(Speak("Press 1."), action=url("/move"), input_type="dtmf")))

    def move(call: CallRequest) -> Response:
        flow.transfer(call.call_uuid, aleg="hold")
        return Response(Play(MUSIC, loop=0))

    flow.add_route("/move", move, name="move")
    flow.add_route("/hold", lambda call: Response(Speak("On hold."), Hangup()), name="hold")
    return flow


def test_a_loan_left_by_an_unclosed_simulator_does_not_stop_the_next_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from answerkit.testing.local_vobiz import LocalVobiz

    for name in ("VOBIZ_AUTH_ID", "VOBIZ_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    flow = moving_flow()
    with LocalVobiz() as first:
        t = CallSimulator(flow, local_vobiz=first).call(digits="1").run()  # never closed
        assert t.heard[-1] == "On hold." and t.handler_errors == []
    with LocalVobiz() as second:  # the first one's port is dead now
        sim = CallSimulator(flow, local_vobiz=second)
        t = sim.call(digits="1").run()
        assert t.heard[-1] == "On hold." and t.handler_errors == []
        sim.close()
    # Both loans are over (the first one's LocalVobiz is gone): what was there before is back.
    assert flow.transfers.swap_client(None) is None


def test_closing_one_simulator_leaves_the_loan_another_relies_on(
    monkeypatch: pytest.MonkeyPatch, local_vobiz: Any
) -> None:
    for name in ("VOBIZ_AUTH_ID", "VOBIZ_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    flow = moving_flow()
    first = CallSimulator(flow, local_vobiz=local_vobiz)
    second = CallSimulator(flow, local_vobiz=local_vobiz)
    first.close()
    t = second.call(digits="1").run()
    assert t.heard[-1] == "On hold." and t.handler_errors == []
    second.close()
    assert flow.transfers.swap_client(None) is None
    # The other order: the later loan ends first, and the earlier one is back in place.
    first = CallSimulator(flow, local_vobiz=local_vobiz)
    lent = flow.transfers.client
    second = CallSimulator(flow, local_vobiz=local_vobiz)
    assert flow.transfers.client is not lent  # lent again over another simulator's loan
    second.close()
    assert flow.transfers.client is lent
    first.close()
    assert flow.transfers.swap_client(None) is None


# -- 24. scripted dial outcomes parse as digits and speech do ------------------------------------


def test_scripted_dial_outcomes_are_split_stripped_and_checked() -> None:
    sim = CallSimulator(doc_flow(Response(Speak("Hi."))))
    assert sim.call(dial="answer, busy").setup.dial == ["answer", "busy"]
    assert sim.call(dial=[" no-answer ", ["busy", "answer"]]).setup.dial[0] == "no-answer"
    for bad, shown in ((5, "5"), (b"answer", "b'answer'"), ([b"answer"], "b'answer'")):
        with pytest.raises(ConfigurationError, match="dial") as info:
            sim.call(dial=bad)  # type: ignore[arg-type]
        assert shown in str(info.value)


# -- the caller's scripted answers to Gathers ---------------------------------------------------


def _three_two_way_menus() -> CallFlow:
    """Three Gathers in turn that each take keys or speech; /after echoes what it got."""
    menu = Gather(Speak("Choose."), action=url("/after"), input_type="dtmf speech")
    flow = doc_flow(Response(menu), after=Response(menu))
    return flow


def _answers(flow: CallFlow) -> list[tuple[str, str]]:
    return [
        (c.params["InputType"], c.params["Digits"] or c.params["Speech"])
        for c in flow.seen  # type: ignore[attr-defined]
        if c.path == "/after"
    ]


def test_digits_and_speech_lists_are_read_in_parallel_by_two_way_gathers() -> None:
    # Entry i of each list is the caller's answer to the i-th Gather that takes both: a
    # no-input placeholder in one list does not hide the other's input.
    flow = _three_two_way_menus()
    sim = CallSimulator(flow)
    sim.call(speech=["english", None, "cancel"], digits=[None, "1", None]).run()
    assert _answers(flow)[:3] == [("speech", "english"), ("dtmf", "1"), ("speech", "cancel")]


def test_keys_win_and_the_speech_waits_for_the_next_gather() -> None:
    # As before this session's change: digits="2", speech="sales" answers two Gathers.
    flow = _three_two_way_menus()
    CallSimulator(flow).call(digits=["2"], speech=["sales"]).run()
    assert _answers(flow)[:2] == [("dtmf", "2"), ("speech", "sales")]


def test_one_type_gathers_read_only_their_own_list() -> None:
    doc = Response(
        Gather(Speak("Key."), action=url("/events"), input_type="dtmf", redirect=False),
        Gather(Speak("Say."), action=url("/after"), input_type="dtmf speech"),
    )
    flow = doc_flow(doc, after=Response(Speak("Thanks.")))
    t = CallSimulator(flow).call(digits=["5"], speech=["sales"]).run()
    assert t.digits_sent == ["5"] and t.speech_sent == ["sales"]


def test_press_and_say_answer_gathers_in_the_order_they_were_called() -> None:
    flow = _three_two_way_menus()
    call = CallSimulator(flow).call()
    call.say("english")
    call.press("1")
    call.say("cancel")
    call.run()
    assert _answers(flow)[:3] == [("speech", "english"), ("dtmf", "1"), ("speech", "cancel")]


def _speech_then_keys_call() -> Any:
    """A call to a speech-only Gather, then a keys-only one whose action says "Thanks."."""
    doc = Response(
        Gather(Speak("Say it."), action=url("/events"), input_type="speech", redirect=False),
        Gather(Speak("Key."), action=url("/after"), input_type="dtmf"),
    )
    return CallSimulator(doc_flow(doc, after=Response(Speak("Thanks.")))).call()


def test_keys_pressed_for_a_speech_only_gather_wait_for_one_that_takes_them() -> None:
    call = _speech_then_keys_call()
    call.press("1")
    t = call.run()
    assert t.digits_sent == ["1"] and not t.speech_sent and t.said("Thanks.")


def test_press_and_say_come_after_the_scripted_lists() -> None:
    flow = _three_two_way_menus()
    call = CallSimulator(flow).call(digits=["1"])
    call.say("sales")
    call.run()
    assert _answers(flow)[:2] == [("dtmf", "1"), ("speech", "sales")]


def test_say_refuses_anything_but_text() -> None:
    call = CallSimulator(doc_flow(Response(Speak("Hi.")))).call()
    with pytest.raises(ConfigurationError, match="speech must be text"):
        call.say(5)  # type: ignore[arg-type]


def test_run_until_takes_only_gather() -> None:
    call = CallSimulator(doc_flow(Response(Speak("Hi.")))).call()
    with pytest.raises(ConfigurationError, match="'dial'"):
        call.run(until="dial")
    assert call.state == "new"  # nothing was played


def test_a_hangup_asked_for_while_a_prompt_plays_comes_before_the_input() -> None:
    doc = Response(Gather(Speak("Appointments."), action=url("/after"), input_type="dtmf"))
    flow = doc_flow(doc, after=Response(Speak("Cancelled.")))
    sim = CallSimulator(flow)

    def hang_up_on_prompt(call: Any, event: Any) -> None:
        if event.kind == "hear" and "Appointments." in event.text:
            call.hangup()

    sim.add_listener(hang_up_on_prompt)
    t = sim.call(digits="2").run()
    assert t.ended and t.hangup_source == "Caller"
    assert not t.digits_sent and not t.webhooks_for(path="/after")


def test_a_scripted_cancel_is_the_caller_hanging_up_while_the_dial_rings() -> None:
    doc = Response(
        Dial(Number("+14156667890"), caller_id="+14155551234", action=url("/after")),
        Speak("Never heard: the caller is gone."),
    )
    flow = doc_flow(doc, after=Response(Speak("Ignored after the hangup.")))
    t = CallSimulator(flow).call(dial="cancel").run()
    assert t.dials[0]["outcome"] == "cancel" and t.hangup_source == "Caller"
    assert not t.said("Never heard") and not t.said("Ignored after the hangup.")
    hooks = [w.params.get("Event") or w.url.rsplit("/", 1)[-1] for w in t.webhooks]
    action = t.webhooks_for(path="/after")[0]
    assert action.params["DialStatus"] == "cancel"
    assert hooks.index("Hangup") < t.webhooks.index(action)  # after the hangup (spec §2.13)


def test_cancel_is_the_whole_dials_and_rings_no_longer_than_its_timeout() -> None:
    doc = Response(Dial(Number("+14156667890"), caller_id="+14155551234", timeout=3))
    with pytest.raises(ConfigurationError, match="give it alone"):
        CallSimulator(doc_flow(doc)).call(dial=[["answer", "cancel"]]).run()
    t = CallSimulator(doc_flow(doc)).call(dial="cancel").run()
    assert t.dials[0]["outcome"] == "cancel" and t.duration <= 3


def test_a_queued_answer_a_gather_cannot_take_does_not_block_the_others() -> None:
    call = _speech_then_keys_call()
    call.press("1")
    call.say("sales")  # behind the key, but the first Gather takes it
    t = call.run()
    assert t.speech_sent == ["sales"] and t.digits_sent == ["1"]


def _voicemail_flow() -> CallFlow:
    doc = Response(
        Speak("Leave a message."),
        Record(action=url("/events"), callback_url=url("/events"), timeout=10),
        Speak("Thank you for your message."),
    )
    return doc_flow(doc)


@pytest.mark.parametrize(
    ("ending", "reason", "thanked"),
    [
        (None, "RecordingTimeout", True),
        ("key", "FinishedOnKey", True),
        ("hangup", "HungUp", False),
    ],
)
def test_a_scripted_record_ending(ending: str | None, reason: str, thanked: bool) -> None:
    t = CallSimulator(_voicemail_flow()).call(record=ending).run()
    stop = t.webhooks_for("RecordStop")[0].params
    assert stop["RecordingEndReason"] == reason
    assert t.said("Thank you for your message.") is thanked
    if ending == "hangup":
        assert t.hangup_source == "Caller" and stop["RecordingDuration"] == "5"


@pytest.mark.parametrize("ending", ["key", "hangup"])
def test_max_length_cuts_a_message_before_its_scripted_ending(ending: str) -> None:
    # The cap comes 2 s into the caller's 5 s message: the key or hang-up never comes.
    doc = Response(Record(callback_url=url("/events"), max_length=3), Speak("Thanks."))
    t = CallSimulator(doc_flow(doc)).call(record=ending).run()
    stop = t.webhooks_for("RecordStop")[0].params
    assert (stop["RecordingDuration"], stop["RecordingEndReason"]) == ("3", "maxLength")
    assert t.said("Thanks.") and t.hangup_source != "Caller"
    assert f"the scripted ending {ending!r} did not come" in t.events_of("note")[0].text
    assert t.events_of("record")[-1].text == "recording ends after 3 s: maxLength"


def test_the_transcript_says_how_a_recording_ended() -> None:
    t = CallSimulator(_voicemail_flow()).call(record="key").run()
    assert [e.text for e in t.events_of("record")] == [
        "recording starts",
        "recording ends after 5 s: FinishedOnKey",
    ]


def test_a_bad_record_ending_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="record ending must be one of"):
        CallSimulator(_voicemail_flow()).call(record="beep")


def test_only_the_last_to_leave_an_ended_room_is_its_last_member() -> None:
    # endConferenceOnExit ends the room for everyone: each member's exit is sent in turn,
    # and only the last one leaves it empty (spec §2.9, ConferenceLastMember).
    flow = CallFlow("room", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    events = PUBLIC + "/events"
    flow.route("/caller")(
        lambda call: Response(Conference("room", stay_alone=True, callback_url=events))
    )
    flow.route("/agent")(
        lambda call: Response(Conference("room", end_conference_on_exit=True, callback_url=events))
    )
    flow.route("/events", status_callback=True)(lambda call: None)
    sim = CallSimulator(flow)
    callers = [sim.call("caller") for _ in range(3)]
    agent = sim.call("agent")
    sim.run_until_idle()
    agent.hangup()
    sim.run_until_idle()
    exits = [
        h.params["ConferenceLastMember"]
        for c in (*callers, agent)
        for h in c.transcript.webhooks_for("ConferenceExit")
    ]
    assert sorted(exits) == ["false", "false", "false", "true"]


def test_a_gather_whose_prompt_loops_for_ever_never_times_out() -> None:
    # Spec §1.2: executionTimeout starts when the nested Speak/Play ends, and loop=0 never
    # does. The simulator timed the caller out after 5 s and played the goodbye, so a test
    # passed for a flow that keeps a silent caller for ever.
    doc = Response(
        Gather(Speak("Press 1.", loop=0), action=url("/menu"), input_type="dtmf",
               execution_timeout=5),
        Speak("Goodbye."),
    )  # fmt: skip
    assert any("loop=0 plays for ever" in str(w) for w in doc.lint())
    call = CallSimulator(doc_flow(doc)).call(digits="-")
    t = call.run()
    assert not t.ended and not t.said("Goodbye.")
    assert any("loops for ever" in e.text for e in t.events if e.kind == "note")
    t = call.hangup()
    assert t.ended and t.hangup_cause_code in {"4000", 4000} and not t.said("Goodbye.")
    answered = CallSimulator(doc_flow(doc)).call(digits="1").run()  # input still ends it
    assert answered.webhooks_for(path="/menu")


def test_a_redirect_target_that_answers_nothing_is_noted() -> None:
    # A Redirect target whose handler built its Response and forgot to return it: the call
    # ended 4010 with no word in the transcript or the log (only StartApp was warned of).
    flow = CallFlow("r", public_url="https://voice.example.com", auth_token="t" * 20,
                    state=MemoryStore())  # fmt: skip
    flow.add_route("/answer", lambda call: Response(Redirect(flow.url_for("balance"))))
    flow.add_route("/balance", lambda call: None, name="balance")
    t = CallSimulator(flow).call("answer").run()
    notes = [e.text for e in t.events if e.kind == "note"]
    assert any("the redirect URL answered an empty document" in n for n in notes), notes


def test_a_document_that_ends_before_its_scheduled_hangup_ends_the_call_at_once() -> None:
    # Spec §1.2: an element must follow <Hangup schedule>, or the call ends at once. The
    # simulator reported a scheduled hang-up (4000) that was not due.
    t = CallSimulator(doc_flow(Response(Hangup(schedule=30), Speak("hello")))).call().run()
    assert t.hangup_cause_code in {4010, "4010"}
    assert "ended before its scheduled hang-up (due at 30 s)" in str(t)
    looping = Response(Hangup(schedule=5), Play("https://cdn.example.com/hold.mp3", loop=0))
    sim = CallSimulator(doc_flow(looping))
    t = sim.call().run()
    sim.run_until_idle()
    assert t.hangup_cause_code in {4000, "4000"} and t.duration == 5  # due: as before


def test_the_hangup_api_on_a_bridged_call_reports_its_source_on_both_legs() -> None:
    # The Hangup webhook said API Request and the DialHangup just before it said Caller.
    doc = Response(Dial(Number("+14155550123"), caller_id="+14155551234",
                        callback_url=url("/cb")))  # fmt: skip
    flow = doc_flow(doc)
    flow.add_route("/cb", lambda call: None, status_callback=True)
    sim = CallSimulator(flow)
    call = sim.call(dial="bridge")
    call.run()
    sim.hangup(call.call_uuid)
    sim.run_until_idle()
    dial_hangup = call.transcript.webhooks_for("DialHangup")[-1].params
    hangup = call.transcript.webhooks_for("Hangup")[-1].params
    assert hangup["HangupSource"] == "API Request"
    assert dial_hangup["DialBLegHangupSource"] == "API Request"
    caller = sim.call(dial="bridge")
    caller.run()
    caller.hangup()  # the caller's own hang-up still says Caller
    assert caller.transcript.webhooks_for("DialHangup")[-1].params["DialBLegHangupSource"] == (
        "Caller"
    )


def test_a_caller_may_answer_a_gather_whose_prompt_loops_for_ever_later() -> None:
    doc = Response(
        Gather(Speak("Press 1.", loop=0), action=url("/menu"), input_type="dtmf",
               execution_timeout=5),
    )  # fmt: skip
    call = CallSimulator(doc_flow(doc)).call()
    t = call.run()
    assert not t.ended
    call.press("1")  # blocked in the looping prompt: the keys still reach the Gather
    t = call.run()
    menu = t.webhooks_for(path="/menu")
    assert menu and menu[0].params["Digits"] == "1"


# -- 25. a hang-up or transfer asked for before the B-leg is bridged ------------------------------


@pytest.mark.parametrize("outcome", ["answer", "bridge"])
@pytest.mark.parametrize("on", ["DialAnswer", "DialConnected"])
def test_a_hangup_asked_for_by_a_dial_callback_keeps_the_dialhangup_and_the_action(
    call_simulator: Any, local_vobiz: Any, on: str, outcome: str
) -> None:
    # Interrupted in the DialAnswer/DialConnected handler, the Dial lost its DialHangup
    # and its action: spec §2.13 has DialHangup, Hangup, the Dial action, RecordStop.
    t = _hung_up_by_a_dial_callback(
        call_simulator, local_vobiz, on, outcome, "hangup", ["Hangup", "Redirect"]
    )
    assert t.hangup_source == "API Request" and t.heard == []


def _hung_up_by_a_dial_callback(
    call_simulator: Any, local_vobiz: Any, on: str, outcome: str, act: str, after: list[str]
) -> Any:
    """The transcript of a call whose Dial callback, at ``on``, hangs up a leg (``act`` as
    _legs_flow takes it), checked for what every such call must show: the B-leg's
    DialHangup by API Request, then ``after`` (the Hangup webhook and the Dial action, in
    their order), RecordStop, a Dial action saying completed, and no handler error."""
    sim = call_simulator(_legs_flow(local_vobiz, on, act))
    call = sim.call("answer", dial=outcome)
    sim.run_until_idle()
    t = call.transcript
    connected = ["DialConnected"] if on == "DialConnected" else []
    assert [h.event for h in t.webhooks] == [
        "StartApp", "DialAnswer", *connected, "DialHangup", *after, "RecordStop",
    ]  # fmt: skip
    assert not t.handler_errors
    assert t.webhooks_for("DialHangup")[0].params["DialBLegHangupSource"] == "API Request"
    assert t.webhooks_for(path="/after")[0].params["DialStatus"] == "completed"
    return t


def test_a_hangup_asked_for_at_dialanswer_still_ends_the_legs_that_lost_the_race(
    call_simulator: Any, local_vobiz: Any
) -> None:
    sim = call_simulator(_legs_flow(local_vobiz, "DialAnswer", "hangup", numbers=2))
    call = sim.call("answer", dial="answer")
    sim.run_until_idle()
    hangups = {
        h.params["DialBLegPosition"]: h.params["DialBLegHangupCause"]
        for h in call.transcript.webhooks_for("DialHangup")
    }
    assert hangups == {"1": "NORMAL_CLEARING", "2": "LOSE_RACE"}


@pytest.mark.parametrize("outcome", ["answer", "bridge"])
def test_a_transfer_asked_for_at_dialconnected_hangs_up_the_b_leg_first(
    call_simulator: Any, local_vobiz: Any, outcome: str
) -> None:
    sim = call_simulator(_legs_flow(local_vobiz, "DialConnected", "transfer"))
    call = sim.call("answer", dial=outcome)
    sim.run_until_idle()
    t = call.transcript
    # As a transfer of a bridged caller: the B-leg hangs up (API Request), no Dial action.
    assert [h.event for h in t.webhooks] == [
        "StartApp", "DialAnswer", "DialConnected", "DialHangup", "Transfer", "Hangup",
        "RecordStop",
    ]  # fmt: skip
    assert t.webhooks_for("DialHangup")[0].params["DialBLegHangupSource"] == "API Request"
    assert t.heard == ["Moved here."]


# -- 26. URLs outside the simulated application, and the app's URL in other spellings ------------


def test_a_status_callback_outside_the_app_is_recorded_once_not_retried() -> None:
    # Spec §2.12 retries "Non-200 replies": a request never made has no reply to retry.
    doc = Response(Dial(Number("+14155550142"), caller_id="+14155550111",
                        callback_url="https://analytics.example.net/cb"))  # fmt: skip
    t = CallSimulator(doc_flow(doc)).call().run()
    events = [h.event for h in t.webhooks]
    assert events == ["StartApp", "DialAnswer", "DialConnected", "DialHangup", "Hangup"]
    assert t.webhooks_for("DialAnswer")[0].status == 0
    line = "POST https://analytics.example.net/cb (Event=DialAnswer) -> not sent"
    assert f"{line} (outside the simulated application)" in str(t)
    assert "unreachable" not in str(t) and t.ended_normally


def test_a_hand_off_outside_the_app_says_so_and_ends_as_unreachable() -> None:
    doc = Response(Gather(Speak("Go"), action="https://elsewhere.example.org/x", input_type="dtmf"))
    t = CallSimulator(doc_flow(doc)).call(digits="5").run()
    assert t.hangup_cause_code == 7012
    line = "POST https://elsewhere.example.org/x (dtmf input) -> not sent"
    assert f"{line} (outside the simulated application)" in str(t)
    assert "the action URL failed: outside the simulated application" in str(t)


@pytest.mark.parametrize(
    "action",
    [
        "https://voice.example.com:443/menu",
        "https://Voice.Example.COM/menu",
        "https://VOICE.example.com:443/menu?x=1",
    ],
)
def test_the_apps_own_url_in_another_spelling_reaches_the_app(action: str) -> None:
    # Spec §3.3: scheme and host case and the default port do not make another server.
    doc = Response(Gather(Speak("Go"), action=action, input_type="dtmf"))
    flow = doc_flow(doc, menu=Response(Speak("Menu.")))
    t = CallSimulator(flow).call(digits="5").run()
    assert t.heard == ["Go", "Menu."] and t.hangup_cause_code == 4010
    assert t.webhooks_for(path="/menu")[0].status == 200  # signed as the app checks it


def test_the_router_normalises_only_scheme_host_and_default_port() -> None:
    from answerkit.testing.sim_transport import Router

    router = Router("https://voice.example.com/app")
    assert router.resolve("https://VOICE.example.com:443/app/g?a=B") == (
        "https://voice.example.com/app/g?a=B", "/g?a=B", "/g?a=B",
    )  # fmt: skip
    assert router.resolve("https://voice.example.com/App/g") is None  # the path as written
    assert router.resolve("https://voice.example.com:8443/app/g") is None  # another port
    assert router.resolve("http://voice.example.com/app/g") is None  # another scheme
    local = Router("https://voice.example.com", "http://127.0.0.1:80")
    assert local.resolve("http://127.0.0.1/g") == ("https://voice.example.com/g",
                                                    "http://127.0.0.1:80/g", "/g")  # fmt: skip


# -- 27. webhooks_for(path=...) finds the path the transcript prints -----------------------------


@pytest.mark.parametrize("public", [PUBLIC, PUBLIC + "/app"])
def test_webhooks_for_finds_the_printed_path_under_a_prefix_and_non_ascii(public: str) -> None:
    flow = CallFlow("menus", public_url=public, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/answer", lambda call: Response(Redirect(flow.url_for("menü"))), name="a")
    flow.add_route("/menü", lambda call: Response(Speak("Ok.")), name="menü")
    t = CallSimulator(flow).call("a").run()
    assert "POST /men%C3%BC (Event=Redirect) -> 200" in str(t)  # the path printed
    for path in ("/menü", "/men%C3%BC"):
        assert [h.event for h in t.webhooks_for(path=path)] == ["Redirect"]
    assert [h.event for h in t.webhooks_for(path="/answer")] == ["StartApp", "Hangup"]
    full = "/app/answer" if public.endswith("/app") else "/answer"
    assert len(t.webhooks_for(path=full)) == 2  # the URL's full path still matches


# -- 28. ended_normally: a flow that rejects the call on purpose ended it normally ---------------


@pytest.mark.parametrize(
    ("hangup", "code"), [(Hangup(), 3020), (Hangup(reason="busy"), 3010),
                         (Hangup(reason="rejected"), 3020)],
)  # fmt: skip
def test_a_deliberate_rejection_is_a_normal_end(hangup: Hangup, code: int) -> None:
    t = CallSimulator(doc_flow(Response(hangup))).call().run()
    assert t.hangup_cause_code == code and t.hangup_source == "Answer XML"
    assert t.ended_normally


def test_a_caller_hangup_is_normal_and_a_callee_busy_is_not_the_flows_rejection() -> None:
    from answerkit.testing.sim_transcript import Transcript

    call = CallSimulator(doc_flow(Response(Play(MUSIC, loop=0)))).call()
    call.run()
    assert call.hangup().hangup_source == "Caller" and call.transcript.ended_normally
    busy = Transcript("c-1", "+14155550100", "+14155550142", "outbound")
    busy.ended, busy.hangup_cause_code, busy.hangup_source = True, 3010, "Callee"
    assert not busy.ended_normally  # an agent's busy phone is no choice of the flow


def test_a_rejection_with_a_failed_handler_is_not_normal() -> None:
    flow = doc_flow(Response(Hangup()))
    flow.add_route("/boom", lambda call: 1 / 0, name="boom")  # type: ignore[arg-type,return-value]
    t = CallSimulator(flow).call("boom").run()
    assert t.handler_errors and not t.ended_normally


# -- 29. a <DTMF> with a character Vobiz does not send is ignored, not fatal -------------------


def _xml_sim(body: str) -> CallSimulator:
    """A simulator of an app whose answer URL answers ``body`` (raw VobizXML)."""
    app = Flask("raw")

    @app.post("/answer")
    def answer() -> FlaskResponse:
        return FlaskResponse(body, content_type="application/xml")

    return CallSimulator(app=app, public_url=PUBLIC, auth_token=TOKEN)


def test_a_dtmf_with_another_character_is_skipped_with_a_note() -> None:
    # Spec §1.2 DTMF: "Any other character makes Vobiz ignore the element".
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n  <DTMF>12a</DTMF>\n'
            '  <DTMF>1w2#</DTMF>\n  <Speak>After.</Speak>\n</Response>')  # fmt: skip
    t = _xml_sim(body).call("/answer").run()
    assert t.hangup_cause_code == 4010 and t.heard == ["After."] and t.dtmf == ["1w2#"]
    assert "skipped <DTMF>12a</DTMF>" in str(t) and "spec §1.2 DTMF" in str(t)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("<Response><DTMF></DTMF></Response>", "got ''"),  # no character at all: invalid
        ("<Response><DTMF>1a</DTMF><Wait length='x'/></Response>", "Wait"),  # another error
    ],
)
def test_a_document_with_other_faults_stays_invalid(body: str, error: str) -> None:
    t = _xml_sim(body).call("/answer").run()
    assert t.hangup_cause_code == 8011
    assert error in str(t) and "skipped" not in str(t)


# -- 30. both legs moved, a hang-up at DialHangup, the B-leg hung up by its own CallUUID ----------


def _legs_flow(
    local_vobiz: Any, on: str, act: str, numbers: int = 1, position: str = "1"
) -> CallFlow:
    """A recorded Dial whose callback handler acts once, at Event ``on`` of the B-leg at
    ``position``: ``"both"`` moves the caller and the B-leg (``flow.transfer`` with both
    URLs), ``"transfer"`` the caller alone, ``"hangup"`` hangs the caller up and
    ``"hangup-bleg"`` the B-leg itself, by its
    DialBLegUUID (both through the REST client); ``"move-bleg"`` moves the B-leg itself, by
    its DialBLegUUID."""
    flow = CallFlow(
        "legs",
        public_url=PUBLIC,
        auth_token=TOKEN,
        state=MemoryStore(),
        client=local_vobiz.client(),
    )
    targets = [Number(f"+1415555014{i}") for i in range(numbers)]
    done: list[str] = []

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(
            Record(record_session=True, callback_url=flow.url_for("cb")),
            Dial(*targets, caller_id="+14155550111", callback_url=flow.url_for("cb"),
                 action=flow.url_for("after")),
            Speak("After the dial."),
        )  # fmt: skip

    @flow.route("/cb", status_callback=True)
    def cb(call: CallRequest) -> None:
        if call.event != on or call.params.get("DialBLegPosition") != position or done:
            return
        done.append(act)
        if act == "both":
            flow.transfer(call.params["DialALegUUID"], aleg="moved", bleg="bmoved")
        elif act == "hangup":
            local_vobiz.client().hangup(call.params["DialALegUUID"])
        elif act == "transfer":
            flow.transfer(call.params["DialALegUUID"], aleg="moved")
        elif act == "move-bleg":
            flow.transfer(call.params["DialBLegUUID"], aleg="bmoved")
        else:
            local_vobiz.client().hangup(call.params["DialBLegUUID"])

    flow.add_route("/after", lambda call: Response(Speak("Dial action.")), name="after")
    flow.add_route("/moved", lambda call: Response(Speak("Moved here.")), name="moved")
    flow.add_route("/bmoved", lambda call: Response(Speak("B moved here.")), name="bmoved")
    return flow


@pytest.mark.parametrize("outcome", ["answer", "bridge"])
@pytest.mark.parametrize("on", ["DialAnswer", "DialConnected"])
def test_both_legs_moved_by_a_dial_callback_move_the_b_leg_too(
    call_simulator: Any, local_vobiz: Any, on: str, outcome: str
) -> None:
    # Spec §4.1 "Use both to move the whole session": the B-leg was hung up (DialHangup,
    # API Request) and a note said no B-leg was bridged.
    sim = call_simulator(_legs_flow(local_vobiz, on, "both"))
    call = sim.call("answer", dial=outcome)
    sim.run_until_idle()
    t = call.transcript
    connected = ["DialConnected"] if on == "DialConnected" else []
    assert [h.event for h in t.webhooks] == [
        "StartApp", "DialAnswer", *connected, "Transfer", "Hangup", "RecordStop",
    ]  # fmt: skip
    assert t.heard == ["Moved here."] and not t.handler_errors
    assert "no B-leg is bridged" not in str(t)
    bleg = sim.find(t.webhooks_for("DialAnswer")[0].params["DialBLegUUID"])
    assert bleg.transcript.heard == ["B moved here."]
    assert [h.event for h in bleg.transcript.webhooks] == ["Transfer"]


def test_a_hangup_asked_for_at_the_winners_dialhangup_keeps_the_dial_action(
    call_simulator: Any, local_vobiz: Any
) -> None:
    # Spec §2.13: DialHangup, Hangup, Dial action, RecordStop; the action was lost.
    sim = call_simulator(_legs_flow(local_vobiz, "DialHangup", "hangup"))
    call = sim.call("answer", dial="answer")
    sim.run_until_idle()
    t = call.transcript
    assert [h.event for h in t.webhooks] == [
        "StartApp", "DialAnswer", "DialConnected", "DialHangup", "Hangup", "Redirect",
        "RecordStop",
    ]  # fmt: skip
    assert t.webhooks_for(path="/after")[0].params["DialStatus"] == "completed"
    assert t.hangup_source == "API Request" and t.heard == []


def test_a_hangup_at_a_bridge_callees_dialhangup_keeps_the_dial_action(
    call_simulator: Any, local_vobiz: Any
) -> None:
    sim = call_simulator(_legs_flow(local_vobiz, "DialHangup", "hangup"))
    call = sim.call("answer", dial="bridge")
    call.run()
    call.end_bridge()
    sim.run_until_idle()
    events = [h.event for h in call.transcript.webhooks]
    assert events[-4:] == ["DialHangup", "Hangup", "Redirect", "RecordStop"]


@pytest.mark.parametrize("position", ["1", "2"])
def test_a_hangup_at_an_unanswered_legs_dialhangup_ends_every_leg_and_keeps_the_action(
    call_simulator: Any, local_vobiz: Any, position: str
) -> None:
    # Spec §1.2: every leg ends with its own DialHangup; the second was lost.
    flow = _legs_flow(local_vobiz, "DialHangup", "hangup", numbers=2, position=position)
    sim = call_simulator(flow)
    call = sim.call("answer", dial=[["no-answer", "no-answer"]])
    sim.run_until_idle()
    t = call.transcript
    assert [h.event for h in t.webhooks] == [
        "StartApp", "DialHangup", "DialHangup", "Hangup", "Redirect", "RecordStop",
    ]  # fmt: skip
    assert [h.params["DialBLegPosition"] for h in t.webhooks_for("DialHangup")] == ["1", "2"]
    assert t.webhooks_for(path="/after")[0].params["DialStatus"] == "no-answer"


@pytest.mark.parametrize("outcome", ["answer", "bridge"])
@pytest.mark.parametrize("on", ["DialAnswer", "DialConnected"])
def test_the_b_leg_hung_up_by_its_own_uuid_from_a_dial_callback_ends_the_dial(
    call_simulator: Any, local_vobiz: Any, on: str, outcome: str
) -> None:
    # The B-leg was listed in LocalVobiz only once bridged: "call not found" (a handler
    # error), and the Dial went on as if nothing was asked.
    t = _hung_up_by_a_dial_callback(
        call_simulator, local_vobiz, on, outcome, "hangup-bleg", ["Redirect", "Hangup"]
    )
    assert t.heard == ["Dial action."] and t.hangup_cause_code == 4010  # the caller goes on


# -- 31. a skipped <DTMF> keeps the lines of the rest of the document -----------------------------


def _error_line(body: str) -> str:
    t = _xml_sim(body).call("/answer").run()
    assert t.hangup_cause_code == 8011
    return next(line for line in t.lines() if "invalid VobizXML" in line)


@pytest.mark.parametrize(
    ("with_dtmf", "without"),
    [
        ("<Response>\n<DTMF>\n1a\n</DTMF>\n<Wait length='x'/>\n</Response>",
         "<Response>\n<Speak>\nb\n</Speak>\n<Wait length='x'/>\n</Response>"),
        ('<?xml version="1.0" encoding="UTF-8"?><Response><DTMF>1a</DTMF>\n'
         "<Wait length='x'/></Response>",
         '<?xml version="1.0" encoding="UTF-8"?><Response><Speak>a</Speak>\n'
         "<Wait length='x'/></Response>"),
        ('<Response><DTMF>1a</DTMF><Speak\n\n voice="WOMAN">hi</Speak>\n<Wait length="x"/>'
         "</Response>",
         '<Response><DTMF>1</DTMF><Speak\n\n voice="WOMAN">hi</Speak>\n<Wait length="x"/>'
         "</Response>"),
        ("<!-- hi -->\n\n<Response><DTMF>1a</DTMF>\n<Wait length='x'/></Response>",
         "<!-- hi -->\n\n<Response><DTMF>1</DTMF>\n<Wait length='x'/></Response>"),
    ],
)  # fmt: skip
def test_a_skipped_dtmf_keeps_the_line_of_a_later_error(with_dtmf: str, without: str) -> None:
    # The skip re-serialised the document: a later error named another line.
    assert _error_line(with_dtmf) == _error_line(without)


def test_a_dtmf_with_a_comment_in_its_text_is_skipped_as_parse_reads_it() -> None:
    t = _xml_sim("<Response><DTMF>1<!-- c -->a</DTMF><Speak>After</Speak></Response>")
    transcript = t.call("/answer").run()
    assert transcript.hangup_cause_code == 4010 and transcript.heard == ["After"]
    assert "skipped <DTMF>1a</DTMF>" in str(transcript)


def test_a_document_of_skipped_dtmf_only_says_so_not_that_the_response_was_not_returned() -> None:
    t = _xml_sim("<Response><DTMF>1a</DTMF></Response>").call("/answer").run()
    assert t.hangup_cause_code == 4010
    assert "only <DTMF> that Vobiz ignores" in str(t)
    assert "return the Response" not in str(t)


# -- 32. webhooks_for(path=...): the app's paths only, a query as printed --------------------------


def test_webhooks_for_a_path_finds_the_apps_webhooks_only_and_a_printed_query() -> None:
    flow = CallFlow("m", public_url=PUBLIC + "/app", auth_token=TOKEN, state=MemoryStore())
    analytics = "https://analytics.example.net/answer"
    flow.add_route("/answer", lambda c: Response(Redirect(flow.url_for("app") + "?x=1")),
                   name="answer")  # fmt: skip
    flow.add_route("/app", lambda c: Response(Dial(Number("+14155550142"),
                   caller_id="+14155550111", callback_url=analytics)), name="app")  # fmt: skip
    t = CallSimulator(flow).call("answer").run()
    assert "POST /app?x=1 (Event=Redirect) -> 200" in str(t)
    # Another host's /answer is no webhook of the app's route /answer.
    assert [h.event for h in t.webhooks_for(path="/answer")] == ["StartApp", "Hangup"]
    assert [h.event for h in t.webhooks_for(path=analytics)] == [
        "DialAnswer", "DialConnected", "DialHangup",
    ]  # fmt: skip
    assert [h.event for h in t.webhooks_for(path="/app?x=1")] == ["Redirect"]
    assert [h.event for h in t.webhooks_for(path="/app")] == ["Redirect"]  # any query
    assert t.webhooks_for(path="/app?x=2") == []
    assert [h.event for h in t.webhooks_for(path=PUBLIC + "/app/app?x=1")] == ["Redirect"]


# -- 33. a URL outside the app that looks meant for it gets a note -------------------------------


def test_a_callback_to_a_mistyped_host_gets_a_note_once() -> None:
    doc = Response(Dial(Number("+14155550142"), caller_id="+14155550111",
                        callback_url="https://voice.exmaple.com/events",
                        action="https://voice.exmaple.com/after", redirect=False),
                   Speak("bye"))  # fmt: skip
    t = CallSimulator(doc_flow(doc)).call().run()
    notes = [line for line in t.lines() if line.startswith("not sent: ")]
    assert notes == [
        "not sent: https://voice.exmaple.com/events: its host voice.exmaple.com is close to "
        "the app's, voice.example.com (a typo?): did you mean https://voice.example.com/events?",
        "not sent: https://voice.exmaple.com/after: its host voice.exmaple.com is close to "
        "the app's, voice.example.com (a typo?): did you mean https://voice.example.com/after?",
    ]


@pytest.mark.parametrize(
    "callback",
    ["http://voice.example.com/events", "https://voice.example.com:8443/events"],
)
def test_a_callback_to_the_apps_host_outside_the_app_gets_a_note(callback: str) -> None:
    doc = Response(Dial(Number("+14155550142"), caller_id="+14155550111",
                        callback_url=callback))  # fmt: skip
    t = CallSimulator(doc_flow(doc)).call().run()
    assert f"not sent: {callback}: it names the app's host, but is not under" in str(t)
    assert "did you mean https://voice.example.com/events?" in str(t)


def test_a_callback_to_another_server_gets_no_note() -> None:
    doc = Response(Dial(Number("+14155550142"), caller_id="+14155550111",
                        callback_url="https://analytics.example.net/cb"))  # fmt: skip
    t = CallSimulator(doc_flow(doc)).call().run()
    assert "not sent:" not in str(t)


@pytest.mark.parametrize(
    ("public", "callback"),
    [
        # Another server's path that happens to be a route: /events, /status, /.
        (PUBLIC, "https://hooks.example.org/events"),
        (PUBLIC, "https://crm.example.net/status"),
        (PUBLIC, "https://crm.example.net/"),
        (PUBLIC, "https://example.com"),
        # Hosts a few letters apart that name other servers, not typos.
        ("https://app.example.com", "https://api.example.com/events"),
        (PUBLIC, "https://voip.example.com/cb"),
        ("http://192.168.1.10:5000", "http://192.168.1.11:8080/log"),
        # Another service on the app's machine, or beside its path.
        ("http://localhost:8000", "http://localhost:9000/metrics"),
        ("http://localhost:8000", "http://localhost/metrics"),  # port 80, another server
        ("https://localhost:8443", "https://localhost/metrics"),
        # Numbered or regional servers: a label only a digit, or 2 edits, apart.
        ("https://voice1.example.com", "https://voice2.example.com/cb"),
        ("https://us-east.example.com", "https://us-west.example.com/cb"),
        ("https://voice.example.com", "https://voice2.example.com/cb"),
        ("https://example.com/voice", "https://example.com/crm/hook"),
        ("https://example.com/voice", "https://example.com/"),
    ],
)
def test_a_third_party_url_gets_no_did_you_mean_note(public: str, callback: str) -> None:
    # The note fired for any URL whose path was a route, and for hosts 2 edits apart.
    flow = CallFlow("h", public_url=public, auth_token=TOKEN, state=MemoryStore())
    flow.add_route(
        "/answer",
        lambda c: Response(
            Dial(Number("+14155550142"), caller_id="+14155550111", callback_url=callback)
        ),
        name="answer",
    )
    for path in ("/events", "/status", "/"):
        flow.add_route(path, lambda c: None, name=f"r{path}", status_callback=True)
    t = CallSimulator(flow).call("answer").run()
    assert "not sent (outside the simulated application)" in str(t)
    assert "did you mean" not in str(t)


# -- 34. a B-leg moved before the bridge; its leg gone before its DialHangup -----------------------


def _moving_flow(local_vobiz: Any, act: str) -> CallFlow:
    """Two Dials in a row (the first's action is the second); at the first DialAnswer the
    handler moves that B-leg: ``"own"`` names it (its DialBLegUUID, aleg=), ``"bleg"`` names
    the caller with ``bleg=``; anything else moves nothing."""
    flow = CallFlow(
        "mv", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(), client=local_vobiz.client()
    )
    flow.seen = []  # type: ignore[attr-defined]

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(
            Dial(
                Number("+14155550140"),
                caller_id="+14155550111",
                callback_url=flow.url_for("cb"),
                action=flow.url_for("second"),
            )
        )

    @flow.route("/second")
    def second(call: CallRequest) -> Response:
        return Response(
            Dial(Number("+14155550149"), caller_id="+14155550111", callback_url=flow.url_for("cb")),
            Speak("End."),
        )

    @flow.route("/cb", status_callback=True)
    def cb(call: CallRequest) -> None:
        if call.event != "DialAnswer" or flow.seen:  # type: ignore[attr-defined]
            return
        flow.seen.append(call.params["DialBLegUUID"])  # type: ignore[attr-defined]
        if act == "own":
            flow.transfer(call.params["DialBLegUUID"], aleg="bmoved")
        elif act == "bleg":
            flow.transfer(call.params["DialALegUUID"], bleg="bmoved")

    flow.add_route("/bmoved", lambda call: Response(Speak("B moved here.")), name="bmoved")
    return flow


@pytest.mark.parametrize("act", ["own", "bleg"])
def test_a_b_leg_moved_at_dialanswer_moves_before_the_bridge_never_a_later_dials(
    call_simulator: Any, local_vobiz: Any, act: str
) -> None:
    # The transfer waited (the "answer" outcome never bridges), then moved the second
    # Dial's B-leg, another call.
    flow = _moving_flow(local_vobiz, act)
    sim = call_simulator(flow)
    call = sim.call("answer", dial=["answer", "bridge"])
    sim.run_until_idle()
    t = call.transcript
    first, second = (h.params["DialBLegUUID"] for h in t.webhooks_for("DialAnswer"))
    assert first == flow.seen[0]  # type: ignore[attr-defined]
    assert sim.find(first).transcript.heard == ["B moved here."]
    with pytest.raises(KeyError):
        sim.find(second)  # still bridged to the caller, not moved
    assert call.state == "blocked" and call.bridge is not None
    assert call.bridge.target.uuid == second and call.bridge.up
    # The first Dial ends as completed, its B-leg's DialHangup by the API; no DialConnected.
    assert [h.event for h in t.webhooks][:4] == ["StartApp", "DialAnswer", "DialHangup", "Redirect"]
    assert t.webhooks_for("DialHangup")[0].params["DialBLegHangupSource"] == "API Request"
    assert t.webhooks_for(path="/second")[0].params["DialStatus"] == "completed"
    assert "transferred away before the bridge" in str(t)


@pytest.mark.parametrize("outcome", ["answer", "bridge"])
@pytest.mark.parametrize("on", ["DialAnswer", "DialConnected"])
def test_a_b_leg_moved_by_its_own_uuid_from_a_dial_callback_moves(
    call_simulator: Any, local_vobiz: Any, on: str, outcome: str
) -> None:
    flow = _legs_flow(local_vobiz, on, "move-bleg")
    sim = call_simulator(flow)
    call = sim.call("answer", dial=outcome)
    sim.run_until_idle()
    t = call.transcript
    connected = ["DialConnected"] if on == "DialConnected" else []
    assert [h.event for h in t.webhooks] == [
        "StartApp",
        "DialAnswer",
        *connected,
        "DialHangup",
        "Redirect",
        "Hangup",
        "RecordStop",
    ]
    bleg = sim.find(t.webhooks_for("DialAnswer")[0].params["DialBLegUUID"])
    assert bleg.transcript.heard == ["B moved here."]
    assert t.heard == ["Dial action."] and not t.handler_errors
    assert "no B-leg is bridged" not in str(t)


def test_a_b_leg_transfer_the_dial_never_took_is_dropped_when_it_ends(
    call_simulator: Any, local_vobiz: Any
) -> None:
    # Asked for as the bridged B-leg hangs up (still listed until its Dial ends): the
    # request waited, and moved the second Dial's B-leg, another call.
    flow = _moving_flow(local_vobiz, "none")
    sim = call_simulator(flow)
    asked: list[bool] = []

    def at_hang_up(call: Any, event: Any) -> None:
        if event.text.endswith(" hangs up") and not asked:
            asked.append(sim.transfer(call.dial_bleg, PUBLIC + "/bmoved", leg="bleg"))

    sim.listeners.append(at_hang_up)
    call = sim.call("answer", dial=["bridge", "bridge"])
    call.run()
    call.end_bridge()
    sim.run_until_idle()
    t = call.transcript
    assert asked == [True]
    assert len(sim.calls) == 1 and call.bridge is not None and call.bridge.up
    assert "requested too late: its Dial had ended, nothing moved" in str(t)


@pytest.mark.parametrize("how", ["hangup", "transfer", "caller-hangs-up", "api-hangup"])
def test_the_b_leg_has_left_when_its_dialhangup_is_sent(
    call_simulator: Any, local_vobiz: Any, how: str
) -> None:
    # The B-leg was still listed in progress (retrieve 200, transfer 202) while its own
    # DialHangup went out after the caller left mid-dial.
    seen: dict[str, str] = {}

    def status(flow: CallFlow, call_uuid: str, move: bool) -> str:
        try:
            if move:
                flow.transfer(call_uuid, aleg="bmoved")
                return "moved"
            return local_vobiz.client().get_live_call(call_uuid).call_status
        except AnswerkitError as exc:
            return str(getattr(exc, "status", exc))

    def cb(flow: CallFlow, call: CallRequest) -> None:
        if call.event == "DialAnswer" and how == "hangup":
            local_vobiz.client().hangup(call.params["DialALegUUID"])
        elif call.event == "DialAnswer" and how == "transfer":
            flow.transfer(call.params["DialALegUUID"], aleg="moved")
        elif call.event == "DialHangup":
            seen["retrieve"] = status(flow, call.params["DialBLegUUID"], move=False)
            seen["transfer"] = status(flow, call.params["DialBLegUUID"], move=True)

    flow = _one_number_dial_flow(local_vobiz, cb)
    flow.add_route("/moved", lambda c: Response(Speak("Moved here.")), name="moved")
    flow.add_route("/bmoved", lambda c: Response(Speak("B moved here.")), name="bmoved")
    sim = call_simulator(flow)
    call = sim.call("answer", dial="bridge")
    call.run()
    if how == "caller-hangs-up":
        call.hangup()
    elif how == "api-hangup":
        sim.hangup(call.call_uuid)
    sim.run_until_idle()
    assert seen == {"retrieve": "404", "transfer": "404"}
    assert len(sim.calls) == 1  # the gone B-leg was never moved


def _one_number_dial_flow(
    local_vobiz: Any,
    callback: Callable[[CallFlow, CallRequest], None],
    *,
    before: Sequence[Element] = (),
    timeout: int | None = None,
) -> CallFlow:
    """A flow whose answer is ``before`` and a Dial of one number, with ``callback(flow,
    call)`` on the Dial's callbackUrl and a Dial action that says so; its REST calls go
    to ``local_vobiz``."""
    flow = CallFlow(
        "dcb", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore(), client=local_vobiz.client()
    )
    limits = {} if timeout is None else {"timeout": timeout}

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        dial = Dial(
            Number("+14155550140"),
            caller_id="+14155550111",
            callback_url=flow.url_for("cb"),
            action=flow.url_for("after"),
            **limits,
        )
        return Response(*before, dial)

    flow.add_route("/cb", lambda call: callback(flow, call), name="cb", status_callback=True)
    flow.add_route("/after", lambda c: Response(Speak("Dial action.")), name="after")
    return flow


@pytest.mark.parametrize("mode", ["cancel", "scheduled"])
@pytest.mark.parametrize("act", ["transfer", "hangup"])
def test_a_caller_who_hung_up_while_the_dial_rang_cannot_be_moved_from_dialhangup(
    call_simulator: Any, local_vobiz: Any, mode: str, act: str
) -> None:
    # The DialHangup handler's request was applied to the caller, who had left: it heard
    # a document again, the Dial action (DialStatus=cancel) was lost, the source changed.
    answers: list[str] = []

    def cb(flow: CallFlow, call: CallRequest) -> None:
        if call.event != "DialHangup":
            return
        try:
            if act == "transfer":
                flow.transfer(call.params["DialALegUUID"], aleg="moved")
            else:
                local_vobiz.client().hangup(call.params["DialALegUUID"])
        except AnswerkitError as exc:
            answers.append(str(getattr(exc, "status", exc)))

    before = [Hangup(schedule=30)] if mode == "scheduled" else []
    flow = _one_number_dial_flow(local_vobiz, cb, before=before, timeout=60)
    flow.add_route("/moved", lambda c: Response(Speak("Moved here.")), name="moved")
    sim = call_simulator(flow)
    call = sim.call("answer", dial="cancel" if mode == "cancel" else "no-answer")
    sim.run_until_idle()
    t = call.transcript
    assert answers == ["404"]
    assert [h.event for h in t.webhooks] == ["StartApp", "DialHangup", "Hangup", "Redirect"]
    assert t.webhooks_for(path="/after")[0].params["DialStatus"] == "cancel"
    assert t.heard == [] and t.transfers == []
    assert t.hangup_source == ("Caller" if mode == "cancel" else "Answer XML")


# -- 35. webhooks_for(path=...): a URL in another spelling, a fragment, a query's fields ---------


def test_webhooks_for_a_full_url_in_another_spelling_a_fragment_and_query_fields() -> None:
    # The default port kept in the key missed "https://VOICE.example.com:443/last"; a
    # fragment stayed in the printed query; y=%26 was taken for y=& (decoded whole).
    app = Flask("raw")
    docs = {
        "/answer": "<Redirect>https://VOICE.example.com:443/next?x=a%20b&amp;y=%26#frag</Redirect>",
        "/next": "<Speak>hi</Speak>",
    }
    for path, body in docs.items():
        app.add_url_rule(
            path,
            path,
            lambda body=body: FlaskResponse(
                f"<Response>{body}</Response>", content_type="application/xml"
            ),
            methods=["POST"],
        )
    t = CallSimulator(app=app, public_url=PUBLIC, auth_token=TOKEN).call("/answer").run()
    assert [h.event for h in t.webhooks_for(path=PUBLIC + "/next")] == ["Redirect"]
    assert [h.event for h in t.webhooks_for(path=PUBLIC + ":443/next")] == ["Redirect"]
    assert [h.event for h in t.webhooks_for(path="/next?x=a%20b&y=%26")] == ["Redirect"]
    assert [h.event for h in t.webhooks_for(path="/next?x=a+b&y=%26#other")] == ["Redirect"]
    assert t.webhooks_for(path="/next?x=a b&y=&") == []
    assert t.webhooks_for(path=PUBLIC + "/next?x=a b&y=&") == []


# -- 36. the moved B-leg acted on from its DialHangup; listener requests at dial events ---------


@pytest.mark.parametrize("act", ["hangup", "transfer"])
@pytest.mark.parametrize("outcome", ["answer", "bridge"])
def test_a_moved_b_leg_is_acted_on_from_its_dialhangup_by_the_simulator(
    call_simulator: Any, local_vobiz: Any, act: str, outcome: str
) -> None:
    # The moved leg, a new call not answered yet, was skipped: LocalVobiz acted on it
    # itself (and fetched the transfer URL off the network).
    answers: list[str] = []

    def cb(flow: CallFlow, call: CallRequest) -> None:
        bleg = call.params["DialBLegUUID"]
        if call.event == "DialAnswer":
            flow.transfer(bleg, aleg="bmoved")
        elif call.event == "DialHangup":
            try:
                if act == "hangup":
                    local_vobiz.client().hangup(bleg)
                else:
                    flow.transfer(bleg, aleg="b2")
                answers.append("ok")
            except AnswerkitError as exc:
                answers.append(str(getattr(exc, "status", exc)))

    flow = _one_number_dial_flow(local_vobiz, cb)
    flow.add_route(
        "/bmoved",
        lambda c: Response(Speak("B moved here."), Wait(length=5), Speak("B still here.")),
        name="bmoved",
    )
    flow.add_route("/b2", lambda c: Response(Speak("B2.")), name="b2")
    sim = call_simulator(flow)
    call = sim.call("answer", dial=outcome)
    sim.run_until_idle()
    bleg = sim.find(call.transcript.webhooks_for("DialAnswer")[0].params["DialBLegUUID"])
    bt = bleg.transcript
    assert answers == ["ok"]
    assert local_vobiz.transfers == [] and local_vobiz.sent_webhooks == []
    if act == "hangup":
        assert bt.hangup_source == "API Request" and "B still here." not in bt.heard
    else:
        assert bt.transfers[-1].endswith("/b2") and bt.heard[-1] == "B2."


def test_a_listener_on_the_answered_event_moves_that_b_leg(call_simulator: Any) -> None:
    # The "answered by" event went out before the Dial knew its B-leg: the request was
    # queued for no B-leg and never moved it.
    flow = CallFlow("y", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route(
        "/answer",
        lambda c: Response(Dial(Number("+14155550140"), caller_id="+14155550111")),
        name="answer",
    )
    flow.add_route("/bmoved", lambda c: Response(Speak("B moved here.")), name="bmoved")
    sim = call_simulator(flow)
    asked: list[bool] = []

    def listener(call: Any, event: Any) -> None:
        if event.kind == "dial" and "answered by" in event.text and not asked:
            asked.append(sim.transfer(call.call_uuid, "bmoved", leg="bleg"))

    sim.add_listener(listener)
    call = sim.call("answer", dial="bridge")
    sim.run_until_idle()
    assert asked == [True]
    assert "transferred away before the bridge" in str(call.transcript)
    assert len(sim.calls) == 2 and sim.calls[1].transcript.heard == ["B moved here."]


def test_a_listener_on_the_cancelled_event_cannot_move_the_caller(call_simulator: Any) -> None:
    # The "cancelled" event went out before the caller left: a transfer asked for then was
    # accepted and moved the caller, who had hung up.
    flow = CallFlow("c", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route(
        "/answer",
        lambda c: Response(
            Speak("hi"),
            Dial(
                Number("+14155550140"),
                caller_id="+14155550111",
                action=flow.url_for("after"),
            ),
        ),
        name="answer",
    )
    flow.add_route("/after", lambda c: Response(Speak("Dial action.")), name="after")
    flow.add_route("/moved", lambda c: Response(Speak("Moved here.")), name="moved")
    sim = call_simulator(flow)
    asked: list[bool] = []

    def listener(call: Any, event: Any) -> None:
        if event.kind == "dial" and "cancelled" in event.text and not asked:
            asked.append(sim.transfer(call.call_uuid, "moved"))

    sim.add_listener(listener)
    call = sim.call("answer", dial="cancel")
    sim.run_until_idle()
    t = call.transcript
    assert asked == [False]
    assert t.heard == ["hi"] and t.transfers == []
    assert t.webhooks_for(path="/after")[0].params["DialStatus"] == "cancel"


def test_a_b_leg_transfer_then_a_caller_hang_up_notes_why_nothing_moved(
    call_simulator: Any, local_vobiz: Any
) -> None:
    # The note said "requested too late", though the request came before the hang-up.
    def cb(flow: CallFlow, call: CallRequest) -> None:
        if call.event == "DialAnswer":
            flow.transfer(call.params["DialBLegUUID"], aleg="bmoved")
            local_vobiz.client().hangup(call.params["DialALegUUID"])

    flow = _one_number_dial_flow(local_vobiz, cb)
    flow.add_route("/bmoved", lambda c: Response(Speak("B moved here.")), name="bmoved")
    sim = call_simulator(flow)
    call = sim.call("answer", dial="bridge")
    sim.run_until_idle()
    t = str(call.transcript)
    assert "to /bmoved not acted on: the caller was hung up first" in t
    assert "requested too late" not in t and len(sim.calls) == 1


def test_webhooks_for_query_fields_in_any_order_and_an_empty_query() -> None:
    # Fields were compared in order (?y=2&x=1 missed ?x=1&y=2), and "/next?" found only a
    # webhook sent with no query.
    doc = Response(Redirect(PUBLIC + "/next?x=1&y=2&x=3"))
    flow = doc_flow(doc)
    flow.add_route("/next", lambda c: Response(Speak("hi")), name="next")
    t = CallSimulator(flow).call().run()
    assert [h.event for h in t.webhooks_for(path="/next?y=2&x=1&x=3")] == ["Redirect"]
    assert [h.event for h in t.webhooks_for(path="/next?x=1&x=3&y=2")] == ["Redirect"]
    assert t.webhooks_for(path="/next?y=2&x=3&x=1") == []  # a repeated name keeps its order
    assert [h.event for h in t.webhooks_for(path="/next?")] == ["Redirect"]
    assert [h.event for h in t.webhooks_for(path=PUBLIC + "/next?")] == ["Redirect"]


def test_a_transfer_queued_before_the_caller_leaves_is_dropped_a_hang_up_kept() -> None:
    from answerkit.testing.sim_transcript import CAUSES

    sim = CallSimulator(doc_flow(Response(Speak("hi"), Play(MUSIC, loop=0))))
    call = sim.call()
    call.run()
    assert sim.transfer(call.call_uuid, PUBLIC + "/next")
    assert sim.hangup(call.call_uuid)
    call.leave(CAUSES["normal"].with_source("Caller"))
    assert call.take_pending("transfer") is None
    assert call.take_pending("hangup") is not None
    assert "not acted on: the caller had hung up first" in str(call.transcript)


def test_a_record_started_on_dial_answer_records_from_the_answer_on() -> None:
    # It was played as a voicemail Record: the caller "left a message" before the Dial
    # began (60 s later), taking the test's record= entry meant for the real voicemail.
    doc = Response(
        Record(callback_url=url("/events"), start_on_dial_answer=True),
        Dial(Number("+14156667890"), caller_id="+14155551234", timeout=20),
        Speak("Leave a message"),
        Record(callback_url=url("/events"), max_length=120),
        Hangup(),
    )
    answered = CallSimulator(doc_flow(doc)).call(dial="answer", record=["key"]).run()
    stops = [h.params for h in answered.webhooks_for("RecordStop")]
    assert [s["RecordingEndReason"] for s in stops] == ["HungUp", "FinishedOnKey"]
    assert int(stops[1]["RecordingDuration"]) == 5  # the voicemail took the scripted key
    assert "recording starts (the Dial was answered)" in str(answered)
    assert stops[0]["RecordingEndMs"] == stops[1]["RecordingEndMs"]  # on to the call's end
    missed = CallSimulator(doc_flow(doc)).call(dial="no-answer", record=["key"]).run()
    assert len(missed.webhooks_for("RecordStop")) == 1  # nothing recorded without an answer
    assert "never started: no Dial was answered" in str(missed)


def test_a_record_action_answering_a_document_with_redirect_false_fails_the_call() -> None:
    # Spec §1.2 Record: it "will interrupt a flow that has already moved on"; only a note.
    doc = Response(
        Speak("leave a message"), Record(action=url("/ract"), callback_url=url("/events")),
        Speak("thanks"), Hangup(),
    )  # fmt: skip
    flow = doc_flow(doc, ract=Response(Speak("Saved"), Redirect(url("/answer"))))
    t = CallSimulator(flow).call().run()
    assert not t.ended_normally
    assert "the Record action answered a non-empty document" in t.handler_errors[0]


def test_a_wait_for_silence_ends_once_the_silence_is_heard() -> None:
    # The simulated caller is silent: Wait(silence=True) lasted its whole length.
    doc = Response(Speak("hi"), Wait(length=30, silence=True, min_silence=500), Hangup())
    t = CallSimulator(doc_flow(doc)).call().run()
    assert "silence: 0.5s" in str(t)
