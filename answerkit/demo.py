"""``answerkit demo``: a complete simulated call through real HTTP on loopback.

It starts the demo answer server (an IVR menu and a warm transfer, built from the
recipes) and the local Vobiz API server, then plays Vobiz: a caller dials in, picks
support, is moved to hold with the Transfer API and hears the announcement, the
agent is called, hears the whisper and accepts, caller and agent are joined in one
room, and both hang up. No account, no network beyond 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from answerkit.app import CallFlow
from answerkit.client import VobizClient
from answerkit.elements import Hangup, Record, Response, Speak, Wait
from answerkit.recipes import IVRMenu, Option, WarmTransfer
from answerkit.request import CallRequest
from answerkit.testing import CallSimulator, LocalVobiz, SimulatedCall

AGENT_NUMBER = "+14155550142"
COMPANY_NUMBER = "+14155550100"
CALLER_NUMBER = "+14155550123"


def build_demo_flow(
    public_url: str, auth_token: str, client: VobizClient, state: str
) -> tuple[CallFlow, WarmTransfer]:
    """The demo application: an IVR whose support option warm-transfers to an agent."""
    flow = CallFlow(
        "demo", public_url=public_url, auth_token=auth_token, state=state, client=client
    )
    warm = WarmTransfer(
        flow,
        "warm",
        agent=AGENT_NUMBER,
        caller_id=COMPANY_NUMBER,
        announcement="Please hold while we transfer your call.",
        whisper=lambda ctx: (
            f"Incoming transfer from {ctx.get('caller', 'a caller')} about "
            f"{ctx.get('topic', 'an enquiry')}. Press 1 to accept."
        ),
        fallback="voicemail",
    )
    IVRMenu(
        flow,
        "main",
        prompt="Welcome to Example Corp. For sales press 1. For support press 2, or say support.",
        options={"1": "sales", "2": Option("support", phrases=("support",))},
        fallback="voicemail",
    )

    @flow.route("/sales")
    def sales(call: CallRequest) -> Response:
        return Response(Speak("Our sales team is away today. Goodbye."), Hangup())

    @flow.route("/support")
    def support(call: CallRequest) -> Response:
        warm.start(call.call_uuid, context={"caller": call.from_, "topic": "support"})
        return Response(Speak("One moment please."), Wait(length=5))

    @flow.route("/voicemail")
    def voicemail(call: CallRequest) -> Response:
        return Response(
            Speak("Please leave a message after the beep."),
            # The file and its length arrive at RecordStop, not at the action (spec §2.6).
            Record(
                action=flow.url_for("recorded"),
                max_length=60,
                callback_url=flow.url_for("message_saved"),
            ),
            Hangup(),
        )

    @flow.route("/recorded")
    def recorded(call: CallRequest) -> Response:
        return Response()

    @flow.route("/message-saved", status_callback=True)
    def message_saved(call: CallRequest) -> None:
        """RecordStop: where a real app keeps the message (call.record_url)."""

    return flow, warm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(flow: CallFlow, port: int) -> Iterator[BaseWSGIServer]:
    """Serve ``flow`` on 127.0.0.1:``port`` in a background thread."""
    server = make_server("127.0.0.1", port, flow.create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(5)
        flow.store.close()  # its SQLite connections, before the temporary folder goes


def _section(title: str, call: SimulatedCall) -> str:
    return f"\n=== {title} ({call.call_uuid}) ===\n{call.transcript}"


@contextmanager
def _loopback_unproxied() -> Iterator[None]:
    """Every request of the demo goes to 127.0.0.1: a proxy from HTTP_PROXY/HTTPS_PROXY
    must not be asked to reach it (requests honours NO_PROXY). Restored afterwards."""
    saved = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
    for name, value in saved.items():
        os.environ[name] = ",".join(v for v in (value, "127.0.0.1", "localhost") if v)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_demo(verbose: bool = False) -> int:
    """Play the demo call; print the transcripts; 0 when everything happened as designed."""
    with _loopback_unproxied():
        return _play(verbose)


def _play(verbose: bool) -> int:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, LocalVobiz() as api:
        port = _free_port()
        public_url = f"http://127.0.0.1:{port}"
        flow, warm = build_demo_flow(
            public_url, api.auth_token, api.client(), f"sqlite:///{Path(tmp) / 'state.db'}"
        )
        with serve(flow, port):
            print(f"answer server: {public_url}   local Vobiz API: {api.base_url}")
            print("routes: " + ", ".join(r.path for r in flow.routes))
            sim = CallSimulator(public_url, auth_token=api.auth_token, local_vobiz=api)
            sim.expect_outbound(AGENT_NUMBER, digits="1")
            caller = sim.call(
                flow.url_for("main"), from_=CALLER_NUMBER, to=COMPANY_NUMBER, digits="2"
            )
            caller.run()
            sim.run_until_idle()
            agents = [c for c in sim.calls if c is not caller]
            room = warm.room_for(caller.call_uuid)
            members = sim.conference(room).members
            joined = bool(agents) and caller in members and agents[0] in members
            print(
                f"\nroom {room}: "
                + ", ".join("caller" if m is caller else "agent" for m in members)
            )
            caller.hangup()
            sim.run_until_idle()
            print(_section("caller", caller))
            for agent in agents:
                print(_section("agent", agent))
            outcome = warm.outcome(caller.call_uuid)
            print(f"\nwarm transfer outcome: {outcome}")
            if verbose:
                print(f"\nlocal Vobiz API requests: {len(api.requests)}")
                for req in api.requests:
                    print(f"  {req.method} {req.path}")
            ok = joined and outcome == "accepted" and all(c.ended for c in sim.calls)
            print("\ndemo " + ("complete: caller and agent were joined" if ok else "FAILED"))
            return 0 if ok else 1
