"""DirectRoutes: flow routes answered straight from WSGI, and when Flask answers instead.

Every answer of the direct path must be the one Flask's path gives (status, body, content
type); the tests below send the same requests both ways and compare.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import flask
import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from answerkit import CallFlow, CallRequest, ConfigurationError, Response, Speak, sign
from answerkit._wsgi import WEBHOOK_BODY_LIMIT, DirectRoutes
from answerkit.state import MemoryStore

PUBLIC = "https://voice.example.com"
TOKEN = "test-token-0123456789"
CALL = {"CallUUID": "c-1", "From": "14155550100", "To": "14155550199", "Event": "StartApp"}


def make_flow(seen: list[dict[str, Any]]) -> CallFlow:
    flow = CallFlow("wsgi", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        seen.append(
            {
                "request_context": flask.has_request_context(),
                "app": flask.current_app.name,
                "query": dict(call.query),
                "digits": call.getlist("Digits"),
                "method": call.method,
            }
        )
        return Response(Speak(f"Hello {call.from_}"))

    @flow.route("/events", status_callback=True)
    def events(call: CallRequest) -> None:
        seen.append({"event": str(call.event)})

    return flow


def app_pair() -> tuple[Flask, Flask, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    direct = make_flow(seen).create_app()
    through_flask = make_flow(seen).create_app(direct=False)
    return direct, through_flask, seen


def signed(path: str, query: str = "") -> dict[str, str]:
    return sign(PUBLIC + path + (f"?{query}" if query else ""), TOKEN)


def post_chunked(client: Any, path: str, body: bytes, headers: dict[str, str]) -> Any:
    """POST ``body`` as gunicorn passes a chunked one: no length, the input terminated.
    (The test client states a length for any input stream: taken out, as a server does.)"""
    builder = EnvironBuilder(
        path=path,
        method="POST",
        input_stream=io.BytesIO(body),
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    environ = builder.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    app_iter, status, response_headers = run_wsgi_app(client.application, environ, True)
    return flask.Response(b"".join(app_iter), status=status, headers=response_headers)


def _caller_names_app() -> tuple[Flask, list[str]]:
    """An app whose answer route keeps each webhook's CallerName, as read."""
    names: list[str] = []
    flow = CallFlow("names", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/answer", lambda call: names.append(call.params["CallerName"]))
    return flow.create_app(), names


def _post_caller_name(client: Any, raw: bytes, shape: str) -> Any:
    """A signed form with CallerName=``raw``, sent as a body Flask reads (``shape``: over
    64 KiB, or chunked as gunicorn passes it)."""
    pad = b"&Speech=" + b"s" * 70_000 if shape == "over 64 KiB" else b""
    body = urlencode(CALL).encode() + b"&CallerName=" + raw + pad
    headers = {**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"}
    if shape == "chunked":
        return post_chunked(client, "/answer", body, headers)
    return client.post("/answer", data=body, headers=headers)


def same_answer(send: Callable[[Any], Any]) -> Any:
    """Send one request to both apps; the answers must match. Returns the direct one."""
    direct, through_flask, _seen = app_pair()
    a = send(direct.test_client())
    b = send(through_flask.test_client())
    assert (a.status_code, a.data, a.content_type) == (b.status_code, b.data, b.content_type)
    if a.request.method != "HEAD":  # HEAD: Flask's, with GET's length and no body
        assert a.headers["Content-Length"] == str(len(a.data))
    return a


def test_create_app_installs_the_direct_layer_once() -> None:
    direct, through_flask, _seen = app_pair()
    assert isinstance(direct.wsgi_app, DirectRoutes)
    assert direct.extensions["answerkit.direct"] is direct.wsgi_app
    assert not isinstance(through_flask.wsgi_app, DirectRoutes)


def test_direct_path_runs_the_handler_in_the_app_context_only() -> None:
    direct, through_flask, seen = app_pair()
    for app in (direct, through_flask):
        r = app.test_client().post("/answer", data=CALL, headers=signed("/answer"))
        assert r.status_code == 200
    assert [s["request_context"] for s in seen] == [False, True]
    assert [s["app"] for s in seen] == ["wsgi", "wsgi"]


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.post("/answer", data=CALL, headers=signed("/answer")),
        lambda c: c.post("/answer?menu=2&x=a%26b", data=CALL, headers=signed("/answer")),
        lambda c: c.get("/answer?" + urlencode(CALL), headers=signed("/answer")),
        lambda c: c.post("/answer", data=CALL),  # unsigned: 403
        lambda c: c.post("/answer", data={"From": "1"}, headers=signed("/answer")),  # 400
        lambda c: c.post("/events", data={**CALL, "Event": "Hangup"}, headers=signed("/events")),
        lambda c: c.put("/answer", data=CALL, headers=signed("/answer")),  # 405, Flask's
        lambda c: c.head("/answer", headers=signed("/answer")),
        lambda c: c.post("/answer/", data=CALL, headers=signed("/answer/")),  # 404
        lambda c: c.post(
            "/answer", data=CALL, content_type="multipart/form-data", headers=signed("/answer")
        ),
    ],
    ids=["post", "post-with-query", "get", "unsigned", "no-call-uuid", "status-callback",
         "put", "head", "trailing-slash", "multipart"],
)  # fmt: skip
def test_direct_and_flask_give_the_same_answer(send: Callable[[Any], Any]) -> None:
    same_answer(send)


def test_repeated_fields_and_query_reach_the_handler_the_same_way() -> None:
    direct, through_flask, seen = app_pair()
    body = urlencode([*CALL.items(), ("Digits", "1"), ("Digits", "2")])
    for app in (direct, through_flask):
        r = app.test_client().post(
            "/answer?menu=2&x=a%26b",
            data=body,
            headers={**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200
    assert seen[0] == {**seen[1], "request_context": False}
    assert seen[0]["query"] == {"menu": "2", "x": "a&b"} and seen[0]["digits"] == ["1", "2"]


def test_request_hooks_send_every_request_through_flask() -> None:
    direct, _through_flask, seen = app_pair()
    hooked: list[str] = []

    @direct.before_request
    def before() -> None:
        hooked.append(flask.request.path)

    r = direct.test_client().post("/answer", data=CALL, headers=signed("/answer"))
    assert r.status_code == 200 and hooked == ["/answer"]
    assert seen[-1]["request_context"] is True


@pytest.mark.parametrize(
    "read",
    ["form", "values", "get_data", "json", "form then get_data", "get_data(parse_form_data)"],
)
def test_a_request_hook_that_reads_the_body_leaves_the_fields_to_the_handler(read: str) -> None:
    # A hook sends the request through Flask; one that reads the form (an audit log, say)
    # through Werkzeug spends the input stream, and the webhook must still see its fields.
    direct, _through_flask, seen = app_pair()

    @direct.before_request
    def audit() -> None:
        if read == "get_data":
            flask.request.get_data()
        elif read == "form then get_data":  # get_data() then caches b"": every webhook a 400
            flask.request.form  # noqa: B018 - the read is the point
            flask.request.get_data()
        elif read == "get_data(parse_form_data)":
            flask.request.get_data(parse_form_data=True)
        elif read == "json":
            flask.request.get_json(silent=True)
        else:
            getattr(flask.request, read)  # request.form or request.values: parses the body

    body = urlencode([*CALL.items(), ("Digits", "1"), ("Digits", "2")])
    r = direct.test_client().post(
        "/answer?menu=2",
        data=body,
        headers={**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.data
    assert b"Hello +14155550100" in r.data
    assert seen[-1]["digits"] == ["1", "2"] and seen[-1]["query"] == {"menu": "2"}


def test_a_hook_that_read_the_bytes_leaves_them_read_as_the_direct_path_reads_them() -> None:
    # Werkzeug's form parser drops every field of a body that is not UTF-8: a signed
    # webhook with one stray byte (a caller name) was refused with 400 behind such a hook,
    # while the same request without the hook was answered.
    body = urlencode(CALL).encode() + b"&CallerName=Jos\xe9"
    answers = []
    for hooked in (False, True):
        direct, _through_flask, _seen = app_pair()
        if hooked:
            direct.before_request(lambda: flask.request.get_data() and None)
        answers.append(
            direct.test_client().post(
                "/answer",
                data=body,
                headers={**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"},
            )
        )
    assert [r.status_code for r in answers] == [200, 200]
    assert answers[0].data == answers[1].data


def test_get_data_then_request_form_in_a_hook_reads_the_bytes_as_the_direct_path() -> None:
    # request.form was taken first: Werkzeug reads "%E9" as the text "%E9", the direct
    # path as U+FFFD, so a hook's order of reads changed the caller's name.
    names = []
    for hooked in (False, True):
        flow = CallFlow("order", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
        flow.add_route("/answer", lambda call: names.append(call.params["CallerName"]))
        app = flow.create_app()
        if hooked:

            @app.before_request
            def audit() -> None:
                flask.request.get_data()
                flask.request.form  # noqa: B018 - the read is the point

        app.test_client().post(
            "/answer",
            data=urlencode(CALL) + "&CallerName=Ren%E9",
            headers={**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"},
        )
    assert names == ["Ren\ufffd", "Ren\ufffd"]


def test_a_hook_that_reads_the_raw_stream_is_named_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    direct, _through_flask, _seen = app_pair()

    @direct.before_request
    def drain() -> None:
        flask.request.stream.read()

    r = direct.test_client().post("/answer", data=CALL, headers=signed("/answer"))
    assert r.status_code == 400  # no fields reached answerkit: refused, never run blind
    assert "read request.get_data() instead" in caplog.text


def test_blueprint_hooks_count_too() -> None:
    seen: list[dict[str, Any]] = []
    flow = make_flow(seen)
    app = Flask("host")
    bp = flow.blueprint("/voice")
    teardown: list[str] = []
    bp.teardown_request(lambda exc: teardown.append("done"))
    app.register_blueprint(bp)
    layer = DirectRoutes(app, app.wsgi_app)
    assert layer.add("/voice/answer", flow.dispatcher(), flow.get_route("answer"), "wsgi.answer")
    app.wsgi_app = layer  # type: ignore[method-assign]
    r = app.test_client().post("/voice/answer", data=CALL, headers=signed("/voice/answer"))
    assert r.status_code == 200 and teardown == ["done"] and seen[-1]["request_context"]


def test_mount_prefix_and_script_name_are_signed_as_flask_signs_them() -> None:
    seen: list[dict[str, Any]] = []
    apps = []
    for direct in (True, False):
        flow = make_flow(seen)
        app = Flask("host")
        flow.register(app, "/voice", direct=direct)
        apps.append(app)
    # Served below /site by the WSGI server (SCRIPT_NAME); the public URL names /site.
    for app in apps:
        c = app.test_client()
        ok = c.post("/voice/answer", data=CALL, headers=signed("/voice/answer"),
                    environ_overrides={"SCRIPT_NAME": "/site"})  # fmt: skip
        assert ok.status_code == 200, ok.data
    assert [s["request_context"] for s in seen] == [False, True]


def test_an_app_already_wrapped_by_middleware_is_left_to_flask() -> None:
    seen: list[dict[str, Any]] = []
    flow = make_flow(seen)
    app = Flask("host")
    inner = app.wsgi_app

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        environ["HTTP_X_SEEN_BY_MIDDLEWARE"] = "1"
        return inner(environ, start_response)

    app.wsgi_app = middleware  # type: ignore[method-assign]
    flow.register(app)
    assert "answerkit.direct" not in app.extensions
    r = app.test_client().post("/answer", data=CALL, headers=signed("/answer"))
    assert r.status_code == 200 and seen[-1]["request_context"] is True


def test_two_flows_share_one_layer() -> None:
    seen: list[dict[str, Any]] = []
    app = Flask("host")
    make_flow(seen).register(app, "/a")
    other = CallFlow("other", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())

    @other.route("/answer")
    def answer(call: CallRequest) -> Response:
        seen.append({"flow": "other", "request_context": flask.has_request_context()})
        return Response(Speak("other"))

    other.register(app, "/b")
    c = app.test_client()
    assert b"Hello" in c.post("/a/answer", data=CALL, headers=signed("/a/answer")).data
    assert b"other" in c.post("/b/answer", data=CALL, headers=signed("/b/answer")).data
    assert seen[-1] == {"flow": "other", "request_context": False}


def test_max_content_length_still_applies() -> None:
    direct, through_flask, _seen = app_pair()
    body = urlencode({**CALL, "Speech": "s" * 2000})
    answers = []
    for app in (direct, through_flask):
        app.config["MAX_CONTENT_LENGTH"] = 1000
        r = app.test_client().post(
            "/answer",
            data=body,
            headers={**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"},
        )
        answers.append((r.status_code, r.data))
    assert answers[0] == answers[1]
    assert b"Hello" not in answers[0][1]  # the body was not read past the limit


def test_disabled_layer_passes_everything_on() -> None:
    direct, _through_flask, seen = app_pair()
    assert isinstance(direct.wsgi_app, DirectRoutes)
    direct.wsgi_app.enabled = False
    r = direct.test_client().post("/answer", data=CALL, headers=signed("/answer"))
    assert r.status_code == 200 and seen[-1]["request_context"] is True


def test_a_second_flow_at_a_path_served_already_is_refused_and_flasks_view_stands() -> None:
    """Two flows with one path: Flask would route to the first registered (here the
    verified one) and never reach the second, so the second is refused; the direct layer
    and Flask answer alike with the first."""
    answers = []
    for direct in (True, False):
        app = Flask("host")
        first = make_flow([])
        first.register(app, direct=direct)
        second = CallFlow("open", public_url=PUBLIC, verify=False, state=MemoryStore())

        @second.route("/answer")
        def answer(call: CallRequest) -> Response:
            return Response(Speak("open"))

        with pytest.raises(ConfigurationError, match="already served by another view"):
            second.register(app, direct=direct)
        reply = app.test_client().post("/answer", data=CALL)  # unsigned
        answers.append((reply.status_code, reply.data))
    assert answers[0] == answers[1] and answers[0][0] == 403


def test_an_app_view_registered_first_keeps_its_path() -> None:
    app = Flask("host")
    app.add_url_rule("/answer", "mine", lambda: "mine", methods=["GET", "POST"])
    with pytest.raises(ConfigurationError, match="route 'answer' at '/answer' is already"):
        make_flow([]).register(app)
    assert app.test_client().post("/answer", data=CALL, headers=signed("/answer")).data == b"mine"


def test_an_app_page_beside_a_route_by_method_or_subdomain_is_no_clash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A GET page at a route's path: POST (Vobiz's method) reaches the route; GET callbacks
    # would not, which is warned of. A view on another subdomain is beside it.
    app = Flask("host")
    app.add_url_rule("/answer", "page", lambda: "page", methods=["GET"])
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        make_flow([]).register(app)
    assert "a GET to that path reaches another view of the app" in caplog.text
    client = app.test_client()
    assert client.get("/answer").data == b"page"
    assert client.post("/answer", data=CALL, headers=signed("/answer")).status_code == 200
    app = Flask("subdomains", subdomain_matching=True)
    app.config["SERVER_NAME"] = "voice.example.com"
    app.add_url_rule("/answer", "admin", lambda: "admin", subdomain="admin", methods=["POST"])
    make_flow([]).register(app)
    client = app.test_client()
    admin = client.post("/answer", base_url="http://admin.voice.example.com")
    assert admin.data == b"admin"
    # With a default subdomain, a view of the bare domain is beside the flow's too.
    app = Flask("www", subdomain_matching=True)
    app.config["SERVER_NAME"] = "voice.example.com"
    app.url_map.default_subdomain = "www"
    app.add_url_rule("/answer", "bare", lambda: "bare", subdomain="", methods=["POST"])
    make_flow([]).register(app)


def test_a_view_swapped_by_the_app_runs_through_flask() -> None:
    """An app may wrap a flow's view (auth, metrics) by replacing it in view_functions."""
    direct, _through_flask, seen = app_pair()
    wrapped: list[str] = []
    original = direct.view_functions["wsgi.answer"]

    def wrapper() -> Any:
        wrapped.append("yes")
        return original()

    direct.view_functions["wsgi.answer"] = wrapper
    r = direct.test_client().post("/answer", data=CALL, headers=signed("/answer"))
    assert r.status_code == 200 and wrapped == ["yes"] and seen[-1]["request_context"] is True


def test_a_huge_content_length_gets_the_same_answer() -> None:
    """More digits than int() takes (CPython's limit): not a small form, Flask's to judge."""
    answers = []
    for direct in (True, False):
        app = make_flow([]).create_app(direct=direct)
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/answer", "SCRIPT_NAME": "",
            "QUERY_STRING": "", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": "9" * 5000, "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b"CallUUID=c-1"), "wsgi.errors": sys.stderr,
            "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }  # fmt: skip
        status: list[str] = []

        def start_response(line: str, headers: Any, exc: Any = None, seen: Any = status) -> None:
            seen.append(line)

        b"".join(app(environ, start_response))
        answers.append(status[0])
    assert answers[0] == answers[1] and answers[0].startswith("403")


def test_trusted_hosts_and_a_request_class_of_its_own_send_requests_through_flask() -> None:
    # Flask refuses an untrusted Host with 400, and a request class may set its own limits:
    # the direct path, which reads neither, must leave such apps to Flask.
    class SmallRequests(flask.Request):
        max_content_length = 100

    for configure in (
        lambda app: app.config.update(TRUSTED_HOSTS=["voice.example.com"]),
        lambda app: setattr(app, "request_class", SmallRequests),
    ):
        seen: list[dict[str, Any]] = []
        app = make_flow(seen).create_app()
        configure(app)
        layer = app.extensions["answerkit.direct"]
        assert layer._hooked()
        body = {**CALL, "CallerName": "x" * 600}
        r = app.test_client().post("/answer", data=body, headers=signed("/answer"))
        assert seen == []  # refused (400 / 413 answered by Flask) or the fallback: not run
        assert r.status_code in (400, 413) or b"Hello" not in r.data


def test_a_flask_subclass_with_its_own_request_steps_is_left_to_flask() -> None:
    class Hardened(Flask):
        def process_response(self, response: Any) -> Any:
            response = super().process_response(response)
            response.headers["Strict-Transport-Security"] = "max-age=63072000"
            return response

    seen: list[dict[str, Any]] = []
    app = Hardened("hardened")
    make_flow(seen).register(app)
    assert "answerkit.direct" not in app.extensions
    r = app.test_client().post("/answer", data=CALL, headers=signed("/answer"))
    assert r.status_code == 200 and r.headers["Strict-Transport-Security"] == "max-age=63072000"


@pytest.mark.parametrize("size", [10, 70_000])  # the direct path's parser; Werkzeug's
def test_repeated_fields_keep_every_value_whichever_parser_reads_the_body(size: int) -> None:
    direct, through_flask, seen = app_pair()
    body = urlencode([*CALL.items(), ("Digits", "1"), ("Digits", "2"), ("Speech", "s" * size)])
    for app in (direct, through_flask):
        r = app.test_client().post(
            "/answer",
            data=body,
            headers={**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200
    assert [s["digits"] for s in seen] == [["1", "2"], ["1", "2"]]


@pytest.mark.parametrize("shape", ["over 64 KiB", "chunked"])
def test_a_form_werkzeug_would_parse_is_read_as_the_direct_path_reads_small_ones(
    shape: str,
) -> None:
    # Bodies the direct path leaves to Flask (no length, or over MAX_FAST_FORM) went to
    # Werkzeug's form parser, which drops every field of a body that is not UTF-8 (a 400
    # "CallUUID missing" for a call that sent it) and reads "%E9" as the text "%E9".
    app, names = _caller_names_app()
    for raw in (b"Jos\xe9", b"Jos%E9"):
        r = _post_caller_name(app.test_client(), raw, shape)
        assert r.status_code == 200, r.data
    assert names == ["Jos\ufffd", "Jos\ufffd"]


def test_a_hook_that_had_werkzeug_drop_every_field_is_told_what_to_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    direct, _through_flask, _seen = app_pair()

    @direct.before_request
    def audit() -> None:
        flask.request.form  # noqa: B018 - the read is the point

    r = direct.test_client().post(
        "/answer",
        data=urlencode(CALL).encode() + b"&CallerName=Jos\xe9",
        headers={**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400  # the stream is spent: nothing left to read the fields from
    assert "Werkzeug found no field in its" in caplog.text
    assert "read request.get_data() in the hook instead" in caplog.text


def test_a_body_over_max_content_length_names_the_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow = make_flow([])
    app = flow.create_app()
    app.config["MAX_CONTENT_LENGTH"] = 1000
    r = app.test_client().post(
        "/answer",
        data=urlencode({**CALL, "Speech": "s" * 2000}),
        headers={**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413  # refused with the reason, never a 500
    assert b"over the app's MAX_CONTENT_LENGTH (1000 bytes)" in r.data
    assert "over the app's MAX_CONTENT_LENGTH (1000 bytes)" in caplog.text


def test_with_no_max_content_length_a_webhook_body_is_held_to_one_mib() -> None:
    # Flask sets no limit by default: one signed 300 MB form was read whole into memory
    # (a worker went from 42 MB to 965 MB), and a few in parallel would exhaust it.
    app, digits, body = digits_app_over_its_limit()
    app.config["MAX_CONTENT_LENGTH"] = None
    big = body + b"&Speech=" + b"s" * WEBHOOK_BODY_LIMIT
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for send in (post_chunked, None):
        headers = {**signed("/answer"), **form}
        if send is None:
            r = app.test_client().post("/answer", data=big, headers=headers)
        else:
            r = send(app.test_client(), "/answer", big, headers)
        assert r.status_code == 413 and digits == []
        assert b"over answerkit's limit for a webhook body (1048576 bytes" in r.data
        assert b"set MAX_CONTENT_LENGTH to allow more" in r.data
    app.config["MAX_CONTENT_LENGTH"] = 2 * WEBHOOK_BODY_LIMIT  # the app's own limit rules
    r = app.test_client().post("/answer", data=big, headers={**signed("/answer"), **form})
    assert r.status_code == 200 and digits == [["1234"]]


def test_a_request_hook_reading_the_body_is_held_to_the_limit_too() -> None:
    # The view set the limit after the app's hooks ran: a before_request hook calling
    # get_data() (as advised) read a 5 MiB form whole, and the handler ran on it.
    app, digits, body = digits_app_over_its_limit()
    app.config["MAX_CONTENT_LENGTH"] = None
    read: list[int] = []

    @app.before_request
    def read_body() -> None:
        read.append(len(flask.request.get_data()))

    big = body + b"&Speech=" + b"s" * (2 * WEBHOOK_BODY_LIMIT)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = app.test_client().post("/answer", data=big, headers={**signed("/answer"), **form})
    assert r.status_code == 413 and read == [] and digits == []  # Werkzeug's, in the hook
    # No stated length: the hook reads no more than the limit, and the webhook is refused
    # (a 413, never the handler).
    r = post_chunked(app.test_client(), "/answer", big, {**signed("/answer"), **form})
    assert r.status_code == 413 and read == [WEBHOOK_BODY_LIMIT] and digits == []
    assert b"its chunked body is over answerkit's limit" in r.data
    r = app.test_client().post("/answer", data=body, headers={**signed("/answer"), **form})
    assert r.status_code == 200 and read[1:] == [len(body)] and digits == [["1234"]]


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("hook", ["get_data", "form"])
@pytest.mark.parametrize("mount", ["direct=False", "blueprint"])
def test_a_hooks_read_of_a_body_over_the_limit_is_refused_on_flasks_path(
    mount: str, hook: str, chunked: bool
) -> None:
    # Served through Flask alone, a hook read a 3 MiB form (stated or chunked, through
    # request.form too) before the view set the limit, and the handler ran on it.
    digits: list[list[str]] = []
    flow = CallFlow("hooked", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/answer", lambda call: digits.append(call.getlist("Digits")))
    if mount == "direct=False":
        app = flow.create_app(direct=False)
    else:
        app = Flask("own")
        app.register_blueprint(flow.blueprint())
    read: list[int] = []

    @app.before_request
    def read_body() -> None:
        got = flask.request.get_data() if hook == "get_data" else flask.request.form
        read.append(len(got))

    body = urlencode(CALL).encode() + b"&Digits=1234&Speech=" + b"s" * (3 * WEBHOOK_BODY_LIMIT)
    headers = {**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"}
    if chunked:
        r = post_chunked(app.test_client(), "/answer", body, headers)
    else:
        r = app.test_client().post("/answer", data=body, headers=headers)
    assert r.status_code == 413 and digits == []
    if hook == "get_data":
        assert read in ([], [WEBHOOK_BODY_LIMIT])  # never more than the limit


def test_a_hook_may_raise_the_limit_and_the_flows_other_endpoints_are_the_apps() -> None:
    # Refused before the hooks ran, a stated length past 1 MiB could not be taken by a
    # hook raising the request's limit; and a plain endpoint of the flow (a user's view, a
    # TransferTrigger's) got the webhook limit too, a chunked body cut at 1 MiB.
    app, digits, body = digits_app_over_its_limit()
    app.config["MAX_CONTENT_LENGTH"] = None
    big = body + b"&Speech=" + b"s" * (2 * WEBHOOK_BODY_LIMIT)

    @app.before_request
    def raise_limit() -> None:
        flask.request.max_content_length = 4 * WEBHOOK_BODY_LIMIT

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = app.test_client().post("/answer", data=big, headers={**signed("/answer"), **form})
    assert r.status_code == 200 and digits == [["1234"]]
    flow = CallFlow("own", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/answer", lambda call: None)
    flow.add_endpoint(
        "/upload", lambda: str(len(flask.request.get_data())), name="upload", methods=["POST"]
    )
    plain = flow.create_app()
    for send in (post_chunked, None):
        if send is None:
            r = plain.test_client().post("/upload", data=big)
        else:
            r = send(plain.test_client(), "/upload", big, {})
        assert (r.status_code, r.data) == (200, str(len(big)).encode())


def test_a_route_whose_view_the_app_wrapped_is_held_to_the_limit_too() -> None:
    # Told by the view object, a wrapper without functools.wraps (or a partial, a lambda)
    # let a hook read an 8 MiB body whole.
    app, digits, body = digits_app_over_its_limit()
    app.config["MAX_CONTENT_LENGTH"] = None
    [endpoint] = [e for e in app.view_functions if e.endswith(".answer")]
    inner = app.view_functions[endpoint]
    app.view_functions[endpoint] = lambda: inner()
    read: list[int] = []

    @app.before_request
    def read_body() -> None:
        read.append(len(flask.request.get_data()))

    big = body + b"&Speech=" + b"s" * (8 * WEBHOOK_BODY_LIMIT)
    headers = {**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"}
    r = post_chunked(app.test_client(), "/answer", big, headers)
    assert r.status_code == 413 and read == [WEBHOOK_BODY_LIMIT] and digits == []


def test_a_limit_the_app_sets_on_the_request_is_named_as_the_apps() -> None:
    app, digits, body = digits_app_over_its_limit()
    app.config["MAX_CONTENT_LENGTH"] = None

    @app.before_request
    def own_limit() -> None:
        flask.request.max_content_length = len(body) - 2

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = post_chunked(app.test_client(), "/answer", body, {**signed("/answer"), **form})
    assert r.status_code == 413 and digits == []
    assert b"over the app's request.max_content_length" in r.data
    assert b"answerkit's limit" not in r.data


def test_a_multipart_body_over_werkzeugs_form_limits_names_them() -> None:
    # The limit hit was MAX_FORM_MEMORY_SIZE, and the message blamed an unset
    # MAX_CONTENT_LENGTH ("None bytes") and said to unset it.
    app = make_flow([]).create_app()
    app.config["MAX_FORM_MEMORY_SIZE"] = 1000
    r = app.test_client().post(
        "/answer",
        data={**CALL, "Speech": "s" * 2000},
        content_type="multipart/form-data",
        headers=signed("/answer"),
    )
    assert r.status_code == 413
    assert b"over the app's MAX_FORM_MEMORY_SIZE (1000 bytes a field)" in r.data
    assert b"MAX_CONTENT_LENGTH" not in r.data


def digits_app_over_its_limit() -> tuple[Flask, list[list[str]], bytes]:
    """An app whose /answer keeps the Digits each call got, the signed call's body with
    Digits=1234, and MAX_CONTENT_LENGTH two bytes short of that body."""
    digits: list[list[str]] = []
    flow = CallFlow("limit", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/answer", lambda call: digits.append(call.getlist("Digits")))
    app = flow.create_app()
    body = urlencode(CALL).encode() + b"&Digits=1234"
    app.config["MAX_CONTENT_LENGTH"] = len(body) - 2
    return app, digits, body


def test_a_chunked_form_past_max_content_length_is_refused_not_cut(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Werkzeug stops a body of no stated length at the limit without a word: the handler
    # ran on Digits=12 of Digits=1234, and answered 200.
    app, digits, body = digits_app_over_its_limit()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = post_chunked(app.test_client(), "/answer", body, {**signed("/answer"), **form})
    assert r.status_code == 413 and digits == []
    assert b"its chunked body is over the app's MAX_CONTENT_LENGTH" in r.data
    app.config["MAX_CONTENT_LENGTH"] = len(body)  # exactly the limit: read whole
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = post_chunked(app.test_client(), "/answer", body, {**signed("/answer"), **form})
    assert r.status_code == 200 and digits == [["1234"]]


class _Input(io.BytesIO):
    """A request body that fails once read past ``good`` bytes (a broken chunk, a client
    gone), or that must not be read past them at all (``strict``: a client that keeps the
    connection open, whose next byte would be its next request's)."""

    def __init__(self, body: bytes, good: int, strict: bool = False) -> None:
        super().__init__(body)
        self.good, self.strict = good, strict

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.good:
            if self.strict:
                raise AssertionError("read past the body: this would wait on the client")
            raise ConnectionResetError("the client went away mid-body")
        if size is None or size < 0 or self.tell() + size > self.good:
            size = self.good - self.tell()
        return super().read(size)


def test_the_limit_probe_reads_only_a_body_the_server_ended() -> None:
    # One byte more of a body with no length and no end waited on the client (no answer
    # for seconds under the dev server) and took the first byte of its next request.
    flow = CallFlow("probe", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/answer", lambda call: None)
    app = flow.create_app()
    app.config["MAX_CONTENT_LENGTH"] = 10

    @app.before_request
    def audit() -> None:
        flask.request.form  # noqa: B018 - the read is the point

    body = urlencode(CALL).encode()
    r = app.test_client().post(
        "/answer",
        input_stream=_Input(body, len(body), strict=True),
        headers={**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"},
        environ_overrides={"CONTENT_LENGTH": ""},  # no length, and no end the server marks
    )
    # Werkzeug reads no body it cannot bound: no fields, so the CallUUID 400; never a wait.
    assert r.status_code == 400 and b"CallUUID" in r.data


def test_a_chunked_body_that_breaks_past_the_limit_is_refused_not_cut() -> None:
    # The probe's read failed and was taken for the end of the body: the handler ran on
    # Digits cut at the limit.
    app, digits, body = digits_app_over_its_limit()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = app.test_client().post(
        "/answer",
        input_stream=_Input(body, len(body) - 2),
        headers={**signed("/answer"), **form, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert r.status_code == 400 and b"could not be read" in r.data and digits == []


@pytest.mark.parametrize("shape", ["over 64 KiB", "chunked"])
def test_a_hook_that_read_the_bytes_of_a_large_or_chunked_form_leaves_them_read_directly(
    shape: str,
) -> None:
    # get_data() in a hook on such a body still went through Werkzeug's form parser, which
    # drops every field of a body with one non-UTF-8 byte (a 400 'CallUUID missing').
    app, names = _caller_names_app()

    @app.before_request
    def audit() -> None:
        flask.request.get_data()

    r = _post_caller_name(app.test_client(), b"Jos\xe9", shape)
    assert r.status_code == 200, r.data
    assert names == ["Jos\ufffd"]


def test_a_hook_that_read_part_of_a_large_body_leaves_nothing_to_run_on() -> None:
    # What was left after a hook's request.stream.read(9) was parsed: Digits lost, the
    # handler run on the rest.
    ran: list[str] = []
    flow = CallFlow("partial", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/answer", lambda call: ran.append(call.call_uuid))
    app = flow.create_app()

    @app.before_request
    def peek() -> None:
        flask.request.stream.read(9)

    body = b"Digits=1234&" + urlencode(CALL).encode() + b"&Speech=" + b"s" * 70_000
    headers = {**signed("/answer"), "Content-Type": "application/x-www-form-urlencoded"}
    r = app.test_client().post("/answer", data=body, headers=headers)
    assert r.status_code == 400 and b"cut short" in r.data and ran == []
    # Of no stated length (chunked), the rest was parsed as the form: '34' and the
    # CallUUID, and the handler ran on it.
    r = post_chunked(app.test_client(), "/answer", body, headers)
    assert r.status_code == 400 and b"cut short" in r.data and ran == []


@pytest.mark.parametrize("direct", [True, False])
def test_a_memory_store_under_several_worker_processes_is_warned_of_once(
    direct: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # memory:// under gunicorn -w 4: one signature was taken once per worker, and each
    # worker kept its own call.state, with nothing said.
    app = make_flow([]).create_app(direct=direct)
    c = app.test_client()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        for _ in range(3):
            r = c.post("/answer", data=CALL, headers=signed("/answer"),
                       environ_overrides={"wsgi.multiprocess": True})  # fmt: skip
            assert r.status_code == 200
    told = [m for m in caplog.messages if "kept in each process" in m]
    assert len(told) == 1 and "sqlite:/// (one host) or redis://" in told[0]
    caplog.clear()
    single = make_flow([]).create_app(direct=direct).test_client()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        r = single.post("/answer", data=CALL, headers=signed("/answer"),
                        environ_overrides={"wsgi.multiprocess": False})  # fmt: skip
    assert r.status_code == 200 and "kept in each process" not in caplog.text


@pytest.mark.parametrize("mount", ["direct", "direct=False"])
def test_a_chunked_multipart_body_a_hook_read_to_the_limit_is_refused(mount: str) -> None:
    # Werkzeug's get_data() stops at the limit without a word: the handler ran on the
    # fields of a body cut at 1 MiB (a 200), or read none of them (a 400 "no CallUUID").
    digits: list[list[str]] = []
    flow = CallFlow("multi", public_url=PUBLIC, auth_token=TOKEN, state=MemoryStore())
    flow.add_route("/answer", lambda call: digits.append(call.getlist("Digits")))
    app = flow.create_app(direct=mount == "direct")

    @app.before_request
    def read_body() -> None:
        flask.request.get_data()

    boundary = "b0undary"
    parts = [*CALL.items(), ("Digits", "1234"), ("Speech", "s" * WEBHOOK_BODY_LIMIT)]
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    headers = {**signed("/answer"), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    r = post_chunked(app.test_client(), "/answer", body, headers)
    assert r.status_code == 413 and digits == []
    assert b"its chunked body is over answerkit's limit" in r.data
