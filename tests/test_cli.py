"""The answerkit command: routes, check (exit status), call (scripted), demo."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
from conftest import free_port, stop_process, wait_for_port

from answerkit import CallFlow, Response, Speak
from answerkit.cli import main
from answerkit.testing.terminal import run_terminal_call

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    "VOBIZ_AUTH_TOKEN": "cli-token-0123456789",
    "ANSWERKIT_PUBLIC_URL": "https://voice.example.com",
    "ANSWERKIT_STATE_URL": "memory://",
}

BROKEN_APP = """
from answerkit import CallFlow, Response, Speak

flow = CallFlow("broken", auth_token="cli-token-0123456789", state="memory://",
                public_url="https://voice.example.com")

@flow.route("/answer")
def answer(call):
    return Response(Speak("fine"))

@flow.route("/bad")
def bad(call):
    raise RuntimeError("oops")
"""


def _app_file(folder: Path, name: str, source: str) -> Path:
    """``folder/name`` holding ``source``: an application file for a command to load."""
    path = folder / name
    path.write_text(source)
    return path


def _app_with_handlers(folder: Path, app: str, flow: str, tail: str = "") -> Path:
    """``app``.py declaring CallFlow ``flow`` and importing ``app``_handlers.py, which
    imports that flow back and declares its /answer route (the usual split of an app into
    modules, whose circular import needs the app loaded under its own name)."""
    _app_file(
        folder,
        f"{app}_handlers.py",
        f"from answerkit import Hangup, Response, Speak\nfrom {app} import flow\n"
        f"flow.route('/answer')(lambda call: Response(Speak('{flow}'), Hangup()))\n",
    )
    return _app_file(
        folder,
        f"{app}.py",
        f"from answerkit import CallFlow\nflow = CallFlow('{flow}')\n"
        f"import {app}_handlers  # noqa\n{tail}",
    )


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def test_routes_lists_every_route_with_its_public_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", str(ROOT / "examples/ivr.py")]) == 0
    out = capsys.readouterr().out
    assert "https://voice.example.com/main/choice" in out
    assert "voicemail" in out


def test_routes_shows_the_kind_of_each_route(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", str(ROOT / "examples/warm_transfer.py")]) == 0
    kinds = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()
             if line.startswith("  ")}  # fmt: skip
    assert kinds["warm_music"] == "sound" and kinds["warm_room"] == "status"
    assert kinds["warm_hold"] == "xml"


@pytest.mark.parametrize("name", ["ivr", "warm_transfer", "forwarding", "transfer_url"])
def test_check_passes_on_every_example(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ROOT / f"examples/{name}.py")]) == 0, capsys.readouterr().out


def test_check_fails_on_a_broken_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = _app_file(tmp_path, "broken_app.py", BROKEN_APP)
    assert main(["check", str(app)]) == 1
    out = capsys.readouterr().out
    assert "FAIL broken/bad" in out and "RuntimeError: oops" in out
    assert "ok   broken/answer" in out


def test_checks_sample_webhooks_carry_every_field_the_simulator_sends() -> None:
    # ConferenceEnter came with no ConferenceName, RecordStop with no RecordingDuration,
    # DialHangup with no DialBLegTo: handlers reading them failed `answerkit check` while
    # `answerkit call` (and Vobiz) passed them.
    from answerkit import Conference, Dial, Number, Record
    from answerkit.check import SAMPLE_CALL, SAMPLE_EVENT_FIELDS
    from answerkit.state import MemoryStore
    from answerkit.testing import CallSimulator

    public = "https://voice.example.com"
    flow = CallFlow("fields", public_url=public, auth_token="t" * 20, state=MemoryStore())
    docs = {
        "dial": Response(
            Dial(
                Number("+14156667890"),
                caller_id="+14155551234",
                action=public + "/events",
                callback_url=public + "/events",
            )
        ),
        "record": Response(
            Record(action=public + "/events", callback_url=public + "/events", max_length=5)
        ),
        "room": Response(
            Conference(
                "room",
                callback_url=public + "/events",
                wait_sound=public + "/music",
                stay_alone=True,
            )
        ),
    }
    for name, doc in docs.items():
        flow.add_route(f"/{name}", lambda call, doc=doc: doc, name=name)
    flow.add_route("/music", lambda call: Response(Speak("Music.")), sound=True)
    flow.add_route("/events", lambda call: None, status_callback=True)
    sent: dict[str, set[str]] = {}
    sim = CallSimulator(flow)
    for name in docs:
        transcript = sim.call(name, dial=["answer"]).run()
        for hook in transcript.webhooks:
            # The Dial action comes as Event=Redirect (spec §6 item 8): DialAction's fields.
            event = "DialAction" if "DialStatus" in hook.params else hook.event
            sent.setdefault(event, set()).update(hook.params)
    assert {"DialHangup", "DialAnswer", "RecordStop", "ConferenceEnter", "Hangup"} <= set(sent), (
        sorted(sent)
    )
    for event, names in sent.items():
        sample = {*SAMPLE_CALL, "Event", *SAMPLE_EVENT_FIELDS.get(event, {})}
        optional = {"SessionStart", "STIRAttestation", "STIRVerification", "ParentAuthID",
                    "BillRate", "TotalCost", "CountryCode", "RouteType"}  # fmt: skip
        assert names - optional <= sample, (event, sorted(names - optional - sample))


def two_flows(support_path: str) -> str:
    """An app file's source declaring flows 'sales' (at /answer) and 'support'."""
    return (
        "from flask import Flask\n"
        "from answerkit import CallFlow, Response, Speak\n"
        "kw = dict(public_url='https://x.example.com', auth_token='t' * 20, state='memory://')\n"
        "sales = CallFlow('sales', **kw)\n"
        "support = CallFlow('support', **kw)\n"
        "sales.add_route('/answer', lambda call: Response(Speak('sales')), name='answer')\n"
        f"support.add_route({support_path!r}, lambda call: Response(Speak('help')), name='help')\n"
    )


def test_a_module_whose_app_serves_only_some_of_its_flows_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An app of the flows alone was checked instead, silently: `check` passed a flow whose
    # register(app) was forgotten, which gunicorn's partial:app answers 404.
    (tmp_path / "partial.py").write_text(
        two_flows("/help") + "app = Flask(__name__)\nsales.register(app, url_prefix='/sales')\n"
    )
    target = str(tmp_path / "partial.py")
    assert main(["check", target]) == 2
    err = capsys.readouterr().err
    assert "the Flask app 'app' serves some of the module's flows but not 'support'" in err
    assert f"{target}:app (the flows it serves) or {target}:support (that flow alone)" in err
    assert main(["check", target + ":app"]) == 0
    assert main(["check", target + ":support"]) == 0


def test_check_reports_an_error_page_as_its_status_not_as_invalid_xml() -> None:
    # An app hook answering 500 was also reported "invalid VobizXML: not well-formed XML"
    # for its HTML error page.
    from flask import Flask

    from answerkit.check import check_flow

    kw = {"public_url": "https://x.example.com", "auth_token": "t" * 20, "state": "memory://"}
    flow = CallFlow("hooked", **kw)
    flow.add_route("/answer", lambda call: Response(Speak("hi")), name="answer")
    app = Flask("hooked")

    def refuse() -> tuple[str, int]:
        return "<html>oops</html>", 500

    app.before_request(refuse)
    flow.register(app)
    [result] = check_flow(flow, app)
    assert not result.ok and result.problems == ["answered HTTP 500"]


@pytest.mark.parametrize(
    ("apps", "names"),
    [
        ("app = sales.create_app()\ndebug = Flask('debug')\nsales.register(debug, direct=False)\n"
         "support.register(app, url_prefix='/s')\nsupport.register(debug, url_prefix='/s')\n",
         ("app", "debug")),
        ("sales_app = sales.create_app()\nsupport_app = support.create_app()\n",
         ("sales_app", "support_app")),
    ],
    ids=["two-apps-serving-all", "an-app-per-flow"],
)  # fmt: skip
def test_several_apps_none_serving_alone_every_flow_are_named_to_choose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], apps: str, names: tuple[str, str]
) -> None:
    # Two apps both serving every flow crashed the loader (IndexError); an app per flow
    # was told "a register() forgotten?", then merged into one app (both at /answer: a
    # clash the user never made). Which app gunicorn serves is the user's to name.
    (tmp_path / "apps.py").write_text(two_flows("/answer") + apps)
    target = str(tmp_path / "apps.py")
    assert main(["check", target]) == 2
    err = capsys.readouterr().err
    assert "has several Flask apps and no one of them serves every flow" in err
    assert all(f"{target}:{name} serves" in err for name in names)
    assert "no app serves" not in err
    assert main(["check", f"{target}:{names[0]}"]) == 0
    assert "ok   sales/answer" in capsys.readouterr().out


def test_an_app_factory_is_called_as_gunicorn_calls_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # myapp:create_app() is gunicorn's spelling; it was "has no CallFlow or Flask app named".
    (tmp_path / "fact.py").write_text(
        "from flask import Flask\n"
        "from answerkit import CallFlow, Response, Speak\n"
        "def create_app(prefix='/voice', boom=False):\n"
        "    if boom:\n"
        "        raise RuntimeError('factory bug')\n"
        "    flow = CallFlow('f', public_url='https://x.example.com', auth_token='t' * 20,\n"
        "                    state='memory://')\n"
        "    flow.add_route('/answer', lambda call: Response(Speak('hi')), name='answer')\n"
        "    app = Flask(__name__)\n"
        "    flow.register(app, url_prefix=prefix)\n"
        "    return app\n"
    )
    target = str(tmp_path / "fact.py")
    assert main(["routes", target + ":create_app()"]) == 0
    assert "https://x.example.com/voice/answer" in capsys.readouterr().out
    assert main(["check", target + ":create_app('/w')"]) == 0
    assert "all routes answer valid VobizXML" in capsys.readouterr().out
    assert main(["routes", target + ":create_app(boom=True)"]) == 2
    err = capsys.readouterr().err
    assert "create_app(boom=True) failed, in its own code" in err and "factory bug" in err
    assert main(["routes", target + ":create_app(prefix)"]) == 2
    assert "literal arguments" in capsys.readouterr().err
    # A URL among its arguments is no server's address.
    assert main(["routes", target + ":create_app(prefix='https://a/b')"]) == 0


def test_missing_configuration_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Serving needs the real settings (routes, check and call stand them in). A copy: a
    # module is imported once per process, and other tests load the example with them.
    monkeypatch.delenv("VOBIZ_AUTH_TOKEN")
    app = _app_file(tmp_path, "unset_forwarding.py", (ROOT / "examples/forwarding.py").read_text())
    assert main(["run", str(app)]) == 2
    assert "VOBIZ_AUTH_TOKEN" in capsys.readouterr().err


def test_check_needs_no_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Users run check in CI, where the token and the public URL are not."""
    for name in ("VOBIZ_AUTH_TOKEN", "ANSWERKIT_PUBLIC_URL", "ANSWERKIT_STATE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["check", str(ROOT / "examples/forwarding.py")]) == 0
    assert "stood in for this check" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["check", "routes"])
def test_local_commands_do_not_warn_that_transfers_will_fail(
    command: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Their REST calls go to a local Vobiz API: the warning that every transfer WarmTransfer
    # makes will fail (no VOBIZ_AUTH_ID) was false there.
    for name in ("VOBIZ_AUTH_ID", "VOBIZ_AUTH_TOKEN", "ANSWERKIT_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        assert main([command, str(ROOT / "examples/warm_transfer.py")]) == 0
    assert "every transfer it makes will fail" not in caplog.text
    assert "VOBIZ_AUTH_ID" not in os.environ


def test_scripted_call_from_the_terminal_never_waits() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "answerkit.cli",
            "call",
            str(ROOT / "examples/ivr.py"),
            "--route",
            "main",
            "--digits",
            "2",
            "--dial",
            "answer",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        env={**ENV, "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Connecting you to support." in proc.stdout


def test_demo_plays_a_complete_call() -> None:
    # With a proxy in the environment that answers nothing: the demo talks to 127.0.0.1 only.
    proc = subprocess.run(
        [sys.executable, "-m", "answerkit.cli", "demo"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        env={**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert 'hears: "Please hold while we transfer your call."' in out
    assert "Press 1 to accept." in out
    assert "(Event=Transfer) -> 200" in out
    assert "demo complete: caller and agent were joined" in out


def test_run_serves_the_app_and_prints_its_routes(tmp_path: Path) -> None:
    import requests

    from answerkit import parse, sign

    port = free_port()
    public = f"http://127.0.0.1:{port}"
    out = (tmp_path / "out.txt").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "answerkit.cli",
            "run",
            str(ROOT / "examples/ivr.py"),
            "--port",
            str(port),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**ENV, "ANSWERKIT_PUBLIC_URL": public, "PATH": "/usr/bin:/bin"},
    )
    try:
        wait_for_port(port, proc, "answerkit run")
        url = f"{public}/main"
        params = {
            "CallUUID": "run-1",
            "From": "14155550100",
            "To": "14155550199",
            "Event": "StartApp",
        }
        r = requests.post(url, data=params, headers=sign(url, ENV["VOBIZ_AUTH_TOKEN"]), timeout=10)
        assert r.status_code == 200
        assert parse(r.content).children[0].tag == "Gather"
    finally:
        stop_process(proc, timeout=10)
        out.close()
    printed = (tmp_path / "out.txt").read_text()
    assert f"{public}/main/choice" in printed


LOOP_APP = """
from answerkit import CallFlow, Redirect, Response, Speak

flow = CallFlow("loop", auth_token="cli-token-0123456789", state="memory://",
                public_url="https://voice.example.com")

@flow.route("/answer")
def answer(call):
    return Response(Speak("again"), Redirect(flow.url_for("answer")))
"""


def test_a_call_that_never_ends_by_itself_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The simulated caller's hang-up at the step limit is recorded as a normal one; the
    # command must still report the endless flow as a failure.
    app = _app_file(tmp_path, "loop_app.py", LOOP_APP)
    out = io.StringIO()
    code = run_terminal_call(Namespace(app=str(app), digits="-"), stdout=out)
    assert code == 1 and "step limit" in out.getvalue()


def test_a_module_that_does_not_exist_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["routes", "no_such_app_module_here"]) == 2
    err = capsys.readouterr().err
    assert "no module named 'no_such_app_module_here'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ('flow = dict(name="x"\n', "SyntaxError: '(' was never closed"),
        ("import no_such_module_of_the_users\n", "No module named 'no_such_module_of_the_users'"),
        ("def f():\n    return undefined_name\nf()\n", "line 2, in f"),
    ],
)
def test_an_app_file_that_fails_to_import_shows_its_own_lines_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, shown: str
) -> None:
    app = _app_file(tmp_path, "failing_import_app.py", source)
    for command in ("routes", "check", "call"):
        assert main([command, str(app)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"answerkit: {app} failed while it was imported, in its own code:")
        assert shown in err and str(app) in err
        assert "loader.py" not in err and "<frozen" not in err


def test_a_package_module_that_fails_to_import_shows_its_own_lines_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loaded by its dotted name, through importlib.import_module: its frames and the
    # frozen bootstrap's were printed above the user's.
    monkeypatch.setattr(sys, "path", list(sys.path))
    package = tmp_path / "failing_pkg_cli"
    package.mkdir()
    (package / "__init__.py").write_text("")
    app = _app_file(package, "app.py", "raise RuntimeError('boom in the app')\n")
    monkeypatch.chdir(tmp_path)
    for target in (str(app), "failing_pkg_cli.app"):
        assert main(["routes", target]) == 2
        err = capsys.readouterr().err
        assert "RuntimeError: boom in the app" in err and 'app.py", line 1' in err
        assert "importlib" not in err and "<frozen" not in err and "loader.py" not in err


def test_check_advises_a_hangup_view_declared_as_an_answer_route(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app_file(
        tmp_path,
        "hangup_view_app.py",
        "from answerkit import CallFlow\n"
        "flow = CallFlow('hv')\n"
        "@flow.route('/hangup')\n"
        "def hangup(call):\n"
        "    print('call ended', call.call_uuid)\n",
    )
    main(["check", str(app)])
    out = capsys.readouterr().out
    assert "@flow.route('/hangup', status_callback=True)" in out


def test_an_error_raised_inside_answerkit_at_import_keeps_answerkits_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An error that is not answerkit's own raised inside the package (here a finder given
    # something that is not a class): the frames below the user's line stay, to report it.
    app = _app_file(
        tmp_path,
        "inner_error_app.py",
        "from answerkit.query import find_all\nfind_all(5, 5)\n",
    )
    assert main(["routes", str(app)]) == 2
    err = capsys.readouterr().err
    assert 'inner_error_app.py", line 2, in <module>' in err
    assert "query.py" in err and "loader.py" not in err


def test_a_module_in_the_current_directory_is_found_by_its_name(tmp_path: Path) -> None:
    # The console script's sys.path lacks the current directory, which `python -m` and
    # gunicorn have: `answerkit routes myapp` (or `myapp:app`, as in the gunicorn line)
    # beside myapp.py said "no module named 'myapp'".
    (tmp_path / "cwd_app_for_cli.py").write_text(
        "from answerkit import CallFlow, Response, Speak\n"
        "flow = CallFlow('here', public_url='https://voice.example.com', verify=False,\n"
        "                state='memory://')\n"
        "flow.add_route('/answer', lambda call: Response(Speak('Hi')), name='answer')\n"
        "app = flow.create_app()\n"
    )
    script = Path(sys.executable).parent / "answerkit"
    for target in ("cwd_app_for_cli", "cwd_app_for_cli:app"):
        proc = subprocess.run(
            [str(script), "routes", target], capture_output=True, text=True, cwd=tmp_path,
            stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "https://voice.example.com/answer" in proc.stdout


def test_a_local_call_needs_no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Nothing leaves the machine: token, public URL and state are stood in when unset,
    # and put back afterwards; no state file is left in the working directory.
    for key in ENV:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    args = Namespace(app=str(ROOT / "examples/warm_transfer.py"), route="answer",
                     digits="1", callee_digits="1")  # fmt: skip
    assert run_terminal_call(args, stdout=out) == 0, out.getvalue()
    text = out.getvalue()
    assert (
        "stood in for this local call where the app does not set them itself: VOBIZ_AUTH_TOKEN"
        in text
    )
    assert "Connecting you now." in text  # the agent accepted with --callee-digits
    assert all(key not in os.environ for key in ENV)
    assert list(tmp_path.iterdir()) == []


def test_a_call_whose_handler_fails_fails(tmp_path: Path) -> None:
    # The caller hears the fallback, as in production; the command says the flow is broken.
    fine = 'def answer(call):\n    return Response(Speak("fine"))'
    failing = BROKEN_APP.replace(fine, 'def answer(call):\n    raise RuntimeError("oops")')
    app = _app_file(tmp_path, "broken_app.py", failing)
    out = io.StringIO()
    assert run_terminal_call(Namespace(app=str(app), digits="-"), stdout=out) == 1
    # Once where it happened, then under the verdict's heading (not as the last webhook's).
    assert out.getvalue().endswith(
        "FAILED: 1 webhook(s) got the fallback document:\n"
        "  - handler error: answer: RuntimeError: oops\n"
    )


UNHANDLED_APP = """
from answerkit import CallFlow, Dial, Number, Response, Speak
from answerkit.request import Event

flow = CallFlow("unhandled", auth_token="cli-token-0123456789", state="memory://",
                public_url="https://voice.example.com")

@flow.route("/answer")
def answer(call):
    flow.transfers.client.make_call("+14155550100", "+14155550142", flow.url_for("agent"))
    return Response(Speak("Calling."))

@flow.route("/agent", event=Event.Transfer)  # never asked with StartApp: the fallback plays
def agent(call):
    return Response(Speak("Hello agent."))

@flow.route("/dialer")
def dialer(call):
    return Response(Dial(Number("+14155550142"), caller_id="+14155550100",
                         action=flow.url_for("after")))

@flow.route("/after", event=Event.DialAction)  # the action may come as Event=Redirect
def after(call):
    return Response(Speak("Thanks."))
"""


@pytest.mark.parametrize("route", ["answer", "dialer"])
def test_a_webhook_no_handler_answers_fails_the_call(tmp_path: Path, route: str) -> None:
    # The simulator's own "no handler for Event" finding, on the caller's call (the Dial
    # action) or on a call the flow placed (the agent's answer URL), fails the command.
    app = _app_file(tmp_path, "unhandled_app.py", UNHANDLED_APP)
    out = io.StringIO()
    args = Namespace(app=str(app), route=route, digits="-", dial="no-answer")
    assert run_terminal_call(args, stdout=out) == 1, out.getvalue()
    assert "no handler for Event=" in out.getvalue() and "FAILED: 1 webhook" in out.getvalue()


def test_check_keeps_its_sample_calls_out_of_the_flows_store(tmp_path: Path) -> None:
    """A check run in CI with production's ANSWERKIT_STATE_URL must not write sample calls
    (state, replay records) there, nor need that store to be reachable."""
    from answerkit import CallFlow, CallRequest, Hangup, Response, Speak, VobizClient
    from answerkit.check import check_flow
    from answerkit.state import MemoryStore

    production = MemoryStore()
    flow = CallFlow("store", public_url="https://v.example.com", auth_token="t" * 20,
                    state=production)  # fmt: skip

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        call.state["seen"] = True
        flow.store.set("recipe:" + call.call_uuid, "k", 1)  # as a recipe keeps its own rows
        # A REST call goes to a local Vobiz API, not to the platform: the sample call is
        # not live there either, so the transfer says the call ended.
        moved = flow.try_transfer(call.call_uuid, aleg="answer")
        return Response(Speak(f"moved {moved is not None}"), Hangup())

    real_client = VobizClient(auth_id="MA_REAL000", auth_token="real-token-0123456789")
    flow.transfers.client = real_client
    results = check_flow(flow)
    assert results and all(r.ok for r in results), results
    assert not production._calls and not production._nonces
    assert flow.store is production and flow.dispatcher().store() is production  # put back
    assert flow.transfers.client is real_client


def test_routes_lists_a_recipe_flow_without_a_public_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A listing needs no public URL (serving does: the recipes refuse to mount without)."""
    monkeypatch.delenv("ANSWERKIT_PUBLIC_URL", raising=False)
    monkeypatch.setenv("VOBIZ_AUTH_TOKEN", "routes-token-0123456789")
    monkeypatch.setenv("ANSWERKIT_STATE_URL", "memory://")
    assert main(["routes", str(Path(__file__).resolve().parent.parent / "examples/ivr.py")]) == 0
    assert "/main/choice" in capsys.readouterr().out


def test_check_sends_a_status_route_both_hangup_and_dialhangup() -> None:
    # A hangup URL declared status_callback=True got only a DialHangup sample: a handler
    # failing on Hangup, the event such a URL exists for, passed the check.
    from answerkit import CallFlow, CallRequest, Event
    from answerkit.check import check_flow
    from answerkit.state import MemoryStore

    flow = CallFlow("hang", public_url="https://v.example.com", auth_token="t" * 20,
                    state=MemoryStore())  # fmt: skip

    @flow.route("/ended", status_callback=True)
    def ended(call: CallRequest) -> None:
        if call.event == Event.Hangup:
            raise RuntimeError("the CRM write is broken")

    results = check_flow(flow)
    assert [(r.event, r.ok) for r in results] == [("Hangup", False), ("DialHangup", True)]
    assert "the CRM write is broken" in results[0].problems[0]


@pytest.mark.parametrize("port", ["99999", "0", "http"])
def test_run_refuses_a_port_out_of_range(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "examples/ivr.py", "--port", port])
    assert caught.value.code == 2
    assert "a port is a number from 1 to 65535" in capsys.readouterr().err


# --- the user's own app, and the ways an application is named -----------------------------

HOOKED_APP = """
from flask import Flask, abort, current_app, request
from answerkit import CallFlow, Hangup, Response, Speak

flow = CallFlow("hooked")

@flow.route("/answer")
def answer(call):
    return Response(Speak(current_app.config["GREETING"]), Hangup())

app = Flask(__name__)
app.config["GREETING"] = "Welcome to Example Corp."
flow.register(app, "/voice")
{extra}
"""


def test_check_and_call_go_through_the_users_own_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A bare app of the flows alone was checked: a handler reading current_app.config
    # failed (KeyError), and an app-wide hook answering 500 passed.
    good = _app_file(
        tmp_path,
        "hooked_good.py",
        HOOKED_APP.format(extra="application = app  # a second name: one app"),
    )
    assert main(["check", str(good)]) == 0, capsys.readouterr().out
    assert main(["check", f"{good}:app"]) == 0, capsys.readouterr().out
    assert main(["call", str(good), "--route", "/voice/answer"]) == 0
    assert "Welcome to Example Corp." in capsys.readouterr().out
    bad = _app_file(
        tmp_path, "hooked_bad.py", HOOKED_APP.format(extra="app.before_request(lambda: abort(500))")
    )
    assert main(["check", str(bad)]) == 1
    assert "FAIL hooked/answer [StartApp]" in capsys.readouterr().out


def test_an_app_factory_and_a_flow_under_two_names_are_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A factory's flows are held by no top-level name ("serves no top-level CallFlow"),
    # and a flow bound twice was registered twice ("already has a flow named").
    factory = _app_file(
        tmp_path,
        "factory_app.py",
        "from flask import Flask\nfrom answerkit import CallFlow, Hangup, Response, Speak\n"
        "def create_app():\n"
        "    flow = CallFlow('made')\n"
        "    flow.route('/answer')(lambda call: Response(Speak('made'), Hangup()))\n"
        "    app = Flask(__name__)\n    flow.register(app)\n    return app\n"
        "app = create_app()\n",
    )
    for target in (str(factory), f"{factory}:app"):
        assert main(["check", target]) == 0, capsys.readouterr().out
        assert "ok   made/answer" in capsys.readouterr().out
    twice = _app_file(
        tmp_path,
        "twice_app.py",
        BROKEN_APP.replace('@flow.route("/bad")', 'other = flow\n@flow.route("/bad")'),
    )
    assert main(["routes", str(twice)]) == 0
    assert capsys.readouterr().out.count("flow broken ") == 1


def test_a_file_is_its_own_module_for_its_siblings_and_a_package_directory_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # myapp.py imports handlers.py, which imports myapp: loaded under another name,
    # myapp.py ran twice ("already mounted; declare route before register()").
    site = tmp_path / "site"
    site.mkdir()
    app = _app_with_handlers(site, "cli_myapp", "mine", tail="app = flow.create_app()\n")
    assert main(["check", str(app)]) == 0, capsys.readouterr().out
    package = tmp_path / "cli_pkgapp"
    package.mkdir()
    (package / "__init__.py").write_text(BROKEN_APP.replace('"broken"', '"pkg"'))
    monkeypatch.chdir(tmp_path)
    assert main(["routes", "cli_pkgapp"]) == 0
    assert main(["routes", "cli_pkgapp/"]) == 0
    assert "flow pkg " in capsys.readouterr().out


def test_check_fails_a_handler_that_ends_the_process_and_a_flow_with_no_route(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # sys.exit(0) in a handler ended the check early with exit status 0 and no summary.
    app = _app_file(
        tmp_path,
        "exiting_app.py",
        BROKEN_APP.replace('raise RuntimeError("oops")', "import sys; sys.exit(0)")
        + "\nempty = CallFlow('empty', auth_token='t' * 20, state='memory://')\n",
    )
    assert main(["check", str(app)]) == 1
    out = capsys.readouterr().out
    assert "FAIL broken/bad" in out and "ended the process: SystemExit(0)" in out
    assert "FAIL empty/-" in out and "declares no route" in out
    assert "2 failure(s)" in out


def test_check_sends_each_event_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = _app_file(
        tmp_path,
        "events_app.py",
        "from answerkit import CallFlow\n"
        "flow = CallFlow('ev', auth_token='t' * 20, state='memory://',"
        " public_url='https://voice.example.com')\n"
        "flow.route('/status', status_callback=True)(lambda call: None)\n"
        "flow.route('/status', event='Hangup', status_callback=True)(lambda call: None)\n",
    )
    assert main(["check", str(app)]) == 0
    assert capsys.readouterr().out.count("ev/status [Hangup]") == 1


def test_routes_piped_to_a_reader_that_stops_ends_quietly(tmp_path: Path) -> None:
    # More lines than a pipe holds, so the writer meets the reader gone (a traceback).
    app = _app_file(
        tmp_path,
        "many_routes_app.py",
        "from answerkit import CallFlow\nflow = CallFlow('many')\n"
        "for i in range(3000):\n"
        "    flow.route(f'/menu/{i}', name=f'menu_{i}')(lambda call: None)\n",
    )
    result = subprocess.run(
        f"{sys.executable} -m answerkit.cli routes {app} | head -1",
        shell=True, capture_output=True, text=True, timeout=60, env={**os.environ, **ENV},
    )  # fmt: skip
    assert result.stdout.startswith("flow ") and "Traceback" not in result.stderr


def test_call_takes_the_dial_script_alone_as_scripted(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["call", str(ROOT / "examples/forwarding.py"), "--dial", "busy,busy,busy"])
    assert code == 0 and "(scripted)" in capsys.readouterr().out


HANGUP_URL_APP = """
from answerkit import CallFlow, Event, Hangup, Record, Response, Speak

flow = CallFlow("voicemail")

@flow.route("/answer")
def answer(call):
    return Response(Speak("Leave a message."),
                    Record(action=flow.url_for("saved"), finish_on_key="#"), Hangup())

@flow.route("/saved", status_callback=True)
def saved(call):
    pass

@flow.route("/hangup", event=Event.Hangup)
def hung_up(call):
    print("HANGUP HANDLER RAN")
"""


def test_call_sends_the_hangup_to_a_hangup_url_and_ends_records_as_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A ported app keeps its hangup_url view as a route of its own: `call` sent the
    # Hangup to the start route only, so that handler never ran; a Record always ran to
    # its silence.
    app = tmp_path / "voicemail_app.py"
    app.write_text(HANGUP_URL_APP)
    code = main(["call", str(app), "--hangup-url", "/hangup", "--record", "key"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "POST /hangup (Event=Hangup)" in out and "HANGUP HANDLER RAN" in out
    assert "recording ends after 5 s: FinishedOnKey" in out
    assert main(["call", str(app), "--record", "nope"]) == 2
    assert "record ending must be one of silence, key, hangup" in capsys.readouterr().err
    # A path no route serves got four 404s, and the call passed.
    assert main(["call", str(app), "--hangup-url", "/nowhere"]) == 2
    assert "--hangup-url: no flow has a route '/nowhere'" in capsys.readouterr().err
    # Mounted under a prefix: a route's name, or its path within the flow, is sent to
    # the path the app serves it at (they went to /hangup, unserved, four times).
    prefixed = tmp_path / "prefixed_app.py"
    prefixed.write_text(HANGUP_URL_APP + "\nfrom flask import Flask\napp = Flask('p')\n"
                        "flow.register(app, '/vobiz')\n")  # fmt: skip
    for given in ("/hangup", "hung_up", "/vobiz/hangup"):
        assert main(["call", f"{prefixed}:app", "--hangup-url", given]) == 0
        out = capsys.readouterr().out
        assert "POST /vobiz/hangup (Event=Hangup) -> 200" in out, (given, out)


MIXED_APP = """
from flask import Flask
from answerkit import CallFlow, Hangup, Redirect, Response, Speak

main_flow = CallFlow("main")

@main_flow.route("/answer")
def answer(call):
    return Response(Redirect("https://voice.example.com/admin/desk"))

def create_app():
    admin = CallFlow("admin")

    @admin.route("/desk")
    def desk(call):
        {desk}

    app = Flask(__name__)
    main_flow.register(app)
    admin.register(app, "/admin")
    return app

app = create_app()
"""


@pytest.mark.parametrize("target", ["", ":app", ":main_flow"])
def test_every_flow_the_users_app_serves_is_checked_and_stood_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    # A flow the factory made beside the top-level one was left out of check (its failure
    # unseen), and a call sent on to it used its real REST client and ended "ok".
    app = _app_file(
        tmp_path,
        f"mixed_app{target.replace(':', '_')}.py",
        MIXED_APP.replace("{desk}", "raise RuntimeError('desk broken')"),
    )
    if target != ":main_flow":
        assert main(["check", f"{app}{target}"]) == 1
        assert "FAIL admin/desk [StartApp]" in capsys.readouterr().out
    assert main(["call", f"{app}{target}", "--route", "answer"]) == 1
    assert "RuntimeError: desk broken" in capsys.readouterr().out
    fine = _app_file(
        tmp_path,
        f"mixed_fine{target.replace(':', '_')}.py",
        MIXED_APP.replace(
            "{desk}", "return Response(Speak(admin.transfers.client.base_url), Hangup())"
        ),
    )
    assert main(["call", f"{fine}{target}", "--route", "answer"]) == 0
    assert "http://127.0.0.1:" in capsys.readouterr().out  # the local Vobiz API


def test_a_flow_mounted_as_a_blueprint_is_served_through_the_users_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mounted = 'app.register_blueprint(flow.blueprint("/voice"))'
    source = HOOKED_APP.replace('flow.register(app, "/voice")', mounted).format(extra="")
    app = _app_file(tmp_path, "blueprint_app.py", source)
    for target in (str(app), f"{app}:app"):
        assert main(["check", target]) == 0, capsys.readouterr().out


def test_call_route_takes_a_path_with_a_query_and_a_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app_file(
        tmp_path,
        "query_app.py",
        "from flask import Flask\nfrom answerkit import CallFlow, Hangup, Response, Speak\n"
        "sales = CallFlow('sales')\nsupport = CallFlow('support')\n"
        "say = lambda c: Response(Speak('sales ' + c.query.get('lang', '-')), Hangup())\n"
        "sales.route('/answer')(say)\n"
        "support.route('/answer')(lambda c: Response(Speak('support'), Hangup()))\n"
        "app = Flask(__name__)\nsales.register(app, '/voice/sales')\n"
        "support.register(app, '/voice/support')\n"
    )  # fmt: skip
    assert main(["call", str(app), "--route", "/voice/sales/answer?lang=en"]) == 0
    assert "sales en" in capsys.readouterr().out
    url = "https://voice.example.com/voice/support/answer"
    assert main(["call", str(app), "--route", url]) == 0
    out = capsys.readouterr().out
    assert "calling flow support" in out and '"support"' in out


def test_a_file_loaded_twice_keeps_its_siblings_in_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The second load ran the app afresh while its handlers module, cached, declared its
    # routes on the first load's flow: "declares no route".
    app = _app_with_handlers(tmp_path, "twice_main", "twice")
    for _ in range(2):
        assert main(["check", str(app)]) == 0, capsys.readouterr().out


def test_a_package_directory_named_like_a_standard_module_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # calendar/ gave the standard library's calendar ("defines no CallFlow"). Its folder
    # goes last on the path, never first: every later `import calendar` (a spawned test
    # process's too) would have been this package.
    monkeypatch.setattr(sys, "path", list(sys.path))
    package = tmp_path / "calendar"
    package.mkdir()
    (package / "__init__.py").write_text(BROKEN_APP.replace('"broken"', '"cal"'))
    assert main(["routes", f"{package}/"]) == 0
    assert "flow cal " in capsys.readouterr().out
    assert sys.path.index(str(tmp_path)) == len(sys.path) - 1


def test_call_fails_a_handler_that_ends_the_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app_file(
        tmp_path,
        "call_exit_app.py",
        BROKEN_APP.replace('raise RuntimeError("oops")', "import sys; sys.exit(0)"),
    )
    assert main(["call", str(app), "--route", "bad"]) == 1
    assert "FAILED: a handler ended the process: SystemExit(0)" in capsys.readouterr().out


TWO_FLOWS_APP = """
from flask import Flask
from answerkit import CallFlow, Hangup, Redirect, Response, Speak

sales = CallFlow("sales")
support = CallFlow("support")
sales.route("/answer")(lambda call: Response(Speak("sales"), Hangup()))
support.route("/answer")(lambda call: Response(Speak("support"), Hangup()))
support.route("/desk")(lambda call: Response(Redirect("https://voice.example.com/voice/sales/answer")))
app = Flask(__name__)
sales.register(app, "/voice/sales")
support.register(app)
"""


@pytest.mark.parametrize(
    ("target", "route", "hears"),
    [
        (":support", None, '"support"'),  # the flow named, not the app's first
        (":support", "answer", '"support"'),
        ("", "/answer", '"support"'),  # support's full path, as routes prints it
        ("", "/voice/sales/answer", '"sales"'),
        ("", "desk", '"sales"'),  # on to another flow of the app
    ],
)
def test_call_places_the_call_the_command_names(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    target: str,
    route: str | None,
    hears: str,
) -> None:
    app = _app_file(tmp_path, f"two_flows_{abs(hash((target, route)))}.py", TWO_FLOWS_APP)
    args = ["call", f"{app}{target}", *(["--route", route] if route else [])]
    assert main(args) == 0, capsys.readouterr().out
    assert hears in capsys.readouterr().out


def test_call_refuses_a_route_name_several_flows_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app_file(tmp_path, "shared_names.py", TWO_FLOWS_APP)
    assert main(["call", str(app), "--route", "answer"]) == 2
    assert "names a route of several flows (sales, support)" in capsys.readouterr().err


def test_call_without_an_app_of_the_users_serves_every_flow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only the flow picked was served: a Redirect to another flow's route was a 404 (7014).
    app = _app_file(
        tmp_path,
        "no_app_two.py",
        "from answerkit import CallFlow, Hangup, Redirect, Response, Speak\n"
        "front = CallFlow('front')\nback = CallFlow('back')\n"
        "front.route('/answer')(lambda c: Response(Redirect('https://voice.example.com/desk')))\n"
        "back.route('/desk')(lambda c: Response(Speak('desk'), Hangup()))\n",
    )
    assert main(["call", str(app), "--route", "answer"]) == 0, capsys.readouterr().out


def test_call_lends_the_local_api_for_the_call_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each flow's client was left pointing at the local API, stopped after the call.
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "lent_app.py").write_text(BROKEN_APP)
    sys.path.insert(0, str(tmp_path))
    import lent_app  # type: ignore[import-not-found]

    assert main(["call", str(tmp_path / "lent_app.py"), "--route", "answer"]) == 0
    assert lent_app.flow.transfers.peek_client() is None


def test_a_package_and_a_file_of_one_load_again_with_their_submodules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A package re-ran on its next load while its submodules, cached, held the old flow.
    monkeypatch.setattr(sys, "path", list(sys.path))
    package = tmp_path / "voicepk"
    (package / "handlers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "app2.py").write_text(
        "from answerkit import CallFlow\nflow = CallFlow('pk')\n"
        "from . import handlers  # noqa\nfrom voicepk.handlers import menu  # noqa\n"
    )
    (package / "handlers" / "__init__.py").write_text("")
    (package / "handlers" / "menu.py").write_text(
        "from answerkit import Hangup, Response, Speak\nfrom voicepk.app2 import flow\n"
        "flow.route('/answer')(lambda call: Response(Speak('pk'), Hangup()))\n"
    )
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # a module of a package is named by its dotted name, as gunicorn takes it
        assert main(["check", "voicepk.app2"]) == 0, capsys.readouterr().out
    (tmp_path / "voicedir").mkdir()
    (tmp_path / "voicedir" / "__init__.py").write_text(
        "from answerkit import CallFlow\nflow = CallFlow('dir')\nfrom .routes import *  # noqa\n"
    )
    (tmp_path / "voicedir" / "routes.py").write_text(
        "from answerkit import Hangup, Response, Speak\nfrom . import flow\n"
        "flow.route('/answer')(lambda call: Response(Speak('dir'), Hangup()))\n"
    )
    for _ in range(2):
        assert main(["check", "voicedir/"]) == 0, capsys.readouterr().out


def test_a_file_named_like_a_module_not_imported_yet_does_not_take_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # sqlite3.py loaded as "sqlite3", its folder first: answerkit's SQLite store then
    # imported this file ("module 'sqlite3' has no attribute 'Connection'").
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = tmp_path / "stdname"
    folder.mkdir()
    (folder / "xdrlib2_answerkit_app.py").write_text("")  # a sibling, importable
    (folder / "colorsys.py").write_text(BROKEN_APP.replace('"broken"', '"named"'))
    assert main(["routes", str(folder / "colorsys.py")]) == 0
    assert "flow named " in capsys.readouterr().out
    assert sys.path[-1] == str(folder) and str(folder) not in sys.path[:-1]


def test_two_flows_of_one_name_on_one_app_are_both_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app_file(
        tmp_path,
        "same_name_app.py",
        "from flask import Flask\nfrom answerkit import CallFlow, Hangup, Response, Speak\n"
        "def make(path, fails):\n"
        "    flow = CallFlow('ivr')\n"
        "    def answer(call):\n"
        "        if fails:\n            raise RuntimeError('acme broken')\n"
        "        return Response(Speak('ok'), Hangup())\n"
        "    flow.route('/answer')(answer)\n"
        "    return flow\n"
        "app = Flask(__name__)\n"
        "app.register_blueprint(make('/a', False).blueprint('/main'), name='ivr_main')\n"
        "app.register_blueprint(make('/b', True).blueprint('/acme'), name='ivr_acme')\n",
    )
    assert main(["check", f"{app}:app"]) == 1
    assert "acme broken" in capsys.readouterr().out


def test_a_file_named_like_one_in_the_current_directory_loads_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An app.py in the current directory made ../Y/app.py another name, its folder last:
    # its views then got X's flow.
    monkeypatch.setattr(sys, "path", list(sys.path))
    project = tmp_path / "Y"
    project.mkdir()
    app = _app_with_handlers(project, "cwd_app", "cwd")
    (tmp_path / "X").mkdir()
    _app_file(tmp_path / "X", "cwd_app.py", "raise SystemExit('not this one')\n")
    monkeypatch.chdir(tmp_path / "X")
    assert main(["check", str(app)]) == 0, capsys.readouterr().out


def test_a_file_of_a_package_named_like_an_installed_module_loads_under_a_name_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # redis.py (redis installed, not imported yet) took redis's place: answerkit's own
    # import of redis got the app file. A folder named like a standard module (queue/)
    # holding app.py broke its import ("'queue' is not a package").
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "redis", raising=False)
    (tmp_path / "redis.py").write_text(BROKEN_APP.replace('"broken"', '"red"'))
    assert main(["routes", str(tmp_path / "redis.py")]) == 0
    assert "flow red " in capsys.readouterr().out
    import redis

    assert hasattr(redis, "Redis")  # the real one
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / "__init__.py").write_text("")
    (queue / "app.py").write_text(BROKEN_APP.replace('"broken"', '"q"'))
    assert main(["routes", str(queue / "app.py")]) == 0
    assert "flow q " in capsys.readouterr().out


def test_a_failed_load_is_run_afresh_with_its_siblings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "fail_settings.py").write_text("import os\nTOKEN = os.environ.get('MY_TOKEN')\n")
    (tmp_path / "fail_app.py").write_text(
        "from fail_settings import TOKEN\nif not TOKEN:\n    raise RuntimeError('set MY_TOKEN')\n"
        + BROKEN_APP
    )
    assert main(["routes", str(tmp_path / "fail_app.py")]) == 2
    assert "RuntimeError: set MY_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("MY_TOKEN", "x")
    assert main(["routes", str(tmp_path / "fail_app.py")]) == 0


def test_a_public_url_with_an_escaped_path_knows_its_own_urls() -> None:
    from answerkit import CallFlow

    flow = CallFlow("esc", public_url="https://voice.example.com/my%20app", verify=False,
                    state="memory://")  # fmt: skip
    flow.route("/hold")(lambda call: None)
    assert flow.route_at_url(flow.url_for("hold")) is flow.get_route("hold")
    assert flow.route_at_url("https://voice.example.com/my%20app/nowhere") is None
    assert flow.is_own_url("https://voice.example.com/my%20app/nowhere")


def call_output(app: Path) -> str:
    """What `answerkit call APP` prints (stdout and stderr), run as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "answerkit.cli", "call", str(app)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        env={**ENV, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_an_apps_own_logging_setup_is_kept(tmp_path: Path) -> None:
    # The command set up logging at WARNING before importing the app, so the app's own
    # logging.basicConfig(level=INFO) (as the README advises) was a no-op: its INFO lines
    # never appeared under answerkit run or call.
    app = tmp_path / "logged.py"
    app.write_text(
        "import logging\n"
        "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')\n"
        "from answerkit import CallFlow, Hangup, Response\n"
        "flow = CallFlow('logged', public_url='https://voice.example.com',\n"
        "                auth_token='t' * 20, state='memory://')\n"
        "@flow.route('/answer')\n"
        "def answer(call):\n"
        "    logging.getLogger('supportline').info('answered %s', call.call_uuid)\n"
        "    return Response(Hangup())\n"
    )
    assert "INFO supportline: answered" in call_output(app)


@pytest.mark.parametrize("given", ["http://127.0.0.1:8000", "127.0.0.1:8000", "localhost:5000"])
def test_a_server_address_given_for_an_app_says_what_to_give(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", given]) == 2
    err = capsys.readouterr().err
    assert "is a server's address; this command takes an app: FILE.py, MODULE or" in err
    assert "CallSimulator('http://" in err


def test_logging_set_up_for_an_app_keeps_its_root_level_and_formats_import_warnings(
    tmp_path: Path,
) -> None:
    # An app that set INFO on the root and its handler on its own logger lost its lines
    # (basicConfig reset the root to WARNING); answerkit's warnings while the app imported
    # (a plain http public_url, mounted at import) were printed bare.
    app = tmp_path / "rooted.py"
    app.write_text(
        "import logging, sys\n"
        "handler = logging.StreamHandler(sys.stderr)\n"
        "handler.setFormatter(logging.Formatter('APP %(name)s: %(message)s'))\n"
        "logging.getLogger('supportline').addHandler(handler)\n"
        "logging.getLogger().setLevel(logging.INFO)\n"
        "from answerkit import CallFlow, Hangup, Response\n"
        "flow = CallFlow('rooted', public_url='http://voice.example.com',\n"
        "                auth_token='t' * 20, state='memory://')\n"
        "@flow.route('/answer')\n"
        "def answer(call):\n"
        "    logging.getLogger('supportline').info('answered %s', call.call_uuid)\n"
        "    return Response(Hangup())\n"
        "logging.getLogger('answerkit').warning('something to say at import')\n"
    )
    output = call_output(app)
    assert output.count("supportline: answered") == 1  # its own handler, once
    assert "WARNING answerkit: something to say at import" in output


def test_logging_the_app_set_up_while_it_imported_is_left_as_it_set_it(tmp_path: Path) -> None:
    # The import's own handler turned propagate off and back on: an app's dictConfig with
    # propagate False for 'answerkit' was undone (every line twice), and warnings during
    # the import bypassed the app's own file handler.
    from answerkit.loader import load_target

    log_file = tmp_path / "app.log"
    app = tmp_path / "configured.py"
    app.write_text(
        "import logging\n"
        f"handler = logging.FileHandler({str(log_file)!r})\n"
        "ours = logging.getLogger('answerkit')\n"
        "ours.addHandler(handler)\n"
        "ours.propagate = False\n"
        "ours.warning('said at import')\n"
        "from answerkit import CallFlow\n"
        "flow = CallFlow('configured', public_url='https://voice.example.com',\n"
        "                auth_token='t' * 20, state='memory://')\n"
    )
    ours = logging.getLogger("answerkit")
    try:
        load_target(str(app))
        assert ours.propagate is False
        assert "said at import" in log_file.read_text()
    finally:
        for handler in [h for h in ours.handlers if isinstance(h, logging.FileHandler)]:
            ours.removeHandler(handler)
            handler.close()
        ours.propagate = True


def test_the_commands_handler_shows_server_lines_once() -> None:
    # A handler at WARNING made werkzeug add its own: every error line of the development
    # server was printed twice.
    code = (
        "import logging\n"
        "from answerkit.loader import default_logging\n"
        "default_logging()\n"
        "from werkzeug._internal import _log\n"
        "_log('error', 'a bad request line')\n"
        "_log('info', 'a request served')\n"
        "logging.getLogger('supportline').info('an app line at INFO, root at WARNING')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stderr.count("a bad request line") == 1, proc.stderr
    assert proc.stderr.count("a request served") == 1
    assert "an app line" not in proc.stderr


def test_python_dash_m_answerkit_says_its_version() -> None:
    # `python -m answerkit` was "'answerkit' is a package and cannot be directly executed",
    # and neither the command nor the package said which release was installed.
    from importlib import metadata

    import answerkit

    assert answerkit.__version__ == metadata.version("answerkit")
    proc = subprocess.run(
        [sys.executable, "-m", "answerkit", "--version"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert (proc.returncode, proc.stdout.strip()) == (0, f"answerkit {answerkit.__version__}")
    helped = subprocess.run(
        [sys.executable, "-m", "answerkit", "routes", "--help"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert helped.returncode == 0 and "examples/" not in helped.stdout
