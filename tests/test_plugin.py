"""The pytest plugin: its fixtures, used from a test file run by pytester."""

from __future__ import annotations

import pytest

from answerkit.testing import CallSimulatorFactory, LocalVobiz

pytest_plugins = ["pytester"]

USER_TESTS = """
from answerkit.app import CallFlow
from answerkit.elements import Gather, Response, Speak
from answerkit.request import CallRequest
from answerkit.state import MemoryStore

PUBLIC = "https://voice.example.com"


def make_flow():
    flow = CallFlow("plugin", public_url=PUBLIC, auth_token="plugin-token-123",
                    state=MemoryStore())

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Gather(Speak("Press 1."), action=flow.url_for("menu"),
                               input_type="dtmf", num_digits=1))

    @flow.route("/menu")
    def menu(call: CallRequest) -> Response:
        return Response(Speak(f"You pressed {call.digits}."))

    return flow


def test_simulator_fixture(call_simulator, local_vobiz):
    sim = call_simulator(make_flow())
    assert sim.local_vobiz is local_vobiz
    t = sim.call(digits="1").run()
    assert t.heard == ["Press 1.", "You pressed 1."]
    assert t.hangup_cause_code == 4010
    record = local_vobiz.call(t.call_uuid)  # answered calls are listed while live
    assert record.status == "completed"


def test_local_vobiz_is_reset_between_tests(local_vobiz):
    assert local_vobiz.calls == {}
    assert local_vobiz.base_url.startswith("http://127.0.0.1:")


def test_signed_helpers(signed_post, sign_request):
    flow = make_flow()
    client = flow.create_app().test_client()
    params = {"CallUUID": "c-1", "From": "14155550100", "To": "14155550199",
              "Event": "StartApp"}
    assert signed_post(client, flow, "/answer", params).status_code == 200
    headers = sign_request(flow, "/menu")
    assert client.post("/menu", data=params, headers=headers).status_code == 200
    assert client.post("/menu", data=params).status_code == 403
"""


def test_fixtures_work_in_a_user_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_plugin_is_registered_by_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    out = result.stdout.str()
    for name in ("local_vobiz", "call_simulator", "sign_request", "signed_post"):
        assert f"\n{name} -- " in out, name
    assert "answerkit_local_vobiz_server [session scope]" in out


LEAKY_TESTS = """
from answerkit.app import CallFlow
from answerkit.elements import Response, Speak
from answerkit.state import MemoryStore
from answerkit.testing import CallSimulator


def test_a_simulator_left_open(local_vobiz):
    flow = CallFlow("leak", public_url="https://voice.example.com",
                    auth_token="plugin-token-123", state=MemoryStore())
    flow.add_route("/answer", lambda call: Response(Speak("Hi.")), name="answer")
    CallSimulator(flow, local_vobiz=local_vobiz).call().run()  # never closed


def test_the_next_test_gets_a_server_of_its_own(local_vobiz):
    with local_vobiz.client() as client:
        placed = client.make_call("+14155550199", "+14155550111", "https://h.example.com/a")
        client.hangup(placed.request_uuid)
    # Not swallowed by the earlier test's simulator: LocalVobiz ended the call itself.
    assert local_vobiz.call(placed.request_uuid).status == "completed"
"""


def test_local_vobiz_drops_hooks_left_by_an_earlier_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


LOANING_TESTS = """
import pytest

from answerkit.app import CallFlow
from answerkit.elements import Response, Speak
from answerkit.state import MemoryStore
from answerkit.testing import CallSimulator

FLOW = CallFlow("loan", public_url="https://voice.example.com",
                auth_token="plugin-token-123", state=MemoryStore())
FLOW.add_route("/answer", lambda call: Response(Speak("Hi.")), name="answer")


def test_a_simulator_left_open_with_its_loan(local_vobiz):
    CallSimulator(FLOW, local_vobiz=local_vobiz).call().run()  # never closed
    lent = FLOW.transfers.swap_client(None)
    FLOW.transfers.swap_client(lent)  # put straight back
    assert lent is not None


def test_the_next_test_finds_the_flow_as_it_was(local_vobiz):
    assert FLOW.transfers.swap_client(None) is None  # the loan was cleared
"""


def test_local_vobiz_clears_a_loan_left_by_an_earlier_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_loaning=LOANING_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_the_fixture_hands_out_simulators_bound_to_local_vobiz(
    call_simulator: CallSimulatorFactory, local_vobiz: LocalVobiz
) -> None:
    from answerkit import CallFlow
    from answerkit.testing import CallSimulator

    flow = CallFlow("bound", public_url="https://voice.example.com", auth_token="t" * 20,
                    state="memory://")  # fmt: skip
    sim = call_simulator(flow)
    assert isinstance(sim, CallSimulator) and sim.local_vobiz is local_vobiz
