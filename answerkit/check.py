"""``answerkit check``: call every route with signed sample webhooks and validate the answers.

Meant for users' own CI: a handler that raises, times out or returns invalid XML is a
failure here, even though in production the flow would serve its fallback instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from answerkit.app import CallFlow
from answerkit.dispatch import Handler, Route
from answerkit.elements import Response
from answerkit.errors import ElementError
from answerkit.parse import parse
from answerkit.request import CallRequest, Event
from answerkit.signature import sign
from answerkit.state import MemoryStore
from answerkit.testing.local_vobiz import LocalVobiz

SAMPLE_CALL = {
    "CallUUID": "00000000-check-4000-8000-000000000001",
    "From": "14155550100",
    "To": "14155550199",
    "Direction": "inbound",
    "CallStatus": "in-progress",
    "CallerName": "answerkit check",
}

_B_LEG = "00000000-check-4000-8000-00000000000b"
_DIAL_LEG = {
    "DialALegUUID": SAMPLE_CALL["CallUUID"],
    "DialBLegUUID": _B_LEG,
    "DialBLegStatus": "answer",
    "DialBLegFrom": "14155550199",
    "DialBLegTo": "14155550123",
    "DialBLegPosition": "1",
}
_ROOM = {
    "ConferenceName": "answerkit-check",
    "ConferenceUUID": "00000000-check-4000-8000-0000000000c0",
    "ConferenceMemberID": "1",
}
_STREAM = {
    "StreamID": "00000000-check-4000-8000-00000000005e",
    "Timestamp": "2026-01-01 00:00:00.000000",
    "Error": "",
}

# Every field Vobiz sends with each event (spec §2), as the simulator sends them: a
# handler that reads one (call.conference_name.lower()) failed here on a field left out,
# while the simulator and Vobiz passed it. tests/test_cli.py holds the two to one list.
SAMPLE_EVENT_FIELDS: dict[str, dict[str, str]] = {
    Event.StartApp.value: {"CallStatus": "ringing"},
    Event.Ring.value: {
        "CallStatus": "ringing",
        "Direction": "outbound",
        "RequestUUID": SAMPLE_CALL["CallUUID"],
        "ALegRequestUUID": SAMPLE_CALL["CallUUID"],
    },
    Event.Hangup.value: {
        "CallStatus": "completed",
        "HangupCause": "NORMAL_CLEARING",
        "HangupCauseCode": "4000",
        "HangupCauseName": "Normal Hangup",
        "HangupSource": "Caller",
        "Duration": "12",
        "BillDuration": "60",
        "StartTime": "2026-01-01 00:00:00",
        "AnswerTime": "2026-01-01 00:00:01",
        "EndTime": "2026-01-01 00:00:13",
    },
    Event.DialAction.value: {
        "DialStatus": "completed",
        "DialRingStatus": "true",
        "DialHangupCause": "NORMAL_CLEARING",
        "DialALegUUID": SAMPLE_CALL["CallUUID"],
        "DialBLegUUID": _B_LEG,
    },
    Event.DialAnswer.value: {"DialAction": "answer", **_DIAL_LEG},
    Event.DialConnected.value: {"DialAction": "connected", **_DIAL_LEG},
    Event.DialDigitsMatch.value: {
        "DialAction": "digits",
        "DialDigitsMatch": "*9",
        "DialDigitsPressedBy": "bleg",
        **_DIAL_LEG,
    },
    Event.DialHangup.value: {
        "DialAction": "hangup",
        **_DIAL_LEG,
        "DialBLegStatus": "hangup",
        "DialBLegDuration": "12",
        "DialBLegBillDuration": "60",
        "DialBLegHangupCause": "NORMAL_CLEARING",
        "DialBLegHangupCauseCode": "4000",
        "DialBLegHangupCauseName": "Normal Hangup",
        "DialBLegHangupSource": "Callee",
    },
    Event.Record.value: {"RecordingID": "00000000-check-4000-8000-0000000000ec"},
    Event.RecordStop.value: {
        "RecordingID": "00000000-check-4000-8000-0000000000ec",
        "RecordUrl": "https://example.com/check.mp3",
        "RecordFile": "https://example.com/check.mp3",
        "RecordingDuration": "5",
        "RecordingDurationMs": "5000",
        "RecordingStartMs": "1767225600000",
        "RecordingEndMs": "1767225605000",
        "RecordingEndReason": "FinishedOnKey",
    },
    Event.ConferenceEnter.value: {
        "ConferenceAction": "enter",
        **_ROOM,
        "ConferenceFirstMember": "true",
    },
    Event.ConferenceExit.value: {
        "ConferenceAction": "exit",
        **_ROOM,
        "ConferenceLastMember": "false",
    },
    Event.ConferenceRemoteSounds.value: {
        "ConferenceAction": "waitSound",
        "ConferenceName": _ROOM["ConferenceName"],
        "ConferenceUUID": "",
        "ConferenceMemberID": "",
    },
    Event.ConferenceDigitsMatch.value: {"ConferenceAction": "digits", **_ROOM},
    Event.StartStream.value: {**_STREAM, "ServiceURL": "wss://example.com/check"},
    Event.PlayedStream.value: {**_STREAM, "Name": "checkpoint"},
    Event.ClearedAudio.value: _STREAM,
    Event.DegradedStream.value: {**_STREAM, "Error": "connection degraded"},
    Event.DroppedStream.value: _STREAM,
    Event.StopStream.value: _STREAM,
    Event.MachineDetection.value: {"Machine": "false"},
}


@dataclass
class CheckResult:
    """The outcome of one sample webhook."""

    flow: str
    route: str
    event: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        lines = [f"{mark} {self.flow}/{self.route} [{self.event}]"]
        lines += [f"     error: {p}" for p in self.problems]
        lines += [f"     advice: {w}" for w in self.warnings]
        return "\n".join(lines)


@contextmanager
def handler_errors(flows: Sequence[CallFlow]) -> Iterator[list[str]]:
    """Collect, as ``route: Type: message`` lines, every error the flows' webhooks meet
    (each answered with the fallback, as in production). The flows' own ``on_error``
    hooks are set aside meanwhile (a local run reports nothing to production tools)."""
    errors: list[str] = []

    def collect(exc: BaseException, call: CallRequest | None, route: str) -> None:
        errors.append(f"{route}: {type(exc).__name__}: {exc}")

    dispatchers = [flow.dispatcher() for flow in flows]
    originals = [d.on_error for d in dispatchers]
    for dispatcher in dispatchers:
        dispatcher.on_error = collect
    try:
        yield errors
    finally:
        for dispatcher, original in zip(dispatchers, originals, strict=True):
            dispatcher.on_error = original


@contextmanager
def none_answers(flow: CallFlow) -> Iterator[list[str]]:
    """Collect the names of the routes whose handler returned None, while in the block.

    None renders as an empty document, which on an answer URL hangs up at once (4010):
    the usual result of a handler that builds its Response and forgets to return it.
    The rendered bytes cannot tell that from a deliberate ``Response()``, so the
    handlers are watched (and put back afterwards).
    """
    names: list[str] = []
    replaced: list[tuple[dict[str | None, Handler], str | None, Handler]] = []

    def watching(handler: Handler, name: str) -> Handler:
        def watch(call: CallRequest) -> Response | None:
            result = handler(call)
            if result is None:
                names.append(name)
            return result

        return watch

    for route in flow.routes:
        for event, handler in list(route.handlers.items()):
            replaced.append((route.handlers, event, handler))
            route.handlers[event] = watching(handler, route.name)
    try:
        yield names
    finally:
        for handlers, event, handler in replaced:
            handlers[event] = handler


def check_flow(flow: CallFlow, app: Flask | None = None) -> list[CheckResult]:
    """Send one signed sample webhook per (route, event) and validate each answer.

    Through ``app`` when given, the Flask app the flow is registered on (its hooks,
    config and extensions are part of what Vobiz reaches), else an app of its own."""
    if app is None:
        app = Flask(f"check-{flow.name}")
        flow.register(app, flow._mount_prefix)
    client = app.test_client()
    results: list[CheckResult] = []
    # The sample calls keep their state and replay records in memory, and their REST calls
    # (a transfer, a WarmTransfer's agent call) go to a local Vobiz API on loopback: a check
    # in CI must neither write to the store the environment names (production's Redis, say)
    # nor move real calls with the credentials it finds there.
    with (
        LocalVobiz() as api,
        flow.standing_in(store=MemoryStore(), client=api.client()),
        handler_errors([flow]) as errors,
        none_answers(flow) as returned_none,
    ):
        if not flow.routes:
            result = CheckResult(flow.name, "-", "-", ok=False)
            result.problems.append("the flow declares no route: nothing of it is served")
            return [result]
        for route in flow.routes:
            for name in _samples(route):
                errors.clear()
                returned_none.clear()
                result = CheckResult(flow.name, route.name, name, ok=True)
                try:
                    reply = _send(client, flow, route, name)
                except SystemExit as exc:
                    # Let through by the dispatcher, as a process exit should be: here it
                    # would end the check early and silently, with the code the app chose.
                    result.problems.append(f"the handler ended the process: {exc!r}")
                    result.ok = False
                    results.append(result)
                    continue
                if reply.status_code != 200:
                    result.problems.append(f"answered HTTP {reply.status_code}")
                result.problems += [e.partition(": ")[2] for e in errors]
                if returned_none and name == Event.StartApp.value and not route.status_callback:
                    result.warnings.append(
                        "the handler returned None: Vobiz gets an empty document and hangs "
                        "up at once (4010); return the Response (Response() if empty is "
                        "meant), or, if this is a hangup_url or another status callback, "
                        f"declare it with @flow.route({route.path!r}, status_callback=True): "
                        "a route's default handler never runs for a Hangup"
                    )
                if (
                    reply.status_code == 200
                    and reply.data
                    and not route.status_callback
                    and name != Event.Hangup.value
                ):
                    try:
                        result.warnings += [str(w) for w in parse(reply.data).lint()]
                    except ElementError as exc:
                        result.problems.append(f"invalid VobizXML: {exc}")
                result.ok = not result.problems
                results.append(result)
    return results


def _samples(route: Route) -> list[str]:
    """The events one route is sent, each once: each it handles by name, and for its
    default handler the one it most often gets."""
    names: list[str] = []
    for event in route.events:
        if event:
            more = [event]
        elif route.status_callback:
            # A status-callback URL (a hangup URL, a Dial's callbackUrl) takes any event:
            # the two it most often gets.
            more = [Event.Hangup.value, Event.DialHangup.value]
        elif route.sound:
            # A sound URL is fetched for audio; waitSound's is the fetch that names itself
            # (the dispatcher holds the answer to Play/Speak/Wait).
            more = [Event.ConferenceRemoteSounds.value]
        else:
            more = [Event.StartApp.value]
        names += [name for name in more if name not in names]
    return names


def _send(client: FlaskClient, flow: CallFlow, route: Route, event: str) -> TestResponse:
    params = {**SAMPLE_CALL, "Event": event, **SAMPLE_EVENT_FIELDS.get(event, {})}
    path = (flow._mount_prefix or "") + route.path
    base = flow.public_url or "http://localhost"
    headers = sign(base + path, flow.auth_tokens[0]) if flow.verify else {}
    return client.post(path, data=params, headers=headers)
