"""The README's Python examples run as written: a README whose code has drifted from the
library is the first thing a new user trips over."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from answerkit import CallFlow, CallRequest, Dial, Event, Hangup, Number, Response, Speak
from answerkit.loader import load_module
from answerkit.testing import CallSimulator, LocalVobiz

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def block(starting: str) -> str:
    """The README's Python block that starts with ``starting`` (its first line)."""
    found = [b for b in BLOCKS if b.startswith(starting)]
    assert len(found) == 1, f"README: expected one python block starting {starting!r}"
    return found[0]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOBIZ_AUTH_TOKEN", "readme-token-0123456789")
    monkeypatch.setenv("ANSWERKIT_STATE_URL", "memory://")


def test_every_python_block_compiles() -> None:
    assert len(BLOCKS) >= 6
    for i, code in enumerate(BLOCKS):
        compile(code, f"README.md python block {i + 1}", "exec")


def run(code: str, namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(code, "README.md", "exec"), namespace)  # our own README
    return namespace


def test_the_call_flow_in_14_lines_runs_as_written(env: None) -> None:
    code = block("from answerkit import CallFlow")
    lines = [line for line in code.splitlines() if line.strip()]
    assert "## A call flow in 14 lines" in README and len(lines) == 14
    ns = run(code, {})
    t = CallSimulator(ns["flow"]).call("answer", digits="1", dial="answer").run()
    assert t.said("Connecting you.") and t.dials[0]["numbers"] == ["+14156667890"], t
    assert t.ended_normally, t
    # The blocks that extend it: a Hangup handler on the same URL, a document built in
    # with blocks.
    logged: list[tuple[Any, ...]] = []

    class Crm:
        def log_call_end(self, *args: Any) -> None:
            logged.append(args)

    # Declared before the app is made, as a real module would: the last line makes it.
    before_app = code.replace("app = flow.create_app()", "")
    fresh = run(before_app, {})
    run(block('@flow.route("/answer", event=Event.Hangup)'), {**fresh, "Event": Event,
                                                            "crm": Crm()})  # fmt: skip
    CallSimulator(fresh["flow"]).call("answer", digits="2").run()
    assert logged and logged[0][1] == "Normal Hangup"
    doc = run(block("with Response() as doc:"), {**fresh})["doc"]
    assert "<Gather" in doc.to_xml() and doc.to_xml().endswith("<Hangup/></Response>")


def test_the_recipe_and_the_simulator_test_run_as_written(env: None) -> None:
    flow = CallFlow("support", public_url="https://voice.example.com")

    @flow.route("/sales")
    def sales(call: CallRequest) -> Response:
        return Response(Speak("Connecting you to sales."), Hangup())

    @flow.route("/support")
    def support(call: CallRequest) -> Response:
        return Response(
            Speak("Connecting you to support."),
            Dial(Number("+14156667890"), caller_id="+14155551234"),
        )

    @flow.route("/voicemail")
    def voicemail(call: CallRequest) -> Response:
        return Response(Speak("Leave a message."), Hangup())

    ns = run(block("from answerkit.recipes import"), {"flow": flow})
    ns = run(block("from answerkit.testing import CallSimulatorFactory"), ns)
    with CallSimulator(flow) as sim:
        ns["test_support_path"](lambda target: sim)


def test_the_warm_transfer_test_runs_as_written(
    env: None,
    monkeypatch: pytest.MonkeyPatch,
    call_simulator: Callable[..., CallSimulator],
    local_vobiz: LocalVobiz,
) -> None:
    monkeypatch.setenv("ANSWERKIT_PUBLIC_URL", "https://voice.example.com")
    example = load_module(str(ROOT / "examples" / "warm_transfer.py"))
    ns = run(block("def test_warm("), {"flow": example.flow, "warm": example.transfer})
    ns["test_warm"](call_simulator, local_vobiz)


def test_the_scripting_example_runs_as_written(env: None) -> None:
    ns = run(block("from answerkit import CallFlow"), {})
    ns = run(block("def test_caller_hangs_up_during_the_menu("), ns)
    with CallSimulator(ns["flow"]) as sim:
        ns["test_caller_hangs_up_during_the_menu"](lambda target: sim)


def test_the_sound_route_and_transfer_blocks_run_as_written(env: None) -> None:
    flow = CallFlow("readme", public_url="https://voice.example.com")

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        return Response(Speak("Please hold."))

    # Names the README's first block imports.
    earlier = {"flow": flow, "CallRequest": CallRequest, "Response": Response}
    ns = run(block("from answerkit import Play"), earlier)
    doc = ns["hold_music"](CallRequest.from_params({"CallUUID": "c-1"}))
    assert doc.to_xml().endswith(
        '<Play loop="0">https://cdn.example.com/hold.mp3</Play></Response>'
    )
    with LocalVobiz() as vobiz, flow.standing_in(client=vobiz.client()):
        call_uuid = vobiz.add_call().call_uuid
        ns = run(block("result = flow.transfer("), {"flow": flow, "call_uuid": call_uuid})
        assert ns["result"].message == "call transferred"
        sent = vobiz.requests[0].json
        assert sent["aleg_url"] == "https://voice.example.com/hold?reason=vip", sent


def test_the_transfer_against_local_vobiz_runs_as_written() -> None:
    from conftest import free_port

    # As written but on a free port: 8765 may be taken on a shared machine.
    code = block("import threading\nfrom werkzeug.serving import make_server")
    assert code.count("8765") == 2
    ns = run(code.replace("8765", str(free_port())), {})
    assert ns["outcome"].http_status == 200 and not ns["vobiz"].running
