"""The WSGI apps bench_serve.py runs under gunicorn; one factory per target.

``gunicorn 'serve_app:make_answerkit(1000)'`` (run from this directory). Every target
answers ``POST /transfer`` with the same bytes: the transfer document.

* :func:`make_raw`: a bare WSGI callable returning the pre-rendered bytes (the ceiling).
* :func:`make_flask`: a bare Flask view returning them.
* :func:`make_answerkit`: a CallFlow route with signature verification on and state on
  SQLite (the file named by ``ANSWERKIT_BENCH_STATE``); the handler reads and writes
  ``call.state`` and builds the document. ``routes`` routes are declared, the hit one last.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request
from flask import Response as FlaskResponse

from answerkit import CallFlow, CallRequest, Dial, Number, Response, Speak

PUBLIC_URL = "https://bench.example.com"
TOKEN = "bench-auth-token-0123456789abcdef"
PATH = "/transfer"
CONTENT_TYPE = "application/xml; charset=utf-8"


def transfer_document() -> Response:
    return Response(
        Speak("Please hold while we transfer your call."),
        Dial(Number("+14156667890"), caller_id="+14155551234"),
    )


BODY = transfer_document().to_bytes()


def make_raw() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    headers = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(BODY)))]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", headers)
        return [BODY]

    return app


def make_flask() -> Flask:
    app = Flask("bench_flask")

    @app.post(PATH)
    def transfer() -> FlaskResponse:
        return FlaskResponse(BODY, content_type=CONTENT_TYPE)

    return app


def make_flask_form() -> Flask:
    """A Flask view that at least reads the webhook's form fields (not served; in-process)."""
    app = Flask("bench_flask_form")

    @app.post(PATH)
    def transfer() -> FlaskResponse:
        if not request.form.get("CallUUID"):
            return FlaskResponse(b"", status=400)
        return FlaskResponse(BODY, content_type=CONTENT_TYPE)

    return app


def make_answerkit(
    routes: int = 10, state: str | None = None, verify: bool = True, touch_state: bool = True
) -> Flask:
    """The answerkit target; ``state`` defaults to SQLite at ``$ANSWERKIT_BENCH_STATE``.

    ``touch_state=False``: the handler leaves ``call.state`` alone, so the store holds only
    the replay record (a diagnostic: what the state read and write cost on top).
    """
    if state is None:
        path = os.environ.get("ANSWERKIT_BENCH_STATE")
        if not path:
            raise RuntimeError("set ANSWERKIT_BENCH_STATE to the SQLite file to use")
        state = f"sqlite:///{path}"
    flow = CallFlow("bench", public_url=PUBLIC_URL, auth_token=TOKEN, state=state, verify=verify)

    def other(call: CallRequest) -> Response:
        return Response(Speak("Never reached."))

    for i in range(routes - 1):
        flow.add_route(f"/menu/{i}", other, name=f"menu_{i}")

    @flow.route(PATH)
    def transfer(call: CallRequest) -> Response:
        if touch_state:
            call.state["served"] = call.state.get("served", 0) + 1
        return transfer_document()

    return flow.create_app()
