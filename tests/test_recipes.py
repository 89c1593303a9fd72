"""Recipe construction and graph validation (behaviour is played in test_examples.py)."""

from __future__ import annotations

import contextlib
import contextvars
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from conftest import free_port

from answerkit import (
    CallFlow,
    CallRequest,
    Conference,
    ConfigurationError,
    ConnectError,
    Hangup,
    Play,
    Redirect,
    Response,
    RetryLater,
    ServerError,
    Speak,
    Wait,
    sign,
)
from answerkit.client import VobizClient
from answerkit.errors import ArgumentError, TransferArgumentError, VobizError
from answerkit.recipes import Forwarding, IVRMenu, Option, TransferTrigger, WarmTransfer
from answerkit.state import MemoryStore, StateStore
from answerkit.testing import CallSimulator, LocalVobiz


def new_flow(state: StateStore | None = None) -> CallFlow:
    flow = CallFlow(
        "r",
        public_url="https://voice.example.com",
        auth_token="t" * 20,
        state=state if state is not None else MemoryStore(),
    )
    flow.route("/sales")(lambda call: Response(Speak("sales"), Hangup()))
    return flow


@pytest.mark.parametrize(
    ("digits", "goodbye"),
    [
        ("-,-,-", "We did not hear a choice. Goodbye."),
        ("9,9,9", "We could not understand your choice. Goodbye."),
    ],
)
def test_ivr_default_goodbye_tells_silence_from_a_wrong_choice(digits: str, goodbye: str) -> None:
    # A caller who never pressed a key was told "We could not understand your choice".
    flow = new_flow()
    IVRMenu(flow, "main", prompt="Press 1 for sales.", options={"1": "sales"})
    for reading in ("next", "post-empty"):  # both readings of a Gather with no input
        with CallSimulator(flow, gather_timeout=reading) as sim:
            t = sim.call("main", digits=digits).run()
        assert t.heard[-1] == goodbye and t.ended_normally, t


def test_an_answer_route_of_ones_own_can_end_with_the_menus_document() -> None:
    # The README's way to greet a caller by name (or look them up) before the menu.
    flow = new_flow()
    menu = IVRMenu(flow, "main", prompt="Press 1 for sales.", options={"1": "sales"})

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak("Hello again, Ada."), *menu.prompt_document().children)

    with CallSimulator(flow) as sim:
        t = sim.call("answer", digits="-,1").run()
    heard = ["Hello again, Ada.", "Press 1 for sales.", "Sorry, we did not get your choice."]
    assert t.heard == [*heard, "Press 1 for sales.", "sales"]
    assert t.ended_normally and len(t.webhooks_for(path="/answer")) == 2  # answer, Hangup


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
        (
            {"1": Option("sales", ("buy",)), "2": Option("sales", ("BUY",))},
            "phrase 'BUY' of option 2 is the same words as phrase 'buy' of option 1",
        ),
        ({"1": Option("sales", ("Sales", "sales!"))}, "the same words as its phrase 'Sales'"),
        ({"1": Option("sales", ("a,b",))}, "without commas"),
        ({"1": Option("sales", ("!!!",))}, "has no letters or digits"),
    ],
)
def test_ivr_shape_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        IVRMenu(new_flow(), "main", prompt="Hi", options=options)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda f: IVRMenu(f, "main menu", prompt="Hi", options={"1": "sales"}), "without spaces"),
        (lambda f: IVRMenu(f, "", prompt="Hi", options={"1": "sales"}), "IVRMenu name must be"),
        (lambda f: IVRMenu(f, "main.menu", prompt="Hi", options={"1": "sales"}), "dots"),
        (lambda f: IVRMenu(f, "m", prompt="Hi", options=[("1", "sales")]), "must be a dict"),
        (lambda f: IVRMenu(f, "m", prompt="Hi", options={"1": "sales"}, retries="2"), "retries"),
        (lambda f: IVRMenu(f, "m", prompt="Hi", options={"1": "sales"}, retries=True), "retries"),
        (
            lambda f: IVRMenu(f, "m", prompt="Hi", options={"1": "sales"}, retries=-1),
            "retries must be a whole number, 0 or more",
        ),
        (lambda f: Option("sales", phrases=(1,)), "sequence of strings"),
        (lambda f: Option("sales", phrases=None), "sequence of strings"),
        (
            lambda f: IVRMenu(f, "m", prompt="Hi", options={"1": "sales"}, input_type="speech"),
            "option 1 has no phrases",
        ),
        (
            lambda f: IVRMenu(
                f, "m", prompt="Hi", input_type="dtmf", options={"1": Option("sales", ("sales",))}
            ),
            "hears no speech",
        ),
    ],
)
def test_ivr_arguments_are_refused_with_the_fix(make: Any, message: str) -> None:
    # Each was a raw TypeError or AttributeError, or accepted and failing on every call
    # (a menu no caller could use, an action URL with a space in it).
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        make(new_flow())


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


def test_ivr_does_not_act_on_speech_recognised_with_low_confidence(
    call_simulator: Callable[..., CallSimulator],
) -> None:
    # Spec §1.2: threshold SpeechConfidenceScore before acting on it. "sales" heard at 0.05
    # sent the caller to sales.
    flow = new_flow()
    IVRMenu(flow, "main", prompt="Say sales", options={"1": Option("sales", ("sales",))})
    sim = call_simulator(flow)
    t = sim.call("main", speech="sales,sales", speech_confidence=0.05).run()
    assert t.heard[:2] == ["Say sales", "Sorry, that is not a valid choice."]
    assert "sales" not in t.heard  # what the sales route says
    assert call_simulator(flow).call("main", speech="sales").run().heard[-1] == "sales"
    strict = new_flow()
    IVRMenu(strict, "main", prompt="Say sales", options={"1": Option("sales", ("sales",))},
            min_confidence=0.95)  # fmt: skip
    assert call_simulator(strict).call("main", speech="sales").run().heard[-1] != "sales"
    for bad in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ConfigurationError, match="min_confidence"):
            IVRMenu(new_flow(), "m", prompt="p", options={"1": "sales"}, min_confidence=bad)  # type: ignore[arg-type]


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


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"agent_timeout": "30"}, "agent_timeout must be the seconds"),
        ({"agent_timeout": 0}, "agent_timeout must be the seconds"),
        ({"decision_timeout": 100}, "decision_timeout: Gather: execution_timeout"),
        ({"announcement": ""}, "announcement: Speak: text is required"),
        ({"goodbye": "  "}, "goodbye: Speak: text is required"),
        ({"hold_music": "hold-music"}, "hold_music: Play: .*the URL of an audio file"),
        ({"whisper": 5}, "whisper must be text or a function"),
        ({"whisper": ""}, "whisper: Speak: text is required"),
    ],
)
def test_warm_transfer_refuses_settings_every_transfer_would_trip_over(
    setting: dict[str, Any], says: str
) -> None:
    # Each was once taken, then failed on every live call: the caller hung up on, the
    # agent never rung, or silence on hold.
    with pytest.raises(ConfigurationError, match=f"WarmTransfer: {says}"):
        WarmTransfer(new_flow(), agent="+14155550142", caller_id="+14155550100",
                     fallback="sales", **setting)  # fmt: skip


def test_warm_transfer_takes_the_settings_it_always_took() -> None:
    import enum

    class Seconds(enum.IntEnum):
        RING = 25

    flow = new_flow()
    warm = WarmTransfer(
        flow,
        agent="+14155550142",
        caller_id="+14155550100",
        fallback="sales",
        hold_music="",
        agent_timeout=Seconds.RING,
        whisper=lambda ctx: f"A call about {ctx.get('topic', 'nothing')}",
    )
    assert "Please continue to hold" in warm._music(hook({}, "C")).to_xml()  # "" is unset


def test_warm_transfer_of_an_ended_call_starts_nothing(local_vobiz: Any) -> None:
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="sales")
    assert warm.start("ended-call") is None
    assert [r.method for r in local_vobiz.requests] == ["POST"]  # the transfer only; no agent call


def test_warm_transfer_context_that_is_not_a_mapping_is_refused_before_anything(
    local_vobiz: Any,
) -> None:
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="sales")
    with pytest.raises(ArgumentError, match=r"context must be a mapping .* got str 'support'"):
        warm.start("C-ctx", context="support")  # type: ignore[arg-type]
    assert local_vobiz.requests == []  # nothing sent
    assert dict(warm._state("C-ctx")) == {}  # nothing recorded (no attempt numbered)


@pytest.mark.parametrize("caller", ["", "C 1", "C/../x"])
def test_warm_transfer_start_refuses_a_malformed_call_uuid_before_anything(
    caller: str, local_vobiz: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # start("") numbered an attempt, recorded 'agent-unreachable' and left a move to the
    # fallback failing in a thread: the refusal counted as "may have been applied".
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="sales")
    with pytest.raises(TransferArgumentError, match="call_uuid must be the CallUUID"):
        warm.start(caller)
    assert local_vobiz.requests == []  # nothing sent
    assert dict(warm._state(caller)) == {} and warm.outcome(caller) is None
    assert "owed move failed" not in caplog.text


def test_a_transfer_refused_for_its_arguments_or_settings_was_never_applied() -> None:
    from answerkit.recipes._warm_moves import surely_not_applied

    assert surely_not_applied(TransferArgumentError("bad call_uuid", field="call_uuid"))
    assert surely_not_applied(ConfigurationError("no Vobiz auth id"))  # nothing was sent


@pytest.mark.parametrize("fallback", [None, "", "handler"])
def test_warm_transfer_fallback_must_be_a_route_name(fallback: Any) -> None:
    # A handler was taken, then refused at mount as "flow has no route <function ...>".
    flow = new_flow()

    def voicemail(call: CallRequest) -> Response:
        return Response(Speak("Leave a message."))

    given = voicemail if fallback == "handler" else fallback
    says = "got the handler" if fallback == "handler" else "fallback must be the name of a route"
    with pytest.raises(ConfigurationError, match=says):
        WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback=given)


def test_ivr_menu_refuses_fallback_none_when_made() -> None:
    flow = new_flow()
    with pytest.raises(ConfigurationError, match=r"fallback must be .* got None \(leave it out"):
        IVRMenu(flow, "m", prompt="Press 1.", options={"1": "sales"}, fallback=None)  # type: ignore[arg-type]


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
    # The caller's own Hangup webhook tells the recipe (a hangup listener): the agent's
    # call is ended before the whisper can ask for a decision nobody is waiting on.
    sim, warm, caller, agent = warm_call(local_vobiz, lambda sim, caller: caller.hangup())
    assert warm.outcome(caller.call_uuid) == "abandoned"
    assert agent.state == "ended" and agent.transcript.hangup_source == "API Request"
    assert not agent.transcript.said("Connecting you now.")
    sim.close()


def test_forwarding_checks_every_number_at_start_up() -> None:
    # A bad second number once passed, then dropped the caller when the first was busy.
    # A ConfigurationError naming the recipe, as IVRMenu's are (a bare ElementError before).
    with pytest.raises(ConfigurationError, match=r"Forwarding 'fwd': .*14155550122"):
        Forwarding(new_flow(), "fwd", numbers=["+14155550121", "14155550122"],
                   caller_id="+14155550100",
                   mode="sequential", fallback="sales")  # fmt: skip
    with pytest.raises(ConfigurationError, match="fallback must be a route name or a handler"):
        Forwarding(new_flow(), "fwd", numbers=["+14155550121"], caller_id="+14155550100",
                   fallback=42)  # type: ignore[arg-type]  # fmt: skip


def test_a_trigger_added_after_mounting_is_refused() -> None:
    flow = new_flow()
    flow.create_app()
    with pytest.raises(ConfigurationError, match="already mounted"):
        TransferTrigger(flow, secret="s" * 32)


def test_ivr_phrases_match_whatever_their_spacing_case_and_punctuation(
    call_simulator: Callable[..., CallSimulator],
) -> None:
    # A phrase written " Sales " was kept with its spaces and never matched "sales".
    flow = new_flow()
    flow.route("/accounts")(lambda call: Response(Speak("accounts"), Hangup()))
    flow.route("/new_account")(lambda call: Response(Speak("new account"), Hangup()))
    flow.route("/cancel")(lambda call: Response(Speak("cancelled"), Hangup()))
    menu = IVRMenu(
        flow,
        "main",
        prompt="Say sales, account, new account or no",
        options={
            "1": Option("sales", phrases=(" Sales ",)),
            "2": Option("accounts", phrases=("account",)),
            "3": Option("new_account", phrases=("New Account",)),
            "4": Option("cancel", phrases=("no",)),
        },
    )
    sim = call_simulator(flow)
    assert sim.call("main", speech="sales").run().heard[-1] == "sales"
    assert sim.call("main", speech=["Sales!"]).run().heard[-1] == "sales"
    # The longest phrase said wins, whatever the order of the options.
    assert menu.match(None, "A new account, please.") is menu.options["3"]
    assert menu.match(None, "my ACCOUNT") is menu.options["2"]
    # Whole words only: "I don't know" does not say "no".
    assert menu.match(None, "I don't know") is None
    assert menu.match(None, "No.") is menu.options["4"]
    assert menu.prompt_document().children[0].get("hints") == "Sales,account,New Account,no"


def warm_flow(local_vobiz: Any, **options: Any) -> tuple[WarmTransfer, CallSimulator]:
    """A flow whose /answer starts a warm transfer to +14155550142 (fallback: /vm, which
    starts a second transfer, to +14155550143, the first time it is reached)."""
    from answerkit import Redirect, Wait

    flow = new_flow()
    warm = WarmTransfer(
        flow,
        agent=lambda ctx: ctx["agent"],
        caller_id="+14155550100",
        fallback="vm",
    )

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak("Thanks for calling."), Redirect(flow.url_for("choice")))

    @flow.route("/choice")
    def choice(call: CallRequest) -> Response:
        warm.start(call.call_uuid, context={"agent": "+14155550142"})
        return Response(Wait(length=5))

    @flow.route("/vm")
    def vm(call: CallRequest) -> Response:
        if call.state.incr("vm_visits") == 1 and options.get("hunt"):
            warm.start(call.call_uuid, context={"agent": "+14155550143"})
            return Response(Wait(length=5))
        return Response(Speak("voicemail"), Hangup())

    sim = CallSimulator(
        flow, local_vobiz=local_vobiz, gather_timeout=options.get("gather_timeout", "next")
    )
    return warm, sim


def test_a_listener_hanging_up_the_caller_on_hold_ends_it_before_the_agent_rings_out(
    local_vobiz: Any,
) -> None:
    # The README's advice, a listener: the caller hangs up at the hold announcement. The
    # agent's no-answer (30 s of ringing) came first before, deciding 'agent-unavailable'
    # and moving a caller who had gone; now the caller's hang-up ends its call at once.
    warm, sim = warm_flow(local_vobiz)
    sim.expect_outbound("+14155550142", outcome="no-answer")

    def hang_up_on_hold(call: Any, event: Any) -> None:
        if call is caller and event.kind == "hear" and "transfer your call" in event.text:
            call.hangup()

    sim.add_listener(hang_up_on_hold)
    caller = sim.call("answer")
    sim.run_until_idle()
    assert warm.outcome(caller.call_uuid) == "abandoned"
    assert [r.method for r in local_vobiz.requests] == ["POST", "POST", "DELETE"]
    assert caller.transcript.hangup_source == "Caller"
    sim.close()


def test_rest_requests_of_one_handler_reach_the_other_call_in_the_order_made(
    local_vobiz: Any,
) -> None:
    # The agent's handler moves the caller, then hangs its own call up: the caller's
    # Transfer webhook comes first. (A hang-up through the REST API jumped the queue
    # while the caller's own hang-up was made to end a call before others step.)
    flow = new_flow()
    seen: list[str] = []
    caller: dict[str, str] = {}

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        caller["uuid"] = call.call_uuid
        flow.client.make_call("+14155550100", "+14155550142", flow.url_for("agent"),
                              hangup_url=flow.url_for("agent_gone"))  # fmt: skip
        return Response(Speak("Please hold."), Conference("hold-room"))

    @flow.route("/agent")
    def agent(call: CallRequest) -> Response:
        flow.transfer(caller["uuid"], aleg="connected")
        flow.client.hangup(call.call_uuid)
        return Response(Speak("bye"))

    @flow.route("/connected")
    def connected(call: CallRequest) -> Response:
        seen.append("caller moved")
        return Response(Speak("You are connected."), Hangup())

    @flow.route("/agent_gone", status_callback=True)
    def agent_gone(call: CallRequest) -> None:
        seen.append("agent's Hangup")

    sim = CallSimulator(flow, local_vobiz=local_vobiz)
    sim.call("answer")
    sim.run_until_idle()
    assert seen == ["caller moved", "agent's Hangup"]
    sim.close()


def accepting_agent(local_vobiz: Any) -> tuple[WarmTransfer, CallSimulator, Any]:
    """warm_flow() with an agent who will press 1, and a caller placed (not yet run)."""
    warm, sim = warm_flow(local_vobiz)
    sim.expect_outbound("+14155550142", digits="1")
    return warm, sim, sim.call("answer")


def test_warm_transfer_agent_gone_before_reaching_the_room_does_not_strand_the_caller(
    local_vobiz: Any,
) -> None:
    # The agent accepts, then hangs up before joining the room: the caller held there
    # alone (stay_alone, a room nobody starts) until the conference time limit.
    warm, sim, caller = accepting_agent(local_vobiz)

    def agent_hangs_up(call: Any, event: Any) -> None:
        if call is not caller and event.kind == "hear" and "Connecting you now" in event.text:
            call.hangup()

    sim.add_listener(agent_hangs_up)
    caller.run()
    sim.run_until_idle()
    assert caller.ended and caller.transcript.said("voicemail")
    assert warm.outcome(caller.call_uuid) == "agent-unavailable"
    sim.close()


def test_warm_transfer_agent_who_joined_then_left_ends_the_call_normally(
    local_vobiz: Any,
) -> None:
    warm, sim, caller = accepting_agent(local_vobiz)
    caller.run()
    sim.run_until_idle()
    agent = next(c for c in sim.calls if c is not caller)
    assert warm.outcome(caller.call_uuid) == "accepted"
    agent.hangup()  # a finished conversation: the caller is not sent to the fallback
    sim.run_until_idle()
    assert caller.ended and not caller.transcript.said("voicemail")
    assert warm.outcome(caller.call_uuid) == "accepted"
    sim.close()


def test_warm_transfer_late_callbacks_of_an_earlier_attempt_decide_nothing(
    local_vobiz: Any,
) -> None:
    # The first agent declines; the fallback starts a second transfer; the first agent's
    # hangup webhook then arrived and decided the second transfer ("agent-unavailable"),
    # so the caller went to the fallback while the second agent was being called.
    warm, sim = warm_flow(local_vobiz, hunt=True)
    sim.expect_outbound("+14155550142", digits="2")
    sim.expect_outbound("+14155550143", digits="1")
    caller = sim.call("answer")
    caller.run()
    sim.run_until_idle()
    first, second = (c for c in sim.calls if c is not caller)
    assert first.transcript.said("Transfer declined.")
    assert second.transcript.said("Connecting you now.")
    assert warm.outcome(caller.call_uuid) == "accepted"
    assert set(sim.conference(warm.room_for(caller.call_uuid)).members) == {caller, second}
    assert not caller.transcript.said("voicemail")
    sim.close()


@pytest.mark.parametrize("gather_timeout", ["next", "post-empty"])
def test_warm_transfer_agent_giving_no_key_is_one_outcome_in_both_timeout_variants(
    local_vobiz: Any, gather_timeout: str
) -> None:
    # Spec §6 item 2: with "post-empty" the empty input reached the choice route and
    # counted as a decline ("Transfer declined" to an agent who pressed nothing).
    warm, sim = warm_flow(local_vobiz, gather_timeout=gather_timeout)
    sim.expect_outbound("+14155550142", digits=[None])
    caller = sim.call("answer")
    caller.run()
    sim.run_until_idle()
    agent = next(c for c in sim.calls if c is not caller)
    assert warm.outcome(caller.call_uuid) == "agent-unavailable"
    assert agent.transcript.said("No choice was made.")
    assert caller.transcript.said("voicemail")
    sim.close()


def test_trigger_accepts_any_case_of_bearer_and_refuses_unusable_secrets(
    local_vobiz: Any,
) -> None:
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    secret = "s" * 24
    TransferTrigger(flow, secret=secret)
    client = flow.create_app().test_client()
    body = {"call_uuid": "gone-call", "aleg": "sales"}
    for scheme in ("Bearer", "bearer", "BEARER"):
        r = client.post(
            "/_answerkit/transfer", json=body, headers={"Authorization": f"{scheme} {secret}"}
        )
        assert r.status_code == 200 and r.get_json()["status"] == "ended", scheme
    for wrong in ("", "Bearer", f"Basic {secret}", f"Bearer {secret}x", "Bearer é" * 4):
        r = client.post("/_answerkit/transfer", json=body, headers={"Authorization": wrong})
        assert r.status_code == 401, wrong
    # A secret beyond ASCII reached the view as Latin-1 text when sent as UTF-8 (curl) and
    # could not be sent at all by requests: refused when made, not on every request.
    for bad in ("sécret-0123456789abcdef", "ключ-0123456789abcdef", " " + "s" * 20):
        with pytest.raises(ConfigurationError, match="printable ASCII"):
            TransferTrigger(new_flow(), secret=bad)


@pytest.mark.parametrize("fault", ["5xx", "timeout", "reset", "unreachable"])
def test_a_trigger_whose_move_may_have_been_made_says_so_and_is_not_retried(
    local_vobiz: Any, fault: str
) -> None:
    # A 5xx or a lost answer may hide a move that was made: answered 504 before, a CRM that
    # retries on one moved the call twice. Only a connection that never opened is a 504.
    flow = new_flow()
    client = (
        VobizClient("MA_X", "t" * 20, base_url=f"http://127.0.0.1:{free_port()}/api/v1",
                    max_retries=0, allow_http=True)
        if fault == "unreachable"
        else local_vobiz.client(timeout=0.5)
    )  # fmt: skip
    flow.transfers.client = client
    secret = "s" * 24
    TransferTrigger(flow, secret=secret)
    app = flow.create_app().test_client()
    call = local_vobiz.add_call()
    if fault == "5xx":
        local_vobiz.fail_next(1, status=503)
    elif fault == "timeout":
        local_vobiz.delay_next(1, seconds=1.5)
    elif fault == "reset":
        local_vobiz.reset_next(1)
    r = app.post(
        "/_answerkit/transfer",
        json={"call_uuid": call.call_uuid, "aleg": "sales"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    if fault == "unreachable":
        assert r.status_code == 504 and "error" in r.get_json()
        return
    assert r.status_code == 202, r.get_data(as_text=True)
    answer = r.get_json()
    assert answer["status"] == "unknown" and answer["call_uuid"] == call.call_uuid
    assert "do not repeat it blindly" in answer["error"]


def test_a_trigger_takes_calluuid_and_forms_and_may_be_limited_to_routes(
    local_vobiz: Any,
) -> None:
    # A CRM posts Vobiz's own field name, or a form; a trigger for a CRM's "send to hold"
    # button must not let the secret's holder pick any route of the flow.
    flow = new_flow()
    flow.route("/hold")(lambda call: Response(Speak("hold"), Hangup()))
    flow.transfers.client = local_vobiz.client()
    secret = "s" * 24
    TransferTrigger(flow, secret=secret, routes=["hold"])
    client = flow.create_app().test_client()
    auth = {"Authorization": f"Bearer {secret}"}
    for how in ("json", "data"):
        reply = client.post(
            "/_answerkit/transfer", **{how: {"CallUUID": "gone", "aleg": "hold"}}, headers=auth
        )
        assert reply.status_code == 200 and reply.get_json()["status"] == "ended", how
    reply = client.post(
        "/_answerkit/transfer", json={"call_uuid": "gone", "aleg": "sales"}, headers=auth
    )
    assert reply.status_code == 403 and "hold" in reply.get_json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"call_uuid": "c", "a_leg": "sales"}, 400, "unknown field 'a_leg' (write 'aleg')"),
        ({"call_uuid": "c", "aleg_url": "sales"}, 400, "'aleg_url' (write 'aleg')"),
        ({"call_uuid": 5, "aleg": "sales"}, 400, "call_uuid must be the call's CallUUID as a "
                                                 "string, got 5"),
        ({"call_uuid": "c"}, 400, 'name a route for "aleg", "bleg" or both, as in {'),
        ({"call_uuid": "c", "aleg": "nowhere"}, 400, "has no route 'nowhere'"),
        (["c", "sales"], 400, 'send JSON like {"call_uuid"'),
    ],
)  # fmt: skip
def test_a_trigger_names_what_it_did_not_understand_in_the_request(
    local_vobiz: Any, body: Any, status: int, says: str
) -> None:
    # A CRM sending HTTP was once shown a Python call, and a misspelt field not named.
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    TransferTrigger(flow, secret="s" * 24)
    client = flow.create_app().test_client()
    reply = client.post("/_answerkit/transfer", json=body,
                        headers={"Authorization": "Bearer " + "s" * 24})  # fmt: skip
    assert reply.status_code == status and says in reply.get_json()["error"]


def test_a_trigger_takes_a_forwarded_webhook_form_with_fields_of_its_own(
    local_vobiz: Any,
) -> None:
    # A CRM forwarding Vobiz's webhook form (the reason CallUUID is taken at all), or a
    # JSON body with a note of its own: other fields are left alone.
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    TransferTrigger(flow, secret="s" * 24)
    client = flow.create_app().test_client()
    auth = {"Authorization": "Bearer " + "s" * 24}
    form = {"CallUUID": "gone", "From": "14155550100", "To": "14155550199", "Event": "Hangup",
            "aleg": "sales"}  # fmt: skip
    assert client.post("/_answerkit/transfer", data=form, headers=auth).status_code == 200
    both = {"call_uuid": "gone", "CallUUID": "gone", "aleg": "sales", "reason": "vip"}
    assert client.post("/_answerkit/transfer", json=both, headers=auth).status_code == 200


def test_a_trigger_on_a_server_that_cannot_move_calls_answers_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No VOBIZ_AUTH_ID: the server's own settings, not the CRM's request (a 400 told the
    # CRM to fix a request that was fine).
    monkeypatch.delenv("VOBIZ_AUTH_ID", raising=False)
    flow = new_flow()
    TransferTrigger(flow, secret="s" * 24)
    client = flow.create_app().test_client()
    reply = client.post("/_answerkit/transfer", json={"call_uuid": "c", "aleg": "sales"},
                        headers={"Authorization": "Bearer " + "s" * 24})  # fmt: skip
    assert reply.status_code == 503
    assert "this server cannot move calls: no Vobiz auth id" in reply.get_json()["error"]


def test_a_trigger_limited_to_a_route_that_does_not_exist_fails_when_mounted() -> None:
    flow = new_flow()
    TransferTrigger(flow, secret="s" * 24, routes=["hodl"])
    with pytest.raises(ConfigurationError, match="hodl"):
        flow.create_app()
    with pytest.raises(ConfigurationError, match=r"routes=\['sales'\]"):
        TransferTrigger(new_flow(), secret="s" * 24, routes="sales")


def test_recipes_that_move_calls_warn_at_mount_without_rest_credentials(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The first live caller used to find out: every transfer failed, with the fallback.
    monkeypatch.delenv("VOBIZ_AUTH_ID", raising=False)
    flow = new_flow()
    WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="sales")
    TransferTrigger(flow, secret="s" * 24)
    flow.create_app()
    text = caplog.text
    assert "WarmTransfer 'warm' moves calls" in text and "VOBIZ_AUTH_ID" in text
    assert "TransferTrigger moves calls" in text
    assert flow.transfers.peek_client() is None  # nothing made: a harness may lend one


def test_two_triggers_on_one_flow_both_serve(local_vobiz: Any) -> None:
    # Both used the endpoint name "answerkit_transfer_trigger": an AssertionError from
    # Flask when the flow was mounted.
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    TransferTrigger(flow, secret="a" * 20)
    TransferTrigger(flow, secret="b" * 20, path="/crm/transfer")
    client = flow.create_app(url_prefix="/voice").test_client()
    body = {"call_uuid": "gone-call", "aleg": "sales"}
    for path, secret in (("/voice/_answerkit/transfer", "a"), ("/voice/crm/transfer", "b")):
        auth = {"Authorization": "Bearer " + secret * 20}
        assert client.post(path, json=body, headers=auth).get_json()["status"] == "ended"
        auth = {"Authorization": "Bearer " + ("b" if secret == "a" else "a") * 20}
        assert client.post(path, json=body, headers=auth).status_code == 401


def test_a_second_trigger_at_a_path_already_served_is_refused_when_registered() -> None:
    """Flask serves the rule registered first: the second flow's trigger would answer
    nothing, silently (every move refused as unauthorised by the first one)."""
    from flask import Flask

    from answerkit import ConfigurationError

    app = Flask("two-flows")
    for name in ("a", "b"):
        flow = CallFlow(name, public_url="https://v.example.com", auth_token="t" * 20,
                        state=MemoryStore())  # fmt: skip
        flow.add_route(f"/{name}_vm", lambda call: Response(Speak("vm"), Hangup()))
        TransferTrigger(flow, secret=name * 20)
        if name == "a":
            flow.register(app)
        else:
            with pytest.raises(ConfigurationError, match="already served"):
                flow.register(app)


def ivr(options: dict[str, Any]) -> IVRMenu:
    flow = new_flow()
    for name in ("yes", "no"):
        flow.route(f"/{name}")(lambda call: Response(Speak("x"), Hangup()))
    return IVRMenu(flow, "m", prompt="p", options=options)


def test_ivr_combining_marks_and_apostrophes_are_part_of_words() -> None:
    import unicodedata

    # Combining marks (Indic vowel signs, Thai tone marks, NFD accents) were word breaks:
    # "मुझे बोलना है" became "म झ ब लन ह" and picked the option of "हाँ" ("ह").
    menu = ivr({"1": Option("yes", ("हाँ",)), "2": Option("no", ("नहीं",))})
    assert menu.match(None, "मुझे बोलना है") is None
    assert menu.match(None, "हाँ जी") is menu.options["1"]
    assert menu.match(None, "नहीं") is menu.options["2"]
    accent = ivr({"1": Option("yes", (unicodedata.normalize("NFD", "résumé"),))})
    assert accent.match(None, "Résumé") is accent.options["1"]
    assert accent.match(None, "re sume") is None
    # Arabic vowel marks are optional in writing: a phrase with them matches speech without.
    arabic = ivr({"1": Option("yes", ("مَبيعات",))})
    assert arabic.match(None, "مبيعات") is arabic.options["1"]
    # "can't" was "can t": "yes I can" matched "yes I can't".
    cant = ivr({"1": Option("yes", ("yes I can",)), "2": Option("no", ("no",))})
    assert cant.match(None, "yes I can't") is None
    assert cant.match(None, "Yes, I can\u2019t") is None
    assert cant.match(None, "Yes, I can.") is cant.options["1"]


def test_ivr_phrases_in_scripts_without_spaces_match_inside_the_speech() -> None:
    menu = ivr({"1": Option("yes", ("営業",)), "2": Option("no", ("サポート",))})
    assert menu.match(None, "営業部をお願いします") is menu.options["1"]
    assert menu.match(None, "サポートに繋いで") is menu.options["2"]
    korean = ivr({"1": Option("yes", ("영업",)), "2": Option("no", ("지원",))})
    assert korean.match(None, "영업부로 연결해 주세요") is korean.options["1"]
    # The longest phrase first: list the negative form as a phrase of its own.
    thai = ivr({"1": Option("yes", ("ใช่",)), "2": Option("no", ("ไม่ใช่",))})
    assert thai.match(None, "ใช่ครับ") is thai.options["1"]
    assert thai.match(None, "ไม่ใช่ครับ") is thai.options["2"]
    # Space-delimited scripts keep whole words.
    assert ivr({"1": Option("yes", ("no",))}).match(None, "I don't know") is None


def test_ivr_checks_the_gather_hints_limits_when_built() -> None:
    many = {f"{i:03d}": Option("sales", (f"p{i}",)) for i in range(501)}
    with pytest.raises(ConfigurationError, match="at most 500 phrases"):
        IVRMenu(new_flow(), "main", prompt="Hi", options=many)
    long = {f"{i:03d}": Option("sales", (f"{'p' * 95}{i:03d}",)) for i in range(110)}
    with pytest.raises(ConfigurationError, match="10000 characters"):
        IVRMenu(new_flow(), "main", prompt="Hi", options=long)


#: Where a WarmTransfer moves a caller it sends to its fallback: its landing route, which
#: records the arrival and redirects to the fallback.
LANDING = "warm_landing"


class VobizLine:
    """The Vobiz side of one WarmTransfer's flow: the flow's own transfer planner and a real
    VobizClient, against LocalVobiz, where the callers named (by default "C") are live calls.

    The flow's URLs (https://voice.example.com) are served nowhere here, so LocalVobiz takes
    each transfer it accepts over (``on_transfer_request``) instead of fetching its URL:
    ``moves`` records it as ``(caller, route)``, and a move to the landing route arrives at
    once (``land``, given the URL's query), before the transfer's answer, as Vobiz fetches
    the URL of a transfer it applied."""

    def __init__(self, vobiz: LocalVobiz, warm: WarmTransfer, callers: tuple[str, ...]) -> None:
        self.vobiz = vobiz
        self.flow = warm.flow
        self.client = vobiz.client()
        self.flow.transfers.client = self.client
        self.moves: list[tuple[str, str]] = []
        #: Called with a landing move's query, as Vobiz fetches the URL a call was moved to.
        self.land: Callable[[dict[str, str]], object] | None = lambda query: warm._moves.landing(
            CallRequest.from_params({"CallUUID": query["xfer"], "Event": "Transfer"}, query=query)
        )
        self._unreachable: VobizClient | None = None
        self._down_after: str | None = None
        self._seen = len(vobiz.requests)
        for caller in callers:
            vobiz.add_call(caller)
        vobiz.on_transfer_request = self._accepted

    def _accepted(self, call_uuid: str, leg: str, url: str, method: str) -> bool:
        route = self.flow.route_at_url(url)
        name = route.name if route is not None else url
        self.moves.append((call_uuid, name))
        if name == LANDING and self.land is not None:
            self.land(dict(parse_qsl(urlsplit(url).query)))
        if name == self._down_after:
            self.down()
        return True  # taken over: nothing for LocalVobiz to fetch

    def hang_up(self, caller: str = "C") -> None:
        """The caller's call ends (Vobiz then answers 404 for it: not live, nothing to move)."""
        self.vobiz.end_call(caller, notify=False)

    def log(self) -> list[tuple[str, str]]:
        """The live-call checks ``("live", uuid)``, hang-ups ``("hangup", uuid)`` and agent
        calls ``("call", "")`` LocalVobiz received since the last :meth:`forget`, answered
        or failed, in order (transfers are in :meth:`transfers_sent` and ``moves``)."""
        prefix = f"/api/v1/Account/{self.vobiz.auth_id}/Call/"
        seen: list[tuple[str, str]] = []
        for request in self.vobiz.requests[self._seen :]:
            uuid = request.path.removeprefix(prefix).rstrip("/")
            if request.method == "GET" and request.query.get("status") == "live":
                seen.append(("live", uuid))
            elif request.method == "DELETE":
                seen.append(("hangup", uuid))
            elif request.method == "POST" and not uuid:
                seen.append(("call", ""))
        return seen

    def transfers_sent(self) -> list[tuple[str, str]]:
        """Every transfer LocalVobiz received since the last :meth:`forget`, applied or not,
        as ``(caller, route)``."""
        prefix = f"/api/v1/Account/{self.vobiz.auth_id}/Call/"
        sent: list[tuple[str, str]] = []
        for request in self.vobiz.requests[self._seen :]:
            uuid = request.path.removeprefix(prefix).rstrip("/")
            if request.method == "POST" and uuid and isinstance(request.json, dict):
                route = self.flow.route_at_url(str(request.json.get("aleg_url")))
                sent.append((uuid, route.name if route is not None else "?"))
        return sent

    def calls_placed(self) -> int:
        """The agent calls (make-call requests) LocalVobiz received since :meth:`forget`."""
        return self.log().count(("call", ""))

    def forget(self) -> None:
        """Start :meth:`log` and :meth:`transfers_sent` afresh."""
        self._seen = len(self.vobiz.requests)

    def down(self, *, after_move_to: str | None = None) -> None:
        """Vobiz unreachable from now on (a real client, to a loopback port nothing listens
        on: ConnectError, nothing sent, not retried), or once LocalVobiz has accepted the
        next move to the route ``after_move_to``."""
        if after_move_to is not None:
            self._down_after = after_move_to
            return
        self._down_after = None
        if self._unreachable is None:
            base_url = f"http://127.0.0.1:{free_port()}/api/v1"
            self._unreachable = VobizClient(
                self.vobiz.auth_id, self.vobiz.auth_token, base_url=base_url,
                allow_http=True, max_retries=0,
            )  # fmt: skip
        self.flow.transfers.swap_client(self._unreachable)

    def up(self) -> None:
        """Vobiz reachable again."""
        self._down_after = None
        self.flow.transfers.swap_client(self.client)

    def close(self) -> None:
        self.client.close()
        if self._unreachable is not None:
            self._unreachable.close()


WarmLine = Callable[..., tuple[WarmTransfer, VobizLine]]


@pytest.fixture
def warm_line(local_vobiz: LocalVobiz) -> Iterator[WarmLine]:
    """``warm_line(state=None, callers=("C",), **options)``: a WarmTransfer on a new flow
    whose REST calls reach LocalVobiz, and its :class:`VobizLine`."""
    made: list[VobizLine] = []

    def make(
        state: StateStore | None = None, callers: tuple[str, ...] = ("C",), **options: Any
    ) -> tuple[WarmTransfer, VobizLine]:
        flow = new_flow(state)
        warm = WarmTransfer(
            flow, agent="+14155550142", caller_id="+14155550100", fallback="sales", **options
        )
        made.append(VobizLine(local_vobiz, warm, callers))
        return warm, made[-1]

    yield make
    local_vobiz.on_transfer_request = None
    for line in made:
        line.close()


def deadline_strikes_in_the_next_move(line: VobizLine, *, applied: bool) -> None:
    """The webhook's deadline (SIGALRM) strikes while the next transfer to the landing route
    waits for its answer. A stand-in for the deadline only: LocalVobiz can delay an answer
    but not have the deadline strike at that point (a real deadline is a race against the
    clock). The transfer itself is sent for real: ``applied``, LocalVobiz applies it and the
    answer is lost; otherwise LocalVobiz closes the connection unanswered, applying nothing."""
    from answerkit.dispatch import HandlerTimeout

    flow = line.flow
    real = flow.try_transfer

    def struck(call_uuid: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("aleg") != LANDING:
            return real(call_uuid, *args, **kwargs)
        flow.try_transfer = real  # type: ignore[method-assign]
        if not applied:
            line.vobiz.reset_next()
        try:
            real(call_uuid, *args, **kwargs)
        except VobizError:
            assert not applied
        raise HandlerTimeout("handler deadline passed")

    flow.try_transfer = struck  # type: ignore[method-assign]


def past_its_deadline(handler: Callable[[CallRequest], Any], call: CallRequest) -> Any:
    """Run ``handler(call)`` as a webhook's handler thread runs on once DeadlineRunner has
    given it up at its deadline: the flow's transfers are refused unsent from then on
    (LateTransferRefused)."""
    from answerkit._deadline import _GivenUp, _run_marked

    given_up = _GivenUp()
    given_up.give_up()
    return contextvars.copy_context().run(_run_marked, given_up, handler, call)


def ringing_agent(
    warm_line: WarmLine, state: StateStore | None = None
) -> tuple[WarmTransfer, VobizLine, list[str]]:
    """A transfer of caller "C" whose agent "A" answered (the whisper plays), the hold move
    and the requests so far forgotten; with the outcomes on_outcome was told, in order."""
    told: list[str] = []
    warm, line = warm_line(state, on_outcome=lambda c, o: told.append(o))
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    line.moves.clear()
    line.forget()
    return warm, line, told


def hook(query: dict[str, str], uuid: str, **params: str) -> CallRequest:
    return CallRequest.from_params({"CallUUID": uuid, **params}, query=query)


#: The URL query of attempt 1 of caller "C".
FIRST = {"xfer": "C", "attempt": "1"}


def accepted_warm(
    warm_line: WarmLine, state: StateStore | None = None
) -> tuple[WarmTransfer, VobizLine]:
    """A WarmTransfer whose agent "A" answered and accepted attempt 1 for caller "C" (the
    moves and requests made so far are forgotten)."""
    warm, line = warm_line(state)
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    warm._agent_choice(hook(FIRST, "A", Digits="1"))
    line.moves.clear()
    line.forget()
    return warm, line


def test_two_webhooks_that_read_the_same_note_tell_the_outcome_once(warm_line: WarmLine) -> None:
    # A decline's webhook and the caller's room exit, delivered together, both read
    # "not told yet" and both told on_outcome "declined" (21 of 300 on SQLite, 242 of
    # 300 on Redis): the note was read, then written, by each.
    warm, _line, told = ringing_agent(warm_line)
    warm._agent_choice(hook(FIRST, "A", Digits="2"))
    assert told == ["declined"]
    state = warm._state("C")
    # The other webhook read the note (and the count of tells) before this one wrote it.
    del state["warm.told.1"], state["warm.tells.1"]
    warm._tell_owed("C")
    assert told == ["declined"]
    # A later change is told, once, and so is a change back, and each change made again
    # (named by its pair of outcomes, a second declined-to-accepted was never told).
    for outcome in ("accepted", "accepted", "declined", "accepted", "declined"):
        warm._tell_outcome("C", 1, outcome)
    assert told == ["declined", "accepted", "declined", "accepted", "declined"]


def test_warm_transfer_started_before_attempts_still_completes(warm_line: WarmLine) -> None:
    # A rolling deploy: the previous version started the transfer (no attempt in its URLs
    # nor in its record); the agent pressing 1 heard "the caller is no longer waiting".
    warm, _ = warm_line()
    state = warm._state("C")
    state["warm.context"] = {}
    state["warm.agent_uuid"] = "req-old"
    q = {"xfer": "C"}
    assert warm._agent_answer(hook(q, "A")).children[0].tag == "Gather"
    accepted = warm._agent_choice(hook(q, "A", Digits="1"))
    assert accepted.children[1].text == "warm-C"  # the room the old version put the caller in
    assert warm.outcome("C") == "accepted"
    assert "attempt" not in accepted.children[1].get("callbackUrl")
    # Once this version starts a transfer, the legacy URLs are stale.
    warm.start("C")
    assert warm._agent_answer(hook(q, "A")).children[0].tag == "Speak"


def test_warm_transfer_late_agent_enter_after_hangup_does_not_send_the_caller_away(
    warm_line: WarmLine,
) -> None:
    # Spec §2.9: delivery order is not event order. The agent joined and talked; the room
    # ended with the agent's exit. A hangup webhook handled before the agent's room events
    # sent the caller of a finished conversation to the fallback.
    q = FIRST
    warm, line = accepted_warm(warm_line)
    # The room ended (the agent left): the caller's exit was delivered first.
    warm._room_event(hook(q, "C", Event="ConferenceExit"))
    warm._agent_status(hook(q, "A", Event="Hangup"))
    assert line.moves == [] and warm.outcome("C") == "accepted"
    # Only the agent's exit came before the hangup.
    warm, line = accepted_warm(warm_line)
    warm._room_event(hook({**q, "leg": "agent"}, "A", Event="ConferenceExit"))
    warm._agent_status(hook(q, "A", Event="Hangup"))
    assert line.moves == [] and warm.outcome("C") == "accepted"
    # No room event, but the caller's call has ended: nobody to move (the transfer finds
    # that out; no live-call GET in a status callback), and the record stays accepted.
    warm, line = accepted_warm(warm_line)
    line.hang_up("C")
    warm._agent_status(hook(q, "A", Event="Hangup"))
    assert line.moves == [] and warm.outcome("C") == "accepted"
    assert line.log() == []
    assert line.transfers_sent() == [("C", LANDING)]  # answered 404: the caller is gone
    # Nothing at all: the caller is live and alone, so moved; a late enter restores the record.
    warm, line = accepted_warm(warm_line)
    warm._agent_status(hook(q, "A", Event="Hangup"))
    assert line.moves == [("C", LANDING)] and warm.outcome("C") == "agent-unavailable"
    warm._room_event(hook({**q, "leg": "agent"}, "A", Event="ConferenceEnter"))
    assert warm.outcome("C") == "accepted"


def test_warm_transfer_agent_room_events_count_only_from_the_agents_call(
    warm_line: WarmLine,
) -> None:
    warm, line = warm_line()
    warm.start("C")
    q = {"xfer": "C", "attempt": "1"}
    warm._agent_answer(hook(q, "A"))
    warm._agent_choice(hook(q, "A", Digits="1"))
    warm._room_event(hook({**q, "leg": "agent"}, "someone-else", Event="ConferenceEnter"))
    line.moves.clear()
    warm._agent_status(hook(q, "A", Event="Hangup"))
    assert line.moves == [("C", LANDING)]  # the stranded caller is still rescued


def test_warm_transfer_restart_hangs_up_the_earlier_agent_and_uses_a_new_room(
    warm_line: WarmLine,
) -> None:
    # The first agent was in the room with the caller; start() again popped that agent
    # without hanging up, and both attempts shared one room name.
    warm, line = warm_line()
    first = warm.start("C")
    q1 = {"xfer": "C", "attempt": "1"}
    warm._agent_answer(hook(q1, "A1"))
    warm._agent_choice(hook(q1, "A1", Digits="1"))
    second = warm.start("C")
    assert ("hangup", "A1") in line.log()
    assert first is not None and second is not None and first.room != second.room
    assert first.room == "warm-C" and warm.room_for("C") == second.room == "warm-C-2"
    # A late accept of attempt 1 joins nobody's room.
    late = warm._agent_choice(hook(q1, "A1", Digits="1"))
    assert all(child.tag != "Conference" for child in late.children)


def test_warm_transfer_accept_key_hash_can_be_accepted(warm_line: WarmLine) -> None:
    # The whisper Gather kept finishOnKey="#": '#' never reached Digits (spec §1.2).
    warm, _ = warm_line(accept_key="#")
    warm.start("C")
    gather = warm._agent_answer(hook({"xfer": "C", "attempt": "1"}, "A")).children[0]
    assert gather.get("finishOnKey") == "none"


def test_triggers_at_paths_that_differ_only_in_punctuation_both_serve() -> None:
    # "/crm-hook" and "/crm_hook" got one endpoint name: Flask's AssertionError.
    flow = new_flow()
    TransferTrigger(flow, secret="a" * 20, path="/crm-hook")
    TransferTrigger(flow, secret="b" * 20, path="/crm_hook")
    client = flow.create_app().test_client()
    for path, secret in (("/crm-hook", "a"), ("/crm_hook", "b")):
        r = client.post(path, json={}, headers={"Authorization": "Bearer " + secret * 20})
        assert r.status_code == 400  # authorised, then the empty body is refused
    with pytest.raises(ConfigurationError, match="already serves an endpoint"):
        TransferTrigger(new_flow_with_trigger(), secret="c" * 20, path="/x")


def new_flow_with_trigger() -> CallFlow:
    flow = new_flow()
    TransferTrigger(flow, secret="d" * 20, path="/x")
    return flow


def test_a_trigger_beside_a_get_page_at_its_path_is_accepted() -> None:
    # The path check ignored methods: a GET status page refused the POST trigger.
    from flask import Flask

    app = Flask("status")
    app.add_url_rule("/_answerkit/transfer", "status", lambda: "ok", methods=["GET"])
    flow = new_flow()
    TransferTrigger(flow, secret="a" * 20)
    flow.register(app)
    client = app.test_client()
    assert client.get("/_answerkit/transfer").get_data(as_text=True) == "ok"
    assert client.post("/_answerkit/transfer", json={}).status_code == 401


def test_warm_transfer_first_attempt_keeps_the_room_name_of_earlier_versions(
    warm_line: WarmLine,
) -> None:
    # A rolling deploy: the previous version (attempt in the URLs, room "warm-<caller>")
    # put the caller on hold; this version's accept named "warm-<caller>-1": two rooms.
    warm, _ = warm_line()
    state = warm._state("C")
    state["warm.attempt"] = 1
    state["warm.agent_uuid"] = "req-old"
    state["warm.context"] = {}
    q = {"xfer": "C", "attempt": "1"}
    assert warm._hold(hook(q, "C")).children[1].text == "warm-C"
    warm._agent_answer(hook(q, "A"))
    assert warm._agent_choice(hook(q, "A", Digits="1")).children[1].text == "warm-C"
    assert warm.room_for("C") == "warm-C"


def test_warm_transfer_rescue_is_given_back_when_the_move_fails(warm_line: WarmLine) -> None:
    # The rescue took its ticket and wrote agent-unavailable before the move; a move
    # refused past the handler deadline left every retry of the Hangup webhook with nothing
    # to do, and the caller alone in the room.
    from answerkit.dispatch import LateTransferRefused

    q = FIRST
    warm, line = accepted_warm(warm_line)
    # The handler is past its deadline: the flow refuses the move unsent.
    with pytest.raises(LateTransferRefused):
        past_its_deadline(warm._agent_status, hook(q, "A", Event="Hangup"))
    assert warm.outcome("C") == "accepted" and line.moves == []
    assert line.transfers_sent() == []
    warm._agent_status(hook(q, "A", Event="Hangup"))  # Vobiz retries the webhook
    assert line.moves == [("C", LANDING)] and warm.outcome("C") == "agent-unavailable"
    warm._agent_status(hook(q, "A", Event="Hangup"))  # and again: moved once
    assert line.moves == [("C", LANDING)]
    assert ("live", "C") not in line.log()  # no REST GET inside the status callback


def test_warm_transfer_rescue_is_retried_by_vobiz_through_the_webhook(
    store: StateStore, warm_line: WarmLine
) -> None:
    # Through the dispatcher: a status callback that fails is answered 200, so Vobiz never
    # retried it and the caller stayed on hold alone. The rescue raises RetryLater: a 503,
    # and the signature is forgotten (on every store), so a retry that carries it is taken.
    warm, line = accepted_warm(warm_line, store)
    agent_hangup = signed_agent_hangup(warm)
    line.down()  # no route to Vobiz: nothing sent, so the move may be made again
    reply = agent_hangup()
    assert (reply.status_code, reply.data) == (503, b"")
    assert line.moves == []
    line.up()
    assert agent_hangup().status_code == 200
    assert line.moves == [("C", LANDING)] and warm.outcome("C") == "agent-unavailable"
    assert agent_hangup().status_code == 403  # taken once: the same signature is a replay


def signed_agent_hangup(warm: WarmTransfer) -> Callable[[], Any]:
    """Posts the agent's Hangup status callback of attempt 1 through the flow's app, with
    the same signature every time (as a Vobiz retry may carry it)."""
    route = next(r for r in warm.flow.routes if r.path.endswith("/agent/status"))
    url = warm.flow.url_for(route.name, **FIRST)
    path = url.removeprefix("https://voice.example.com")
    headers = sign(url, "t" * 20)
    app = warm.flow.create_app().test_client()
    return lambda: app.post(path, data={"CallUUID": "A", "Event": "Hangup"}, headers=headers)


@pytest.mark.parametrize(
    "failure",
    [
        "no connection",  # nothing was sent
        "429",  # refused by Vobiz
        "500",  # unknown: it did not arrive, so made again
        "deadline",  # cut off mid-request: likewise
    ],
)
def test_warm_transfer_unaccepted_agent_move_that_failed_is_made_by_the_retry(
    failure: str, monkeypatch: pytest.MonkeyPatch, warm_line: WarmLine
) -> None:
    # The agent hung up during the whisper and the move to the fallback failed: the
    # decision was spent, so Vobiz's retry found nothing to do and the caller stayed on
    # hold. A failed move is owed; one whose outcome was unknown is made again only when
    # it did not reach the landing route (and the caller is still in the room).
    told: list[str] = []
    warm, line = warm_line(on_outcome=lambda c, o: told.append(o))
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))  # hears the whisper, never accepts
    line.moves.clear()
    agent_hangup = signed_agent_hangup(warm)
    if failure == "no connection":
        line.down()
    elif failure == "429":
        line.vobiz.rate_limit_next(1, retry_after=60)  # longer than the client waits
    elif failure == "500":
        line.vobiz.fail_next(1, status=500)
    else:
        deadline_strikes_in_the_next_move(line, applied=False)
    assert agent_hangup().status_code == 503
    assert warm.outcome("C") == "agent-unavailable" and told == []  # decided, not moved
    line.up()
    # Its outcome unknown, the move may still arrive: the retry waits out its grace (a
    # late arrival would run the fallback twice) before making it again.
    monkeypatch.setattr("answerkit.recipes._warm_moves.SENT_GRACE", 0.3)
    assert agent_hangup().status_code == 200  # its signature forgotten with the 503
    assert line.moves == [("C", LANDING)] and told == ["agent-unavailable"]


def test_warm_transfer_a_move_that_arrives_late_is_not_made_again(warm_line: WarmLine) -> None:
    # A move whose answer was lost (a 5xx after Vobiz applied it) lands while the next
    # callback waits: it is not made a second time.
    import threading

    from answerkit.recipes._warm_state import MOVE_OWED

    warm, line = warm_line()
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    line.moves.clear()
    line.forget()
    state = warm._state("C")
    # Decided by the webhook whose move's answer was lost.
    state["warm.decided.1"] = {"outcome": "agent-unavailable", "id": "d1"}
    sent = {"outcome": "agent-unavailable", "rescue": False, "attempt": 1}
    state[MOVE_OWED] = {**sent, "sent": "m1", "sent_at": time.time()}
    late = threading.Timer(
        0.3, lambda: warm._moves.landing(hook({**FIRST, "move": "m1"}, "C", Event="Transfer"))
    )
    late.start()
    warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    late.join()
    assert line.moves == [] and warm._state("C").get(MOVE_OWED) is None
    assert line.transfers_sent() == []


def test_warm_transfer_a_move_superseded_by_a_new_attempt_is_not_made(
    warm_line: WarmLine,
) -> None:
    # The fallback started a second agent (start() again) while a callback waited for the
    # first move to arrive: after the wait it moved the caller off attempt 2's hold.
    import threading

    from answerkit.recipes._warm_state import MOVE_OWED

    warm, line = warm_line()
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    state = warm._state("C")
    state["warm.decided.1"] = {"outcome": "declined", "id": "d1"}
    owed = {"outcome": "declined", "rescue": False, "attempt": 1}
    state[MOVE_OWED] = {**owed, "sent": "m1", "sent_at": time.time()}
    line.moves.clear()
    hunt = threading.Timer(0.3, lambda: warm.start("C"))  # the fallback, landed unseen
    hunt.start()
    warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    hunt.join()
    assert line.moves == [("C", "warm_hold")]  # attempt 2's hold, and no other move


def test_warm_transfer_landing_runs_the_fallback_on_the_transfer_itself() -> None:
    # The landing route answered with a Redirect: the fallback saw Event=Redirect, and one
    # declared for Transfer only (spec §2.8) never ran; the caller heard the apology.
    from answerkit import Event
    from answerkit.recipes._warm_state import LANDED

    seen: list[tuple[object, dict[str, str]]] = []
    flow = new_flow()

    @flow.route("/vm", event=Event.Transfer)
    def vm(call: CallRequest) -> Response:
        seen.append((call.event, dict(call.query)))
        return Response(Speak("voicemail"), Hangup())

    warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="vm")
    query = {"xfer": "C", "attempt": "1", "move": "m1"}
    doc = warm._moves.landing(hook(query, "C", Event="Transfer"))
    assert doc is not None and doc.children[0].text == "voicemail"
    assert seen == [(Event.Transfer, {})]  # the fallback's own (empty) query
    assert warm._state("C").get(LANDED) == "m1"


def test_warm_transfer_a_move_made_then_cut_off_is_not_made_again(warm_line: WarmLine) -> None:
    # Vobiz applied the move (202), then the webhook's deadline fired before the debt was
    # cleared: answered 503, Vobiz's retry made the move a second time.
    warm, line = warm_line()
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    line.moves.clear()
    line.forget()
    agent_hangup = signed_agent_hangup(warm)
    deadline_strikes_in_the_next_move(line, applied=True)
    assert agent_hangup().status_code == 503
    assert line.moves == [("C", LANDING)]  # applied, and arrived
    assert agent_hangup().status_code == 200  # its signature forgotten with the 503
    assert line.moves == [("C", LANDING)] and line.transfers_sent() == [("C", LANDING)]


def test_warm_transfer_move_in_flight_elsewhere_asks_for_the_callback_again(
    warm_line: WarmLine,
) -> None:
    # A status callback cut off at its deadline goes on moving the caller in its thread;
    # Vobiz's retry came meanwhile, found the rescue taken and answered 200: when the first
    # move then failed, nothing was left to move the caller.
    from answerkit.recipes._warm_state import MOVE_OWED

    warm, line = accepted_warm(warm_line)
    warm._state("C")[MOVE_OWED] = {"outcome": "agent-unavailable", "rescue": True, "attempt": 1}
    claim = ["warm-move:warm:C"]
    warm.flow.store.remember_all(claim, 15)  # another webhook is making the move
    agent_hangup = signed_agent_hangup(warm)
    assert agent_hangup().status_code == 503 and line.moves == []
    warm.flow.store.forget_all(claim)  # that move failed, surely unapplied, and let go
    assert agent_hangup().status_code == 200
    assert line.moves == [("C", LANDING)] and warm.outcome("C") == "agent-unavailable"
    # A claim left by a worker killed mid-move lapses.
    warm._state("C")[MOVE_OWED] = {"outcome": "agent-unavailable", "rescue": False, "attempt": 1}
    warm.flow.store.remember_all(claim, 0.05)
    time.sleep(0.1)
    warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    assert line.moves[-1] == ("C", LANDING) and warm._state("C").get(MOVE_OWED) is None


def test_warm_transfer_rescue_owed_is_dropped_when_the_agent_reached_the_room(
    warm_line: WarmLine,
) -> None:
    # The agent's Hangup came before its ConferenceEnter and the rescue move failed; the
    # late room event then made the owed move and sent a connected caller to the fallback.
    told: list[str] = []
    warm, line = accepted_warm(warm_line)
    warm.on_outcome = lambda c, o: told.append(o)
    line.down()  # no connection
    with pytest.raises(RetryLater) as raised:
        warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    assert isinstance(raised.value.__cause__, ConnectError)  # nothing sent
    line.up()
    room = {**FIRST, "leg": "agent"}
    warm._room_event(hook(room, "A", Event="ConferenceEnter"))
    warm._agent_status(hook(FIRST, "A", Event="Hangup"))  # Vobiz's retry
    assert line.moves == [] and warm.outcome("C") == "accepted" and told == []
    assert line.transfers_sent() == []  # the failed move never reached Vobiz either


def test_warm_transfer_a_move_of_an_earlier_attempt_leaves_the_next_ones_debt(
    warm_line: WarmLine,
) -> None:
    # Attempt 1's move was still in flight when start() began attempt 2, whose own move
    # failed: attempt 1's move, finishing, cleared attempt 2's debt, and the caller stayed
    # in attempt 2's room with no agent.
    from answerkit.recipes._warm_moves import FallbackMove
    from answerkit.recipes._warm_state import MOVE_OWED

    warm, line = warm_line()
    warm.start("C")
    owed_1 = {"outcome": "declined", "rescue": False, "attempt": 1}
    warm._state("C")[MOVE_OWED] = owed_1
    line.moves.clear()
    line.forget()
    # Vobiz becomes unreachable once it has put the caller on hold: no agent is called,
    # and the move to the fallback fails unsent.
    line.down(after_move_to="warm_hold")
    with pytest.raises(ConnectError):
        warm.start("C")  # attempt 2: no agent, its move owed
    assert line.moves == [("C", "warm_hold")] and line.calls_placed() == 0
    owed_2 = warm._state("C").get(MOVE_OWED)
    assert owed_2 and owed_2["attempt"] == 2
    # Attempt 1's move, in flight meanwhile, fails unsent: its debt does not come back
    # over attempt 2's, and would not once attempt 2 began either.
    FallbackMove._owe_again(warm._state("C"), owed_1)
    assert warm._state("C").get(MOVE_OWED) == owed_2
    warm._state("C").pop(MOVE_OWED)
    FallbackMove._owe_again(warm._state("C"), owed_1)
    assert warm._state("C").get(MOVE_OWED) is None
    warm._state("C")[MOVE_OWED] = owed_2
    line.up()
    warm._room_event(hook({"xfer": "C", "attempt": "2"}, "C", Event="ConferenceEnter"))
    assert line.moves[-1] == ("C", LANDING)


def test_warm_transfer_start_raises_the_rest_error_when_nothing_can_be_done(
    warm_line: WarmLine,
) -> None:
    # The agent could not be called and the move to the fallback failed: start() raised
    # RetryLater, which no caller of start() expects (it is no VobizError).
    warm, line = warm_line()

    def failure(message: str) -> dict[str, Any]:
        return {"status": "error", "error": {"code": "INTERNAL_ERROR", "message": message}}

    line.vobiz.delay_next(1, seconds=0)  # the hold transfer goes through
    line.vobiz.fail_next(1, status=503, body=failure("cannot place the call"))  # the agent's
    line.vobiz.fail_next(1, status=500, body=failure("boom"))  # the move to the fallback
    with pytest.raises(ServerError, match="boom"):
        warm.start("C")
    assert warm.outcome("C") == "agent-unreachable"  # decided; the move is owed
    assert line.log() == [("call", "")]
    assert line.transfers_sent() == [("C", "warm_hold"), ("C", LANDING)]
    assert line.moves == [("C", "warm_hold")]


def test_warm_transfer_tells_on_outcome_each_recorded_outcome(
    caplog: pytest.LogCaptureFixture, warm_line: WarmLine
) -> None:
    told: list[tuple[str, str]] = []
    warm, line = warm_line(on_outcome=lambda c, o: told.append((c, o)))
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    warm._agent_choice(hook(FIRST, "A", Digits="1"))
    assert told == [("C", "accepted")]
    # The agent leaves before the room: the caller is moved, and the CRM hears of it.
    warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    assert told[-1] == ("C", "agent-unavailable") and line.moves[-1] == ("C", LANDING)
    # A declined transfer is told once the caller was moved; a failing hook undoes nothing.
    told.clear()
    failing, moves = warm_line(callers=("D",), on_outcome=lambda c, o: 1 / 0)
    failing.start("D")
    failing._agent_answer(hook({"xfer": "D", "attempt": "1"}, "B"))
    failing._agent_choice(hook({"xfer": "D", "attempt": "1"}, "B", Digits="2"))
    assert failing.outcome("D") == "declined" and ("D", LANDING) in moves.moves
    assert "on_outcome failed" in caplog.text


def test_warm_transfer_earlier_agent_answering_during_a_restart_is_not_recorded(
    warm_line: WarmLine,
) -> None:
    # Attempt 1's answer webhook passed its check, start() began attempt 2, and the
    # answer then wrote its agent into attempt 2's record: the caller's exit hung up the
    # first agent, while attempt 2's agent kept ringing.
    warm, line = warm_line()
    warm.start("C")
    outcome = warm.outcome
    second: list[Any] = []

    def restart_in_between(caller: str) -> str | None:
        result = outcome(caller)
        warm.outcome = outcome  # type: ignore[method-assign]
        second.append(warm.start("C"))
        return result

    warm.outcome = restart_in_between  # type: ignore[method-assign]
    doc = warm._agent_answer(hook({"xfer": "C", "attempt": "1"}, "A1"))
    assert doc.children[0].tag == "Speak"  # told the transfer is no longer waiting
    assert warm._state("C").get("warm.agent_call_uuid.2") is None
    line.forget()
    warm._room_event(hook({"xfer": "C", "attempt": "2"}, "C", Event="ConferenceExit"))
    # Attempt 2's agent, by the request UUID its make-call got (it has not answered).
    [started] = second
    assert started.agent_request_uuid and line.log() == [("hangup", started.agent_request_uuid)]


def test_warm_transfer_repeated_accept_gets_the_same_room_again(warm_line: WarmLine) -> None:
    # A retried delivery of the accepting Gather action told the agent the caller was
    # gone, and the agent's hangup then sent the caller to the fallback.
    warm, line = warm_line()
    warm.start("C")
    q = {"xfer": "C", "attempt": "1"}
    warm._agent_answer(hook(q, "A"))
    first = warm._agent_choice(hook(q, "A", Digits="1"))
    retry = warm._agent_choice(hook(q, "A", Digits="1"))
    assert retry.to_xml() == first.to_xml() and retry.children[1].tag == "Conference"
    # Only from the agent's own call.
    other = warm._agent_choice(hook(q, "B", Digits="1"))
    assert all(child.tag != "Conference" for child in other.children)
    assert warm.outcome("C") == "accepted" and line.moves[1:] == []


def test_warm_transfer_restart_hangs_up_the_earlier_agent_after_calling_the_new_one(
    warm_line: WarmLine,
) -> None:
    warm, line = warm_line()
    warm.start("C")
    q1 = {"xfer": "C", "attempt": "1"}
    warm._agent_answer(hook(q1, "A1"))
    warm._agent_choice(hook(q1, "A1", Digits="2"))  # declined: the fallback starts again
    line.forget()
    warm.start("C")
    assert line.log() == [("call", ""), ("hangup", "A1")]
    # An agent whose Hangup webhook came already is not hung up again.
    q2 = {"xfer": "C", "attempt": "2"}
    warm._agent_answer(hook(q2, "A2"))
    warm._agent_status(hook(q2, "A2", Event="Hangup"))
    line.forget()
    warm.start("C")
    assert line.log() == [("call", "")]


def test_ivr_apostrophes_keep_contractions_apart_from_other_words() -> None:
    # Deleting apostrophes made "I'd" "id", "I'll" "ill" and "we'll" "well".
    menu = ivr({"1": Option("yes", ("ID", "ill")), "2": Option("no", ("well",))})
    assert menu.match(None, "I'd like to talk to someone") is None
    assert menu.match(None, "I\u2019ll hold") is None
    assert menu.match(None, "We\u02bcll see") is None
    assert menu.match(None, "My 'ID' please") is menu.options["1"]
    curly = ivr({"1": Option("yes", ("I can\u2019t",)), "2": Option("no", ("no",))})
    assert curly.match(None, "Sorry, I can't.") is curly.options["1"]


def test_ivr_unspaced_phrases_match_only_between_characters_of_such_scripts() -> None:
    # A phrase with one character of a script without spaces matched anywhere, its
    # Latin and digit parts included.
    numbers = ivr({"1": Option("yes", ("1番",)), "2": Option("no", ("2番",))})
    assert numbers.match(None, "11番") is None and numbers.match(None, "21番") is None
    assert numbers.match(None, "1番でお願いします") is numbers.options["1"]
    sim = ivr({"1": Option("yes", ("SIMカード",)), "2": Option("no", ("請求",))})
    assert sim.match(None, "eSIMカードについて") is None
    assert sim.match(None, "SIMカードについて") is sim.options["1"]
    han = ivr({"1": Option("yes", ("一",)), "2": Option("no", ("二",))})
    assert han.match(None, "十一") is None and han.match(None, "一番") is han.options["1"]
    thai = ivr({"1": Option("yes", ("๑",)), "2": Option("no", ("๒",))})
    assert thai.match(None, "๑๐") is None and thai.match(None, "๑ ครับ") is thai.options["1"]
    # Korean is written with spaces: a phrase matches at the start of a word (particles
    # attach after it), not inside one.
    korean = ivr({"1": Option("yes", ("네",)), "2": Option("no", ("아니요",))})
    assert korean.match(None, "잘 모르겠네요") is None
    assert korean.match(None, "네요 맞아요") is korean.options["1"]


@pytest.mark.parametrize("index", ["-1", "-5", "x", "99"])
def test_forwarding_result_with_an_index_it_never_wrote_goes_to_the_fallback(index: str) -> None:
    """Only 0 up to the last number moves on: -5 raised IndexError (the fallback of the
    flow, not the recipe's) and -1 re-dialled the first number."""
    flow = new_flow()
    fwd = Forwarding(flow, "fwd", numbers=["+14155550121", "+14155550122"],
                     caller_id="+14155550100", mode="sequential", fallback="sales")  # fmt: skip
    doc = fwd._result(hook({"index": index}, "C", DialStatus="no-answer"))
    assert doc.children[0].tag == "Redirect" and doc.children[0].text.endswith("/sales")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"language": "es-MX"}, r"pass language= a voice language .* speech_language='es-MX'"),
        ({"voice": "woman"}, "makes no valid Speak: Speak: voice"),
        ({"input_type": "digits"}, "make no valid Gather"),
        ({"execution_timeout": 99}, "make no valid Gather"),
        ({"speech_language": "klingon", "input_type": "speech"}, "make no valid Gather"),
    ],
)
def test_ivr_element_settings_are_checked_when_the_menu_is_built(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        IVRMenu(
            new_flow(),
            "main",
            prompt="Diga ventas",
            options={"1": Option("sales", ("ventas",))},
            **settings,
        )


def test_ivr_voice_and_recognition_languages_apart() -> None:
    menu = IVRMenu(
        new_flow(),
        "main",
        prompt="Diga ventas o marque 1.",
        options={"1": Option("sales", ("ventas",))},
        language="es-US",
        speech_language="es-MX",
        no_input_prompt="No recibimos su respuesta.",
        invalid_prompt="Esa opción no es válida.",
        fallback="sales",
    )
    gather = menu.prompt_document(1, "invalid").children[0]
    assert gather.get("language") == "es-MX"
    assert {s.get("language") for s in gather.children} == {"es-US"}
    assert gather.children[0].text == "Esa opción no es válida."


def test_ivr_in_another_language_with_english_re_prompts_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="answerkit"):
        IVRMenu(new_flow(), "main", prompt="Marque 1.", options={"1": "sales"}, language="es-US")
    assert any("English defaults" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("agent", "hook_told"),
    [(lambda ctx: "+1 (415) 555-0142", []), (lambda ctx: ctx["missing"], ["KeyError"])],
    ids=["punctuated-from-crm", "failing"],
)
def test_warm_transfer_whose_agent_cannot_be_called_sends_the_caller_on(
    local_vobiz: Any, agent: Any, hook_told: list[str]
) -> None:
    # make_call refuses the number (or the agent function fails) once the caller is on
    # hold already: the caller must go on to the fallback, not wait in a room for good.
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    reported: list[tuple[str, str]] = []
    flow.on_error = lambda exc, call, route: reported.append((type(exc).__name__, route))
    warm = WarmTransfer(flow, agent=agent, caller_id="+14155550100", fallback="sales")

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak("Thanks for calling."), Redirect(flow.url_for("choice")))

    @flow.route("/choice")
    def choice(call: CallRequest) -> Response:
        warm.start(call.call_uuid)
        return Response(Speak("One moment please."), Wait(length=30))

    sim = CallSimulator(flow, local_vobiz=local_vobiz)
    caller = sim.call("answer")
    caller.run()
    sim.run_until_idle()
    assert warm.outcome(caller.call_uuid) == "agent-unreachable"
    assert caller.transcript.said("sales") and caller.state == "ended"
    # A bug in the agent function reaches the flow's error hook; a refused number is
    # the API's answer, logged only.
    assert reported == [(name, "warm_agent") for name in hook_told]
    sim.close()


def test_warm_transfer_refuses_a_caller_id_make_call_would_refuse() -> None:
    with pytest.raises(ConfigurationError, match=r"caller_id must be a phone number"):
        WarmTransfer(new_flow(), agent="+14155550142", caller_id="+1 415 CALLS", fallback="x")
    with pytest.raises(ConfigurationError, match=r"agent must be .* write it '\+14155550142'"):
        WarmTransfer(new_flow(), agent="+1 (415) 555-0142", caller_id="+14155550100", fallback="x")
    WarmTransfer(new_flow(), agent="sip:desk@example.com", caller_id="+14155550100", fallback="x")


def test_ivr_re_prompts_may_be_silent() -> None:
    menu = IVRMenu(new_flow(), "main", prompt="Press 1.", options={"1": "sales"},
                   no_input_prompt="", invalid_prompt="")  # fmt: skip
    speaks = menu.prompt_document(1, "no-input").children[0].children
    assert [s.text for s in speaks] == ["Press 1."]


def test_warm_transfer_lets_the_webhook_deadline_through_its_agent_call() -> None:
    from answerkit import HandlerTimeout

    def slow_agent(ctx: Any) -> str:
        raise HandlerTimeout("handler deadline passed")  # as SIGALRM raises it mid-call

    from answerkit.recipes._warm_state import ATTEMPT, MOVE_OWED

    warm = WarmTransfer(new_flow(), agent=slow_agent, caller_id="+14155550100", fallback="x")
    state = warm._state("c-1")
    state[ATTEMPT] = 1  # as start() numbered it, before moving the caller to hold
    with pytest.raises(HandlerTimeout):
        warm._call_agent("c-1", 1, {})
    # Decided, and the move owed to the hold room's next status callback: no REST call
    # from a webhook past its deadline, and the caller is not left on hold for good.
    assert warm.outcome("c-1") == "agent-unreachable"
    assert state.get(MOVE_OWED) == {"outcome": "agent-unreachable", "rescue": False, "attempt": 1}


def assert_moved_to_sales_later(sim: Any, caller: Any, warm: WarmTransfer) -> None:
    """The move owed at a webhook's deadline is made by a thread of its own, later: the
    caller ends up at the fallback ("sales"), not on hold for good."""
    deadline = time.monotonic() + 10
    while not caller.transcript.said("sales") and time.monotonic() < deadline:
        time.sleep(0.1)
        sim.run_until_idle()
    assert warm.outcome(caller.call_uuid) == "agent-unreachable"
    assert caller.transcript.said("sales")


def test_a_deadline_after_the_caller_reached_the_room_still_moves_them(local_vobiz: Any) -> None:
    # Vobiz applies the hold transfer at once: the caller is in the room (ConferenceEnter
    # sent) while the agent lookup runs on, and the room sends nothing more. The move owed
    # at the deadline is made by a thread of its own once the webhook has answered.
    from answerkit import HandlerTimeout

    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    box: dict[str, Any] = {}

    def slow_agent(ctx: Any) -> str:
        box["caller"].run()  # the caller hears the announcement and enters the room
        raise HandlerTimeout("handler deadline passed")  # SIGALRM at the deadline

    warm = WarmTransfer(flow, agent=slow_agent, caller_id="+14155550100", fallback="sales")

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        # Looping audio: the call waits (blocked) for the transfer, as a live one would.
        return Response(Speak("Thanks for calling."), Play("https://cdn.example.com/m.mp3", loop=0))

    sim = CallSimulator(flow, local_vobiz=local_vobiz)
    caller = box["caller"] = sim.call("answer")
    caller.run()
    with pytest.raises(HandlerTimeout):
        warm.start(caller.call_uuid)
    sim.run_until_idle()
    assert_moved_to_sales_later(sim, caller, warm)
    sim.close()


@pytest.mark.parametrize("failure", ["deadline", "timeout", "5xx"])
def test_a_hold_transfer_cut_off_still_moves_the_caller(local_vobiz: Any, failure: str) -> None:
    # Vobiz applied the hold transfer, then SIGALRM struck before its answer was read (or
    # the answer never came, or was a 5xx): the caller waits in the room and no agent is
    # ever called. The move to the fallback is owed, and made by a thread of its own once
    # the webhook has answered.
    from answerkit import HandlerTimeout
    from answerkit.errors import ServerError, TimeoutError

    cut: Exception = {
        "deadline": HandlerTimeout("handler deadline passed"),
        "timeout": TimeoutError("no answer in time", method="POST"),
        "5xx": ServerError("oops", status=503),
    }[failure]
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="sales")
    real = flow.try_transfer

    def cut_off(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # applied by Vobiz...
        flow.try_transfer = real  # type: ignore[method-assign]
        raise cut  # ...and its answer lost

    flow.try_transfer = cut_off  # type: ignore[method-assign]

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak("Thanks for calling."), Play("https://cdn.example.com/m.mp3", loop=0))

    sim = CallSimulator(flow, local_vobiz=local_vobiz)
    caller = sim.call("answer")
    caller.run()
    before = set(local_vobiz.calls)
    with pytest.raises(type(cut)):
        warm.start(caller.call_uuid)
    assert_moved_to_sales_later(sim, caller, warm)
    assert set(local_vobiz.calls) == before  # no agent was called past the deadline
    sim.close()


def test_a_hold_transfer_refused_unsent_at_the_deadline_owes_nothing() -> None:
    # LateTransferRefused: nothing reached Vobiz, the caller hears the flow's fallback
    # answer where they are; no move is owed and no outcome recorded.
    from answerkit.dispatch import LateTransferRefused
    from answerkit.recipes._warm_state import MOVE_OWED

    flow = new_flow()
    warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="sales")

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise LateTransferRefused("past the deadline")

    flow.try_transfer = refused  # type: ignore[method-assign]
    with pytest.raises(LateTransferRefused):
        warm.start("c-1")
    assert warm.outcome("c-1") is None
    assert warm._state("c-1").get(MOVE_OWED) is None


def test_a_move_owed_at_the_deadline_is_made_even_if_the_worker_exits(tmp_path: Path) -> None:
    # The webhook past its deadline leaves the move to a thread; the worker then leaves
    # (max_requests, a reload): a daemon thread died with it, the caller on hold for good.
    moved = tmp_path / "moved"
    script = f"""
import time
from answerkit.state import SQLiteStore
from answerkit.recipes._warm_moves import FallbackMove
from answerkit.recipes._warm_state import ATTEMPT
store = SQLiteStore({str(tmp_path / "state.sqlite3")!r})
class Flow:
    store = store
    def try_transfer(self, *args, **kwargs):
        open({str(moved)!r}, "w").write("moved")
        return object()
moves = FallbackMove(Flow(), "fallback", "landing", store.state, lambda caller, outcome: None)
store.state("caller-1")[ATTEMPT] = 1
moves.record(store.state("caller-1"), "agent-unreachable", 1)
moves.settle_later("caller-1")
time.sleep(0.1)  # the worker exits before the move's turn comes
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert moved.read_text() == "moved"


@pytest.mark.parametrize("shape", ["itself", "two menus", "three menus"])
def test_menus_whose_fallbacks_go_round_are_refused_when_mounted(shape: str) -> None:
    # Each fallback starts its menu's attempts afresh: a silent caller went round for ever,
    # and the simulator called it a normal end.
    flow = new_flow()
    if shape == "itself":
        IVRMenu(flow, "main", prompt="Hi", options={"1": "sales"}, fallback="main")
        loop = "main -> main"
    elif shape == "two menus":
        IVRMenu(flow, "main", prompt="Hi", options={"1": "accounts"}, fallback="accounts")
        IVRMenu(flow, "accounts", prompt="Hi", options={"1": "sales"}, fallback="main")
        loop = "main -> accounts -> main"
    else:
        IVRMenu(flow, "main", prompt="Hi", options={"1": "sales"}, fallback="a")
        IVRMenu(flow, "a", prompt="Hi", options={"1": "sales"}, fallback="b")
        IVRMenu(flow, "b", prompt="Hi", options={"1": "sales"}, fallback="a")
        loop = "a -> b -> a"
    with pytest.raises(ConfigurationError, match=re.escape(f"the fallbacks go round ({loop})")):
        flow.create_app()
    ok = new_flow()  # a chain that ends is fine: main -> accounts -> goodbye
    IVRMenu(ok, "main", prompt="Hi", options={"1": "accounts"}, fallback="accounts")
    IVRMenu(ok, "accounts", prompt="Hi", options={"1": "sales"})
    ok.create_app()


def test_a_call_the_caller_gave_up_on_after_max_steps_did_not_end_normally() -> None:
    flow = new_flow()
    flow.route("/answer")(lambda call: Response(Redirect(flow.url_for("answer"))))
    t = CallSimulator(flow).call("answer", max_steps=20).run()
    assert t.step_limit_reached and t.hangup_cause_code in {"4000", 4000}
    assert not t.ended_normally


@pytest.mark.parametrize("name", ["support/main", "menú", "main~1", "Main-2"])
def test_ivr_names_that_make_a_usable_path_are_taken(name: str) -> None:
    # Refused for a while by a letters-digits-dashes rule, though each served fine.
    flow = new_flow()
    IVRMenu(flow, name, prompt="Hi", options={"1": "sales"})
    t = CallSimulator(flow).call(name, digits="1").run()
    assert t.said("sales") and t.ended_normally


def test_option_phrases_may_come_from_a_generator() -> None:
    # The type check read the generator before the phrases were kept: none were.
    option = Option("sales", phrases=(p.lower() for p in ("SALES", "BUY")))
    assert option.phrases == ("sales", "buy")


def test_the_fallback_registry_lets_go_of_flows() -> None:
    import gc
    import weakref

    from answerkit.recipes import _targets

    gc.collect()
    before = len(_targets._PASSED_ON)  # flows other tests keep (examples imported at top level)
    refs = []
    for _ in range(5):
        flow = new_flow()
        IVRMenu(flow, "main", prompt="Hi", options={"1": "sales"}, fallback="sales")
        refs.append(weakref.ref(flow))
    del flow
    gc.collect()
    assert [r() for r in refs] == [None] * 5
    assert len(_targets._PASSED_ON) <= before


def test_warm_transfer_caller_hanging_up_while_the_agent_rings_is_abandoned(
    warm_line: WarmLine,
) -> None:
    # The caller's Hangup webhook reaches the flow (any route): the transfer is abandoned
    # at once and the ringing agent's call is ended, not left to ring until agent_timeout.
    warm, line = warm_line()
    started = warm.start("C")
    assert started is not None and started.agent_request_uuid
    line.moves.clear()  # the move to the hold room
    line.hang_up("C")
    warm._on_hangup(hook({}, "C", Event="Hangup"))
    assert warm.outcome("C") == "abandoned"
    agent = started.agent_request_uuid  # its request UUID: it has not answered
    assert ("hangup", agent) in line.log()
    assert line.vobiz.call(agent).status == "completed"  # no longer ringing
    warm._on_agent_status(hook(FIRST, "A", Event="Hangup"))  # its hangup then decides nothing
    assert warm.outcome("C") == "abandoned" and line.moves == []


def test_warm_transfer_caller_hanging_up_after_the_accept_ends_the_agents_call(
    warm_line: WarmLine,
) -> None:
    # Accepted, but the caller hangs up before reaching the room (no room event): the
    # agent, who has stay_alone, would otherwise wait in the room alone.
    warm, line = accepted_warm(warm_line)
    warm._on_hangup(hook({}, "C", Event="Hangup"))
    assert warm.outcome("C") == "accepted" and line.log()[-1] == ("hangup", "A")
    line.forget()
    warm._on_hangup(hook({}, "C", Event="Hangup"))  # delivered again: nothing more
    warm._on_hangup(hook({}, "someone-else", Event="Hangup"))  # not a transfer's caller
    assert line.log() == []


def test_warm_transfer_hangup_listener_runs_on_any_route_of_the_flow(warm_line: WarmLine) -> None:
    warm, line = warm_line()
    started = warm.start("C")
    assert started is not None
    c = warm.flow.create_app().test_client()  # /sales: new_flow's route, no Hangup handler
    r = c.post("/sales", data={"CallUUID": "C", "Event": "Hangup"},
               headers=sign("https://voice.example.com/sales", "t" * 20))  # fmt: skip
    assert r.status_code == 200 and r.data == b""
    assert warm.outcome("C") == "abandoned"
    assert ("hangup", started.agent_request_uuid) in line.log()


def test_warm_transfer_checks_the_caller_is_live_when_the_hangup_went_elsewhere(
    warm_line: WarmLine,
) -> None:
    # An app whose hangup URL another server serves: the accept finds the caller gone.
    warm, line = warm_line()
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    line.hang_up("C")
    line.forget()
    doc = warm._agent_choice(hook(FIRST, "A", Digits="1"))
    assert warm.outcome("C") == "abandoned" and "no longer waiting" in doc.to_xml()
    assert line.log()[0] == ("live", "C")  # asked Vobiz, which answered 404


def test_warm_transfer_caller_hangup_met_by_a_store_outage_is_sent_again(
    warm_line: WarmLine,
) -> None:
    # Answered 200 with the outage swallowed, the abandon was lost for good (the agent
    # rang on); a 503 has Vobiz send the Hangup again, and the retry settles it.
    from answerkit.errors import StateError

    class Flaky(MemoryStore):
        down = False

        def get_all(self, call_uuid: str) -> dict[str, Any]:
            if self.down and call_uuid.startswith("warm:"):
                raise StateError("store unreachable")
            return super().get_all(call_uuid)

    store = Flaky()
    warm, line = warm_line(store)
    started = warm.start("C")
    assert started is not None
    line.forget()
    c = warm.flow.create_app().test_client()
    hangup = {"CallUUID": "C", "Event": "Hangup"}
    store.down = True
    r = c.post("/sales", data=hangup, headers=sign("https://voice.example.com/sales", "t" * 20))
    assert r.status_code == 503
    store.down = False
    assert warm.outcome("C") is None and line.log() == []
    r = c.post("/sales", data=hangup, headers=sign("https://voice.example.com/sales", "t" * 20))
    assert r.status_code == 200 and warm.outcome("C") == "abandoned"
    assert ("hangup", started.agent_request_uuid) in line.log()


class HookedStore(MemoryStore):
    """A MemoryStore that runs ``before(op, key)`` ahead of each write to the transfer's
    record and ``after(op, key)`` once it is done: a test forces one interleaving of two
    webhooks (or a store failure) at an exact point of the recipe, with no timing."""

    def __init__(self) -> None:
        super().__init__()
        self.before: Callable[[str, str], None] = lambda op, key: None
        self.after: Callable[[str, str], None] = lambda op, key: None

    def _around(self, op: str, call_uuid: str, key: str, write: Callable[[], Any]) -> Any:
        if not call_uuid.startswith("warm:"):
            return write()
        self.before(op, key)
        result = write()
        self.after(op, key)
        return result

    def set(self, call_uuid: str, key: str, value: Any) -> None:
        self._around(
            "set", call_uuid, key, lambda: super(HookedStore, self).set(call_uuid, key, value)
        )

    def set_many(self, call_uuid: str, items: Any) -> None:
        keys = ",".join(items)
        self._around(
            "set", call_uuid, keys, lambda: super(HookedStore, self).set_many(call_uuid, items)
        )

    def set_if_absent(self, call_uuid: str, key: str, value: Any) -> Any:
        return self._around(
            "claim",
            call_uuid,
            key,
            lambda: super(HookedStore, self).set_if_absent(call_uuid, key, value),
        )

    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        result: int = self._around(
            "claim", call_uuid, key, lambda: super(HookedStore, self).incr(call_uuid, key, amount)
        )
        return result


def fail_next_write_after(store: HookedStore, ticket: str) -> None:
    """The store fails once (a Redis blip, SQLite busy past its timeout), on the first
    write after the transfer takes the ticket named ``ticket`` (its decision, a rescue)."""
    from answerkit.errors import StateError

    armed = {"after": False}

    def before(op: str, key: str) -> None:
        if armed["after"] and op == "set":
            armed["after"] = False
            raise StateError("store unreachable (brief)")

    def after(op: str, key: str) -> None:
        if op == "claim" and key.startswith(ticket):
            armed["after"] = True
            store.after = lambda op, key: None

    store.before, store.after = before, after


@pytest.mark.parametrize("first", ["declined", "undecided"])
def test_warm_transfer_late_callback_of_attempt_1_decides_nothing_once_attempt_2_began(
    first: str, warm_line: WarmLine
) -> None:
    # Attempt 1's agent Hangup passed its check that attempt 1 is current; the fallback's
    # start() then began attempt 2 (and cleared the decision) before the callback took
    # its ticket: it won attempt 2's decision, moved the caller off attempt 2's hold, and
    # attempt 2's agent was told the caller was gone.
    told: list[str] = []
    warm, line = warm_line(on_outcome=lambda c, o: told.append(o))
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    if first == "declined":
        warm._agent_choice(hook(FIRST, "A", Digits="2"))  # moved to the fallback
    line.moves.clear()
    is_current = warm._is_current

    def restart_after_the_check(caller: str, attempt: int | None) -> bool:
        result = is_current(caller, attempt)
        if sys._getframe(1).f_code.co_name == "_decide":
            warm._is_current = is_current  # type: ignore[method-assign]
            warm.start("C", {"try": "2"})  # the fallback starts attempt 2
        return result

    warm._is_current = restart_after_the_check  # type: ignore[method-assign]
    warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    assert warm._is_current is is_current  # the restart came in between
    assert line.moves == [("C", "warm_hold")]  # attempt 2's hold, and no other move
    assert warm.outcome("C") is None
    assert told == (["declined"] if first == "declined" else [])
    second = {"xfer": "C", "attempt": "2"}
    warm._agent_answer(hook(second, "B"))
    joined = warm._agent_choice(hook(second, "B", Digits="1"))
    assert joined.children[1].tag == "Conference" and joined.children[1].text == "warm-C-2"
    assert warm.outcome("C") == "accepted" and line.moves == [("C", "warm_hold")]


@pytest.mark.parametrize("first", ["decline", "agent hangup", "rescue"])
def test_warm_transfer_store_failing_after_the_decision_is_completed_by_the_next_callback(
    first: str, warm_line: WarmLine
) -> None:
    # The decision's ticket was taken, then the store failed before the outcome and the
    # move it owes were written: every later callback found the transfer decided and did
    # nothing, and the caller waited in the room alone for good.
    from answerkit.errors import StateError

    store = HookedStore()
    warm, line = warm_line(store)
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    if first == "rescue":
        warm._agent_choice(hook(FIRST, "A", Digits="1"))  # accepted, never reaches the room
    line.moves.clear()
    fail_next_write_after(store, "warm.rescued" if first == "rescue" else "warm.decided")
    with pytest.raises((StateError, RetryLater)):
        if first == "decline":
            warm._agent_choice(hook(FIRST, "A", Digits="2"))
        else:
            warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    # The agent's Hangup follows the decline; Vobiz sends a failed status callback again.
    for _ in range(2):
        warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    expected = {"decline": "declined", "agent hangup": "agent-unavailable"}
    assert warm.outcome("C") == expected.get(first, "agent-unavailable")
    assert line.moves == [("C", LANDING)]  # moved, once


def test_warm_transfer_caller_hangup_with_the_store_failing_after_deciding_ends_the_agent(
    warm_line: WarmLine,
) -> None:
    # The caller's Hangup took the decision, then the store failed (503): Vobiz's retry
    # found the transfer decided, did nothing, and the agent's phone rang on.
    store = HookedStore()
    warm, line = warm_line(store)
    started = warm.start("C")
    assert started is not None
    c = warm.flow.create_app().test_client()
    fail_next_write_after(store, "warm.decided")
    hangup = {"CallUUID": "C", "Event": "Hangup"}
    r = c.post("/sales", data=hangup, headers=sign("https://voice.example.com/sales", "t" * 20))
    assert r.status_code in (200, 503)
    r = c.post("/sales", data=hangup, headers=sign("https://voice.example.com/sales", "t" * 20))
    assert r.status_code == 200
    assert warm.outcome("C") == "abandoned"
    assert ("hangup", started.agent_request_uuid) in line.log()


def test_warm_transfer_caller_leaving_attempt_1_says_nothing_of_attempt_2(
    warm_line: WarmLine,
) -> None:
    # Attempt 1 declined: the move to the fallback takes the caller out of room 1, whose
    # exit callback passed its check of the attempt just before the fallback's start()
    # began attempt 2, and wrote "the caller left" into attempt 2's fresh record. Attempt
    # 2's agent then accepted and hung up before reaching the room: nobody moved the
    # caller, who held in room 2 alone.
    store = HookedStore()
    warm, line = warm_line(store)
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    warm._agent_choice(hook(FIRST, "A", Digits="2"))
    warm._agent_status(hook(FIRST, "A", Event="Hangup"))

    def restart_first(op: str, key: str) -> None:
        if key.startswith("warm.caller_left"):
            store.before = lambda op, key: None
            warm.start("C")  # the fallback, landed, starts attempt 2

    store.before = restart_first
    warm._room_event(hook(FIRST, "C", Event="ConferenceExit"))
    assert warm.room_for("C") == "warm-C-2"  # the restart came in between
    second = {"xfer": "C", "attempt": "2"}
    warm._agent_answer(hook(second, "B"))
    warm._agent_choice(hook(second, "B", Digits="1"))
    line.moves.clear()
    warm._agent_status(hook(second, "B", Event="Hangup"))  # no room event of B came
    assert line.moves == [("C", LANDING)] and warm.outcome("C") == "agent-unavailable"


def test_warm_transfer_caller_leaving_as_the_agent_accepts_ends_the_agents_call(
    warm_line: WarmLine,
) -> None:
    # The caller's room exit read the outcome (not accepted yet), then the agent's accept
    # took the decision, then the exit's own decision failed: neither hung the agent up,
    # who waited in the room alone (stay_alone).
    import threading

    store = HookedStore()
    warm, line = warm_line(store)
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    line.forget()
    exit_deciding, accept_decided = threading.Event(), threading.Event()

    def deciding(op: str, key: str) -> bool:
        return op == "claim" and key.startswith("warm.ticket")  # the decision's ticket

    def before(op: str, key: str) -> None:
        if deciding(op, key) and threading.current_thread().name == "caller-exit":
            exit_deciding.set()  # past its reading of the outcome, in the old order
            assert accept_decided.wait(10)

    def after(op: str, key: str) -> None:
        if deciding(op, key) and threading.current_thread().name != "caller-exit":
            accept_decided.set()

    store.before, store.after = before, after
    caller_exit = threading.Thread(
        target=lambda: warm._room_event(hook(FIRST, "C", Event="ConferenceExit")),
        name="caller-exit",
    )
    caller_waiting = warm._caller_waiting

    def caller_leaves_after_the_check(caller: str, attempt: int | None) -> bool:
        waiting = caller_waiting(caller, attempt)  # still live
        caller_exit.start()  # the caller hangs up now: their exit is handled meanwhile
        assert exit_deciding.wait(10)
        return waiting

    warm._caller_waiting = caller_leaves_after_the_check  # type: ignore[method-assign]
    doc = warm._agent_choice(hook(FIRST, "A", Digits="1"))
    caller_exit.join(10)
    assert doc.children[1].tag == "Conference" and warm.outcome("C") == "accepted"
    assert ("hangup", "A") in line.log()


def _old_layout(warm: WarmTransfer, **record: Any) -> None:
    """Caller "C"'s transfer as the version before numbered keys (b912e1b^) left it:
    attempt 1 in its URLs, its record under the bare keys (``warm.decided`` an incr
    counter, ``warm.outcome``...)."""
    state = warm._state("C")
    state.update(
        {
            "warm.attempt": 1,
            "warm.context": {},
            "warm.agent_uuid": "req-1",
            "warm.agent_call_uuid": "A",
            **record,
        }
    )


def test_warm_transfer_an_earlier_versions_declined_transfer_is_not_decided_again(
    warm_line: WarmLine,
) -> None:
    # Declined and moved by the earlier version; this one gets the agent's Hangup: it
    # read the numbered keys, found nothing decided, and moved the caller a second time,
    # overwriting the outcome.
    told: list[str] = []
    warm, line = warm_line(on_outcome=lambda c, o: told.append(o))
    _old_layout(warm, **{"warm.decided": 1, "warm.outcome": "declined", "warm.landed": "m1"})
    warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    assert line.moves == [] and told == []
    assert warm.outcome("C") == "declined"


def test_warm_transfer_an_earlier_versions_owed_move_is_made_once(warm_line: WarmLine) -> None:
    # The earlier version decided and owed the move (its move failed): made once, told.
    told: list[str] = []
    warm, line = warm_line(on_outcome=lambda c, o: told.append(o))
    owed = {"outcome": "declined", "rescue": False, "attempt": 1}
    _old_layout(warm, **{"warm.decided": 1, "warm.outcome": "declined", "warm.move_owed": owed})
    for _ in range(2):
        warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    assert line.moves == [("C", LANDING)] and told == ["declined"]
    assert warm.outcome("C") == "declined"


def test_warm_transfer_an_earlier_versions_ringing_transfer_ends_the_agent(
    warm_line: WarmLine,
) -> None:
    # Begun by the earlier version, the caller hangs up while the agent is in the whisper:
    # decided here under the bare keys, the agent (named there) is hung up.
    told: list[str] = []
    warm, line = warm_line(on_outcome=lambda c, o: told.append(o))
    _old_layout(warm)
    warm._on_hangup(hook({}, "C", Event="Hangup"))
    warm._room_event(hook(FIRST, "C", Event="ConferenceExit"))
    assert ("hangup", "A") in line.log() and line.moves == []
    assert warm.outcome("C") == "abandoned" and told == ["abandoned"]
    state = warm._state("C")
    assert state.get("warm.decided") == 1 and state.get("warm.outcome") == "abandoned"
    # The earlier version's agent choice, still running there, finds it decided.
    assert state.incr("warm.decided") != 1


def test_warm_transfer_an_earlier_versions_accepted_transfer_is_rescued_once(
    warm_line: WarmLine,
) -> None:
    # Accepted there; the agent hangs up before any room event: moved once, as there.
    told: list[str] = []
    warm, line = warm_line(on_outcome=lambda c, o: told.append(o))
    _old_layout(warm, **{"warm.decided": 1, "warm.outcome": "accepted"})
    for _ in range(2):
        warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    assert line.moves == [("C", LANDING)] and told == ["agent-unavailable"]
    assert warm.outcome("C") == "agent-unavailable"
    assert warm._state("C").get("warm.rescued") == 1


def test_warm_transfer_a_new_attempt_after_an_earlier_versions_one_starts_undecided(
    warm_line: WarmLine,
) -> None:
    # The bare keys still hold the earlier version's attempt 1: attempt 2, begun here,
    # does not inherit its decision, and its own agent's accept connects.
    warm, line = warm_line()
    _old_layout(warm, **{"warm.decided": 1, "warm.outcome": "declined"})
    warm.start("C")
    assert warm.outcome("C") is None and ("hangup", "A") in line.log()
    second = {"xfer": "C", "attempt": "2"}
    warm._agent_answer(hook(second, "B"))
    joined = warm._agent_choice(hook(second, "B", Digits="1"))
    assert joined.children[1].tag == "Conference" and warm.outcome("C") == "accepted"


class SetLoggingStore(MemoryStore):
    """A store whose own ``set`` (logging, encrypting) makes ``set_if_absent`` a read and
    then a write; ``between`` runs once, at the first write of a decision, in between."""

    between: Callable[[], None] | None = None

    def set(self, call_uuid: str, key: str, value: Any) -> None:
        run, self.between = self.between, None
        if run is not None and key.startswith("warm.decided"):
            run()
        else:
            self.between = run
        super().set(call_uuid, key, value)


def test_warm_transfer_one_decision_on_a_store_whose_set_if_absent_is_not_atomic(
    warm_line: WarmLine,
) -> None:
    # The agent's decline read "undecided", then the caller's room exit was handled, then
    # the decline wrote its decision: both won (caller moved, agent hung up, two outcomes
    # told), as set_if_absent is a read and a write on this store.
    store = SetLoggingStore()
    warm, line, told = ringing_agent(warm_line, store)
    store.between = lambda: warm._room_event(hook(FIRST, "C", Event="ConferenceExit"))
    warm._agent_choice(hook(FIRST, "A", Digits="2"))
    warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    assert store.between is None  # the exit came in between
    assert told == ["abandoned"] and warm.outcome("C") == "abandoned"
    assert line.moves == [] and ("hangup", "A") in line.log()


def test_warm_transfer_a_ticket_without_its_record_is_taken_over(warm_line: WarmLine) -> None:
    # The decline took the decision's ticket, then the store failed before its record:
    # the agent's Hangup, after it, decides (nothing of the decline took effect).
    from answerkit.errors import StateError

    store = HookedStore()
    warm, line, told = ringing_agent(warm_line, store)

    def fail_the_record(op: str, key: str) -> None:
        if key.startswith("warm.decided"):
            store.before = lambda op, key: None
            raise StateError("store unreachable (brief)")

    store.before = fail_the_record
    with pytest.raises(StateError):
        warm._agent_choice(hook(FIRST, "A", Digits="2"))
    assert warm._state("C").get("warm.ticket.1") == 1  # taken, with no record
    for _ in range(2):
        warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    assert line.moves == [("C", LANDING)] and told == ["agent-unavailable"]
    assert warm.outcome("C") == "agent-unavailable"


def test_warm_transfer_decides_in_one_atomic_write_on_a_built_in_store(
    warm_line: WarmLine,
) -> None:
    # A slow ticket holder taken over by another callback left the decision's work (the
    # move, the tell) to a callback that never came: a built-in store needs no tickets.
    from answerkit.recipes._warm_ticket import take_decision
    from answerkit.state import SQLiteStore, claims_are_atomic

    warm, _ = warm_line()
    warm.start("C")
    state = warm._state("C")
    assert claims_are_atomic(state.store) and not claims_are_atomic(HookedStore())
    assert not claims_are_atomic(SetLoggingStore())
    assert claims_are_atomic(SQLiteStore.__new__(SQLiteStore))
    assert take_decision(state, 1, "declined") and not take_decision(state, 1, "abandoned")
    assert "warm.ticket.1" not in state and warm.outcome("C") == "declined"


def test_warm_transfer_a_late_record_loses_to_the_generation_that_took_over(
    warm_line: WarmLine,
) -> None:
    # A ticket's holder writes its record after another callback took the next
    # generation: the holder does not act, and the decision is the next generation's.
    from answerkit.recipes._warm_ticket import take_decision

    warm, _ = warm_line(HookedStore())  # its own set: set_if_absent is not atomic
    warm.start("C")
    state = warm._state("C")
    assert state.incr("warm.ticket.1") == 1  # a holder, about to write its record
    assert take_decision(state, 1, "abandoned")  # takes over: generation 2
    state["warm.decided.1"] = {"outcome": "accepted", "id": "late"}  # the holder's write
    assert state.get("warm.ticket.1.g2")  # what the holder reads next: taken over
    assert not take_decision(state, 1, "declined")
    assert warm.outcome("C") == "abandoned"


def test_warm_transfer_decided_then_the_store_failing_is_still_told(warm_line: WarmLine) -> None:
    # The caller's Hangup decided "abandoned", then the store failed (503): the retry
    # found the transfer decided and told on_outcome nothing, ever.
    from answerkit.errors import StateError

    class ReadFailingStore(HookedStore):
        armed = False

        def get_all(self, call_uuid: str) -> dict[str, Any]:
            if self.armed:
                self.armed = False
                raise StateError("store unreachable (brief)")
            return super().get_all(call_uuid)

    def decided(op: str, key: str) -> None:
        if key.startswith("warm.decided"):
            store.armed, store.after = True, lambda op, key: None  # the next read fails

    told: list[str] = []
    store = ReadFailingStore()
    warm, line = warm_line(store, on_outcome=lambda c, o: told.append(o))
    started = warm.start("C")
    assert started is not None
    store.after = decided
    for _ in range(2):  # the Hangup is sent again after a failure
        with contextlib.suppress(StateError):
            warm._on_hangup(hook({}, "C", Event="Hangup"))
    warm._room_event(hook(FIRST, "C", Event="ConferenceExit"))
    assert warm.outcome("C") == "abandoned" and told == ["abandoned"]
    assert ("hangup", started.agent_request_uuid) in line.log()


def test_warm_transfer_a_rescue_outcome_survives_the_store_failing_after_the_move(
    warm_line: WarmLine,
) -> None:
    # The rescue moved the caller; the store then failed writing its outcome: it stayed
    # "accepted" for good and on_outcome never heard "agent-unavailable".
    told: list[str] = []
    store = HookedStore()
    warm, line = warm_line(store, on_outcome=lambda c, o: told.append(o))
    warm.start("C")
    warm._agent_answer(hook(FIRST, "A"))
    warm._agent_choice(hook(FIRST, "A", Digits="1"))
    line.moves.clear()
    land = line.land
    assert land is not None

    def fail_the_next_write(op: str, key: str) -> None:
        if op == "set":
            store.before = lambda op, key: None
            raise StateError("store unreachable (brief)")

    def landed(query: dict[str, str]) -> None:
        land(query)
        store.before = fail_the_next_write  # from the move's return on

    from answerkit.errors import StateError

    line.land = landed
    for _ in range(3):  # Vobiz sends a failed status callback again
        with contextlib.suppress(StateError, RetryLater):
            warm._agent_status(hook(FIRST, "A", Event="Hangup"))
    assert line.moves == [("C", LANDING)]
    assert warm.outcome("C") == "agent-unavailable"
    assert told == ["accepted", "agent-unavailable"]


def test_warm_transfer_deadline_just_after_the_hold_owes_the_fallback(
    warm_line: WarmLine,
) -> None:
    # The deadline (SIGALRM) struck on the first line start() ran after the hold transfer
    # returned, outside both its tries: the caller held in a room no agent was called to,
    # and nothing was owed.
    from answerkit.errors import HandlerTimeout

    warm, line = warm_line()
    later: list[str] = []
    warm._moves.settle_later = lambda caller_uuid, after=0.5: later.append(caller_uuid)  # type: ignore[method-assign]
    start_code = WarmTransfer.start.__code__

    def strike(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not start_code:
            return None

        def each_line(frame: Any, event: str, arg: Any) -> Any:
            if event == "line" and line.moves and not later and line.calls_placed() == 0:
                raise HandlerTimeout("deadline")
            return each_line

        return each_line

    sys.settrace(strike)
    try:
        with pytest.raises(HandlerTimeout):
            warm.start("C")
    finally:
        sys.settrace(None)
    assert line.moves == [("C", "warm_hold")] and line.calls_placed() == 0
    assert later == ["C"] and warm.outcome("C") == "agent-unreachable"
    # The room's next callback (or the thread settle_later starts) makes the move.
    warm._room_event(hook(FIRST, "C", Event="ConferenceEnter"))
    assert line.moves == [("C", "warm_hold"), ("C", LANDING)]


def test_warm_transfer_agent_entering_a_room_the_caller_left_is_hung_up(
    warm_line: WarmLine,
) -> None:
    # The caller left while the accept was decided, and hanging the agent up then failed
    # (the API down a moment): the agent's own ConferenceEnter never looked whether the
    # caller had left, and the agent waited in the room alone.
    warm, line = accepted_warm(warm_line)
    agent = line.vobiz.add_call("A", direction="outbound")  # the agent's answered call
    line.vobiz.fail_next(1, status=500)  # a DELETE is not repeated after a plain 500
    warm._room_event(hook(FIRST, "C", Event="ConferenceExit"))  # its hangup of A fails
    assert line.log() == [("hangup", "A")] and agent.live
    warm._room_event(hook({**FIRST, "leg": "agent"}, "A", Event="ConferenceEnter"))
    assert line.log() == [("hangup", "A"), ("hangup", "A")]
    assert not line.vobiz.call("A").live  # hung up this time
    assert warm.outcome("C") == "accepted"
    # The agent of another call, or of an earlier attempt, is not hung up.
    line.forget()
    warm._room_event(hook({**FIRST, "leg": "agent"}, "X", Event="ConferenceEnter"))
    assert line.log() == []


# --- where recipes send the caller: checked when mounted ------------------------------------


def _operator(flow: CallFlow, fallback: str) -> Forwarding:
    return Forwarding(
        flow, "operator", numbers=["+14155550121"], caller_id="+14155550100", fallback=fallback
    )


@pytest.mark.parametrize(
    ("shape", "loop"),
    [
        ("menu by path", "main -> sub -> main"),
        ("menu via a forwarding", "main -> operator -> main"),
        ("menu to its own choice route", "main -> main"),
        ("forwarding to itself", "operator -> operator"),
        ("forwarding to its result route", "operator -> operator"),
    ],
)
def test_fallbacks_that_go_round_are_refused_however_written(shape: str, loop: str) -> None:
    # Only menus named by route name were followed: a path, a Forwarding between two
    # menus or a menu's own choice route mounted, and a silent caller (whom nobody
    # answered) went round until the call's step limit.
    flow = new_flow()
    if shape == "menu by path":
        IVRMenu(flow, "main", prompt="Hi", options={"1": "sales"}, fallback="/sub")
        IVRMenu(flow, "sub", prompt="Hi", options={"1": "sales"}, fallback="/main/choice")
    elif shape == "menu via a forwarding":
        IVRMenu(flow, "main", prompt="Hi", options={"1": "sales"}, fallback="operator")
        _operator(flow, "main")
    elif shape == "menu to its own choice route":
        IVRMenu(flow, "main", prompt="Hi", options={"1": "sales"}, fallback="main_choice")
    elif shape == "forwarding to itself":
        _operator(flow, "/operator")
    else:
        _operator(flow, "operator_result")
    # A recipe's own step as a fallback is refused as such before any loop is looked for.
    told = "is a step of a recipe" if "route" in shape else f"the fallbacks go round ({loop})"
    with pytest.raises(ConfigurationError, match=re.escape(told)):
        flow.create_app()


def test_a_forwarding_back_to_a_menu_whose_fallback_ends_is_fine() -> None:
    # "Press 0 for the operator; nobody free: back to the menu" ends for a silent caller:
    # the menu's own fallback is a goodbye.
    flow = new_flow()
    IVRMenu(flow, "main", prompt="Hi", options={"0": "operator"})
    _operator(flow, "main")
    flow.create_app()
    t = CallSimulator(flow).call("main", digits=["0"], dial="no-answer").run()
    assert t.ended_normally and t.said("Hi") and not t.step_limit_reached


@pytest.mark.parametrize("kind", ["event StartApp only", "status callback", "sound"])
@pytest.mark.parametrize("recipe", ["menu option", "menu fallback", "forwarding fallback"])
def test_a_target_that_answers_no_redirect_is_refused_when_mounted(kind: str, recipe: str) -> None:
    # Mounted before: the caller sent there heard the flow's apology (no handler for
    # Event=Redirect), or an empty document that ended the call (4010).
    flow = new_flow()
    target = lambda call: Response(Speak("start over"))  # noqa: E731
    if kind == "event StartApp only":
        flow.route("/start", event="StartApp")(target)
        why = "handles only Event='StartApp'"
    elif kind == "status callback":
        flow.route("/start", status_callback=True)(lambda call: None)
        why = "is a status-callback route"
    else:
        flow.route("/start", sound=True)(lambda call: Response(Play("https://example.com/a.mp3")))
        why = "is a sound route"
    if recipe == "menu option":
        IVRMenu(flow, "main", prompt="Hi", options={"9": "start"})
    elif recipe == "menu fallback":
        IVRMenu(flow, "main", prompt="Hi", options={"1": "sales"}, fallback="start")
    else:
        _operator(flow, "start")
    with pytest.raises(ConfigurationError, match=re.escape(why)):
        flow.create_app()


def test_a_target_with_a_redirect_handler_beside_others_is_taken() -> None:
    flow = new_flow()
    flow.route("/start", event="StartApp")(lambda call: Response(Speak("first")))
    flow.route("/start", event="Redirect")(lambda call: Response(Speak("again"), Hangup()))
    IVRMenu(flow, "main", prompt="Hi", options={"9": "start"})
    flow.create_app()
    assert CallSimulator(flow).call("main", digits="9").run().said("again")


@pytest.mark.parametrize("caller_id", [None, "", 14155550100])
def test_forwarding_without_a_caller_id_is_refused(caller_id: Any) -> None:
    # None passed (the Dial had no callerId), and every inbound forward failed.
    with pytest.raises(ConfigurationError, match="caller_id must be a Vobiz number"):
        Forwarding(new_flow(), "fwd", numbers=["+14155550121"], caller_id=caller_id)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"announcement": "   "}, "its announcement (with voice= and language=) makes no valid"),
        ({"announcement": "bell\x07"}, "its announcement"),
        ({"announcement": 42}, "its announcement"),
        ({"voice": "robot"}, "makes no valid Speak: Speak: voice"),
        ({"announcement": None, "language": "xx-XX"}, "the default goodbye"),
    ],
)
def test_forwarding_speech_is_checked_when_built(settings: dict[str, Any], message: str) -> None:
    # Found on every call before: the caller heard the apology and nothing was dialled.
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Forwarding(
            new_flow(), "fwd", numbers=["+14155550121"], caller_id="+14155550100", **settings
        )


def test_forwarding_speaks_with_its_voice_and_language() -> None:
    flow = new_flow()
    Forwarding(flow, "fwd", numbers=["+14155550121"], caller_id="+14155550100",
               voice="MAN", language="en-GB", announcement="Un momento")  # fmt: skip
    t = CallSimulator(flow).call("fwd", dial="busy").run()
    docs = "".join(str(d) for d in t.documents)
    assert '<Speak voice="MAN" language="en-GB">Un momento</Speak>' in docs
    assert '<Speak voice="MAN" language="en-GB">Nobody is available' in docs
    assert Forwarding(new_flow(), "f2", numbers=["+14155550121"], caller_id="+14155550100",
                      announcement="")._start(hook({}, "C")).children[0].tag == "Dial"  # fmt: skip


@pytest.mark.parametrize("mode", ["simultaneous", "sequential"])
def test_a_caller_who_hung_up_while_forwarding_rang_is_not_dialled_again(mode: str) -> None:
    # DialStatus=cancel: sequential forwarding dialled the next number for a call that was
    # gone, and simultaneous ran the user's fallback (a missed-call message, a ticket).
    flow = new_flow()
    ran: list[str] = []

    def fallback(call: CallRequest) -> Response:
        ran.append(call.call_uuid)
        return Response(Speak("voicemail"), Hangup())

    fwd = Forwarding(flow, "fwd", numbers=["+14155550121", "+14155550122"],
                     caller_id="+14155550100", mode=mode, fallback=fallback)  # fmt: skip
    query = {"index": "0"} if mode == "sequential" else {}
    assert fwd._result(hook(query, "C", DialStatus="cancel")).children == []
    assert ran == []
    t = CallSimulator(flow).call("fwd", dial="cancel").run()
    assert ran == [] and len(t.dials) == 1
    assert fwd._result(hook(query, "C", DialStatus="busy")) is not None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"call_uuid": "c", "aleg ": "sales"}, "unknown field 'aleg ' (write 'aleg')"),
        ({"call_uuid": "c", "aleg": "https://voice.example.com/anything"}, "serves no route"),
        ({"call_uuid": "c", "aleg": "https://other.example.net/x"}, "is not allowed"),
        ({"call_uuid": "c", "aleg": "start"}, "arrives with Event='Transfer'"),
        ({"call_uuid": "c", "aleg": "sales", "params": {"a": float("inf")}}, "finite number"),
        ({"call_uuid": "c", "aleg": "sales", "params": {"": "x"}}, "must not be empty"),
    ],
)
def test_a_trigger_moves_calls_only_to_routes_that_take_them(
    local_vobiz: Any, body: dict[str, Any], says: str
) -> None:
    # Each was taken before: a padded field name read as no leg, a URL of the flow's host
    # that is no route (a 404 to the moved leg), a route answering StartApp only (the
    # apology), and a JSON 1e999 or an empty name put into the route's URL.
    flow = new_flow()
    flow.route("/start", event="StartApp")(lambda call: Response(Speak("start")))
    flow.transfers.client = local_vobiz.client()
    TransferTrigger(flow, secret="s" * 24)
    client = flow.create_app().test_client()
    call = local_vobiz.add_call()
    body = {**body, "call_uuid": call.call_uuid}
    reply = client.post("/_answerkit/transfer", json=body,
                        headers={"Authorization": "Bearer " + "s" * 24})  # fmt: skip
    assert reply.status_code == 400 and says in reply.get_json()["error"], reply.get_json()
    assert local_vobiz.transfers == []


@pytest.mark.parametrize(
    ("routes", "says"),
    [
        (["https://crm.example.net/hold"], "host 'crm.example.net' is not allowed"),
        (["https://voice.example.com/hodl"], "is a URL of the flow where it serves no route"),
        (["start"], "handles only Event='StartApp'"),
    ],
)
def test_a_trigger_limited_to_routes_that_cannot_take_a_call_fails_when_mounted(
    routes: list[str], says: str
) -> None:
    # A URL entry was skipped by the mount check, and every request naming it got a 400.
    flow = new_flow()
    flow.route("/start", event="StartApp")(lambda call: Response(Speak("start")))
    TransferTrigger(flow, secret="s" * 24, routes=routes)
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        flow.create_app()


def test_a_recipe_handler_that_returns_none_is_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The dispatcher warns only on answer and transfer events: a menu option's or a
    # forwarding fallback's handler that forgot its return hung the caller up unsaid.
    flow = new_flow()

    def sales_desk(call: CallRequest) -> Response:
        Response(Speak("sales"))  # built, not returned
        return None  # type: ignore[return-value]

    IVRMenu(flow, "main", prompt="Hi", options={"1": sales_desk})
    Forwarding(flow, "fwd", numbers=["+14155550121"], caller_id="+14155550100",
               fallback=sales_desk)  # fmt: skip
    sim = CallSimulator(flow)
    sim.call("main", digits="1").run()
    sim.call("fwd", dial="busy").run()
    warned = [r.getMessage() for r in caplog.records if "returned None" in r.getMessage()]
    assert len(warned) == 2, warned
    assert warned[0].startswith("IVRMenu 'main': handler ")
    assert "sales_desk" in warned[0] and "ends the call (4010)" in warned[0]
    assert warned[1].startswith("Forwarding 'fwd': handler ")


@pytest.mark.parametrize(
    ("declare", "says"),
    [
        (lambda f, h: f.route("/vm", status_callback=True)(h), "is a status-callback route"),
        (lambda f, h: f.route("/vm", event="StartApp")(h), "handles only Event='StartApp'"),
        (lambda f, h: f.route("/vm", event="Transfer")(h), None),
        (lambda f, h: f.route("/vm", event="Redirect")(h), None),
    ],
)
def test_a_warm_transfer_fallback_must_take_the_caller(
    declare: Callable[[CallFlow, Any], Any], says: str | None
) -> None:
    # The caller lands there with Event=Transfer (or is redirected there): a route that
    # takes neither gave the caller the apology at the moment nobody could help.
    flow = new_flow()
    declare(flow, lambda call: Response(Speak("voicemail"), Hangup()))
    WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="vm")
    if says is None:
        flow.create_app()
        return
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        flow.create_app()


def test_a_trigger_moves_calls_to_routes_by_url_and_to_hosts_the_flow_allows(
    local_vobiz: Any,
) -> None:
    # A URL of a host in transfer_hosts was refused for a while (it is that host's own
    # answer); a URL of the flow's own route, mounted under a prefix, is that route.
    from flask import Flask

    flow = CallFlow("r", public_url="https://voice.example.com", auth_token="t" * 20,
                    state=MemoryStore(), transfer_hosts=["crm.example.net"])  # fmt: skip
    flow.route("/hold")(lambda call: Response(Speak("hold"), Hangup()))
    flow.transfers.client = local_vobiz.client()
    legs = ["https://crm.example.net/queue", "https://voice.example.com/ivr/hold"]
    TransferTrigger(flow, secret="s" * 24, routes=legs)
    app = Flask("host")
    flow.register(app, "/ivr")
    client = app.test_client()
    auth = {"Authorization": "Bearer " + "s" * 24}
    for leg in legs:
        call = local_vobiz.add_call()
        body = {"call_uuid": call.call_uuid, "aleg": leg}
        reply = client.post("/ivr/_answerkit/transfer", json=body, headers=auth)
        assert reply.status_code == 200, reply.get_json()
        assert local_vobiz.requests[-1].json["aleg_url"] == leg


def test_fallbacks_that_go_round_are_refused_when_a_route_held_the_menus_path_first() -> None:
    # A Hangup handler on the answer URL, declared before the menu at that path: the route
    # keeps its own name and the menu's is an alias, which the loop check did not follow.
    flow = new_flow()
    flow.route("/main", event="Hangup")(lambda call: None)
    IVRMenu(flow, "main", prompt="Hi", options={"1": "sales"}, fallback="operator")
    _operator(flow, "main")
    with pytest.raises(ConfigurationError, match=re.escape("(main -> operator -> main)")):
        flow.create_app()


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_url_for_refuses_a_decimal_that_is_not_finite(value: str) -> None:
    from decimal import Decimal
    from fractions import Fraction

    flow = new_flow()
    with pytest.raises(ConfigurationError, match="finite number"):
        flow.url_for("sales", x=Decimal(value))
    assert flow.url_for("sales", x=Decimal("1.50"), y=Fraction(1, 3)).endswith("x=1.50&y=1%2F3")


@pytest.mark.parametrize(
    ("public", "leg", "status"),
    [
        # the flow's own host, spelled otherwise: its route check applies
        ("https://[2001:db8::1]", "https://[2001:db8:0::1]/nowhere", 400),
        ("https://voice.example.com", "https://VOICE.example.com/nowhere", 400),
        ("https://[2001:db8::1]", "https://[2001:db8::1]/h%6Fld", 200),  # percent-encoded
        # The same host on another port is another service (an admin port, a database):
        # refused unless transfer_hosts names that port.
        ("https://[2001:db8::1]", "https://[2001:db8::1]:8443/queue", 400),
        ("https://voice.example.com", "https://voice.example.com:8443/admin/anything", 400),
        ("https://voice.example.com", "http://voice.example.com/hold", 400),
    ],
)
def test_a_trigger_knows_the_flows_own_urls_however_spelled(
    local_vobiz: Any, public: str, leg: str, status: int
) -> None:
    flow = CallFlow("r", public_url=public, auth_token="t" * 20, state=MemoryStore())
    flow.route("/hold")(lambda call: Response(Speak("hold"), Hangup()))
    flow.transfers.client = local_vobiz.client()
    TransferTrigger(flow, secret="s" * 24)
    client = flow.create_app().test_client()
    call = local_vobiz.add_call()
    reply = client.post("/_answerkit/transfer", json={"call_uuid": call.call_uuid, "aleg": leg},
                        headers={"Authorization": "Bearer " + "s" * 24})  # fmt: skip
    assert reply.status_code == status, reply.get_json()
    if status == 400:
        error = reply.get_json()["error"]
        assert "serves no route" in error or "on the flow's host but not its public" in error


def test_transfer_hosts_allow_a_bare_host_on_its_default_port_and_a_named_port() -> None:
    hosts = ["crm.example.net", "queue.example.net:8443", "[2001:db8::1]:9443"]
    flow = CallFlow("ports", public_url="https://voice.example.com", auth_token="t" * 20,
                    state=MemoryStore(), transfer_hosts=hosts)  # fmt: skip
    target = flow.transfers._checked_raw_url
    assert target("https://crm.example.net/hold", None, "aleg")
    assert target("https://crm.example.net:443/hold", None, "aleg")
    assert target("https://queue.example.net:8443/q", None, "aleg")
    assert target("https://[2001:db8::1]:9443/q", None, "aleg")
    assert target("https://voice.example.com/anything", None, "aleg")  # the flow's server
    assert target("https://voice.example.com:443/other-flow/menu", None, "aleg")
    for refused, says in [
        ("https://crm.example.net:6379/", "add 'crm.example.net:6379'"),
        ("https://queue.example.net/q", "add 'queue.example.net:443'"),
        ("https://voice.example.com:22/", "on the flow's host but not its public URL's"),
        ("https://[2001:db8::1]:8443/q", "add '[2001:db8::1]:8443'"),
        ("https://other.example.net/", "host 'other.example.net' is not allowed"),
    ]:
        with pytest.raises(TransferArgumentError, match=re.escape(says)):
            target(refused, None, "aleg")
    with pytest.raises(ConfigurationError, match=re.escape("'crm.example.com:8443' (no scheme")):
        CallFlow("bad", public_url="https://voice.example.com", auth_token="t" * 20,
                 state=MemoryStore(), transfer_hosts=["crm.example.com:99999"])  # fmt: skip


def test_url_for_takes_finite_numbers_beyond_a_floats_range() -> None:
    from decimal import Decimal
    from fractions import Fraction

    url = new_flow().url_for("sales", big=Decimal("1E+400"), huge=Fraction(10**400, 3))
    assert "big=1E%2B400" in url and "huge=" in url


def test_a_simulated_call_never_starts_at_a_recipes_own_step() -> None:
    # A WarmTransfer declared first made its hold route the first route: `answerkit call`
    # without --route played the hold announcement and ended "ok", the menu never reached.
    flow = CallFlow("first", public_url="https://voice.example.com", auth_token="t" * 20,
                    state=MemoryStore())  # fmt: skip
    WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="main")
    flow.add_route("/main", lambda call: Response(Speak("Main menu.")), name="main")
    Forwarding(flow, "fwd", numbers=["+14155550143"], caller_id="+14155550100")
    transcript = CallSimulator(flow).call().run()
    assert transcript.heard == ["Main menu."]
    inner = {"/warm/hold", "/warm/agent", "/warm/agent/choice", "/warm/landing", "/fwd/result"}
    assert inner <= flow._inner_paths and "/fwd" not in flow._inner_paths


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"agent": None}, "agent must be a number or sip: URI as text .* got None"),
        ({"agent": 14155550142}, "agent must be a number or sip: URI as text"),
        ({"on_outcome": "https://crm.example.com/hook"}, "on_outcome must be a function"),
    ],
)
def test_warm_transfer_refuses_an_agent_or_outcome_hook_it_could_never_use(
    setting: dict[str, Any], says: str
) -> None:
    # agent=None (an unset variable) or an int sent every caller to the fallback as
    # agent-unreachable; a URL as on_outcome failed on every decision, the CRM never told.
    settings: dict[str, Any] = {"agent": "+14155550142", **setting}
    with pytest.raises(ConfigurationError, match=f"WarmTransfer: {says}"):
        WarmTransfer(new_flow(), caller_id="+14155550100", fallback="sales", **settings)


def test_forwarding_refuses_a_number_that_is_not_text_and_takes_any_iterable() -> None:
    # It failed as "'int' object has no attribute 'startswith'"; a map was used up by that
    # check, leaving no number to dial (the apology on every call).
    numbers = (n.strip() for n in [" +14155550101", " +14155550102"])  # a generator
    fw = Forwarding(new_flow(), "fw", numbers=numbers, caller_id="+14155550100")
    assert fw.numbers == ["+14155550101", "+14155550102"]
    with pytest.raises(ConfigurationError, match=r"numbers must be E\.164 numbers .* got int"):
        Forwarding(new_flow(), "fw", numbers=[14155550121], caller_id="+14155550100")  # type: ignore[list-item]


def test_warm_transfer_started_while_the_call_rings_starts_nothing_and_decides_nothing(
    local_vobiz: Any,
) -> None:
    # Started from the answer webhook (an inbound call rings through it), start() logged
    # "already hung up", and the call's Hangup later decided "abandoned".
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()
    told: list[str] = []
    warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="sales",
                        on_outcome=lambda caller, outcome: told.append(outcome))  # fmt: skip
    call = local_vobiz.add_call(status="ringing")
    assert warm.start(call.call_uuid) is None
    warm._on_hangup(hook({}, call.call_uuid, Event="Hangup"))
    assert warm.outcome(call.call_uuid) is None and told == []


def test_a_recipes_own_step_as_a_target_is_refused_when_mounted() -> None:
    # An option to a WarmTransfer's hold route held the caller in a room no agent was
    # called to, for good; check passed it.
    flow = new_flow()
    WarmTransfer(flow, "warm", agent="+14155550142", caller_id="+14155550100", fallback="sales")
    IVRMenu(flow, "main", prompt="Press 1.", options={"1": "warm_hold"})
    with pytest.raises(ConfigurationError, match="option 1 'warm_hold' is a step of a recipe"):
        flow.create_app()


@pytest.mark.parametrize(
    ("speech", "key"), [("two", "2"), ("Two.", "2"), ("option 2", "2"), ("press one", "1")]
)
def test_saying_a_key_chooses_it(speech: str, key: str) -> None:
    # "Press 2 or say support": "two" was "not a valid choice".
    menu = IVRMenu(new_flow(), "main", prompt="Press 1 or say sales, 2 or say support.",
                   options={"1": Option("sales", ("sales",)), "2": Option("sales", ("support",))},
                   input_type="dtmf speech")  # fmt: skip
    assert menu.match(None, speech) is menu.options[key]
    assert menu.match(None, "I want two tickets") is None
    assert menu.match(None, "Oh.") is None  # an interjection is no zero
    assert menu.match(None, "२") is menu.options["2"]  # any script's digits


@pytest.mark.parametrize(
    ("options", "input_type"),
    [
        ({"1": Option("sales", ("two tickets",)), "2": Option("sales", ("one ticket",))}, None),
        ({"1": Option("sales", ("sales",)), "2": Option("sales", ("support",))}, "speech"),
    ],
    ids=["numbers-in-phrases", "speech-only"],
)
def test_saying_a_key_is_not_heard_where_it_could_mean_a_phrase_or_no_key_is_offered(
    options: dict[str, Option], input_type: str | None
) -> None:
    # "two" picked key 2 where option 1's phrase is "two tickets", and where no key was
    # ever offered to the caller (speech alone).
    menu = IVRMenu(new_flow(), "main", prompt="Say it.", options=options, input_type=input_type)
    assert menu.match(None, "two") is None and menu.match(None, "one") is None


def test_a_trigger_moves_a_leg_onto_a_sound_route_as_flow_transfer_does() -> None:
    # flow.transfer took a sound route (music to park a leg on); the trigger refused it.
    flow = new_flow()
    flow.route("/music", sound=True)(lambda call: Response(Speak("Please hold.")))
    trigger = TransferTrigger(flow, secret="s" * 24, routes=["music"])
    assert trigger._unusable("music") is None and flow.transfers.unusable("music") is None


def test_a_simulated_call_starts_at_answer_by_alias_and_never_at_a_hangup_only_route() -> None:
    # A Hangup-only route declared first was the call's start (StartApp reached no handler:
    # the fallback); a route reached as "answer" only by alias was passed over.
    flow = CallFlow("start", public_url="https://voice.example.com", auth_token="t" * 20,
                    state=MemoryStore())  # fmt: skip
    flow.add_route("/ended", lambda call: None, event="Hangup")
    flow.add_route("/main", lambda call: Response(Speak("Main.")), name="main")
    assert CallSimulator(flow).call().run().heard == ["Main."]
    flow2 = CallFlow("alias", public_url="https://voice.example.com", auth_token="t" * 20,
                     state=MemoryStore())  # fmt: skip
    flow2.add_route("/first", lambda call: Response(Speak("First.")), name="first")
    flow2.add_route("/welcome", lambda call: None, event="Hangup", name="welcome")

    def answer(call: CallRequest) -> Response:
        return Response(Speak("Welcome."))

    flow2.add_route("/welcome", answer)
    assert CallSimulator(flow2).call().run().heard == ["Welcome."]


def test_a_simulated_call_never_starts_at_a_status_route_named_answer() -> None:
    # A status-callback route named "answer" was the start (8011: its empty answer); with no
    # route answering StartApp, the message said "no answer route" though routes existed.
    flow = CallFlow("status", public_url="https://voice.example.com", auth_token="t" * 20,
                    state=MemoryStore())  # fmt: skip
    flow.add_route("/answer", lambda call: None, status_callback=True, name="answer")
    flow.add_route("/main", lambda call: Response(Speak("Main.")), name="main")
    assert CallSimulator(flow).call().run().heard == ["Main."]
    only = CallFlow("only", public_url="https://voice.example.com", auth_token="t" * 20,
                    state=MemoryStore())  # fmt: skip
    only.add_route("/go", lambda call: Response(Speak("Moved.")), event="Transfer", name="go")
    with pytest.raises(
        ConfigurationError, match=r"no route answers the StartApp .* \(routes: go\)"
    ):
        CallSimulator(only).call()


@pytest.mark.parametrize("recipe", ["menu", "trigger"])
def test_a_target_naming_handlers_of_several_routes_is_refused_in_every_order(
    recipe: str,
) -> None:
    # Two routes with the same Redirect (or Transfer) handler: the first declared was lent
    # its name and took the menu's option; refused in every order now, as ambiguous.
    import itertools

    def answer(call: CallRequest) -> Response:
        return Response(Speak("hi"))

    event = "Redirect" if recipe == "menu" else "Transfer"
    for first, second in itertools.permutations(["/a", "/b"]):
        flow = new_flow()
        flow.add_route(first, answer, event=event)
        flow.add_route(second, answer, event=event)
        if recipe == "menu":
            IVRMenu(flow, "main", prompt="Press 1.", options={"1": "answer"})
        else:
            TransferTrigger(flow, secret="s" * 24, routes=["answer"])
        with pytest.raises(ConfigurationError, match="is the name of handlers of several routes"):
            flow.create_app()
    # Named with name=, it is that route's, and taken.
    flow = new_flow()
    flow.add_route("/a", answer, event=event, name="answer")
    flow.add_route("/b", answer, event=event, name="b")
    if recipe == "menu":
        IVRMenu(flow, "main", prompt="Press 1.", options={"1": "answer"})
    else:
        TransferTrigger(flow, secret="s" * 24, routes=["answer"])
    flow.create_app()


def test_a_name_a_default_handler_gave_its_route_is_no_doubt_whatever_else_shares_it(
    local_vobiz: Any,
) -> None:
    # The ambiguity check refused "landing" (a WarmTransfer's own landing handler has that
    # function name) and "greet" reused on a route named otherwise, at mount and on every
    # transfer, by name and by URL.
    flow = new_flow()
    flow.transfers.client = local_vobiz.client()

    def landing(call: CallRequest) -> Response:
        return Response(Speak("landed"))

    def greet(call: CallRequest) -> Response:
        return Response(Speak("hello"))

    flow.add_route("/landing", landing)
    flow.add_route("/greet", greet)
    flow.add_route("/other", greet, name="other")
    WarmTransfer(flow, "warm", agent="+14155550142", caller_id="+14155550100", fallback="sales")
    IVRMenu(flow, "main", prompt="Press 1 or 2.", options={"1": "landing", "2": "greet"})
    TransferTrigger(flow, secret="s" * 24, routes=["greet", "https://voice.example.com/greet"])
    flow.create_app()
    for leg in ("landing", "greet", "https://voice.example.com/greet"):
        call = local_vobiz.add_call()  # one each: a moved call's fetch fails here, ending it
        assert flow.transfer(call.call_uuid, aleg=leg).api_id


def test_every_route_a_handler_name_could_mean_counts_toward_a_doubt() -> None:
    # Accepted, by order: a lambda's name made from its path ("/answer": "answer") beside
    # a handler answer(); a default handler named otherwise with name=; a held name whose
    # route was renamed since. Each is refused in every order now.
    import itertools

    def answer(call: CallRequest) -> Response:
        return Response(Speak("hi"))

    def other(call: CallRequest) -> Response:
        return Response(Speak("other"))

    cases: list[list[tuple[str, Any, dict[str, Any]]]] = [
        [("/answer", lambda call: Response(Speak("x")), {"event": "Redirect"}),
         ("/vip", answer, {"event": "Redirect"})],
        [("/home", answer, {"name": "home"}), ("/vip", answer, {"event": "Redirect"})],
    ]  # fmt: skip
    for declarations in cases:
        for order in itertools.permutations(declarations):
            flow = new_flow()
            for path, handler, keywords in order:
                flow.add_route(path, handler, **keywords)
            IVRMenu(flow, "main", prompt="Press 1.", options={"1": "answer"})
            with pytest.raises(ConfigurationError, match="handlers of several routes"):
                flow.create_app()
    flow = new_flow()
    flow.add_route("/b", answer, event="Hangup")
    flow.add_route("/c", answer, event="Redirect")
    IVRMenu(flow, "main", prompt="Press 1.", options={"1": "answer"})  # holds it on /b
    flow.add_route("/b", other)  # renamed "other"
    with pytest.raises(ConfigurationError, match="handlers of several routes"):
        flow.create_app()


def test_a_recipes_own_handler_names_never_make_a_users_target_doubtful() -> None:
    # A WarmTransfer's landing handler and an IVRMenu's _entry made a user's route named
    # "landing" or "_entry" (by an event handler) ambiguous: refused at mount and on every
    # transfer, though each could only mean the user's route.
    def landing(call: CallRequest) -> Response:
        return Response(Speak("landed"))

    def _entry(call: CallRequest) -> Response:
        return Response(Speak("entered"))

    flow = new_flow()
    flow.add_route("/landing", landing, event="Transfer")
    flow.add_route("/entry", _entry, event="Redirect")
    WarmTransfer(flow, "warm", agent="+14155550142", caller_id="+14155550100", fallback="sales")
    IVRMenu(flow, "main", prompt="Press 1.", options={"1": "_entry"})
    TransferTrigger(flow, secret="s" * 24, routes=["landing"])
    flow.create_app()
    assert flow.transfers.unusable("landing") is None
