"""Issue 5: simulated calls per second, in-process, against the same webhooks sent by hand.

The flow is a four-step IVR: the answer URL returns a Gather (main menu), its action
returns a second Gather (submenu), whose action returns Speak + Hangup; then the hangup
webhook. Verification is on and state is in memory. The simulator
(``CallSimulator(flow).call(digits="1,2").run()``) signs, sends, judges and parses every
answer and keeps a transcript. By hand, the same four webhooks (the parameters the
simulator sent, with a new CallUUID per call, freshly signed) go through the Flask test
client of the same app and only the status is checked. The two take turns (interleaved
samples of ``INNER`` calls).

Run: ``.venv/bin/python benchmarks/bench_simulator.py``
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from answerkit import CallFlow, CallRequest, Event, Gather, Hangup, Response, Speak, sign
from answerkit.testing import CallSimulator
from benchmarks._timing import BenchResult, Target, fmt_ns, interleave, table

PUBLIC_URL = "https://ivr.example.com"
TOKEN = "sim-bench-token-0123456789abcdef"
ROUNDS = 61
INNER = 10


def make_flow() -> CallFlow:
    flow = CallFlow("simbench", public_url=PUBLIC_URL, auth_token=TOKEN, state="memory://")

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        call.state["menu"] = "main"
        return Response(
            Gather(
                Speak("Welcome. For sales press 1, for support press 2."),
                action=flow.url_for("menu"),
                input_type="dtmf",
                num_digits=1,
            ),
            Speak("We did not get your choice. Goodbye."),
            Hangup(),
        )

    @flow.route("/menu")
    def menu(call: CallRequest) -> Response:
        call.state["department"] = call.digits
        return Response(
            Gather(
                Speak("For new orders press 1, for existing orders press 2."),
                action=flow.url_for("submenu"),
                input_type="dtmf",
                num_digits=1,
            ),
            Speak("We did not get your choice. Goodbye."),
            Hangup(),
        )

    @flow.route("/submenu")
    def submenu(call: CallRequest) -> Response:
        choice = f"{call.state.get('department')}-{call.digits}"
        return Response(Speak(f"Thank you. Your request {choice} is noted. Goodbye."), Hangup())

    @flow.route("/answer", event=Event.Hangup)
    def hangup(call: CallRequest) -> None:
        return None

    return flow


def run(rounds: int = ROUNDS, inner: int = INNER) -> BenchResult:
    started = time.perf_counter()
    res = BenchResult("Call simulator (issue 5)", ".venv/bin/python benchmarks/bench_simulator.py")
    flow = make_flow()
    app = flow.create_app()
    client = app.test_client()

    # One call, to check the flow and to record the webhooks the simulator sends.
    transcript = CallSimulator(flow, app=app).call("answer", digits="1,2").run()
    assert transcript.heard[-1].startswith("Thank you. Your request 1-2"), transcript.heard
    hooks = [(urlsplit(w.url).path, w.url, dict(w.params)) for w in transcript.webhooks]
    assert [w.status for w in transcript.webhooks] == [200] * 4, transcript.webhooks
    assert hooks[-1][2].get("Event") == "Hangup", hooks[-1]
    recorded_uuid = hooks[0][2]["CallUUID"]

    holder = [CallSimulator(flow, app=app)]

    def simulated() -> object:
        return holder[0].call("answer", digits="1,2").run()

    def by_hand() -> object:
        call_uuid = str(uuid.uuid4())
        for path, url, params in hooks:
            fields = {k: (call_uuid if v == recorded_uuid else v) for k, v in params.items()}
            r = client.post(path, data=fields, headers=sign(url, TOKEN))
            if r.status_code != 200:
                raise AssertionError(r.status_code)
        return r

    def fresh_simulator() -> None:
        holder[0].close()  # a simulator keeps every call it placed; start each round afresh
        holder[0] = CallSimulator(flow, app=app)

    cases: dict[str, Callable[[], object]] = {
        "by hand: Flask test client, signed": by_hand,
        "CallSimulator": simulated,
    }
    got = interleave(cases, rounds=rounds, inner=inner, between=fresh_simulator)
    res.seconds = time.perf_counter() - started
    hand = got["by hand: Flask test client, signed"].median
    rows = [
        [name, fmt_ns(s.median), f"{1e9 / s.median:.0f}", f"{s.median / hand:.2f}x"]
        for name, s in got.items()
    ]
    res.tables.append(
        f"A four-step IVR call ({len(hooks)} webhooks: answer, menu, submenu, hangup), median "
        f"of {rounds} interleaved rounds of {inner} calls each:\n\n"
        + table(["way", "per call", "calls/s", "cost vs by hand"], rows)
    )
    sim = got["CallSimulator"].median
    res.targets.append(
        Target(5, "simulator cost / by-hand test-client cost", sim / hand, "<=", 1.5)
    )
    res.notes.append(
        "Both run the same Flask app in-process with verification on and memory state. The "
        "simulator calls the WSGI app directly (no test-client wrapper) but also parses and "
        "judges every answer and keeps a transcript."
    )
    return res


def main() -> BenchResult:
    result = run()
    result.print()
    return result


if __name__ == "__main__":
    main()
