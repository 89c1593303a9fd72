"""flow.transfer: route names to public URLs, local checks, and the whole loop over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from answerkit import (
    CallFlow,
    CallNotActiveError,
    CallRequest,
    ConfigurationError,
    Dial,
    NotFoundError,
    Number,
    Response,
    Speak,
    TransferArgumentError,
)
from answerkit.state import MemoryStore
from answerkit.testing import LocalVobiz


def build_flow(public_url: str, token: str, local_vobiz: LocalVobiz) -> CallFlow:
    flow = CallFlow(
        "xfer",
        public_url=public_url,
        auth_token=token,
        state=MemoryStore(),
        client=local_vobiz.client(),
        transfer_hosts=["partner.example.net"],
    )

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        reason = call.query.get("reason", "none")
        return Response(
            Speak(f"Please hold while we transfer your call. Reason {reason}."),
            Dial(Number("+14156667890"), caller_id="+14155551234"),
        )

    @flow.route("/broken")
    def broken(call: CallRequest) -> Response:
        return Response(Speak("fine"))

    return flow


@pytest.fixture
def served(local_vobiz: LocalVobiz) -> Iterator[CallFlow]:
    """The flow served by a real HTTP server on 127.0.0.1, its public URL that server."""
    holder: dict[str, CallFlow] = {}

    def app(environ: dict[str, object], start_response: object) -> object:
        return holder["app"](environ, start_response)  # type: ignore[operator]

    server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
    flow = build_flow(f"http://127.0.0.1:{server.port}", local_vobiz.auth_token, local_vobiz)
    holder["app"] = flow.create_app()  # type: ignore[assignment]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield flow
    server.shutdown()
    thread.join(5)


def test_transfer_to_a_route_runs_its_xml_on_the_live_leg(
    served: CallFlow, local_vobiz: LocalVobiz
) -> None:
    call = local_vobiz.add_call()
    result = served.transfer(call.call_uuid, aleg="hold", params={"reason": "vip", "n": 2})
    assert result.call_uuid == call.call_uuid and result.message == "call transferred"
    sent = local_vobiz.requests[-1]
    assert sent.path == f"/api/v1/Account/{local_vobiz.auth_id}/Call/{call.call_uuid}/"
    assert sent.json == {
        "legs": "aleg",
        "aleg_url": f"{served.public_url}/hold?reason=vip&n=2",
        "aleg_method": "POST",
    }
    outcome = local_vobiz.wait_for_transfer(call.call_uuid)[0]
    assert outcome.status == "executed", outcome
    assert "Reason vip." in outcome.xml


def test_transfer_of_an_ended_call(served: CallFlow, local_vobiz: LocalVobiz) -> None:
    call = local_vobiz.add_call()
    local_vobiz.end_call(call.call_uuid)
    with pytest.raises(CallNotActiveError) as info:
        served.transfer(call.call_uuid, aleg="hold")
    assert info.value.call_uuid == call.call_uuid
    assert served.try_transfer(call.call_uuid, aleg="hold") is None


def test_a_message_only_404_means_the_call_ended(served: CallFlow, local_vobiz: LocalVobiz) -> None:
    # Read as the gateway's "no such route", it raised NotFoundError out of try_transfer.
    local_vobiz.fail_next(status=404, body={"message": "Call not found or already completed"})
    assert served.try_transfer("ended-call", aleg="hold") is None
    # The gateway's own body still means a wrong path, and try_transfer says so.
    local_vobiz.fail_next(status=404, body={"message": "Not Found"})
    with pytest.raises(NotFoundError, match="base_url") as caught:
        served.try_transfer("ended-call", aleg="hold")
    assert not isinstance(caught.value, CallNotActiveError)


def test_a_b_leg_is_moved_by_its_own_call_uuid(served: CallFlow, local_vobiz: LocalVobiz) -> None:
    # README: "move the agent's own leg with its DialBLegUUID and aleg=". LocalVobiz
    # answered 404 for a B-leg's own CallUUID, as though the agent had hung up.
    call = local_vobiz.add_call(bleg_uuid="b-leg-own")
    result = served.transfer("b-leg-own", aleg="hold")
    assert result.call_uuid == "b-leg-own"
    [outcome] = local_vobiz.wait_for_transfer("b-leg-own")
    assert outcome.executed and "Please hold" in (outcome.xml or "")
    assert local_vobiz.call(call.call_uuid).status == "in-progress"


def test_both_legs(served: CallFlow, local_vobiz: LocalVobiz) -> None:
    call = local_vobiz.add_call(bleg_uuid="b-leg-1")
    served.transfer(call.call_uuid, aleg="hold", bleg="broken")
    assert local_vobiz.requests[-1].json["legs"] == "both"


def test_local_checks_before_anything_is_sent(local_vobiz: LocalVobiz) -> None:
    flow = build_flow("https://voice.example.com", "t" * 20, local_vobiz)
    # The call's argument (one family with the others here), naming the leg.
    with pytest.raises(TransferArgumentError, match="aleg: flow 'xfer' has no route 'nowhere'"):
        flow.transfer("c-1", aleg="nowhere")
    with pytest.raises(TransferArgumentError, match="bleg: "):
        flow.transfer("c-1", aleg="hold", bleg="nowhere")
    with pytest.raises(TransferArgumentError, match="not allowed"):
        flow.transfer("c-1", aleg="https://evil.example.org/x")
    with pytest.raises(TransferArgumentError):
        flow.transfer("c-1")
    no_url = CallFlow(
        "nourl", auth_token="t" * 20, state=MemoryStore(), client=local_vobiz.client()
    )
    no_url.route("/hold")(lambda call: Response())
    with pytest.raises(ConfigurationError, match="public URL"):
        no_url.transfer("c-1", aleg="hold")
    assert local_vobiz.requests == []


def test_a_route_that_cannot_take_a_moved_leg_is_refused_before_sending(
    local_vobiz: LocalVobiz,
) -> None:
    # Sent, the transfer was taken (202) and the leg then dropped (8013 at a status route)
    # or heard the apology (a route with no handler for Event=Transfer); TransferTrigger's
    # endpoint refused the same targets, the Python calls did not.
    flow = build_flow("https://voice.example.com", "t" * 20, local_vobiz)
    flow.route("/status", status_callback=True)(lambda call: None)
    flow.route("/welcome", event="StartApp")(lambda call: Response(Speak("welcome")))
    for leg, why in [
        ("status", "is a status-callback route"),
        ("welcome", "handles only Event='StartApp'"),
        ("https://voice.example.com/status", "is a status-callback route"),
    ]:
        with pytest.raises(TransferArgumentError, match=why) as caught:
            flow.transfer("c-1", aleg="hold", bleg=leg)
        assert caught.value.field == "bleg" and str(caught.value).startswith("bleg: ")
        with pytest.raises(TransferArgumentError, match=why):
            flow.try_transfer("c-1", aleg=leg)
    assert local_vobiz.requests == []
    # Music to park a leg on is a document too: a sound route takes a moved leg, if it
    # answers Event=Transfer at all.
    flow.route("/music", sound=True)(lambda call: Response(Speak("Please hold.")))
    flow.route("/room-music", sound=True, event="ConferenceRemoteSounds")(
        lambda call: Response(Speak("Please hold."))
    )
    with pytest.raises(TransferArgumentError, match="room-music"):
        flow.transfer("c-1", aleg="room-music")
    call = local_vobiz.add_call()
    assert flow.transfer(call.call_uuid, aleg="music").api_id


def test_a_recipes_own_step_takes_only_the_recipes_own_moves(local_vobiz: LocalVobiz) -> None:
    # flow.transfer(..., aleg="warm_hold") held the caller in a room no agent was called
    # to, for good; only the WarmTransfer's own start() may move a caller there.
    from answerkit.recipes import WarmTransfer

    flow = build_flow("https://voice.example.com", "t" * 20, local_vobiz)
    warm = WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="hold")
    with pytest.raises(TransferArgumentError, match="is a step of a recipe"):
        flow.transfer("c-1", aleg="warm_hold")
    assert local_vobiz.requests == []
    call = local_vobiz.add_call()
    assert warm.start(call.call_uuid) is not None  # its own move to the hold route


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"call_uuid": None, "aleg": "hold"}, "call_uuid"),  # a CRM lookup that found none
        ({"call_uuid": "c-1", "aleg": 123}, "aleg"),
        ({"call_uuid": "c-1", "bleg": b"hold"}, "bleg"),
        ({"call_uuid": "c-1", "aleg": "hold", "method": "PUT"}, "method"),
    ],
)
def test_wrong_transfer_arguments_are_typed_errors_naming_the_field(
    local_vobiz: LocalVobiz, kwargs: dict[str, Any], field: str
) -> None:
    # They were an AttributeError (from the log line), TypeErrors, and a method refused
    # under the client's name for it (aleg_method).
    flow = build_flow("https://voice.example.com", "t" * 20, local_vobiz)
    with pytest.raises(TransferArgumentError) as caught:
        flow.transfer(**kwargs)
    assert caught.value.field == field and field in str(caught.value)
    assert local_vobiz.requests == []


def test_allowed_raw_url_is_sent_with_params(local_vobiz: LocalVobiz) -> None:
    flow = build_flow("https://voice.example.com", "t" * 20, local_vobiz)
    call = local_vobiz.add_call()
    local_vobiz.on_transfer_request = lambda *args: True  # accept without fetching
    flow.transfer(call.call_uuid, aleg="https://partner.example.net/x?a=1", params={"b": 2})
    assert local_vobiz.requests[-1].json["aleg_url"] == "https://partner.example.net/x?a=1&b=2"


def test_any_parameter_name_reaches_the_url(local_vobiz: LocalVobiz) -> None:
    # "name" is url_for's own first argument: it must not collide with a parameter.
    flow = build_flow("https://voice.example.com", "t" * 20, local_vobiz)
    assert flow.url_for("hold", name="Ann") == "https://voice.example.com/hold?name=Ann"
    assert flow.transfers.target_url("hold", {"name": "Ann", "skip": None}) == (
        "https://voice.example.com/hold?name=Ann"
    )


def test_raw_url_params_go_into_the_query_ahead_of_a_fragment(local_vobiz: LocalVobiz) -> None:
    # A parameter after the '#' would never reach the server; None is left out, as for routes.
    flow = build_flow("https://voice.example.com", "t" * 20, local_vobiz)
    target = flow.transfers.target_url
    assert target("https://partner.example.net/hold#ct=2000&rt=3000", {"q": "sales"}) == (
        "https://partner.example.net/hold?q=sales#ct=2000&rt=3000"
    )
    assert target("https://partner.example.net/hold?a=1#ct=2000", {"q": "s", "x": None}) == (
        "https://partner.example.net/hold?a=1&q=s#ct=2000"
    )
    assert target("https://partner.example.net/hold", {"vip": True}) == (
        "https://partner.example.net/hold?vip=true"
    )


def test_a_refused_raw_url_names_the_leg_it_was_given_for(local_vobiz: LocalVobiz) -> None:
    # The message said "transfer URL ..." without saying whether aleg or bleg held it.
    flow = build_flow("https://voice.example.com", "t" * 20, local_vobiz)
    for leg in ("aleg", "bleg"):
        with pytest.raises(TransferArgumentError, match=f"^{leg}: transfer URL host"):
            flow.transfer("c-1", **{leg: "https://evil.example.org/x"})
    with pytest.raises(TransferArgumentError, match=r"^bleg: .* malformed"):
        flow.transfer("c-1", aleg="hold", bleg="https://[::1/x")
    assert local_vobiz.requests == []


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ("reason=vip", "params must be a dict"),
        ({"tried": [1, 2]}, "query parameter 'tried'"),
        ({"From": "crm"}, "query parameter 'From' has the name of a field Vobiz sends"),
    ],
)
def test_transfer_params_a_url_cannot_carry_are_refused_before_sending(
    local_vobiz: LocalVobiz, params: Any, says: str
) -> None:
    flow = build_flow("https://voice.example.com", local_vobiz.auth_token, local_vobiz)
    before = len(local_vobiz.requests)
    with pytest.raises(TransferArgumentError, match=says) as caught:
        flow.transfer("some-call", aleg="hold", params=params)
    assert caught.value.field == "params" and len(local_vobiz.requests) == before


@pytest.mark.parametrize(
    "hosts",
    [
        frozenset({"partner.example.net"}),
        (h for h in ["partner.example.net"]),
        {"partner.example.net": "a dict's keys"},
    ],
    ids=["frozenset", "generator", "dict"],
)
def test_transfer_hosts_takes_any_collection_of_names(hosts: Any) -> None:
    flow = CallFlow("hosts", public_url="https://voice.example.com", auth_token="t" * 20,
                    state=MemoryStore(), transfer_hosts=hosts)  # fmt: skip
    assert flow.transfers.allowed_hosts == {"partner.example.net"}


def test_transfer_hosts_takes_ipv6_addresses() -> None:
    hosts = ["2001:DB8::1", "[2001:db8::2]"]
    flow = CallFlow("v6", public_url="https://voice.example.com", auth_token="t" * 20,
                    state=MemoryStore(), transfer_hosts=hosts)  # fmt: skip
    assert flow.transfers.allowed_hosts == {"2001:db8::1", "2001:db8::2"}
    url = flow.transfers.target_url("https://[2001:db8::1]/hold")
    assert url == "https://[2001:db8::1]/hold"


def test_an_ipv6_flow_transfers_to_its_own_urls() -> None:
    flow = CallFlow("v6own", public_url="https://[2001:db8:0:0::1]", auth_token="t" * 20,
                    state=MemoryStore())  # fmt: skip
    flow.add_route("/menu", lambda call: None, name="menu", status_callback=True)
    assert flow.transfers.target_url(flow.url_for("menu")).endswith("/menu")
