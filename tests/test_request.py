from __future__ import annotations

import copy
import dataclasses
import math
import pickle
import typing
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder

from answerkit import request as request_module
from answerkit._params import parse_form
from answerkit.errors import AnswerkitError
from answerkit.request import (
    CallRequest,
    CallStatus,
    DialStatus,
    Event,
    MissingCallUUID,
    StateNotCarried,
    normalise_number,
)
from answerkit.state import CallState, MemoryStore

UUID = "7c6f3a2e-1b1d-4e59-9a8e-5c0a7d9e2f10"

# Shaped after the VO capture of a real inbound answer request (spec §2.1).
ANSWER = {
    "CallUUID": UUID,
    "From": "917983165036",
    "To": "07971442086",
    "CallStatus": "ringing",
    "Direction": "inbound",
    "Event": "StartApp",
    "CallerName": "+917983165036",
    "SessionStart": "2026-09-14 10:21:33.123456",
    "STIRAttestation": "Not Applicable",
    "STIRVerification": "Not Verified",
    "ParentAuthID": "MA_ABC123",
    "BillRate": "0.00000",
    "CountryCode": "",
    "RouteType": "0",
    "X-VH-Reason": "billing",
    "X-PH-Ticket": "T42",
}

HANGUP = {
    **ANSWER,
    "Event": "Hangup",
    "CallStatus": "completed",
    "HangupCause": "NORMAL_CLEARING",
    "HangupCauseCode": "4000",
    "HangupCauseName": "Normal Hangup",
    "HangupSource": "Caller",
    "Duration": "13",
    "BillDuration": "60",
    "TotalCost": "0.00000",
    "StartTime": "2026-09-14 15:51:33",
    "AnswerTime": "2026-09-14 15:51:35",
    "EndTime": "2026-09-14 15:51:48",
}


def test_answer_request_fields() -> None:
    req = CallRequest.from_params(ANSWER)
    assert req.call_uuid == UUID
    assert req.event is Event.StartApp
    assert req.from_ == "+917983165036"
    assert req.to == "07971442086"  # national 0: left as given
    assert req.status is CallStatus.RINGING
    assert req.direction == "inbound"
    assert req.caller_name == "+917983165036"
    assert req.session_start == "2026-09-14 10:21:33.123456"
    assert req.stir_attestation == "Not Applicable"
    assert req.stir_verification == "Not Verified"
    assert req.parent_auth_id == "MA_ABC123"
    assert req.bill_rate == Decimal("0")
    assert req.country_code is None  # empty means absent
    assert req.sip_headers == {"X-VH-Reason": "billing", "X-PH-Ticket": "T42"}
    assert req.params == ANSWER
    assert req.method == "POST" and req.path == "/"
    assert req.query == {}
    assert req.hangup_cause is None and req.duration is None
    assert not req.is_hangup


def test_hangup_request_fields() -> None:
    req = CallRequest.from_params(HANGUP)
    assert req.event == Event.Hangup == "Hangup"
    assert req.is_hangup
    assert req.status == CallStatus.COMPLETED
    assert req.hangup_cause == "NORMAL_CLEARING"
    assert req.hangup_cause_code == 4000
    assert req.hangup_cause_name == "Normal Hangup"
    assert req.hangup_source == "Caller"
    assert (req.duration, req.bill_duration) == (13, 60)
    assert req.total_cost == Decimal("0.00000")
    assert req.start_time == "2026-09-14 15:51:33"
    assert req.answer_time == "2026-09-14 15:51:35"
    assert req.end_time == "2026-09-14 15:51:48"


def test_gather_fields() -> None:
    dtmf = CallRequest.from_params(
        {"CallUUID": UUID, "InputType": "dtmf", "Digits": "12", "Speech": "", "Event": "Redirect"}
    )
    assert (dtmf.input_type, dtmf.digits, dtmf.speech) == ("dtmf", "12", None)
    speech = CallRequest.from_params(
        {"CallUUID": UUID, "InputType": "speech", "Digits": "", "Speech": "talk to sales",
         "SpeechConfidenceScore": "0.93", "BilledAmount": "0.0050"}
    )  # fmt: skip
    assert speech.digits is None
    assert speech.speech == "talk to sales"
    assert speech.speech_confidence == pytest.approx(0.93)
    assert speech.billed_amount == Decimal("0.0050")
    interim = CallRequest.from_params(
        {"CallUUID": UUID, "StableSpeech": "talk to", "UnstableSpeech": " sa",
         "Stability": "0.4", "SequenceNumber": "3"}
    )  # fmt: skip
    assert interim.stable_speech == "talk to" and interim.unstable_speech == " sa"
    assert interim.stability == pytest.approx(0.4)
    assert interim.sequence_number == 3


def test_dial_fields() -> None:
    action = CallRequest.from_params(
        {"CallUUID": UUID, "Event": "DialAction", "DialStatus": "no-answer",
         "DialRingStatus": "false", "DialHangupCause": "NO_ANSWER", "DialALegUUID": UUID,
         "DialBLegUUID": ""}
    )  # fmt: skip
    assert action.event is Event.DialAction
    assert action.dial_status is DialStatus.NO_ANSWER
    assert action.dial_ring_status is False
    assert action.dial_hangup_cause == "NO_ANSWER"
    assert action.dial_a_leg_uuid == UUID
    assert action.dial_b_leg_uuid is None
    hangup = CallRequest.from_params(
        {"CallUUID": UUID, "Event": "DialHangup", "DialAction": "hangup",
         "DialBLegUUID": "b-leg", "DialBLegStatus": "completed", "DialBLegFrom": "14155551234",
         "DialBLegTo": "sip:agent@example.com", "DialBLegPosition": "1",
         "DialBLegDuration": "42", "DialBLegBillDuration": "60",
         "DialBLegHangupCause": "LOSE_RACE", "DialBLegHangupCauseCode": "9000",
         "DialBLegHangupCauseName": "Lost Race", "DialBLegHangupSource": "Vobiz",
         "DialDigitsMatch": "*9", "DialDigitsPressedBy": "bleg"}
    )  # fmt: skip
    assert hangup.dial_action == "hangup"
    assert hangup.dial_b_leg_uuid == "b-leg"
    assert hangup.dial_b_leg_status == "completed"
    assert hangup.dial_b_leg_from == "+14155551234"
    assert hangup.dial_b_leg_to == "sip:agent@example.com"
    assert hangup.dial_b_leg_position == 1
    assert (hangup.dial_b_leg_duration, hangup.dial_b_leg_bill_duration) == (42, 60)
    assert hangup.dial_b_leg_hangup_cause == "LOSE_RACE"
    assert hangup.dial_b_leg_hangup_cause_code == 9000
    assert hangup.dial_b_leg_hangup_cause_name == "Lost Race"
    assert hangup.dial_b_leg_hangup_source == "Vobiz"
    assert hangup.dial_digits_match == "*9" and hangup.dial_digits_pressed_by == "bleg"


def test_record_fields_and_both_url_spellings() -> None:
    stop = CallRequest.from_params(
        {"CallUUID": UUID, "Event": "RecordStop", "RecordingID": "rec-1",
         "RecordFile": "https://media.example/rec-1.mp3", "RecordingDuration": "12",
         "RecordingDurationMs": "12345", "RecordingStartMs": "1700000000000",
         "RecordingEndMs": "1700000012345", "RecordingEndReason": "HungUp"}
    )  # fmt: skip
    assert stop.event is Event.RecordStop
    assert stop.recording_id == "rec-1"
    assert stop.record_url == "https://media.example/rec-1.mp3"
    assert stop.recording_duration == 12 and stop.recording_duration_ms == 12345
    assert stop.recording_start_ms == 1700000000000
    assert stop.recording_end_ms == 1700000012345
    assert stop.recording_end_reason == "HungUp"
    both = CallRequest.from_params({"CallUUID": UUID, "RecordUrl": "u1", "RecordFile": "u2"})
    assert both.record_url == "u1"
    transcription = CallRequest.from_params(
        {"CallUUID": UUID, "transcription": "hello", "transcription_id": "t1",
         "transcription_url": "https://t", "recording_id": "rec-2"}
    )  # fmt: skip
    assert transcription.transcription == "hello"
    assert transcription.transcription_id == "t1"
    assert transcription.transcription_url == "https://t"
    assert transcription.recording_id == "rec-2"


def test_conference_stream_and_machine_fields() -> None:
    enter = CallRequest.from_params(
        {"CallUUID": UUID, "Event": "ConferenceEnter", "ConferenceAction": "enter",
         "ConferenceUUID": "conf-1", "ConferenceName": "room", "ConferenceMemberID": "7",
         "ConferenceFirstMember": "true"}
    )  # fmt: skip
    assert enter.event is Event.ConferenceEnter
    assert (enter.conference_uuid, enter.conference_name) == ("conf-1", "room")
    assert enter.conference_member_id == "7" and enter.conference_action == "enter"
    assert enter.conference_first_member is True and enter.conference_last_member is None
    leave = CallRequest.from_params({"CallUUID": UUID, "ConferenceLastMember": "False"})
    assert leave.conference_last_member is False
    assert leave.from_ == "" and leave.to == "" and leave.status is None
    stream = CallRequest.from_params(
        {"CallUUID": UUID, "Event": "PlayedStream", "StreamID": "s1", "Name": "cp",
         "ServiceURL": "wss://x", "Error": "", "Timestamp": "2026-09-14 10:00:00",
         "status_callback_url": "https://a.b/s", "status_callback_method": "POST"}
    )  # fmt: skip
    assert stream.stream_id == "s1" and stream.checkpoint_name == "cp"
    # Spec §2.10's two snake_case fields.
    assert stream.status_callback_url == "https://a.b/s"
    assert stream.status_callback_method == "POST"
    assert stream.service_url == "wss://x" and stream.error is None
    assert stream.timestamp == "2026-09-14 10:00:00"
    machine = CallRequest.from_params(
        {"CallUUID": UUID, "Event": "MachineDetection", "Machine": "true"}
    )
    assert machine.event is Event.MachineDetection and machine.machine is True


def test_stir_verification_snake_case_spelling() -> None:
    req = CallRequest.from_params({"CallUUID": UUID, "stir_verification": "Verified"})
    assert req.stir_verification == "Verified"


@pytest.mark.parametrize(
    ("field", "param", "raw"),
    [
        ("duration", "Duration", "abc"),
        ("duration", "Duration", "1_000"),
        ("duration", "Duration", "٣"),
        ("duration", "Duration", "9" * 5000),
        ("bill_duration", "BillDuration", "12.5"),
        ("hangup_cause_code", "HangupCauseCode", "40x0"),
        ("speech_confidence", "SpeechConfidenceScore", "nan"),
        ("speech_confidence", "SpeechConfidenceScore", "inf"),
        ("speech_confidence", "SpeechConfidenceScore", "high"),
        ("speech_confidence", "SpeechConfidenceScore", "0_5"),
        ("bill_rate", "BillRate", "0_005"),
        ("bill_rate", "BillRate", "NaN"),
        ("bill_rate", "BillRate", "1,5"),
        # Finite, but int() or f"{cost:.2f}" of them would build a billion digits.
        ("total_cost", "TotalCost", "1e999999999"),
        ("billed_amount", "BilledAmount", "1E-999999999"),
        ("dial_ring_status", "DialRingStatus", "maybe"),
        ("machine", "Machine", "unknown"),
    ],
)
def test_malformed_values_become_none_and_stay_raw(field: str, param: str, raw: str) -> None:
    req = CallRequest.from_params({"CallUUID": UUID, param: raw})
    assert getattr(req, field) is None
    assert req.params[param] == raw


def test_amounts_in_any_plain_spelling_are_decimals() -> None:
    for raw, expected in (("0.00000", "0"), ("0.0045", "0.0045"), ("1E-7", "0.0000001"),
                          ("12", "12"), ("-0.5", "-0.5")):  # fmt: skip
        req = CallRequest.from_params({"CallUUID": UUID, "TotalCost": raw})
        assert req.total_cost == Decimal(expected)


def test_integer_with_zero_fraction_accepted() -> None:
    assert CallRequest.from_params({"CallUUID": UUID, "Duration": " 13.0 "}).duration == 13


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("917983165036", "+917983165036"),
        ("+917983165036", "+917983165036"),
        (" 14155551234 ", "+14155551234"),
        ("+1 (415) 555-1234", "+14155551234"),
        ("+44 (0) 20 7946 0018", "+44 (0) 20 7946 0018"),  # the trunk 0: left as given
        ("07971442086", "07971442086"),
        ("0091 7983165036", "0091 7983165036"),
        ("sip:alice@example.com", "sip:alice@example.com"),
        ("SIP:1234@pbx.example", "SIP:1234@pbx.example"),
        ("alice@example.com", "alice@example.com"),
        ("anonymous", "anonymous"),
        ("1001", "1001"),
        ("123456", "123456"),  # fewer than 7 digits: an extension, left as given
        ("1234567", "+1234567"),  # 7 digits: the shortest E.164 number taken
        ("", ""),
        ("1234567890123456", "1234567890123456"),
        ("٩١٧٩٨٣١٦٥٠٣٦", "٩١٧٩٨٣١٦٥٠٣٦"),
    ],
)
def test_normalise_number(given_: str, expected: str) -> None:
    assert normalise_number(given_) == expected


def test_missing_call_uuid() -> None:
    for params in ({}, {"CallUUID": ""}, {"CallUUID": "   "}, {"From": "1", "Event": "Hangup"}):
        with pytest.raises(MissingCallUUID) as info:
            CallRequest.from_params(params)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, AnswerkitError)
        assert "CallUUID" in str(info.value)
        assert "missing" in str(info.value)
        assert "not a Vobiz callback" in str(info.value)


def test_unknown_event_kept_as_string() -> None:
    req = CallRequest.from_params({"CallUUID": UUID, "Event": "BrandNewEvent"})
    assert req.event == "BrandNewEvent"
    assert not isinstance(req.event, Event)
    assert CallRequest.from_params({"CallUUID": UUID}).event == ""
    status = CallRequest.from_params({"CallUUID": UUID, "CallStatus": "queued"}).status
    assert status == "queued" and not isinstance(status, CallStatus)


def test_padded_event_and_statuses_are_read_like_the_call_uuid() -> None:
    # CallUUID was stripped and Event was not: "Hangup " ran the answer route's handler.
    req = CallRequest.from_params(
        {"CallUUID": f" {UUID} ", "Event": "Hangup ", "CallStatus": " completed",
         "DialStatus": "busy\n"}
    )  # fmt: skip
    assert req.call_uuid == UUID and req.event is Event.Hangup and req.is_hangup
    assert req.status is CallStatus.COMPLETED and req.dial_status is DialStatus.BUSY
    assert req.params["Event"] == "Hangup "  # the raw value is kept as sent


def test_event_values_and_str() -> None:
    assert str(Event.StartApp) == "StartApp"
    assert f"{Event.DialAction}" == "DialAction"
    assert Event("Record") is Event.Record
    assert str(CallStatus.IN_PROGRESS) == "in-progress"
    expected = {
        "StartApp", "Ring", "Hangup", "Transfer", "Redirect", "DialAction", "DialAnswer",
        "DialConnected", "DialDigitsMatch", "DialHangup", "RecordStop", "ConferenceEnter",
        "ConferenceExit", "ConferenceRemoteSounds", "ConferenceDigitsMatch", "StartStream",
        "PlayedStream", "ClearedAudio", "DegradedStream", "DroppedStream", "StopStream",
        "MachineDetection", "Record",
    }  # fmt: skip
    assert {e.value for e in Event} == expected


def test_multidict_keeps_duplicates_first_wins() -> None:
    params = MultiDict([("CallUUID", UUID), ("Digits", "1"), ("Digits", "2")])
    req = CallRequest.from_params(params)
    assert req.digits == "1"
    assert req.params["Digits"] == "1"
    assert req.getlist("Digits") == ["1", "2"]
    assert req.params_multi["Digits"] == ("1", "2")
    assert req.getlist("Nope") == []


def test_pairs_and_odd_values_do_not_raise() -> None:
    pairs = [
        ("CallUUID", UUID),
        ("From", b"\xff\xfe91"),
        ("CallerName", "caf\udce9"),  # a lone surrogate, as surrogateescape produces
        ("Duration", None),
        ("SequenceNumber", 7),
        ("X-VH-Bin", b"\x00\x01"),
    ]
    req = CallRequest.from_params(pairs)
    assert req.from_.startswith("\ufffd")
    assert req.caller_name == "caf\udce9"
    assert req.duration is None
    assert req.sequence_number == 7
    assert req.sip_headers["X-VH-Bin"] == "\x00\x01"


def test_params_and_query_are_read_only_and_separate() -> None:
    # A GET callback: Vobiz's fields and our own ?attempt=2 share the query string.
    args = MultiDict(
        [("attempt", "2"), ("CallUUID", UUID), ("Digits", "5"), ("X-PH-Team", "a"),
         ("Event", "Redirect"), ("From", "14155550100")]
    )  # fmt: skip
    req = CallRequest.from_params(args, method="get", query=args, path="/menu")
    assert req.method == "GET" and req.path == "/menu"
    # Only our own: dict(call.query) passed on to url_for must carry no stale Vobiz field.
    assert dict(req.query) == {"attempt": "2"}
    assert req.params["attempt"] == "2"
    assert req.digits == "5"
    with pytest.raises(TypeError):
        req.params["CallUUID"] = "other"  # type: ignore[index]
    with pytest.raises(TypeError):
        req.query["attempt"] = "3"  # type: ignore[index]
    post = CallRequest.from_params({"CallUUID": UUID}, query={"attempt": "1"})
    assert post.query == {"attempt": "1"} and "attempt" not in post.params


def test_from_werkzeug_form() -> None:
    builder = EnvironBuilder(
        method="POST",
        path="/answer?attempt=2",
        data={"CallUUID": UUID, "From": "917983165036", "Event": "StartApp"},
    )
    request = builder.get_request()
    req = CallRequest.from_params(request.form, query=request.args, path=request.path)
    assert req.from_ == "+917983165036"
    assert req.query == {"attempt": "2"}
    assert req.path == "/answer"


def test_request_is_frozen() -> None:
    req = CallRequest.from_params(ANSWER)
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.digits = "9"  # type: ignore[misc]


def test_default_state_is_private_memory() -> None:
    req = CallRequest.from_params(ANSWER)
    assert isinstance(req.state, CallState)
    assert dict(req.state) == {}
    req.state["seen"] = 1
    assert req.state["seen"] == 1
    other = CallRequest.from_params(ANSWER)
    assert "seen" not in other.state


def test_with_state_and_state_argument() -> None:
    store = MemoryStore()
    store.set(UUID, "attempts", 2)
    req = CallRequest.from_params(ANSWER)
    attached = req.with_state(CallState(store, UUID))
    assert attached.state["attempts"] == 2
    assert "attempts" not in req.state
    assert attached == req  # state is not part of equality
    direct = CallRequest.from_params(ANSWER, state=store.state(UUID))
    assert direct.state.incr("attempts") == 3


def test_repr_leaks_no_numbers() -> None:
    text = repr(CallRequest.from_params(ANSWER))
    assert UUID in text and "StartApp" in text
    assert "7983165036" not in text and "MA_ABC123" not in text


@given(
    st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=20),
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != ""),
)
def test_any_params_with_call_uuid_parse(params: dict[str, str], uuid: str) -> None:
    params["CallUUID"] = uuid
    req = CallRequest.from_params(params)
    assert req.call_uuid == uuid.strip()
    assert dict(req.params) == params


@given(st.binary(max_size=300) | st.text(st.sampled_from("ab=&%+2F3Dé\x00 ;"), max_size=80).map(
    lambda text: text.encode()))  # fmt: skip
def test_parse_form_reads_as_parse_qsl(body: bytes) -> None:
    expected = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, errors="replace")
    fields = parse_form(body)
    first: dict[str, str] = {}
    every: dict[str, list[str]] = {}
    for key, value in expected:
        first.setdefault(key, value)
        every.setdefault(key, []).append(value)
    assert list(fields.items()) == list(first.items())
    assert dict(fields.lists()) == every


def test_parsed_form_keeps_repeats_for_the_request() -> None:
    body = urlencode([("CallUUID", UUID), ("Digits", "1"), ("X-PH-A", "x"), ("Digits", "2")])
    req = CallRequest.from_params(parse_form(body.encode()))
    assert req.digits == "1" and req.getlist("Digits") == ["1", "2"]
    assert req.params_multi["CallUUID"] == (UUID,) and req.sip_headers == {"X-PH-A": "x"}


def test_fields_read_on_demand_match_a_request_built_whole() -> None:
    # from_params converts a field on first read; the result is the same request as one
    # given every field up front (equality reads every field).
    lazy = CallRequest.from_params(HANGUP)
    whole = dataclasses.replace(lazy)
    assert lazy == whole and repr(lazy) == repr(whole)
    for f in dataclasses.fields(CallRequest):
        if f.name != "state":
            assert getattr(CallRequest.from_params(HANGUP), f.name) == getattr(whole, f.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lazy.duration = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        lazy.no_such_field  # type: ignore[attr-defined]  # noqa: B018
    assert CallRequest(call_uuid=UUID).digits is None


_TYPED = {
    name: hint
    for name, hint in typing.get_type_hints(CallRequest).items()
    if name not in ("state", "params", "params_multi", "query", "sip_headers")
}
_PARAM_NAMES = sorted({n for _attr, names, _conv in request_module._FIELDS for n in names})
_ODD_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["0", "-1", "+7", "13.0", "1e3", "1E-7", "1_000", "0x10", "true", "FALSE",
                     "yes", "NaN", "-inf", "1e309", "1e999999999", " 5 ", "\u0663", "\x00"]),
)  # fmt: skip


@settings(max_examples=300, derandomize=True, database=None)
@given(st.fixed_dictionaries({}, optional=dict.fromkeys(_PARAM_NAMES, _ODD_VALUES)))
def test_every_typed_field_has_its_declared_type_whatever_vobiz_sends(
    params: dict[str, str],
) -> None:
    """Numbers are finite and bounded, booleans are bools, text stays text, and nothing
    raises: the raw value of anything that did not parse is still in ``params``."""
    req = CallRequest.from_params({"CallUUID": UUID, **params})
    for name, hint in _TYPED.items():
        value = getattr(req, name)
        allowed = typing.get_args(hint) or (hint,)
        assert isinstance(value, allowed), (name, value, hint)
        if isinstance(value, float):
            assert math.isfinite(value)
        if isinstance(value, Decimal):
            assert value.is_finite() and abs(value.adjusted()) <= 30
        if isinstance(value, int) and not isinstance(value, bool):
            assert abs(value) < 10**30
    assert {k: v for k, v in req.params.items() if k != "CallUUID"} == params


def test_a_transcription_without_call_uuid_is_taken() -> None:
    """Spec §2.6: a transcriptionUrl gets four snake_case fields and no CallUUID."""
    call = CallRequest.from_params(
        {"transcription": "hello", "transcription_id": "t-1", "recording_id": "r-1"}
    )
    assert call.call_uuid == "" and call.transcription == "hello" and call.recording_id == "r-1"
    with pytest.raises(MissingCallUUID):
        CallRequest.from_params({"recording_id": "r-1"})


def test_a_dict_of_lists_gives_every_value_of_each_name() -> None:
    # parse_qs() and MultiDict.to_dict(flat=False) shape a request so; each list was once
    # read as one string ("['u1']"), and a Hangup was not taken for one.
    from urllib.parse import parse_qs

    req = CallRequest.from_params(
        parse_qs("CallUUID=u1&Event=Hangup&From=917983165036&Digits=1&Digits=2")
    )
    assert (req.call_uuid, req.event, req.from_) == ("u1", "Hangup", "+917983165036")
    assert req.is_hangup and req.getlist("Digits") == ["1", "2"]
    flat = MultiDict([("CallUUID", "u2"), ("Digits", "3"), ("Digits", "4")]).to_dict(flat=False)
    assert CallRequest.from_params(flat).getlist("Digits") == ["3", "4"]
    assert CallRequest.from_params({"CallUUID": ("u3",)}).call_uuid == "u3"


# --- pickling: a request travels to a background job, its state does not -----------------


def _pickled_request() -> CallRequest:
    return CallRequest.from_params(
        [("CallUUID", "c-pickle"), ("From", "14155550100"), ("Event", "Hangup"),
         ("Digits", "12"), ("X-PH-Tenant", "acme"), ("Tag", "a"), ("Tag", "b")],
        method="GET",
        query={"attempt": "2", "CallUUID": "c-pickle"},
        path="/menu",
    )  # fmt: skip


def test_a_request_pickles_with_every_field_and_value() -> None:
    call = _pickled_request()
    copy_ = pickle.loads(pickle.dumps(call))
    assert copy_ == call and type(copy_) is CallRequest
    assert copy_.getlist("Tag") == ["a", "b"] and dict(copy_.params) == dict(call.params)
    assert dict(copy_.query) == {"attempt": "2"} and copy_.method == "GET"
    assert copy_.path == "/menu" and copy_.from_ == "+14155550100"
    assert copy_.event == Event.Hangup and copy_.digits == "12"
    assert dict(copy_.sip_headers) == {"X-PH-Tenant": "acme"}


def test_the_state_of_a_pickled_request_says_it_did_not_travel() -> None:
    store = MemoryStore()
    call = _pickled_request().with_state(CallState(store, "c-pickle"))
    call.state["step"] = "menu"
    for copy_ in (pickle.loads(pickle.dumps(call)), copy.deepcopy(call)):
        with pytest.raises(StateNotCarried, match=r"call\.with_state\(flow\.store\.state"):
            copy_.state["step"]
        assert isinstance(StateNotCarried("x"), (AnswerkitError, AttributeError))
        attached = copy_.with_state(store.state(copy_.call_uuid))
        assert attached.state["step"] == "menu"
    shallow = copy.copy(call)  # a shallow copy shares the very state
    assert shallow.state is call.state


def test_a_pickled_request_keeps_every_field_as_it_was_not_as_params_say() -> None:
    # Rebuilt from params, a field set with dataclasses.replace came back as params had it
    # (Digits 9 read 1), and a request built with the constructor could not be unpickled.
    changed = dataclasses.replace(_pickled_request(), digits="9")
    built = CallRequest(call_uuid="c-built", digits="5")
    for call in (changed, built):
        for copy_ in (pickle.loads(pickle.dumps(call)), copy.deepcopy(call)):
            assert copy_ == call and copy_.digits == call.digits
            # dataclasses.replace of the copy keeps saying its state did not travel: it
            # gave an empty private state, whose writes went nowhere.
            again = dataclasses.replace(copy_, digits="7")
            with pytest.raises(StateNotCarried):
                again.state.get("step")
            assert copy_.with_state(MemoryStore().state(call.call_uuid)).state.get("x") is None


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class _TenantRequest(CallRequest):
    tenant: str = "none"


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class _RequiredTenant(CallRequest):
    tenant: str


def test_a_subclass_with_a_required_field_of_its_own_unpickles() -> None:
    call = _RequiredTenant(call_uuid="c-req", tenant="acme")
    copy_ = pickle.loads(pickle.dumps(call))
    assert type(copy_) is _RequiredTenant and copy_.tenant == "acme" and copy_ == call


@dataclasses.dataclass(frozen=True, kw_only=True, repr=False)
class _Seeded(CallRequest):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.state.setdefault("seeded", True)  # reads its state as it is made


def test_a_subclass_whose_post_init_reads_its_state_unpickles() -> None:
    copy_ = pickle.loads(pickle.dumps(_Seeded(call_uuid="c-seed")))
    assert type(copy_) is _Seeded
    with pytest.raises(StateNotCarried):
        copy_.state.get("seeded")


def test_a_subclass_pickles_with_its_own_fields() -> None:
    call = dataclasses.replace(_TenantRequest.from_params({"CallUUID": "c-t"}), tenant="acme")
    copy_ = pickle.loads(pickle.dumps(call))
    assert type(copy_) is _TenantRequest and copy_.tenant == "acme" and copy_ == call
    with pytest.raises(StateNotCarried):
        copy_.state.get("x")
