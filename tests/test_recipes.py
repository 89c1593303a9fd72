"""Recipe construction and graph validation (behaviour is played in test_examples.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from answerkit import (
    CallFlow,
    CallRequest,
    ConfigurationError,
    ElementError,
    Hangup,
    Response,
    Speak,
)
from answerkit.recipes import Forwarding, IVRMenu, Option, TransferTrigger, WarmTransfer
from answerkit.state import MemoryStore
from answerkit.testing import CallSimulator


def new_flow() -> CallFlow:
    flow = CallFlow(
        "r", public_url="https://voice.example.com", auth_token="t" * 20, state=MemoryStore()
    )
    flow.route("/sales")(lambda call: Response(Speak("sales"), Hangup()))
    return flow


def test_ivr_option_that_leads_nowhere_fails_when_mounted() -> None:
    flow = new_flow()
    IVRMenu(flow, "main", prompt="Hi", options={"1": "sales", "2": "support"})
    with pytest.raises(ConfigurationError, match="option 2 leads nowhere"):
        flow.create_app()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "at least one option"),
        ({"x": "sales"}, "keypad keys"),
        ({"1": "sales", "22": "sales"}, "same length"),
        ({"1": Option("sales", ("buy",)), "2": Option("sales", ("BUY",))}, "picks both"),
        ({"1": Option("sales", ("a,b",))}, "without commas"),
    ],
)
def test_ivr_shape_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        IVRMenu(new_flow(), "main", prompt="Hi", options=options)


def test_ivr_callable_targets_and_speech_hints(
    call_simulator: Callable[..., CallSimulator],
) -> None:
    flow = new_flow()
    menu = IVRMenu(
        flow,
        "main",
        prompt="Say sales or press 1",
        options={"1": Option(lambda call: Response(Speak("direct"), Hangup()), ("sales",))},
    )
    doc = menu.prompt_document()
    gather = doc.children[0]
    assert gather.get("inputType") == "dtmf speech" and gather.get("hints") == "sales"
    t = call_simulator(flow).call("main", speech="sales").run()
    assert t.heard[-1] == "direct"
    assert menu.match("1", None) is menu.options["1"]
    assert menu.match(None, "I want SALES now") is menu.options["1"]
    assert menu.match("7", "nothing") is None


def test_forwarding_simultaneous_rings_everyone_at_once(
    call_simulator: Callable[..., CallSimulator],
) -> None:
    flow = new_flow()
    Forwarding(
        flow,
        "fwd",
        numbers=["+14155550121", "sip:a@example.com"],
        caller_id="+14155550100",
        fallback="sales",
    )
    t = call_simulator(flow).call("fwd", dial="busy").run()
    assert t.dials[0]["numbers"] == ["+14155550121", "sip:a@example.com"]
    assert t.heard[-1] == "sales"


def test_forwarding_validation() -> None:
    with pytest.raises(ConfigurationError, match="at least one number"):
        Forwarding(new_flow(), "f", numbers=[], caller_id="+14155550100")
    with pytest.raises(ConfigurationError, match="mode"):
        Forwarding(
            new_flow(), "f", numbers=["+14155550121"], caller_id="+14155550100", mode="random"
        )  # type: ignore[arg-type]
    flow = new_flow()
    Forwarding(flow, "f", numbers=["+14155550121"], caller_id="+14155550100", fallback="vm")
    with pytest.raises(ConfigurationError, match="fallback leads nowhere"):
        flow.create_app()


def test_warm_transfer_validation() -> None:
    with pytest.raises(ConfigurationError, match="accept_key"):
        WarmTransfer(
            new_flow(), agent="+1", caller_id="+14155550100", fallback="sales", accept_key="12"
        )
    flow = new_flow()
    WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="voicemail")
    with pytest.raises(ConfigurationError, match="fallback leads nowhere"):
        flow.create_app()


def test_warm_transfer_of_an_ended_call_starts_nothing(local_vobiz: Any) -> None:
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="sales")
    assert warm.start("ended-call") is None
    assert [r.method for r in local_vobiz.requests] == ["POST"]  # the transfer only; no agent call


def test_hold_document_keeps_the_caller_safe() -> None:
    flow = new_flow()
    warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="sales")
    call = CallRequest.from_params({"CallUUID": "c-9"}, query={"xfer": "c-9"})
    doc = warm._hold(call)
    conference = doc.children[1]
    assert conference.get("stayAlone") == "true"
    assert conference.get("startConferenceOnEnter") == "false"
    assert conference.text == "warm-c-9"
    assert doc.lint() == [] or all("stay" not in str(w) for w in doc.lint())


def warm_call(local_vobiz: Any, on_hold: Callable[[CallSimulator, Any], None]) -> Any:
    """A caller sent to a warm transfer (agent scripted to press 1); ``on_hold(sim, caller)``
    runs once, when the caller starts hearing the hold announcement. Returns the pieces."""
    from answerkit import Redirect, Wait

    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    warm = WarmTransfer(
        flow,
        agent="+14155550142",
        caller_id="+14155550100",
        fallback="sales",
        announcement="Please hold while we transfer your call. " * 5,
    )

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak("Thanks for calling."), Redirect(flow.url_for("choice")))

    @flow.route("/choice")
    def choice(call: CallRequest) -> Response:
        warm.start(call.call_uuid, context={"topic": "billing"})
        return Response(Speak("One moment please."), Wait(length=5))

    sim = CallSimulator(flow, local_vobiz=local_vobiz)
    sim.expect_outbound("+14155550142", digits="1")
    caller = sim.call("answer")
    fired: list[bool] = []

    def listener(call: Any, event: Any) -> None:
        hold = call is caller and event.kind == "hear" and "Please hold" in event.text
        if hold and not fired:
            fired.append(True)
            on_hold(sim, caller)

    sim.add_listener(listener)
    caller.run()
    sim.run_until_idle()
    assert fired
    agent = next(c for c in sim.calls if c is not caller)
    return sim, warm, caller, agent


def test_warm_transfer_agent_accepting_during_the_announcement_still_joins_the_caller(
    local_vobiz: Any,
) -> None:
    # The agent reaches the room first: without stay_alone a lone member is dropped at
    # once (spec §1.2), and the caller would then wait in a room nobody ever starts.
    def agent_picks_up(sim: CallSimulator, caller: Any) -> None:
        next(c for c in sim.calls if c is not caller).run()

    sim, warm, caller, agent = warm_call(local_vobiz, agent_picks_up)
    room = sim.conference(warm.room_for(caller.call_uuid))
    assert warm.outcome(caller.call_uuid) == "accepted"
    assert room.started and set(room.members) == {caller, agent}
    caller.hangup()  # the caller leaves: the room ends, and the agent with it
    sim.run_until_idle()
    assert agent.state == "ended"
    sim.close()


def test_ivr_option_hash_can_be_chosen(call_simulator: Callable[..., CallSimulator]) -> None:
    # '#' ends a Gather by default and is not part of Digits (spec §1.2).
    flow = new_flow()
    menu = IVRMenu(flow, "main", prompt="Press hash for hours",
                   options={"#": Option(lambda call: Response(Speak("We are open"), Hangup())),
                            "1": "sales"})  # fmt: skip
    assert menu.prompt_document().children[0].get("finishOnKey") == "none"
    assert call_simulator(flow).call("main", digits="#").run().heard[-1] == "We are open"
    plain = IVRMenu(new_flow(), "other", prompt="Press 1", options={"1": "sales"})
    assert plain.prompt_document().children[0].get("finishOnKey") is None  # default kept


def test_warm_transfer_caller_gone_before_the_room_is_not_accepted(local_vobiz: Any) -> None:
    # The caller hangs up during the announcement, so never enters the room and sends no
    # room event; the agent who then accepts must not be left waiting there alone.
    sim, warm, caller, agent = warm_call(local_vobiz, lambda sim, caller: caller.hangup())
    assert warm.outcome(caller.call_uuid) == "abandoned"
    assert agent.state == "ended" and agent.transcript.said("The caller is no longer waiting.")
    sim.close()


def test_forwarding_checks_every_number_at_start_up() -> None:
    # A bad second number once passed, then dropped the caller when the first was busy.
    with pytest.raises(ElementError, match="14155550122"):
        Forwarding(new_flow(), "fwd", numbers=["+14155550121", "14155550122"],
                   caller_id="+14155550100",
                   mode="sequential", fallback="sales")  # fmt: skip


def test_a_trigger_added_after_mounting_is_refused() -> None:
    flow = new_flow()
    flow.create_app()
    with pytest.raises(ConfigurationError, match="already mounted"):
        TransferTrigger(flow, secret="s" * 32)
