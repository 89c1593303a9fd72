"""Sound URLs (waitSound, dialMusic, confirmSound): routes that may answer only Play, Speak
and Wait, and that never answer a failure with the apology and Hangup (spec §1.2, §2.5,
§2.9); a Record action's failure answered with an empty document (§2.6); the check, the
lint and the simulator judging such answers alike."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from answerkit import (
    CallFlow,
    CallRequest,
    Conference,
    ConfigurationError,
    Dial,
    Hangup,
    Number,
    Play,
    Response,
    Speak,
    Wait,
    parse,
    sign,
)
from answerkit.check import check_flow
from answerkit.state import MemoryStore, RedisStore
from answerkit.testing.simulator import CallSimulator

PUBLIC = "https://voice.example.com"
TOKEN = "test-token-0123456789"
HOLD = "https://cdn.example.com/hold.mp3"
CALL = {
    "CallUUID": "c-1",
    "From": "14155550100",
    "To": "14155550199",
    "Direction": "inbound",
    "CallStatus": "in-progress",
}
WAIT_SOUND = {**CALL, "Event": "ConferenceRemoteSounds", "ConferenceAction": "waitSound"}
APOLOGY = b"We are sorry"
SILENCE = Response().to_bytes()


def post(client: Any, path: str, params: dict[str, str]) -> Any:
    return client.post(path, data=params, headers=sign(PUBLIC + path, TOKEN))


def music_flow(behaviour: str, **kwargs: Any) -> CallFlow:
    """A flow with a sound route at /music that plays, raises or steers the call."""
    kwargs.setdefault("state", MemoryStore())
    flow = CallFlow("queue", public_url=PUBLIC, auth_token=TOKEN, **kwargs)

    @flow.route("/music", sound=True)
    def music(call: CallRequest) -> Response:
        if behaviour == "raise":
            raise RuntimeError("the music service is down")
        if behaviour == "steer":
            return Response(Speak("Connecting"), Hangup())
        return Response(Play(HOLD, loop=0))

    return flow


def test_a_sound_route_answers_its_audio() -> None:
    c = music_flow("play").create_app().test_client()
    r = post(c, "/music", WAIT_SOUND)
    assert r.status_code == 200 and parse(r.data) == Response(Play(HOLD, loop=0))


@pytest.mark.parametrize("behaviour", ["raise", "steer"])
def test_a_failing_sound_route_answers_silence_not_the_apology(
    behaviour: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The apology and Hangup there told a caller on hold "we could not complete your call"
    # and, on Vobiz, may hang them up; a document with Hangup or Dial breaks the contract.
    reported: list[str] = []
    flow = music_flow(behaviour, on_error=lambda exc, call, route: reported.append(str(exc)))
    c = flow.create_app().test_client()
    with caplog.at_level(logging.ERROR, logger="answerkit"):
        for params in (WAIT_SOUND, {**CALL, "Event": "StartApp"}, CALL):
            r = post(c, "/music", params)
            assert (r.status_code, r.data) == (200, SILENCE), params
    assert len(reported) == 3
    if behaviour == "steer":
        assert "may answer only Play, Speak and Wait" in reported[0]
        assert "Hangup" in reported[0] and "Speak" not in reported[0].split("has ")[1]
    assert "call c-1" in caplog.text


def test_the_sound_fallback_is_configurable_and_must_be_audio() -> None:
    fallback = Response(Speak("Please keep holding."), Wait(length=5))
    c = music_flow("raise", sound_fallback=fallback).create_app().test_client()
    assert post(c, "/music", WAIT_SOUND).data == fallback.to_bytes()
    with pytest.raises(ConfigurationError, match=r"sound_fallback: .*has Hangup"):
        CallFlow("q", public_url=PUBLIC, auth_token=TOKEN, sound_fallback=Response(Hangup()))
    with pytest.raises(ConfigurationError, match="sound_fallback must be a Response"):
        CallFlow("q", public_url=PUBLIC, auth_token=TOKEN, sound_fallback=Play(HOLD))  # type: ignore[arg-type]


def test_a_sound_route_with_the_store_down_answers_silence() -> None:
    down = RedisStore("redis://127.0.0.1:1/0")
    c = music_flow("play", state=down).create_app().test_client()
    r = post(c, "/music", WAIT_SOUND)
    assert (r.status_code, r.data) == (200, SILENCE)


def test_a_wait_sound_fetch_on_a_plain_route_is_judged_as_a_sound_fetch() -> None:
    # The waitSound fetch names itself (Event=ConferenceRemoteSounds, spec §2.9), so a route
    # not declared sound=True still never answers it with the apology and Hangup.
    flow = CallFlow("q", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        if call.event == "ConferenceRemoteSounds":
            return Response(Speak("Still waiting"), Hangup())
        raise RuntimeError("not a sound fetch")

    c = flow.create_app().test_client()
    assert post(c, "/hold", WAIT_SOUND).data == SILENCE
    assert APOLOGY in post(c, "/hold", {**CALL, "Event": "StartApp"}).data


def test_sound_is_per_url_and_never_a_status_callback() -> None:
    flow = CallFlow("q", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/music", lambda call: None, sound=True)
    with pytest.raises(ConfigurationError, match="sound is per URL"):
        flow.add_route("/music", lambda call: None, event="Hangup")
    with pytest.raises(ConfigurationError, match="one or the other"):
        flow.add_route("/both", lambda call: None, sound=True, status_callback=True)


@pytest.mark.parametrize("store", ["memory", "down"])
def test_a_failing_record_action_answers_an_empty_document(store: str) -> None:
    # Record's redirect defaults to false: its action must answer an empty document, or it
    # interrupts the flow that moved on (spec §1.2, §2.6); the apology and Hangup there
    # cut the voicemail off and hung up on the caller.
    state = MemoryStore() if store == "memory" else RedisStore("redis://127.0.0.1:1/0")
    flow = CallFlow("vm", public_url=PUBLIC, auth_token=TOKEN, state=state)

    @flow.route("/recorded")
    def recorded(call: CallRequest) -> Response:
        raise RuntimeError("the CRM is down")

    c = flow.create_app().test_client()
    r = post(c, "/recorded", {**CALL, "Event": "Record", "RecordingID": "r-1"})
    assert (r.status_code, r.data) == (200, SILENCE)
    assert APOLOGY in post(c, "/recorded", {**CALL, "Event": "StartApp"}).data


def test_check_sends_a_sound_route_a_wait_sound_fetch_and_judges_its_answer() -> None:
    results = {r.route: r for r in check_flow(music_flow("steer"))}
    assert results["music"].event == "ConferenceRemoteSounds"
    assert not results["music"].ok
    assert "may answer only Play, Speak and Wait" in " ".join(results["music"].problems)
    good = {r.route: r for r in check_flow(music_flow("play"))}
    assert good["music"].ok, good["music"].problems


def test_lint_warns_of_an_audio_file_given_as_a_sound_url() -> None:
    doc = Response(
        Dial(
            Number("+14155550100"),
            caller_id="+14155551234",
            timeout=20,
            dial_music="https://cdn.example.com/ring.WAV?v=2",
            confirm_sound=PUBLIC + "/whisper",
        ),
        Conference("room", stay_alone=True, wait_sound=HOLD),
    )
    warnings = [str(w) for w in doc.lint() if "audio file" in str(w)]
    assert len(warnings) == 2
    assert warnings[0].startswith("Dial: dialMusic names an audio file")
    assert "Conference: waitSound" in warnings[1] and "sound=True" in warnings[1]


def queue_flow(music_does: str, ring_does: str) -> CallFlow:
    """An inbound line whose caller hears ringback from /ring while an agent is dialled,
    then waits in a room with music from /music."""
    flow = CallFlow("line", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        ringback = PUBLIC + "/nowhere" if ring_does == "missing" else flow.url_for("ring")
        return Response(
            Dial(Number("+14155550123"), caller_id="+14155551234", timeout=20,
                 dial_music=ringback),
            Conference("queue", stay_alone=True, wait_sound=flow.url_for("music")),
        )  # fmt: skip

    # Declared without sound=True, as a user might: the simulator still judges the answer.
    @flow.route("/ring")
    def ring(call: CallRequest) -> Response:
        if ring_does == "steer":
            return Response(Speak("Ringing"), Dial(Number("+14155550124")))
        return Response(Speak("Ringing"))

    @flow.route("/music", sound=True)
    def music(call: CallRequest) -> Response:
        if music_does == "raise":
            raise RuntimeError("no music")
        return Response(Play(HOLD))

    return flow


def test_the_simulator_plays_sound_urls_and_reports_what_vobiz_could_not_play() -> None:
    t = CallSimulator(queue_flow("play", "play")).call(dial="no-answer").run()
    assert t.handler_errors == [] and t.said("Ringing")
    # Played, and noted: Vobiz's pages name only Speak and Wait for a wait sound.
    notes = [e.text for e in t.events_of("note")]
    assert any("the waitSound URL /music answered a Play" in n for n in notes), notes
    assert not any("dialMusic" in n for n in notes)
    t = CallSimulator(queue_flow("play", "steer")).call(dial="no-answer").run()
    assert len(t.handler_errors) == 1
    assert "the dialMusic URL /ring: a sound URL" in t.handler_errors[0]
    assert "Dial" in t.handler_errors[0] and not t.ended_normally
    t = CallSimulator(queue_flow("raise", "play")).call(dial="no-answer").run()
    assert t.handler_errors == ["music: RuntimeError: no music"]
    assert not any(APOLOGY.decode() in line for line in t.heard)


def test_the_simulator_reports_a_sound_url_that_answers_no_document() -> None:
    t = CallSimulator(queue_flow("play", "missing")).call(dial="no-answer").run()
    assert t.handler_errors == [
        "the dialMusic URL /nowhere answered HTTP 404: it must answer a VobizXML document "
        "of Play, Speak and Wait (an audio file goes in a Play there)"
    ]


def test_a_wait_sound_fetch_on_a_status_callback_route_gets_its_audio() -> None:
    # A Conference's callbackUrl may also be its waitSound: the fetch wants a document,
    # where a status callback's answer (an empty text/plain 200) is none.
    flow = CallFlow("q", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/room", status_callback=True)
    def room(call: CallRequest) -> Response | None:
        if call.event == "ConferenceRemoteSounds":
            return Response(Play(HOLD))
        return None

    c = flow.create_app().test_client()
    r = post(c, "/room", WAIT_SOUND)
    assert (r.status_code, r.content_type) == (200, "application/xml; charset=utf-8")
    assert parse(r.data) == Response(Play(HOLD))
    r = post(c, "/room", {**CALL, "Event": "ConferenceEnter"})
    assert (r.status_code, r.data) == (200, b"")


def test_a_store_that_cannot_be_opened_answers_each_webhook_as_the_store_down(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # With no replay check first (verify=False here), the store is first opened for the
    # call's state: a failure there skipped the sound and Record answers and the log's call.
    # A file in a directory that does not exist: taken when the flow is made (the
    # directory may be made later), it cannot be opened.
    flow = CallFlow("q", verify=False, state=f"sqlite:///{tmp_path}/missing-dir/state.db")
    flow.add_route("/music", lambda call: Response(Play(HOLD)), sound=True)
    flow.add_route("/recorded", lambda call: Response(Speak("Thanks")))
    c = flow.create_app().test_client()
    with caplog.at_level(logging.ERROR, logger="answerkit"):
        assert c.post("/music", data=WAIT_SOUND).data == SILENCE
        record = {**CALL, "Event": "Record", "RecordingID": "r-1"}
        assert c.post("/recorded", data=record).data == SILENCE
        assert APOLOGY in c.post("/recorded", data={**CALL, "Event": "StartApp"}).data
        r = c.post("/recorded", data={**CALL, "Event": "Hangup"})
        assert r.status_code == 503  # sent again by Vobiz, when the store may be back
    assert "call c-1 event ConferenceRemoteSounds: state store failed" in caplog.text


def test_a_refused_sound_declaration_leaves_no_route_behind() -> None:
    flow = CallFlow("q", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    with pytest.raises(ConfigurationError, match="one or the other"):
        flow.add_route("/music", lambda call: None, sound=True, status_callback=True)
    assert flow.routes == []
    flow.add_route("/music", lambda call: None, sound=True)  # the corrected declaration
    assert [(r.path, r.sound) for r in flow.routes] == [("/music", True)]
