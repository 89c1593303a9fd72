"""A simulator without a LocalVobiz lends its flow a client that sends nothing.

With real credentials in the environment, a plain ``CallSimulator(flow)`` used to let a
handler's ``flow.transfer(...)`` reach the real Vobiz API, and the transcript showed
neither the transfer nor an error. "Real" here is a tiny HTTP server on loopback that
``VOBIZ_BASE_URL`` points at: it answers as Vobiz would, and counts what reached it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from test_simulator import moving_flow as shared_moving_flow  # the simulator tests' own

from answerkit.app import CallFlow
from answerkit.client import VobizClient
from answerkit.elements import Redirect, Response
from answerkit.errors import ConfigurationError
from answerkit.request import CallRequest
from answerkit.state import MemoryStore
from answerkit.testing.local_vobiz import LocalVobiz
from answerkit.testing.sim_loans import release_loans
from answerkit.testing.sim_refusing_client import RefusingClient
from answerkit.testing.simulator import CallSimulator, CallSimulatorFactory

PUBLIC = "https://voice.example.com"
TOKEN = "sim-token-0123456789abcdef"
MUSIC = "https://cdn.example.com/hold.mp3"
REFUSED = "this simulator has no LocalVobiz"


class _Platform(BaseHTTPRequestHandler):
    """Answers every request as Vobiz accepts it, and keeps its method and path."""

    received: list[str]

    def _answer(self, status: int, body: dict[str, Any] | None) -> None:
        self.received.append(f"{self.command} {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self._answer(202, {"api_id": "a-1", "message": "accepted", "request_uuid": "r-1"})

    def do_GET(self) -> None:
        self._answer(200, {"call_uuid": "c-1", "call_status": "in-progress"})

    def do_DELETE(self) -> None:
        self._answer(204, None)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Real-looking credentials in the environment, and the requests that reached "Vobiz"."""
    received: list[str] = []
    handler = type("Platform", (_Platform,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("VOBIZ_AUTH_ID", "MA_REALACCOUNT")
    monkeypatch.setenv("VOBIZ_AUTH_TOKEN", "real-token-0123456789")
    monkeypatch.setenv("VOBIZ_BASE_URL", f"http://127.0.0.1:{server.server_port}/api/v1")
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def moving_flow(name: str, client: VobizClient | None = None) -> CallFlow:
    """test_simulator's flow moved to /hold ("On hold.") with flow.transfer, a REST call,
    straight after the greeting."""
    return shared_moving_flow(name, on_key=False, client=client)


def assert_moved(sim: CallSimulator) -> None:
    t = sim.call("answer").run()
    assert t.heard[-1] == "On hold." and t.ended_normally, t


def test_a_plain_simulator_refuses_the_flows_transfer_and_sends_nothing(
    platform: list[str],
) -> None:
    flow = moving_flow("plain")
    sim = CallSimulator(flow)
    assert isinstance(flow.transfers.peek_client(), RefusingClient)
    t = sim.call("answer").run()
    [error] = t.handler_errors
    assert error.startswith("move: ConfigurationError: " + REFUSED), error
    assert "POST .../Call/" in error and "local_vobiz=LocalVobiz().start()" in error
    assert "MA_SIMULATOR" not in error and "MA_REALACCOUNT" not in error
    assert not t.ended_normally and not t.transfers and "On hold." not in t.heard
    assert platform == []  # nothing reached "Vobiz"
    sim.close()
    assert flow.transfers.peek_client() is None  # what was there before


@pytest.mark.parametrize(
    ("request_of", "shown"),
    [
        (lambda c: c.transfer("c-1", aleg_url=f"{PUBLIC}/hold"), "POST .../Call/c-1/"),
        (lambda c: c.hangup("c-1"), "DELETE .../Call/c-1/"),
        (lambda c: c.get_live_call("c-1"), "GET .../Call/c-1/"),
        (lambda c: c.make_call("+14155550100", "+14155550142", f"{PUBLIC}/a"), "POST .../Call/"),
    ],
)
def test_every_rest_request_of_the_flow_is_refused(
    platform: list[str], request_of: Callable[[VobizClient], object], shown: str
) -> None:
    """flow.client in a handler (a WarmTransfer's agent call, a hang-up, a look-up) too."""
    flow = moving_flow("every")
    with CallSimulator(flow):
        with pytest.raises(ConfigurationError, match=REFUSED) as caught:
            request_of(flow.client)
        assert f"({shown})" in str(caught.value)
    assert platform == []


def test_after_close_a_simulator_with_a_local_vobiz_lends_and_the_transfer_works(
    platform: list[str],
) -> None:
    flow = moving_flow("later")
    with CallSimulator(flow) as plain:
        assert plain.call("answer").run().handler_errors
    with LocalVobiz() as server:
        with CallSimulator(flow, local_vobiz=server) as sim:
            assert_moved(sim)
        assert flow.transfers.peek_client() is None
    assert platform == []


def test_a_simulator_never_closed_leaves_later_simulators_working(
    platform: list[str], call_simulator: CallSimulatorFactory, local_vobiz: LocalVobiz
) -> None:
    flow = moving_flow("never-closed")
    plain = CallSimulator(flow)  # never closed, as in a test that forgets to
    assert plain.call("answer").run().handler_errors
    release_loans(local_vobiz)  # what the local_vobiz fixture does before each test
    sim = call_simulator(flow)
    assert_moved(sim)
    sim.close()
    with LocalVobiz() as other, CallSimulator(flow, local_vobiz=other) as own_server:
        assert_moved(own_server)
    assert isinstance(flow.transfers.peek_client(), RefusingClient)  # still lent by `plain`
    assert platform == []


def test_closing_the_local_vobiz_simulator_brings_back_the_refusing_client(
    platform: list[str],
) -> None:
    """A plain simulator made while a LocalVobiz's loan is open leaves it to that
    simulator's calls, and refuses once it is gone, not the environment's client."""
    flow = moving_flow("under")
    with LocalVobiz() as server:
        sim = CallSimulator(flow, local_vobiz=server)
        lent = flow.transfers.peek_client()
        plain = CallSimulator(flow)
        assert flow.transfers.peek_client() is lent
        assert_moved(sim)
        sim.close()
        assert isinstance(flow.transfers.peek_client(), RefusingClient)
        assert plain.call("answer").run().handler_errors
        plain.close()
    assert flow.transfers.peek_client() is None
    assert platform == []


def test_a_refusing_client_the_loans_lost_track_of_is_still_lent_over(
    platform: list[str],
) -> None:
    """A check's stand-in block that began while it was lent puts it back after the
    simulator closed: a LocalVobiz simulator knows it by its class, not as the flow's own."""
    flow = moving_flow("stray")
    plain = CallSimulator(flow)
    with LocalVobiz() as check_api, flow.standing_in(client=check_api.client()):
        plain.close()
    stray = flow.transfers.peek_client()
    assert isinstance(stray, RefusingClient)
    with LocalVobiz() as server, CallSimulator(flow, local_vobiz=server) as sim:
        assert_moved(sim)
    assert flow.transfers.peek_client() is stray
    assert platform == []


def test_a_flow_with_a_client_of_its_own_is_left_alone(platform: list[str]) -> None:
    own = VobizClient()  # the test's own choice: its requests go where it points
    given = moving_flow("given", client=own)
    bare = moving_flow("bare")
    with CallSimulator(given) as sim, CallSimulator(bare) as other:
        assert given.transfers.peek_client() is own
        t = sim.call("answer").run()
        assert not t.handler_errors, t
        assert len(platform) == 1 and platform[0].startswith("POST /api/v1/Account/MA_REALACCOUNT")
        assert other.call("answer").run().handler_errors  # the other flow's is refused
    assert given.transfers.peek_client() is own and len(platform) == 1
    own.close()


def test_every_flow_the_app_serves_is_lent_one(platform: list[str]) -> None:
    # CallSimulator(app=app) named no flow and lent none: a handler's flow.transfer made
    # its client from the environment. Nor did another flow of the app, one a Redirect
    # reaches, even beside a LocalVobiz simulator's own flow.
    first, second = moving_flow("first"), moving_flow("second")
    app = Flask("two")
    first.register(app, "/one")
    second.register(app, "/two")
    with CallSimulator(app=app, public_url=PUBLIC, auth_token=first.auth_tokens[0]) as sim:
        assert all(isinstance(f.transfers.peek_client(), RefusingClient) for f in (first, second))
        [error] = sim.call("/one/answer").run().handler_errors
        assert REFUSED in error
    assert first.transfers.peek_client() is None and second.transfers.peek_client() is None
    with LocalVobiz() as server, CallSimulator(first, app=app, local_vobiz=server):
        assert isinstance(second.transfers.peek_client(), RefusingClient)
        assert not isinstance(first.transfers.peek_client(), RefusingClient)
    assert second.transfers.peek_client() is None
    assert platform == []


def test_an_app_behind_middleware_with_no_flow_named_is_warned_of(
    platform: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Middleware hides the app's flows: none is lent a client, and nothing said so.
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    flow = moving_flow("hidden")
    wrapped = DispatcherMiddleware(flow.create_app())
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        CallSimulator(app=wrapped, public_url=PUBLIC, auth_token=flow.auth_tokens[0]).close()
    assert "name the flow: CallSimulator(flow, app=app)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        CallSimulator(flow, app=wrapped).close()  # named: lent, and nothing to say
    assert "name the flow" not in caplog.text


def test_a_handler_error_in_another_flow_of_the_app_reaches_the_transcript() -> None:
    # Only the named flow's errors were tapped: a call that went on to another flow by a
    # Redirect and met a failing handler there "ended normally".
    first = moving_flow("front")
    back = CallFlow("back", public_url=PUBLIC, auth_token=first.auth_tokens[0], state=MemoryStore())

    @back.route("/desk")
    def desk(call: CallRequest) -> Response:
        raise RuntimeError("the desk is broken")

    @first.route("/to-desk")
    def to_desk(call: CallRequest) -> Response:
        return Response(Redirect(f"{PUBLIC}/back/desk"))

    app = Flask("both")
    first.register(app)
    back.register(app, "/back")
    with CallSimulator(first, app=app) as sim:
        t = sim.call("/to-desk").run()
    assert t.handler_errors == ["desk: RuntimeError: the desk is broken"]
    assert not t.ended_normally
