"""Mistakes a developer adopting answerkit makes, and names they need: each gets a clear answer.

Found by writing small projects from the README alone (an IVR, a warm transfer, a flow
mounted in an existing Flask app, the REST client against LocalVobiz).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import free_port, stop_process, wait_for_port
from flask import Flask

import answerkit
import answerkit.recipes
from answerkit import CallFlow, CallRequest, ConfigurationError, Hangup, Response, Speak
from answerkit.cli import main
from answerkit.recipes import Forwarding, IVRMenu, Option, TransferTrigger, WarmTransfer
from answerkit.state import MemoryStore

TOKEN = "usability-token-0123456789"


def new_flow(public_url: str | None = "https://voice.example.com") -> CallFlow:
    flow = CallFlow("u", public_url=public_url, auth_token=TOKEN, state=MemoryStore())
    flow.route("/sales")(lambda call: Response(Speak("sales"), Hangup()))
    return flow


# -- public names --------------------------------------------------------------------------


def test_recipe_result_types_can_be_imported_from_the_recipes_package() -> None:
    # trigger.move() and WarmTransfer.start() return them; a CRM helper annotates them.
    from answerkit.recipes import TriggerOutcome, WarmTransferStart

    assert {"TriggerOutcome", "WarmTransferStart"} <= set(answerkit.recipes.__all__)
    assert TriggerOutcome("ended", "c").status == "ended"
    assert WarmTransferStart("c", None, "room").room == "room"


def test_types_handed_to_user_code_are_exported_at_the_root() -> None:
    # on_error receives HandlerTimeout; verify() returns a Verification.
    from answerkit.dispatch import HandlerTimeout
    from answerkit.signature import Verification

    assert answerkit.HandlerTimeout is HandlerTimeout
    assert answerkit.Verification is Verification
    assert {"HandlerTimeout", "Verification"} <= set(answerkit.__all__)
    result = answerkit.verify({}, "https://voice.example.com/a", [TOKEN])
    assert isinstance(result, answerkit.Verification)


# -- recipe arguments ----------------------------------------------------------------------


def test_option_phrases_as_one_string_is_refused_not_split_into_letters() -> None:
    # phrases="buy" once made the phrases "b", "u", "y": "I need support" picked sales.
    with pytest.raises(ConfigurationError, match=r"phrases must be a sequence.*\('buy',\)"):
        Option("sales", phrases="buy")


def test_option_phrases_may_be_a_list_and_the_option_stays_hashable() -> None:
    option = Option("sales", phrases=["sales", "buy"])
    assert option.phrases == ("sales", "buy")
    hash(option)
    menu = IVRMenu(new_flow(), "main", prompt="Say sales", options={"1": option})
    assert menu.match(None, "I want to buy") is option


def test_ivr_option_key_given_as_an_int_names_the_fix() -> None:
    with pytest.raises(ConfigurationError, match=r"option key 1 must be a string.*'1'"):
        IVRMenu(new_flow(), "main", prompt="Hi", options={1: "sales"})  # type: ignore[dict-item]


def test_forwarding_numbers_given_as_one_string_is_refused() -> None:
    # A string is a sequence: its first "number" was "+", with an error naming only that.
    with pytest.raises(ConfigurationError, match=r"numbers must be a list such as \['\+1415"):
        Forwarding(new_flow(), "fwd", numbers="+14155550121", caller_id="+14155550100")


def test_warm_transfer_accept_key_given_as_an_int_names_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="accept_key must be one key as a string"):
        WarmTransfer(new_flow(), agent="+14155550142", caller_id="+14155550100",
                     fallback="sales", accept_key=1)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize("recipe", ["ivr", "forwarding", "warm"])
def test_a_recipe_without_a_public_url_fails_when_mounted(
    recipe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # trusted_proxies alone checks signatures, but url_for still needs the public URL:
    # every call would have heard the fallback, with nothing said at start-up.
    monkeypatch.delenv("ANSWERKIT_PUBLIC_URL", raising=False)
    flow = new_flow(public_url=None)
    if recipe == "ivr":
        IVRMenu(flow, "main", prompt="Hi", options={"1": "sales"})
    elif recipe == "forwarding":
        Forwarding(flow, "fwd", numbers=["+14155550121"], caller_id="+14155550100")
    else:
        WarmTransfer(flow, agent="+14155550142", caller_id="+14155550100", fallback="sales")
    with pytest.raises(ConfigurationError, match=r"cannot build its URLs.*ANSWERKIT_PUBLIC_URL"):
        flow.register(Flask("site"), url_prefix="/voice")


# -- the command line on a user's own Flask app -----------------------------------------------

SITE = """
from flask import Flask
from answerkit import CallFlow, CallRequest, Hangup, Response, Speak
from answerkit.recipes import TransferTrigger

app = Flask("site")

@app.get("/health")
def health():
    return "ok"

flow = CallFlow("voice", auth_token="usability-token-0123456789", state="memory://",
                trusted_proxies=1)
TransferTrigger(flow, secret="0123456789abcdef-secret")

@flow.route("/answer")
def answer(call):
    return Response(Speak("hello"), Hangup())

flow.register(app, url_prefix="/voice")
"""


def write_app(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return path


def test_routes_shows_the_mount_prefix_and_the_endpoints_without_a_public_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ANSWERKIT_PUBLIC_URL", raising=False)
    site = write_app(tmp_path, "usability_site_routes", SITE)
    assert main(["routes", str(site)]) == 0
    out = capsys.readouterr().out
    assert "/voice/answer" in out  # the path Vobiz must be given, not "/answer"
    assert "answerkit_transfer_trigger" in out and "/voice/_answerkit/transfer" in out


def answerkit_command() -> list[str]:
    """The ``answerkit`` command of the environment running the tests: the console script
    installed beside its Python, or the CLI module run by that Python."""
    script = Path(sys.executable).with_name("answerkit")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "answerkit.cli"]


@pytest.mark.parametrize("suffix", ["", ":app"])
def test_run_serves_the_users_own_flask_app(suffix: str, tmp_path: Path) -> None:
    # A fresh app with only the flows would drop the site's own routes, hooks and middleware.
    # Served for real: `answerkit run` in a process of its own, on a free loopback port.
    site = write_app(tmp_path, f"usability_site_run{len(suffix)}", SITE)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "ANSWERKIT_PUBLIC_URL"}
    with (tmp_path / "run.log").open("wb") as log:
        proc = subprocess.Popen(
            [*answerkit_command(), "run", str(site) + suffix, "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp_path, env=env,
        )  # fmt: skip
        try:
            wait_for_port(port, proc, "answerkit run")
            with requests.Session() as http:
                http.trust_env = False  # straight to 127.0.0.1, whatever proxy is set
                health = http.get(f"http://127.0.0.1:{port}/health", timeout=30)
                # The flow is mounted on that same app, under the site's own prefix.
                trigger = http.post(f"http://127.0.0.1:{port}/voice/_answerkit/transfer", json={},
                                    timeout=30)  # fmt: skip
        finally:
            stop_process(proc)
    assert (health.status_code, health.text) == (200, "ok")  # the site's own route
    assert trigger.status_code == 401  # the flow's trigger: there, and asking for its secret
    assert "/voice/answer" in (tmp_path / "run.log").read_text()


def test_a_flask_app_that_serves_no_flow_is_a_clear_error(tmp_path: Path) -> None:
    from answerkit.loader import load_target

    source = "from flask import Flask\nfrom answerkit import CallFlow\napp = Flask('x')\n"
    site = write_app(tmp_path, "usability_site_empty", source)
    with pytest.raises(ConfigurationError, match="serves no CallFlow"):
        load_target(f"{site}:app")


# -- answerkit check ---------------------------------------------------------------------

FORGETFUL = """
from answerkit import CallFlow, Hangup, Response, Speak

flow = CallFlow("forgetful", auth_token="usability-token-0123456789", state="memory://",
                public_url="https://voice.example.com")

@flow.route("/answer")
def answer(call):
    Response(Speak("Welcome"), Hangup())   # built, never returned

@flow.route("/recorded")
def recorded(call):
    return Response()
"""


def test_check_flags_a_handler_that_forgot_to_return_its_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = write_app(tmp_path, "usability_forgetful", FORGETFUL)
    assert main(["check", str(app)]) == 0  # advice, not a failure: None is allowed
    out = capsys.readouterr().out
    answer, recorded = out.split("forgetful/recorded")
    assert "the handler returned None" in answer
    assert "returned None" not in recorded  # an explicit empty Response() is meant


def test_check_puts_the_handlers_back(tmp_path: Path) -> None:
    from answerkit.check import check_flow

    flow = new_flow()

    def answer(call: CallRequest) -> Response:
        return Response(Hangup())

    flow.add_route("/answer", answer)
    check_flow(flow)
    assert flow.get_route("answer").handlers[None] is answer


def _unknown_keyword_cases(flow: CallFlow) -> list[tuple[Any, str]]:
    """Each call with a keyword it does not take, and what its TypeError must advise."""
    warm = {"agent": "+14155550100", "caller_id": "+14155550101", "fallback": "/x"}
    return [
        (lambda: CallFlow("y", public_uri="https://x"), "did you mean public_url=?"),
        (lambda: CallFlow("y", auth_id="MA_X"), "client=VobizClient(auth_id=..."),
        (lambda: IVRMenu(flow, "m", prompt="p", options={}, timeout=5), "use execution_timeout="),
        (lambda: IVRMenu(flow, "m", prompt="p", options={}, retry=2), "use retries="),
        (lambda: WarmTransfer(flow, callerId="+1", **warm), "snake_case, caller_id="),
        (lambda: WarmTransfer(flow, timeout=20, **warm), "use agent_timeout="),
        (
            lambda: Forwarding(flow, "f", numbers=["+14155550100"], caller_id="+1", time_out=5),
            "did you mean timeout=?",
        ),
        (lambda: flow.transfer("abc", a_leg="hold"), "use aleg="),
        (lambda: flow.transfer("abc", aleg_url="https://x"), "use aleg=, which takes"),
        (lambda: flow.try_transfer("abc", legs="aleg"), "aleg=, bleg= or both"),
        (lambda: TransferTrigger(flow, secrt="s" * 20), "did you mean secret=?"),
        # flow.transfer's keywords on the simulator's transfer, which moves one leg
        (lambda: _simulator(flow).transfer("abc", aleg="hold"), "leg='aleg'); flow.transfer"),
        (lambda: _simulator(flow).transfer("abc", "hold", legs="both"), "write leg="),
    ]


def _simulator(flow: CallFlow) -> Any:
    from answerkit.testing import CallSimulator

    return CallSimulator(flow)


@pytest.mark.parametrize("case", range(13))
def test_a_keyword_not_taken_is_named_with_the_one_to_write(case: int) -> None:
    flow = new_flow()
    routes = flow.routes
    call, advice = _unknown_keyword_cases(flow)[case]
    with pytest.raises(TypeError, match="got an unexpected keyword argument") as caught:
        call()
    assert advice in str(caught.value) and "(it takes " in str(caught.value)
    assert flow.routes == routes  # refused before a recipe declared any route


def test_the_advised_signatures_are_the_functions_own() -> None:
    import inspect

    # functools.wraps: introspection sees the real parameters, so binding a misspelt
    # keyword still fails (a **kwargs catch-all took anything).
    with pytest.raises(TypeError):
        inspect.signature(CallFlow).bind("x", public_uri="https://x")
    with pytest.raises(TypeError):
        inspect.signature(CallFlow.transfer).bind(object(), "uuid", a_leg="hold")
    assert "execution_timeout" in inspect.signature(IVRMenu).parameters


@pytest.mark.parametrize(
    ("name", "advice"),
    [("GetDigits", "use Gather(input_type='dtmf')"), ("Say", "use Speak"), ("Pause", "use Wait")],
)
def test_a_plivo_or_twiml_name_imported_from_the_root_names_the_vobizxml_one(
    name: str, advice: str
) -> None:
    with pytest.raises(ImportError, match=f"answerkit has no {name}: .*{re.escape(advice)}"):
        exec(f"from answerkit import {name}", {})
    # Any other missing name is Python's usual error, and hasattr works on it.
    with pytest.raises(ImportError, match="cannot import name 'NoSuchName'"):
        exec("from answerkit import NoSuchName", {})
    assert not hasattr(answerkit, "NoSuchName") and hasattr(answerkit, "Gather")


@pytest.mark.parametrize("kind", ["plivoxml", "flask"])
def test_a_handler_returning_another_librarys_answer_is_told_what_to_return(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    import flask

    class ResponseElement:  # plivoxml's, by where it comes from (plivo is no test dependency)
        pass

    ResponseElement.__module__ = "plivo.xml.ResponseElement"
    result = ResponseElement() if kind == "plivoxml" else flask.Response("<Response/>")
    flow = new_flow()
    flow.route("/answer")(lambda call: result)
    headers = answerkit.sign("https://voice.example.com/answer", TOKEN)
    reply = (
        flow.create_app()
        .test_client()
        .post("/answer", data={"CallUUID": "c-1", "Event": "StartApp"}, headers=headers)
    )
    assert reply.status_code == 200 and b"<Hangup/>" in reply.data  # the fallback
    advice = (
        "build the document with answerkit's elements"
        if kind == "plivoxml"
        else ("return the Response document itself")
    )
    assert advice in caplog.text


@pytest.mark.parametrize("version", ["V2", "V3"])
def test_a_request_signed_the_plivo_way_is_told_so(
    caplog: pytest.LogCaptureFixture, version: str
) -> None:
    flow = new_flow()
    plivo_headers = {
        f"X-Plivo-Signature-{version}": "c2lnbmF0dXJl",
        f"X-Plivo-Signature-{version}-Nonce": "12345678901234567890",
    }
    client = flow.create_app().test_client()
    with caplog.at_level("WARNING", logger="answerkit"):
        reply = client.post("/sales", data={"CallUUID": "c-1"}, headers=plivo_headers)
    assert reply.status_code == 403
    assert "X-Plivo-Signature headers, and Vobiz signs with X-Vobiz-Signature-*" in caplog.text


def test_the_rest_clients_keywords_spelt_another_way_name_the_one_to_write() -> None:
    client = answerkit.VobizClient("MA_X0000001", "t" * 20)
    with pytest.raises(TypeError, match=r"'to_': use to="):
        client.make_call("+14155550100", to_="+14155550101", answer_url="https://a.b/x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"'aleg': use aleg_url="):
        client.transfer("uuid", aleg="hold")  # type: ignore[call-arg]


def test_the_main_objects_print_what_they_are_and_never_a_secret() -> None:

    from answerkit.testing import CallSimulator

    flow = CallFlow(
        "support",
        public_url="https://voice.example.com",
        auth_token="token-never-printed-0123",
        state=MemoryStore(),
    )
    flow.add_route("/sales", lambda call: Response(Hangup()), name="sales")
    for i in range(10):
        flow.add_route(f"/more/{i}", lambda call: Response(Hangup()), name=f"more_{i}")
    made = {
        "CallFlow('support', public_url='https://voice.example.com', verify=True, routes: "
        "sales, more_0": flow,
        "IVRMenu(flow='support', name='main', keys='12'": IVRMenu(
            flow, "main", prompt="Press 1 or 2.", options={"1": "sales", "2": "sales"}
        ),
        "WarmTransfer(flow='support', name='warm', agent='+14155550142'": WarmTransfer(
            flow, agent="+14155550142", caller_id="+14155550100", fallback="sales"
        ),
        "TransferTrigger(flow='support', path='/_answerkit/transfer'": TransferTrigger(
            flow, secret="trigger-secret-never-printed-0123456789"
        ),
        "Forwarding(flow='support', name='fwd', numbers=['+14155550142']": Forwarding(
            flow, "fwd", numbers=["+14155550142"], caller_id="+14155550100"
        ),
        "CallSimulator('support', calls=0)": CallSimulator(flow),
    }
    for start, obj in made.items():
        text = repr(obj)
        assert text.startswith(start), text
        assert "never-printed" not in text
    assert repr(flow).endswith(f"... ({len(flow.routes)} in all))")  # a long list is cut
