"""Every example in examples/, played through the call simulator: happy and failure paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from answerkit.loader import load_module
from answerkit.testing import CallSimulator, LocalVobiz

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = "example-token-0123456789"
PUBLIC = "https://voice.example.com"
SECRET = "trigger-secret-0123456789"

Loader = Callable[[str], ModuleType]


@pytest.fixture
def load_example(monkeypatch: pytest.MonkeyPatch, local_vobiz: LocalVobiz) -> Loader:
    monkeypatch.setenv("VOBIZ_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("ANSWERKIT_PUBLIC_URL", PUBLIC)
    monkeypatch.setenv("ANSWERKIT_STATE_URL", "memory://")
    monkeypatch.setenv("TRANSFER_TRIGGER_SECRET", SECRET)

    def load(name: str) -> ModuleType:
        module = load_module(str(EXAMPLES / f"{name}.py"))
        module.flow.transfers.client = local_vobiz.client()
        return module

    return load


@pytest.fixture
def sim_for(call_simulator: Callable[..., CallSimulator]) -> Callable[[ModuleType], CallSimulator]:
    def make(module: ModuleType) -> CallSimulator:
        return call_simulator(module.flow, app=module.app)

    return make


def test_every_example_is_covered() -> None:
    names = {p.stem for p in EXAMPLES.glob("*.py")}
    assert names == {"ivr", "warm_transfer", "forwarding", "transfer_url"}


# -- IVR menu -------------------------------------------------------------------------------


def test_ivr_happy_path_by_key_and_by_speech(load_example: Loader, sim_for: Any) -> None:
    sim = sim_for(load_example("ivr"))
    t = sim.call("main", digits="1", dial="answer").run()
    assert t.said("Welcome to Example Corp.")
    assert t.said("Connecting you to sales.")
    assert t.dials[0]["numbers"] == ["+14155550101", "+14155550102"]
    assert t.ended_normally
    assert not t.said("Sales is busy right now.")  # only when the dial did not connect
    t = sim.call("main", speech="I need support please").run()
    assert t.said("Connecting you to support.")


def test_ivr_no_input_retries_then_voicemail(load_example: Loader, sim_for: Any) -> None:
    sim = sim_for(load_example("ivr"))
    t = sim.call("main", digits=[None, None, None]).run()
    assert sum(h.startswith("Sorry, we did not get your choice") for h in t.heard) == 2
    assert t.said("Please leave a message after the beep.")
    assert t.recordings and t.ended
    # The file reaches the app: RecordStop at callback_url, after the recording (§2.6).
    [stop] = t.webhooks_for("RecordStop")
    assert stop.url.endswith("/message-saved") and stop.status == 200
    assert stop.params["RecordUrl"] and t.ended_normally


def test_ivr_invalid_digit_reprompts_then_accepts(load_example: Loader, sim_for: Any) -> None:
    sim = sim_for(load_example("ivr"))
    t = sim.call("main", digits="9,0", dial="answer").run()
    assert t.said("Sorry, that is not a valid choice.")
    assert t.dials[0]["numbers"] == ["+14155550110"]


def test_ivr_repeated_invalid_digits_end_in_voicemail(load_example: Loader, sim_for: Any) -> None:
    sim = sim_for(load_example("ivr"))
    t = sim.call("main", digits="9,8,7").run()
    assert t.said("Please leave a message")


def test_ivr_sales_busy_plays_the_busy_message(load_example: Loader, sim_for: Any) -> None:
    sim = sim_for(load_example("ivr"))
    t = sim.call("main", digits="1", dial="busy").run()
    assert t.said("Sales is busy right now.")
    assert t.hangup_cause_code == 4000


# -- forwarding -----------------------------------------------------------------------------


def test_forwarding_first_number_answers(load_example: Loader, sim_for: Any) -> None:
    sim = sim_for(load_example("forwarding"))
    t = sim.call("forward", dial="answer").run()
    assert [d["numbers"] for d in t.dials] == [["+14155550121"]]
    assert t.ended_normally


def test_forwarding_tries_each_number_in_turn_then_voicemail(
    load_example: Loader, sim_for: Any
) -> None:
    sim = sim_for(load_example("forwarding"))
    t = sim.call("forward", dial="busy,no-answer,failed").run()
    assert [d["numbers"] for d in t.dials] == [
        ["+14155550121"],
        ["+14155550122"],
        ["sip:oncall@example.sip.vobiz.ai"],
    ]
    assert t.said("Please leave a message after the beep.")


def test_forwarding_second_number_answers(load_example: Loader, sim_for: Any) -> None:
    sim = sim_for(load_example("forwarding"))
    t = sim.call("forward", dial="no-answer,answer").run()
    assert len(t.dials) == 2 and not t.said("leave a message")


# -- warm transfer --------------------------------------------------------------------------


def start_warm(
    load_example: Loader, sim_for: Any, **agent: Any
) -> tuple[ModuleType, CallSimulator, Any]:
    """The warm-transfer example with the agent scripted by ``agent``; the caller presses 1."""
    module = load_example("warm_transfer")
    sim = sim_for(module)
    sim.expect_outbound("+14155550142", **agent)
    caller = sim.call("answer", digits="1")
    caller.run()
    return module, sim, caller


def test_warm_transfer_agent_accepts(load_example: Loader, sim_for: Any) -> None:
    module, sim, caller = start_warm(load_example, sim_for, digits="1")
    sim.run_until_idle()
    agent = next(c for c in sim.calls if c is not caller)
    room = module.transfer.room_for(caller.call_uuid)
    assert sim.conference(room).members == [caller, agent]
    assert caller.transcript.said("Please hold while we transfer your call.")
    assert agent.transcript.said("Press 1 to accept")
    assert module.transfer.outcome(caller.call_uuid) == "accepted"
    caller.hangup()
    sim.run_until_idle()
    assert agent.ended and caller.ended


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed"])
def test_warm_transfer_agent_unavailable_goes_to_voicemail(
    load_example: Loader, sim_for: Any, outcome: str
) -> None:
    module, sim, caller = start_warm(load_example, sim_for, outcome=outcome)
    sim.run_until_idle()
    assert module.transfer.outcome(caller.call_uuid) == "agent-unavailable"
    assert caller.transcript.said("All our agents are busy.")


def test_warm_transfer_agent_declines(load_example: Loader, sim_for: Any) -> None:
    module, sim, caller = start_warm(load_example, sim_for, digits="2")
    sim.run_until_idle()
    assert module.transfer.outcome(caller.call_uuid) == "declined"
    assert caller.transcript.said("All our agents are busy.")


def test_warm_transfer_agent_gives_no_key(load_example: Loader, sim_for: Any) -> None:
    module, sim, caller = start_warm(load_example, sim_for, digits=[None])
    sim.run_until_idle()
    assert module.transfer.outcome(caller.call_uuid) == "agent-unavailable"
    assert caller.transcript.said("All our agents are busy.")


def test_caller_hangs_up_during_the_transfer(
    load_example: Loader, sim_for: Any, local_vobiz: LocalVobiz
) -> None:
    module = load_example("warm_transfer")
    sim = sim_for(module)
    sim.expect_outbound("+14155550142", digits="1")
    caller = sim.call("answer", digits="1")
    caller.run()  # the caller is on hold; the agent's phone is ringing
    caller.hangup()
    sim.run_until_idle()
    assert module.transfer.outcome(caller.call_uuid) == "abandoned"
    assert all(c.ended for c in sim.calls)
    # The agent's call was cancelled before it was answered: it never heard the caller.
    agent_calls = [r for r in local_vobiz.calls.values() if r.to.endswith("14155550142")]
    assert len(agent_calls) == 1 and not agent_calls[0].live
    assert not any(c.transcript.said("Connecting you now.") for c in sim.calls)


def test_duplicate_decisions_are_ignored(load_example: Loader, sim_for: Any) -> None:
    module, sim, caller = start_warm(load_example, sim_for, digits="1")
    sim.run_until_idle()
    transfer = module.transfer
    # A late, duplicated agent hangup callback and a late decline change nothing.
    assert transfer._decide(caller.call_uuid, "agent-unavailable") is False
    assert transfer._decide(caller.call_uuid, "declined") is False
    assert transfer.outcome(caller.call_uuid) == "accepted"


def test_trigger_endpoint_moves_a_call_and_reports_ended_calls(
    load_example: Loader, sim_for: Any, local_vobiz: LocalVobiz
) -> None:
    module = load_example("warm_transfer")
    sim = sim_for(module)
    caller = sim.call("answer", digits=[None])
    caller.run(until="gather")
    client = module.app.test_client()
    auth = {"Authorization": f"Bearer {SECRET}"}
    r = client.post("/_answerkit/transfer", json={"call_uuid": caller.call_uuid}, headers={})
    assert r.status_code == 401
    r = client.post(
        "/_answerkit/transfer",
        json={"call_uuid": caller.call_uuid, "aleg": "voicemail"},
        headers=auth,
    )
    assert r.status_code == 200 and r.get_json()["status"] == "transferred"
    caller.run()
    assert caller.transcript.said("All our agents are busy.")
    r = client.post(
        "/_answerkit/transfer", json={"call_uuid": "gone-call", "aleg": "voicemail"}, headers=auth
    )
    assert r.status_code == 200 and r.get_json()["status"] == "ended"
    r = client.post(
        "/_answerkit/transfer", json={"call_uuid": "x", "aleg": "nowhere"}, headers=auth
    )
    assert r.status_code == 400 and "nowhere" in r.get_json()["error"]


# -- the transfer URL -----------------------------------------------------------------------


def test_transfer_url_example_serves_the_vendor_document(
    load_example: Loader, sim_for: Any
) -> None:
    module = load_example("transfer_url")
    sim = sim_for(module)
    t = sim.call("transfer_instructions", dial="answer").run()
    assert t.heard == ["Please hold while we transfer your call."]
    assert t.dials[0]["numbers"] == ["+14156667890"]
    assert module.flow.try_transfer("ended-call", aleg="transfer_instructions") is None


@pytest.mark.parametrize("name", ["ivr", "forwarding", "warm_transfer"])
def test_a_message_is_logged_for_its_recording_only(
    name: str, load_example: Loader, caplog: pytest.LogCaptureFixture
) -> None:
    # A status-callback route takes every event sent to it: the call's Hangup logged
    # 'message from ...: None (None s)'.
    import logging

    from answerkit import CallRequest

    module = load_example(name)
    call = {"CallUUID": "c-1", "From": "14155550100", "To": "14155550199"}
    with caplog.at_level(logging.INFO):
        module.message_saved(CallRequest.from_params({**call, "Event": "Hangup"}))
        assert "message from" not in caplog.text
        module.message_saved(
            CallRequest.from_params(
                {**call, "Event": "RecordStop", "RecordUrl": "https://files.example/m.mp3"}
            )
        )
    assert "https://files.example/m.mp3" in caplog.text
