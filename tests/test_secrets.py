"""No secret leaks: a full simulated call with every kind of error, all logs at DEBUG.

The secrets: the account auth token (it keys the webhook signatures and travels as
``X-Auth-Token``), a rotated-out token still accepted, a wrong token a client was
misconfigured with, a Redis password, every signature value the simulator sent, a
forged signature and a plain-text ``auth-token`` header (spec §3.1: some accounts
receive one). None may appear in any log record of any logger (message, arguments,
traceback), on stdout/stderr, in the simulator's transcript, or in the message or
repr of any exception the application sees.
"""

from __future__ import annotations

import logging
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from answerkit import (
    AuthenticationError,
    CallFlow,
    CallRequest,
    Gather,
    Hangup,
    Response,
    ServerError,
    Speak,
    sign,
)
from answerkit.client import VobizClient
from answerkit.state import MemoryStore, RedisStore
from answerkit.testing.local_vobiz import LocalVobiz
from answerkit.testing.simulator import CallSimulator

PUBLIC = "https://voice.example.com"
AUTH_ID = "MA_SECRETS01"
TOKEN = "SECRETtokA-3b9f1c7e5d2a8064"  # webhook key and X-Auth-Token, as on a real account
OLD_TOKEN = "SECRETtokB-rotated-71d0c2e9"  # still accepted during rotation
WRONG_TOKEN = "SECRETtokC-misconfigured-55"  # a client set up with the wrong token
REDIS_PASSWORD = "SECRETredis-pw-a81c"
PLAIN_AUTH_HEADER = "SECRETplain-auth-header-3c"
FORGED_SIGNATURE = "Rk9SR0VEIFNJR05BVFVSRSBWQUxVRSAxMjM0NTY3OA=="
FORGED_NONCE = "98765432109876543210"


class Capture(logging.Handler):
    """Every record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self._mutex = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        extra = repr(record.args) + repr(record.__dict__.get("msg"))
        with self._mutex:
            self.lines.append(text + "\n" + extra)

    @property
    def text(self) -> str:
        with self._mutex:
            return "\n".join(self.lines)


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    saved = {name: lg.level for name, lg in logging.root.manager.loggerDict.items()
             if isinstance(lg, logging.Logger)}  # fmt: skip
    saved_root = root.level
    for name in saved:
        lg = logging.getLogger(name)
        lg.setLevel(logging.DEBUG)
        if not lg.propagate:
            lg.addHandler(handler)
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_root)
        for name, level in saved.items():
            lg = logging.getLogger(name)
            lg.setLevel(level)
            lg.removeHandler(handler)


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """A WSGI app on a real threaded HTTP server on 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


def test_no_secret_in_logs_transcripts_or_errors(
    capture: Capture, capfd: pytest.CaptureFixture[str]
) -> None:
    errors_seen: list[BaseException] = []
    raised: list[BaseException] = []

    def on_error(exc: BaseException, call: CallRequest | None, route: str) -> None:
        errors_seen.append(exc)

    vobiz = LocalVobiz(AUTH_ID, TOKEN).start()
    api = vobiz.client(max_retries=1, backoff=0.0)
    wrong_api = VobizClient(AUTH_ID, WRONG_TOKEN, base_url=vobiz.base_url, allow_http=True)
    flow = CallFlow("secrets", public_url=PUBLIC, auth_token=[TOKEN, OLD_TOKEN],
                    state=MemoryStore(), client=api, on_error=on_error, deadline=5.0)  # fmt: skip
    broken_store = RedisStore(f"redis://:{REDIS_PASSWORD}@127.0.0.1:{_dead_port()}/0")
    broken = CallFlow("broken", public_url=PUBLIC, auth_token=TOKEN, state=broken_store,
                      on_error=on_error)  # fmt: skip

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Gather(Speak("Pick one"), action=flow.url_for("menu"), num_digits=1))

    @flow.route("/menu")
    def menu(call: CallRequest) -> Response:
        try:
            if call.digits == "1":
                raise RuntimeError("the handler has a bug")
            if call.digits == "2":
                vobiz.fail_next(1, status=401)
                flow.transfer(call.call_uuid, aleg="hold")
            if call.digits == "3":
                flow.transfer(call.call_uuid, aleg="hold", client=wrong_api)  # a real 401
            if call.digits == "4":
                vobiz.fail_next(1, status=500)  # a POST is not repeated on 5xx
                flow.transfer(call.call_uuid, aleg="hold")
            if call.digits == "5":
                vobiz.reset_next(1)
                flow.transfer(call.call_uuid, aleg="hold")
            if call.digits == "6":
                flow.transfer(call.call_uuid, aleg="hold")  # succeeds
                return Response(Speak("Moving you"))
        except Exception as exc:
            raised.append(exc)
            raise
        return Response(Speak("Goodbye"), Hangup())

    @flow.route("/hold")
    def hold(call: CallRequest) -> Response:
        return Response(Speak("Please hold"), Hangup())

    @broken.route("/answer")
    def broken_answer(call: CallRequest) -> Response:
        call.state["seen"] = True
        return Response(Speak("never served"))

    app = flow.create_app()
    broken.register(app, url_prefix="/broken")
    served = Served(app)
    sims: list[CallSimulator] = []
    signatures: set[str] = set()
    try:
        sim = CallSimulator(served.base_url, flow=flow, public_url=PUBLIC, auth_token=TOKEN,
                            local_vobiz=vobiz)  # fmt: skip
        old = CallSimulator(served.base_url, flow=flow, public_url=PUBLIC, auth_token=OLD_TOKEN)
        forger = CallSimulator(served.base_url, public_url=PUBLIC, auth_token=WRONG_TOKEN)
        sims += [sim, old, forger]
        for s in sims:
            _record_signatures(s, signatures)

        transcripts = [sim.call("/answer", digits=d).run() for d in "123456"]
        transcripts.append(old.call("/answer", digits="9").run())
        transcripts.append(sim.call("/broken/answer").run())  # state store unreachable
        transcripts.append(forger.call("/answer").run())  # bad signature: 403, call dropped
        sim.run_until_idle()
        transcripts += [c.transcript for c in sim.calls]

        import requests

        plain = requests.post(
            served.base_url + "/answer",
            data={"CallUUID": "forged-1", "Event": "StartApp"},
            headers={
                "X-Vobiz-Signature-V3": FORGED_SIGNATURE,
                "X-Vobiz-Signature-V3-Nonce": FORGED_NONCE,
                "auth-token": PLAIN_AUTH_HEADER,
                "parent-auth-token": PLAIN_AUTH_HEADER,
            },
            timeout=10,
        )
        assert plain.status_code == 403
        genuine = sign(PUBLIC + "/answer", TOKEN)
        signatures.update(v for k, v in genuine.items() if "Nonce" not in k)
        with_plain = requests.post(
            served.base_url + "/answer",
            data={"CallUUID": "plain-1", "Event": "StartApp"},
            headers={**genuine, "auth-token": PLAIN_AUTH_HEADER},
            timeout=10,
        )
        assert with_plain.status_code == 200
    finally:
        for s in sims:
            s.close()
        served.close()
        vobiz.stop()
        api.close()
        wrong_api.close()
        broken_store.close()

    # The errors really happened (otherwise the test proves nothing).
    kinds = {type(e).__name__ for e in raised}
    assert {"RuntimeError", "AuthenticationError", "ServerError", "TransportError"} <= kinds
    assert sum(isinstance(e, AuthenticationError) for e in raised) == 2
    assert any(isinstance(e, ServerError) for e in raised)
    assert any(type(e).__name__ == "StateError" for e in errors_seen)
    logs = capture.text
    assert "refused" in logs and "handler failed" in logs and "state store" in logs
    assert transcripts[-1] is not None and any(t.hangup_cause_code == 7011 for t in transcripts)
    assert len(signatures) > 20
    assert any(t.said("Please hold") for t in transcripts), "the good transfer did not happen"

    secrets = {TOKEN, OLD_TOKEN, WRONG_TOKEN, REDIS_PASSWORD, PLAIN_AUTH_HEADER,
               FORGED_SIGNATURE, *signatures}  # fmt: skip
    out, err = capfd.readouterr()
    places: dict[str, str] = {
        "logs": logs,
        "stdout": out,
        "stderr": err,
        "transcripts": "\n".join(_transcript_text(t) for t in transcripts),
        "exceptions": "\n".join(_exception_text(e) for e in [*raised, *errors_seen]),
        "objects": "\n".join(repr(x) for x in (flow, broken, broken_store, api, wrong_api, vobiz)),
    }
    for where, text in places.items():
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, f"secret(s) found in {where}: {leaked}"
    # A value with its base64 padding cut off would slip past the test above.
    for where, text in places.items():
        assert not [s for s in signatures if s.rstrip("=")[:24] in text], where


def _record_signatures(sim: CallSimulator, into: set[str]) -> None:
    original = sim.sign

    def sign_and_record(url: str) -> dict[str, str]:
        headers = original(url)
        into.update(v for k, v in headers.items() if "Nonce" not in k)
        return headers

    sim.sign = sign_and_record  # type: ignore[method-assign]


def _transcript_text(t: Any) -> str:
    parts = [str(t), repr(t)]
    for hook in t.webhooks:
        parts += [repr(hook), hook.text, repr(dict(hook.params)), str(hook.error)]
    for event in t.events:
        parts += [event.text, repr(event.data)]
    return "\n".join(parts)


def _exception_text(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for name in ("body", "url", "method", "call_uuid", "args"):
        parts.append(repr(getattr(exc, name, None)))
    return "\n".join(parts)


def test_client_errors_and_reprs_never_carry_the_token(local_vobiz: LocalVobiz) -> None:
    """Every typed error of the REST client, straight from LocalVobiz's fault switches."""
    client = local_vobiz.client(max_retries=0)
    wrong = VobizClient(local_vobiz.auth_id, WRONG_TOKEN, base_url=local_vobiz.base_url,
                        allow_http=True)  # fmt: skip
    call = local_vobiz.add_call()
    seen: list[BaseException] = []
    arrangements: list[Callable[[], None]] = [
        lambda: local_vobiz.fail_next(1, status=500),
        lambda: local_vobiz.fail_next(1, status=401),
        lambda: local_vobiz.rate_limit_next(1, retry_after=0),
        lambda: local_vobiz.reset_next(1),
        lambda: local_vobiz.malformed_next(1),
    ]
    try:
        for arrange in arrangements:
            arrange()
            try:
                client.hangup(call.call_uuid)
            except Exception as exc:
                seen.append(exc)
        with pytest.raises(AuthenticationError) as caught:
            wrong.get_live_call(call.call_uuid)
        seen.append(caught.value)
    finally:
        client.close()
        wrong.close()
    assert len(seen) >= 5
    text = "\n".join(_exception_text(e) for e in seen) + repr(client) + repr(wrong)
    for secret in (local_vobiz.auth_token, WRONG_TOKEN):
        assert secret not in text
