"""LocalVobiz: strict like the platform, and a transfer really fetches a signed webhook."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from werkzeug.datastructures import Headers
from werkzeug.serving import BaseWSGIServer, make_server

from answerkit import errors
from answerkit.signature import verify
from answerkit.testing import LocalVobiz, TransferOutcome

VALID_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    "<Response><Speak>Please hold while we transfer your call.</Speak></Response>"
)
PARENT_TOKEN = "parent-token-1111"


@dataclass
class Hit:
    path: str
    method: str
    params: dict[str, str]
    headers: dict[str, str]
    signed: bool
    signed_by_parent: bool


@dataclass
class WebhookApp:
    """A tiny Flask app on 127.0.0.1 that checks every signature and answers by path."""

    url: str
    hits: list[Hit] = field(default_factory=list)


def _webhook_app(auth_token: str) -> Flask:
    app = Flask("webhooks")

    @app.route("/<kind>", methods=["GET", "POST"])
    def answer(kind: str) -> Response:
        params = dict(request.args if request.method == "GET" else request.form)
        headers = dict(request.headers.items())
        signed = verify(request.headers, [request.url], [auth_token]).ok
        by_parent = verify(
            # Only the MA signatures and the nonces: proves the parent token signed them.
            Headers(
                [(k, v) for k, v in headers.items() if "-ma-" in k.lower() or "nonce" in k.lower()]
            ),
            [request.url],
            [PARENT_TOKEN],
        ).ok
        app.config["HITS"].append(Hit(kind, request.method, params, headers, signed, by_parent))
        if not signed:
            return Response("bad signature", status=403)
        if kind == "ok":
            return Response(VALID_XML, content_type="application/xml")
        if kind == "textxml":
            return Response(VALID_XML, content_type="text/xml; charset=utf-8")
        if kind == "invalid":  # a Plivo element, not VobizXML
            return Response("<Response><GetDigits/></Response>", content_type="application/xml")
        if kind == "broken":
            return Response("<Response><Speak>unclosed", content_type="application/xml")
        if kind == "html":
            return Response(VALID_XML, content_type="text/html")
        if kind == "hangup":
            return Response("", status=200)
        if kind == "cookie":  # an app that tries to keep a session in a cookie
            reply = Response(VALID_XML, content_type="application/xml")
            reply.set_cookie("session", "caller-state")
            return reply
        if kind == "slowfail":  # fetched long enough for the caller to hang up meanwhile
            time.sleep(0.5)
        return Response("boom", status=500)

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[LocalVobiz]:
    with LocalVobiz() as vobiz:
        yield vobiz


@pytest.fixture
def vobiz(server: LocalVobiz) -> LocalVobiz:
    server.reset()
    return server


@pytest.fixture(scope="module")
def webhook_server(server: LocalVobiz) -> Iterator[tuple[WebhookApp, Flask]]:
    app = _webhook_app(server.auth_token)
    app.config["HITS"] = []
    httpd: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebhookApp(f"http://127.0.0.1:{httpd.server_port}"), app
    finally:
        httpd.shutdown()


@pytest.fixture
def hooks(webhook_server: tuple[WebhookApp, Flask]) -> WebhookApp:
    target, app = webhook_server
    app.config["HITS"] = target.hits
    target.hits.clear()
    return target


def api(vobiz: LocalVobiz, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"X-Auth-ID": vobiz.auth_id, "X-Auth-Token": vobiz.auth_token}
    headers.update(kwargs.pop("headers", {}))
    return requests.request(
        method, f"http://127.0.0.1:{vobiz.port}{path}", headers=headers, timeout=5, **kwargs
    )


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for something a background thread does (webhooks are sent after the answer)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        done.wait(0.02)
    raise AssertionError("it did not happen in time")


def call_path(vobiz: LocalVobiz, call_uuid: str) -> str:
    return f"/api/v1/Account/{vobiz.auth_id}/Call/{call_uuid}/"


# -- strict like the platform ----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"port": -1}, "port must be a whole number from 0"),
        ({"port": 65536}, "port must be"),
        ({"port": "8080"}, "port must be"),
        ({"webhook_timeout": 0}, "webhook_timeout must be seconds above 0"),
        ({"webhook_timeout": float("nan")}, "webhook_timeout must be"),
    ],
)
def test_bad_settings_are_refused_when_made(settings: dict[str, Any], says: str) -> None:
    # port=-1 failed only at start(), with an OverflowError from bind().
    with pytest.raises(errors.ConfigurationError, match=says):
        LocalVobiz(**settings)


@pytest.mark.parametrize(
    "path", ["/api/v1/account/{id}/Call/{uuid}/", "/api/v1/Account/{id}/call/{uuid}/"]
)
def test_a_lowercase_path_is_401(vobiz: LocalVobiz, path: str) -> None:
    call = vobiz.add_call()
    reply = api(vobiz, "GET", path.format(id=vobiz.auth_id, uuid=call.call_uuid) + "?status=live")
    assert reply.status_code == 401


def test_a_missing_trailing_slash_is_404(vobiz: LocalVobiz) -> None:
    call = vobiz.add_call()
    reply = api(vobiz, "GET", call_path(vobiz, call.call_uuid)[:-1] + "?status=live")
    assert reply.status_code == 404
    assert reply.json() == {"message": "Not Found"}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Auth-Token": "wrong"},
        {"X-Auth-ID": "MA_SOMEONE"},
        {"X-Auth-Token": ""},
    ],
)
def test_both_auth_headers_must_match(vobiz: LocalVobiz, headers: dict[str, str]) -> None:
    call = vobiz.add_call()
    reply = api(vobiz, "GET", call_path(vobiz, call.call_uuid) + "?status=live", headers=headers)
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "UNAUTHORIZED"


def test_the_path_auth_id_must_be_the_header_one(vobiz: LocalVobiz) -> None:
    call = vobiz.add_call()
    reply = api(vobiz, "GET", f"/api/v1/Account/MA_OTHER/Call/{call.call_uuid}/?status=live")
    assert reply.status_code == 401


@pytest.mark.parametrize(
    ("kwargs", "field_name"),
    [
        (
            {"data": "legs=aleg", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            None,
        ),
        ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, None),
        ({"json": ["aleg"]}, None),
        ({"json": {"legs": "sideways", "aleg_url": "https://x.example/a"}}, "legs"),
        ({"json": {"legs": "both", "aleg_url": "https://x.example/a"}}, "bleg_url"),
        ({"json": {"legs": "bleg"}}, "bleg_url"),
        ({"json": {}}, "aleg_url"),
        ({"json": {"aleg_url": "not a url"}}, "aleg_url"),
        ({"json": {"aleg_url": "/relative"}}, "aleg_url"),
        # A netloc with no host in it: nothing to fetch, a malformed URL (spec §4.1: 400).
        ({"json": {"aleg_url": "https://:80/hold"}}, "aleg_url"),
        ({"json": {"aleg_url": "https://@/hold"}}, "aleg_url"),
        ({"json": {"aleg_url": "https://x.example/a", "aleg_method": "PUT"}}, "aleg_method"),
    ],
)
def test_transfer_validation_is_400(
    vobiz: LocalVobiz, kwargs: dict[str, Any], field_name: str | None
) -> None:
    call = vobiz.add_call()
    reply = api(vobiz, "POST", call_path(vobiz, call.call_uuid), **kwargs)
    assert reply.status_code == 400
    body = reply.json()
    assert body["status"] == "error" and body["requestId"]
    if field_name:
        assert body["error"]["details"]["field"] == field_name
    assert vobiz.transfers == []


def test_transfer_of_an_unknown_or_ended_call_is_404(vobiz: LocalVobiz) -> None:
    ended = vobiz.add_call()
    vobiz.end_call(ended.call_uuid)
    ringing = vobiz.add_call(status="ringing")
    for call_uuid in ("never-was", ended.call_uuid, ringing.call_uuid):
        reply = api(vobiz, "POST", call_path(vobiz, call_uuid), json={"aleg_url": "https://x/a"})
        assert reply.status_code == 404
        assert "error" in reply.json()


def test_retrieve_needs_status_live(vobiz: LocalVobiz) -> None:
    call = vobiz.add_call(direction="outbound")
    assert api(vobiz, "GET", call_path(vobiz, call.call_uuid)).status_code == 404
    reply = api(vobiz, "GET", call_path(vobiz, call.call_uuid) + "?status=live")
    assert reply.status_code == 200
    assert reply.json()["request_uuid"] == call.call_uuid
    assert set(reply.json()) == {
        "api_id", "call_status", "call_uuid", "request_uuid", "caller_name", "direction",
        "from", "to", "session_start", "stir_attestation", "stir_verification",
    }  # fmt: skip
    assert api(vobiz, "GET", call_path(vobiz, call.call_uuid) + "?status=x").status_code == 400


def test_delete_is_204_and_ends_the_call(vobiz: LocalVobiz) -> None:
    call = vobiz.add_call()
    reply = api(vobiz, "DELETE", call_path(vobiz, call.call_uuid))
    assert (reply.status_code, reply.content) == (204, b"")
    assert vobiz.call(call.call_uuid).status == "completed"
    assert api(vobiz, "DELETE", call_path(vobiz, call.call_uuid)).status_code == 404


def test_make_call_is_201_and_adds_a_queued_call(vobiz: LocalVobiz) -> None:
    seen: list[str] = []
    done = threading.Event()

    def hook(record: Any, body: Any) -> None:
        seen.append(record.call_uuid)
        done.set()

    vobiz.on_make_call = hook
    try:
        reply = api(
            vobiz,
            "POST",
            f"/api/v1/Account/{vobiz.auth_id}/Call/",
            json={"from": "+14155550100", "to": "+14155550111", "answer_url": "https://x/a",
                  "answer_method": "POST"},
        )  # fmt: skip
        assert done.wait(5)
    finally:
        vobiz.on_make_call = None
    assert reply.status_code == 201
    body = reply.json()
    assert body["message"] == "call fired"
    assert seen == [body["request_uuid"]]
    # Spec §4.4: success means queued, not answered; only an answered call can be moved.
    call_uuid = body["request_uuid"]
    assert vobiz.call(call_uuid).status == "queued"
    transfer = {"legs": "aleg", "aleg_url": "https://x/hold"}
    assert api(vobiz, "POST", call_path(vobiz, call_uuid), json=transfer).status_code == 404
    assert vobiz.answer_call(call_uuid).status == "in-progress"
    assert api(vobiz, "POST", call_path(vobiz, call_uuid), json=transfer).status_code == 202
    vobiz.end_call(call_uuid, notify=False)
    with pytest.raises(ValueError, match="ended"):
        vobiz.answer_call(call_uuid)


@pytest.mark.parametrize(
    "body",
    [
        {"to": "+1", "answer_url": "https://x/a"},
        {"from": "+1", "to": "+2"},
        {"from": "+1", "to": "+2", "answer_url": "nope"},
        {"from": "+1", "to": "+2", "answer_url": "https://x/a", "answer_method": "PUT"},
    ],
)
def test_make_call_validation_is_400(vobiz: LocalVobiz, body: dict[str, str]) -> None:
    reply = api(vobiz, "POST", f"/api/v1/Account/{vobiz.auth_id}/Call/", json=body)
    assert reply.status_code == 400


_CALL = {"from": "+14155550100", "to": "+14155550111", "answer_url": "https://x.example.com/a",
         "answer_method": "POST"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"answer_method": None}, "answer_method"),  # the API reference requires it
        ({"from": "hello"}, "from"),
        ({"to": "not a number"}, "to"),
        ({"machine_detection": "maybe"}, "machine_detection"),
        ({"machine_detection": 1}, "machine_detection"),  # 1 == True: a number taken as true
        ({"answer_url": "http://app.example.com/a"}, "answer_url"),
        ({"hangup_url": "http://app.example.com/h"}, "hangup_url"),
    ],
)
def test_make_call_refuses_what_vobiz_and_the_client_refuse(
    vobiz: LocalVobiz, change: dict[str, Any], field: str
) -> None:
    # Each was 201, "call fired": a test passed with a call the production client refuses
    # before sending (or Vobiz could never call back, plain http to another machine).
    body = {k: v for k, v in {**_CALL, **change}.items() if v is not None}
    reply = api(vobiz, "POST", f"/api/v1/Account/{vobiz.auth_id}/Call/", json=body)
    assert reply.status_code == 400 and reply.json()["error"]["details"]["field"] == field
    assert not vobiz.calls


@pytest.mark.parametrize(
    "url", ["http://0.0.0.0:5000/a", "http://localhost.:5000/a", "http://[::ffff:127.0.0.1]:5000/a"]
)
def test_make_call_takes_plain_http_to_this_machine_however_spelt(
    vobiz: LocalVobiz, url: str
) -> None:
    # Each is this machine (a server bound to every address, the fully qualified name, a
    # mapped loopback address), as the client's allow_http takes it: each was refused.
    body = {**_CALL, "answer_url": url}
    reply = api(vobiz, "POST", f"/api/v1/Account/{vobiz.auth_id}/Call/", json=body)
    assert reply.status_code == 201


def test_requests_are_logged_without_printing_the_token(vobiz: LocalVobiz) -> None:
    call = vobiz.add_call()
    api(vobiz, "GET", call_path(vobiz, call.call_uuid) + "?status=live")
    [logged] = vobiz.requests
    assert logged.method == "GET" and logged.query == {"status": "live"}
    assert logged.headers["X-Auth-Token"] == vobiz.auth_token
    assert vobiz.auth_token not in repr(logged)


def test_fault_switches_apply_in_order(vobiz: LocalVobiz) -> None:
    call = vobiz.add_call()
    path = call_path(vobiz, call.call_uuid) + "?status=live"
    vobiz.fail_next(2, status=502)
    vobiz.rate_limit_next(1, retry_after=3)
    vobiz.malformed_next(1)
    statuses = [api(vobiz, "GET", path) for _ in range(5)]
    assert [r.status_code for r in statuses] == [502, 502, 429, 200, 200]
    assert statuses[2].headers["Retry-After"] == "3"
    assert statuses[2].json()["error"]["details"]["retryAfter"] == 3
    with pytest.raises(ValueError):
        statuses[3].json()
    with pytest.raises(errors.ConfigurationError, match="n must be 1 or more"):
        vobiz.fail_next(0)


def test_reset_closes_without_an_answer(vobiz: LocalVobiz) -> None:
    vobiz.reset_next(1)
    with pytest.raises(requests.ConnectionError):
        api(vobiz, "GET", call_path(vobiz, "x") + "?status=live")


def test_reset_forgets_everything(vobiz: LocalVobiz) -> None:
    vobiz.add_call()
    vobiz.fail_next(5)
    api(vobiz, "GET", "/")
    vobiz.reset()
    assert (vobiz.calls, vobiz.requests, vobiz.transfers) == ({}, [], [])
    call = vobiz.add_call()
    assert api(vobiz, "GET", call_path(vobiz, call.call_uuid) + "?status=live").ok


def test_stop_closes_kept_alive_connections() -> None:
    vobiz = LocalVobiz().start()
    call = vobiz.add_call()
    client = vobiz.client(max_retries=0)
    client.get_live_call(call.call_uuid)
    vobiz.stop()
    with pytest.raises(errors.TransportError):
        client.get_live_call(call.call_uuid)


# -- the transfer webhook --------------------------------------------------------------


def transfer(vobiz: LocalVobiz, call_uuid: str, **kwargs: str) -> list[TransferOutcome]:
    with vobiz.client() as client:
        result = client.transfer(call_uuid, **kwargs)
    assert result.call_uuid == call_uuid
    return vobiz.wait_for_transfer(call_uuid)


def test_transfer_fetches_a_signed_webhook_and_executes_it(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    call = vobiz.add_call(from_="+917983165036", to="+14155550199", caller_name="+917983165036")
    [outcome] = transfer(vobiz, call.call_uuid, aleg_url=hooks.url + "/ok?attempt=2")
    assert outcome.executed and outcome.hangup_cause_code is None
    assert (outcome.leg, outcome.method, outcome.http_status) == ("aleg", "POST", 200)
    assert outcome.xml == VALID_XML
    assert outcome.document is not None and outcome.document.tag == "Response"
    [hit] = hooks.hits
    assert hit.signed and hit.method == "POST"
    assert hit.headers["User-Agent"] == "Vobiz"
    assert hit.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert hit.params["Event"] == "Transfer"
    assert hit.params["CallUUID"] == call.call_uuid
    assert (hit.params["From"], hit.params["To"]) == ("917983165036", "14155550199")
    assert hit.params["Direction"] == "inbound" and hit.params["CallStatus"] == "in-progress"
    assert hit.params["ParentAuthID"] == vobiz.auth_id
    assert hit.params["CallerName"] == "+917983165036"
    assert vobiz.call(call.call_uuid).status == "in-progress"


def test_transfer_with_get_sends_the_fields_in_the_query(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    call = vobiz.add_call()
    [outcome] = transfer(vobiz, call.call_uuid, aleg_url=hooks.url + "/textxml", aleg_method="GET")
    assert outcome.executed
    [hit] = hooks.hits
    assert hit.method == "GET" and hit.signed and hit.params["Event"] == "Transfer"


@pytest.mark.parametrize(
    ("kind", "code"),
    [("invalid", 8013), ("broken", 8013), ("html", 8013), ("error", 7013)],
)
def test_a_bad_reply_drops_the_leg(
    vobiz: LocalVobiz, hooks: WebhookApp, kind: str, code: int
) -> None:
    call = vobiz.add_call(hangup_url=hooks.url + "/hangup")
    [outcome] = transfer(vobiz, call.call_uuid, aleg_url=f"{hooks.url}/{kind}")
    assert outcome.status == "dropped" and not outcome.executed
    assert outcome.hangup_cause_code == code
    assert outcome.error
    ended = vobiz.call(call.call_uuid)
    assert (ended.status, ended.hangup_cause_code, ended.hangup_source) == (
        "completed",
        code,
        "Error",
    )
    eventually(lambda: any(w.event == "Hangup" for w in vobiz.sent_webhooks))
    hangup = next(h for h in hooks.hits if h.path == "hangup")
    assert hangup.params["HangupCauseCode"] == str(code)
    assert hangup.params["CallStatus"] == "completed"


def test_an_unreachable_url_drops_the_leg_with_7013(vobiz: LocalVobiz) -> None:
    call = vobiz.add_call()
    [outcome] = transfer(vobiz, call.call_uuid, aleg_url="http://127.0.0.1:9/nowhere")
    assert (outcome.status, outcome.hangup_cause_code, outcome.http_status) == (
        "dropped",
        7013,
        None,
    )


def test_both_legs_are_fetched(vobiz: LocalVobiz, hooks: WebhookApp) -> None:
    call = vobiz.add_call(bleg_uuid="bleg-1")
    outcomes = transfer(
        vobiz, call.call_uuid, aleg_url=hooks.url + "/ok", bleg_url=hooks.url + "/ok"
    )
    # The B-leg first, as in the simulator: the A-leg's leaving would end it otherwise.
    assert [(o.leg, o.status) for o in outcomes] == [("bleg", "executed"), ("aleg", "executed")]
    assert [h.params["CallUUID"] for h in hooks.hits] == ["bleg-1", call.call_uuid]
    assert hooks.hits[0].params["ALegUUID"] == call.call_uuid


def test_sub_account_webhooks_carry_parent_signatures(hooks: WebhookApp) -> None:
    with LocalVobiz(
        "SA_SUB00001",
        "local-token-0000000000000000",
        parent_auth_id="MA_PARENT01",
        parent_auth_token=PARENT_TOKEN,
    ) as sub:
        call = sub.add_call()
        [outcome] = transfer(sub, call.call_uuid, aleg_url=hooks.url + "/ok")
    assert outcome.executed
    [hit] = hooks.hits
    assert hit.signed and hit.signed_by_parent
    assert hit.params["ParentAuthID"] == "MA_PARENT01"


def test_hangup_posts_a_signed_hangup_webhook(vobiz: LocalVobiz, hooks: WebhookApp) -> None:
    call = vobiz.add_call(hangup_url=hooks.url + "/hangup")
    with vobiz.client() as client:
        client.hangup(call.call_uuid)
    eventually(lambda: bool(vobiz.sent_webhooks))
    [sent] = vobiz.sent_webhooks
    assert (sent.event, sent.http_status) == ("Hangup", 200)
    [hit] = hooks.hits
    assert hit.signed
    assert hit.params["Event"] == "Hangup" and hit.params["CallStatus"] == "completed"
    assert hit.params["HangupSource"] == "API Request"
    assert hit.params["HangupCauseCode"] == "4000"


def test_the_hangup_webhook_reports_the_call_times(vobiz: LocalVobiz, hooks: WebhookApp) -> None:
    # Spec §2.2: Duration in answered seconds, BillDuration up to the pulse, and the local
    # start, answer and end times (the simulator sends them; LocalVobiz sent 0 and none).
    call = vobiz.add_call(hangup_url=hooks.url + "/hangup")
    call.started_at -= 80
    assert call.answered_at is not None
    call.answered_at -= 75
    vobiz.end_call(call.call_uuid)
    eventually(lambda: bool(hooks.hits))
    params = hooks.hits[0].params
    assert (params["Duration"], params["BillDuration"]) == ("75", "120")
    assert params["TotalCost"] == "0.00000"  # spec §2.2, as the simulator's Hangup has it
    for name in ("StartTime", "AnswerTime", "EndTime"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", params[name]), params[name]
    assert params["StartTime"] < params["AnswerTime"] < params["EndTime"]


def test_an_unanswered_call_reports_no_answer_time(vobiz: LocalVobiz, hooks: WebhookApp) -> None:
    call = vobiz.add_call(status="queued", hangup_url=hooks.url + "/hangup")
    vobiz.end_call(call.call_uuid)
    eventually(lambda: bool(hooks.hits))
    params = hooks.hits[0].params
    assert (params["Duration"], params["BillDuration"], params["AnswerTime"]) == ("0", "0", "")


def test_a_failed_hangup_webhook_is_retried_three_times(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    call = vobiz.add_call(hangup_url=hooks.url + "/fails")  # answers 500
    vobiz.end_call(call.call_uuid)
    eventually(lambda: len(vobiz.sent_webhooks) == 4)
    time.sleep(0.2)  # room for a fifth, were one sent
    assert [w.http_status for w in vobiz.sent_webhooks] == [500] * 4


def test_a_webhook_under_way_at_a_reset_is_kept_out_of_the_new_log(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    # The previous test's Hangup webhook, answered after the reset, was logged in the next
    # test's sent_webhooks ([200, 500, 500, 500, 500]), and its retries were sent on.
    call = vobiz.add_call(hangup_url=hooks.url + "/slowfail")  # 0.5 s, then 500
    vobiz.end_call(call.call_uuid)
    eventually(lambda: any(hit.path == "slowfail" for hit in hooks.hits))
    vobiz.reset()  # while the webhook is under way
    time.sleep(0.5 + 0.3)  # its answer, and room for a retry
    assert vobiz.sent_webhooks == []
    assert sum(hit.path == "slowfail" for hit in hooks.hits) == 1  # never sent again


def test_on_transfer_sees_every_outcome(vobiz: LocalVobiz, hooks: WebhookApp) -> None:
    seen: list[TransferOutcome] = []
    vobiz.on_transfer = seen.append
    try:
        call = vobiz.add_call()
        [outcome] = transfer(vobiz, call.call_uuid, aleg_url=hooks.url + "/ok")
    finally:
        vobiz.on_transfer = None
    eventually(lambda: bool(seen))
    assert seen == [outcome]


def test_a_simulator_may_take_over_transfers_and_hangups(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    asked: list[tuple[str, ...]] = []

    def take_aleg(call_uuid: str, leg: str, url: str, method: str) -> bool:
        asked.append((call_uuid, leg, url, method))
        return leg == "aleg"

    def take_hangup(call_uuid: str) -> bool:
        asked.append((call_uuid,))
        return True

    vobiz.on_transfer_request, vobiz.on_hangup_request = take_aleg, take_hangup
    try:
        call = vobiz.add_call(bleg_uuid="bleg-2")
        outcomes = transfer(
            vobiz, call.call_uuid, aleg_url=hooks.url + "/ok", bleg_url=hooks.url + "/ok"
        )
        with vobiz.client() as client:
            client.hangup(call.call_uuid)
    finally:
        vobiz.on_transfer_request = vobiz.on_hangup_request = None
    # The B-leg is asked first: were it refused (400), the A-leg must not have moved.
    assert asked == [
        (call.call_uuid, "bleg", hooks.url + "/ok", "POST"),
        (call.call_uuid, "aleg", hooks.url + "/ok", "POST"),
        (call.call_uuid,),
    ]
    assert [o.leg for o in outcomes] == ["bleg"]  # only the leg LocalVobiz kept
    assert [h.params["CallUUID"] for h in hooks.hits] == ["bleg-2"]
    assert vobiz.call(call.call_uuid).status == "in-progress"  # the simulator ends it


def test_a_url_for_a_leg_not_selected_is_ignored(vobiz: LocalVobiz, hooks: WebhookApp) -> None:
    call = vobiz.add_call(bleg_uuid="bleg-3")
    body = {"legs": "aleg", "aleg_url": hooks.url + "/ok", "bleg_url": hooks.url + "/error"}
    reply = api(vobiz, "POST", call_path(vobiz, call.call_uuid), json=body)
    assert reply.status_code == 202
    assert reply.json()["message"] == "call transferred"
    [outcome] = vobiz.wait_for_transfer(call.call_uuid)
    assert (outcome.leg, outcome.status) == ("aleg", "executed")
    assert [h.path for h in hooks.hits] == ["ok"]


def test_webhooks_carry_no_cookies(vobiz: LocalVobiz, hooks: WebhookApp) -> None:
    # Vobiz keeps no cookies (spec §1.0: the XML is stateless); neither may its stand-in.
    client = vobiz.client()
    for _ in range(2):
        call = vobiz.add_call()
        client.transfer(call.call_uuid, aleg_url=hooks.url + "/cookie")
        vobiz.wait_for_transfer(call.call_uuid)
    assert len(hooks.hits) == 2
    assert [h.headers.get("Cookie") for h in hooks.hits] == [None, None]


def test_a_call_hung_up_during_a_failed_transfer_gets_one_hangup_webhook(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    call = vobiz.add_call(hangup_url=hooks.url + "/hangup")
    vobiz.client().transfer(call.call_uuid, aleg_url=hooks.url + "/slowfail")
    eventually(lambda: any(h.path == "slowfail" for h in hooks.hits))
    vobiz.end_call(call.call_uuid)  # the caller hangs up while the URL is being fetched
    [outcome] = vobiz.wait_for_transfer(call.call_uuid)
    assert outcome.hangup_cause_code == 7013  # the reply is still judged
    time.sleep(0.3)  # room for a second Hangup webhook, were one sent
    hangups = [h for h in hooks.hits if h.path == "hangup"]
    assert len(hangups) == 1  # spec §2.2: once per call
    assert hangups[0].params["HangupCauseCode"] == "4000"
    record = vobiz.call(call.call_uuid)
    assert (record.hangup_cause_code, record.hangup_source) == (4000, "Caller")  # kept


# -- a B-leg transfer needs a B-leg (spec §4.1, §6 item 10) --------------------------------------


@pytest.mark.parametrize("legs", ["bleg", "both"])
def test_a_b_leg_transfer_of_a_call_without_a_b_leg_is_400(
    vobiz: LocalVobiz, hooks: WebhookApp, legs: str
) -> None:
    call = vobiz.add_call()
    body = {"legs": legs, "aleg_url": hooks.url + "/ok", "bleg_url": hooks.url + "/ok"}
    reply = api(vobiz, "POST", call_path(vobiz, call.call_uuid), json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["details"]["field"] == "legs"
    assert "no B-leg" in error["message"] and "legs=aleg" in error["message"]
    # Nothing was fetched in the A-leg's name, nothing recorded as executed, nothing moved.
    assert vobiz.transfers == [] and vobiz.sent_webhooks == [] and hooks.hits == []
    assert vobiz.call(call.call_uuid).status == "in-progress"
    with vobiz.client() as client, pytest.raises(errors.ValidationError, match="no B-leg"):
        client.transfer(call.call_uuid, legs="bleg", bleg_url=hooks.url + "/ok")


def test_a_b_leg_transfer_naming_the_b_legs_own_uuid_says_both_ways_that_work(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    call = vobiz.add_call("aleg-named-1", bleg_uuid="bleg-named-1")
    body = {"legs": "bleg", "bleg_url": hooks.url + "/ok"}
    reply = api(vobiz, "POST", call_path(vobiz, "bleg-named-1"), json=body)
    assert reply.status_code == 400
    message = reply.json()["error"]["message"]
    assert "call bleg-named-1 is itself the B-leg of aleg-named-1" in message
    assert "legs=aleg on its own CallUUID (aleg= in answerkit)" in message
    assert "legs=bleg on aleg-named-1 (bleg= in answerkit)" in message
    assert vobiz.transfers == [] and hooks.hits == []  # nothing moved
    assert vobiz.call(call.call_uuid).bleg_uuid == "bleg-named-1"


def test_a_b_leg_dropped_by_a_failed_transfer_cannot_be_transferred_again(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    call = vobiz.add_call(bleg_uuid="bleg-4")
    [outcome] = transfer(vobiz, call.call_uuid, legs="bleg", bleg_url=hooks.url + "/error")
    assert outcome.hangup_cause_code == 7013
    reply = api(
        vobiz,
        "POST",
        call_path(vobiz, call.call_uuid),
        json={"legs": "bleg", "bleg_url": hooks.url + "/ok"},
    )
    assert reply.status_code == 400


# -- a B-leg is a call of its own under its CallUUID (the vendor's Transfer page) ------------


def test_a_b_leg_is_retrieved_and_moved_by_its_own_call_uuid(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    # "You can transfer both call legs independently using their respective UUIDs":
    # Transfer, Retrieve and Hang-up addressed to the B-leg's own CallUUID answered 404.
    call = vobiz.add_call("aleg-own-1", bleg_uuid="bleg-own-1")
    with vobiz.client() as client:
        live = client.get_live_call("bleg-own-1")
        assert (live.call_uuid, live.call_status, live.direction) == (
            "bleg-own-1",
            "in-progress",
            "outbound",
        )
        assert live.from_ == call.to  # it presents the number the caller dialled
    [outcome] = transfer(vobiz, "bleg-own-1", aleg_url=hooks.url + "/ok")
    assert (outcome.call_uuid, outcome.leg, outcome.status) == ("bleg-own-1", "aleg", "executed")
    [hit] = hooks.hits
    assert (hit.params["CallUUID"], hit.params["ALegUUID"]) == ("bleg-own-1", call.call_uuid)
    # Moved, it lives on as a call of its own, as a simulated B-leg does: out of the bridge.
    assert vobiz.call("bleg-own-1").status == "in-progress"
    assert vobiz.call(call.call_uuid).bleg_uuid is None
    vobiz.end_call(call.call_uuid)
    assert vobiz.call("bleg-own-1").status == "in-progress"


def test_a_b_leg_moved_with_legs_bleg_leaves_its_bridge(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    call = vobiz.add_call("aleg-own-2", bleg_uuid="bleg-own-2")
    [outcome] = transfer(vobiz, call.call_uuid, legs="bleg", bleg_url=hooks.url + "/ok")
    assert outcome.executed
    assert vobiz.call(call.call_uuid).bleg_uuid is None
    assert vobiz.call("bleg-own-2").status == "in-progress"
    with vobiz.client() as client:
        assert client.get_live_call("bleg-own-2").call_status == "in-progress"


def test_a_b_legs_transfer_carries_its_own_call_whichever_uuid_names_it(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    # With legs=bleg on the A-leg's CallUUID, the B-leg's Transfer webhook carried the
    # caller's Direction, From and To (only CallUUID and ALegUUID were its own).
    seen = []
    for n, (name, legs) in enumerate((("aleg", "bleg"), ("bleg", "aleg"))):
        call = vobiz.add_call(f"aleg-params-{n}", bleg_uuid=f"bleg-params-{n}")
        start = len(hooks.hits)
        named = call.call_uuid if name == "aleg" else f"bleg-params-{n}"
        url = {f"{legs}_url": hooks.url + "/ok"}
        [outcome] = transfer(vobiz, named, legs=legs, **url)
        assert outcome.executed
        [hit] = [h for h in hooks.hits[start:] if h.params.get("Event") == "Transfer"]
        keys = ("CallUUID", "ALegUUID", "Direction", "From")
        seen.append({k: hit.params.get(k) for k in keys})
    assert seen[0]["Direction"] == seen[1]["Direction"] == "outbound"
    assert seen[0]["From"] == seen[1]["From"]
    assert [s["CallUUID"] for s in seen] == ["bleg-params-0", "bleg-params-1"]


@pytest.mark.parametrize("url", ["http://x.example/hold", "http://127.evil.example/hold"])
def test_a_plain_http_transfer_url_to_another_machine_is_refused(
    vobiz: LocalVobiz, url: str
) -> None:
    # It was taken (and fetched): a test could pass with a transfer target production,
    # on Vobiz's https-only callbacks (spec §1.0), never reaches.
    call = vobiz.add_call("aleg-http-1")
    with vobiz.client() as client, pytest.raises(errors.ValidationError, match="plain http"):
        client.transfer(call.call_uuid, aleg_url=url)
    assert vobiz.call(call.call_uuid).status == "in-progress"


def test_a_b_leg_hung_up_by_its_own_call_uuid_leaves_the_caller_live(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    call = vobiz.add_call("aleg-own-3", bleg_uuid="bleg-own-3", hangup_url=hooks.url + "/hangup")
    with vobiz.client() as client:
        client.hangup("bleg-own-3")
        with pytest.raises(errors.CallNotActiveError):
            client.get_live_call("bleg-own-3")
        assert client.get_live_call(call.call_uuid).call_status == "in-progress"
    record = vobiz.call("bleg-own-3")
    assert (record.status, record.hangup_source) == ("completed", "API Request")
    assert vobiz.call(call.call_uuid).bleg_uuid is None  # no B-leg to move any more
    time.sleep(0.2)  # room for a Hangup webhook, were one sent
    assert vobiz.sent_webhooks == []  # spec §2.2: a B-leg sends none; the caller is live


def test_a_b_leg_ends_with_its_caller(vobiz: LocalVobiz) -> None:
    call = vobiz.add_call("aleg-own-4", bleg_uuid="bleg-own-4")
    vobiz.end_call(call.call_uuid)
    record = vobiz.call("bleg-own-4")
    assert (record.status, record.hangup_cause_code, record.hangup_source) == (
        "completed",
        4000,
        "Caller",
    )
    agent = {"aleg_url": "https://voice.example.com/agent"}
    assert api(vobiz, "POST", call_path(vobiz, "bleg-own-4"), json=agent).status_code == 404


def test_a_b_leg_dropped_by_its_own_transfer_ends_and_leaves_the_caller(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    call = vobiz.add_call("aleg-own-5", bleg_uuid="bleg-own-5")
    [outcome] = transfer(vobiz, "bleg-own-5", aleg_url=hooks.url + "/error")
    assert outcome.hangup_cause_code == 7013
    assert vobiz.call("bleg-own-5").status == "completed"
    assert vobiz.call(call.call_uuid).status == "in-progress"
    assert vobiz.call(call.call_uuid).bleg_uuid is None


# -- request bodies as HTTP/1.1 frames them ------------------------------------------------------


def test_a_chunked_json_body_is_read(vobiz: LocalVobiz, hooks: WebhookApp) -> None:
    # Only Content-Length was read: a chunked body (valid HTTP/1.1) was empty, so 400.
    call = vobiz.add_call()
    body = b'{"legs": "aleg", "aleg_url": "' + hooks.url.encode() + b'/ok"}'
    with requests.Session() as session:
        headers = {"X-Auth-ID": vobiz.auth_id, "X-Auth-Token": vobiz.auth_token,
                   "Content-Type": "application/json"}  # fmt: skip
        url = f"http://127.0.0.1:{vobiz.port}{call_path(vobiz, call.call_uuid)}"
        reply = session.post(url, data=iter([body[:10], body[10:]]), headers=headers, timeout=5)
        assert reply.status_code == 202, reply.text
        assert "chunked" in vobiz.requests[-1].headers.get("Transfer-Encoding", "")
        assert vobiz.requests[-1].json == {"legs": "aleg", "aleg_url": hooks.url + "/ok"}
        # The connection is still in step: the next request on it is read as its own.
        again = session.get(url, params={"status": "live"}, headers=headers, timeout=5)
        assert again.status_code == 200
    [outcome] = vobiz.wait_for_transfer(call.call_uuid)
    assert outcome.executed


def test_a_malformed_chunked_body_is_400(vobiz: LocalVobiz) -> None:
    call = vobiz.add_call()
    head = (
        f"POST {call_path(vobiz, call.call_uuid)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-Auth-ID: {vobiz.auth_id}\r\nX-Auth-Token: {vobiz.auth_token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", vobiz.port), timeout=5) as sock:
        sock.sendall(head.encode() + b"zz\r\n{}\r\n0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):  # the server closes: the framing is lost
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ") and b"chunk size" in answer
    assert vobiz.transfers == []


# -- wait_for_transfer says why it found nothing -------------------------------------------------


def test_wait_for_transfer_of_a_simulated_call_says_to_run_the_call(vobiz: LocalVobiz) -> None:
    vobiz.on_transfer_request = lambda call_uuid, leg, url, method: True  # a simulator's hook
    try:
        call = vobiz.add_call()
        vobiz.client().transfer(call.call_uuid, aleg_url="https://voice.example.com/hold")
        with pytest.raises(AssertionError) as info:
            vobiz.wait_for_transfer(call.call_uuid)
    finally:
        vobiz.on_transfer_request = None
    message = str(info.value)
    assert call.call_uuid in message and "taken over by a CallSimulator" in message
    assert "run()" in message and "transcript" in message


def test_wait_for_transfer_says_when_no_transfer_was_asked_for(vobiz: LocalVobiz) -> None:
    call = vobiz.add_call()
    with pytest.raises(AssertionError, match="no Transfer request for call"):
        vobiz.wait_for_transfer(call.call_uuid, timeout=0.05)
    with pytest.raises(AssertionError, match="LocalVobiz has no call 'never-was'"):
        vobiz.wait_for_transfer("never-was", timeout=0.05)


@pytest.mark.parametrize("to", ["+14155550111<<+14155550122", "<".join(["+1415555"] * 1001)])
def test_make_call_to_bad_destinations_is_400(vobiz: LocalVobiz, to: str) -> None:
    body = {"from": "+14155550100", "to": to, "answer_url": "https://x/a", "answer_method": "POST"}
    reply = api(vobiz, "POST", f"/api/v1/Account/{vobiz.auth_id}/Call/", json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["details"]["field"] == "to"
    assert not vobiz.calls


@pytest.mark.parametrize(("aleg_path", "aleg_status"), [("ok", "executed"), ("error", "dropped")])
def test_both_legs_move_the_b_leg_first_and_it_lives_on(
    vobiz: LocalVobiz, hooks: WebhookApp, aleg_path: str, aleg_status: str
) -> None:
    # The A-leg moved first, and a failed URL of its ended the B-leg still bridged to it,
    # whose own URL was then never fetched; the simulator moves the B-leg first (legs=both
    # is the whole session).
    call = vobiz.add_call(f"aleg-both-{aleg_path}", bleg_uuid=f"bleg-both-{aleg_path}")
    outcomes = transfer(vobiz, call.call_uuid, legs="both", aleg_url=f"{hooks.url}/{aleg_path}",
                        bleg_url=hooks.url + "/ok")  # fmt: skip
    assert [(o.leg, o.status) for o in outcomes] == [("bleg", "executed"), ("aleg", aleg_status)]
    assert [hit.path for hit in hooks.hits] == ["ok", aleg_path]
    assert vobiz.call(f"bleg-both-{aleg_path}").status == "in-progress"
    assert vobiz.call(call.call_uuid).bleg_uuid is None


def test_a_caller_moved_out_of_a_bridge_ends_its_b_leg_as_the_simulator_does(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    # The B-leg stayed bridged to a caller who had left, and was hung up only when that
    # caller's call ended later: the simulator hangs it up at the move (sim_bridge).
    call = vobiz.add_call("aleg-move-1", bleg_uuid="bleg-move-1")
    [outcome] = transfer(vobiz, call.call_uuid, aleg_url=hooks.url + "/ok")
    assert outcome.executed
    bleg = vobiz.call("bleg-move-1")
    assert (bleg.status, bleg.hangup_cause_code, bleg.hangup_source) == (
        "completed",
        4000,
        "API Request",
    )
    assert vobiz.call(call.call_uuid).bleg_uuid is None


def test_an_agent_placed_with_make_call_and_bridged_is_linked_to_its_caller(
    vobiz: LocalVobiz,
) -> None:
    # Listed already, the B-leg was not linked: it outlived its caller, and the caller
    # kept pointing at it after it hung up.
    agent_uuid = _answered_agent(vobiz)
    call = vobiz.add_call("aleg-agent-1", bleg_uuid=agent_uuid)
    vobiz.end_call(call.call_uuid)
    assert vobiz.call(agent_uuid).status == "completed"


def test_an_agent_ended_with_its_caller_sends_its_own_hangup_webhook(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    # Linked to the caller it was bridged to, the agent ended with it silently: a call of
    # its own has its Hangup webhook (spec §2.2, once per call).
    agent = _answered_agent(vobiz, hangup_url=hooks.url + "/hangup")
    call = vobiz.add_call("aleg-agent-2", bleg_uuid=agent)
    vobiz.end_call(call.call_uuid)
    deadline = time.monotonic() + 5
    while not hooks.hits and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(h.path, h.params["CallUUID"], h.params["Event"]) for h in hooks.hits] == [
        ("hangup", agent, "Hangup")
    ]


def test_a_call_ended_twice_keeps_its_cause_and_sends_one_hangup_webhook(
    vobiz: LocalVobiz, hooks: WebhookApp
) -> None:
    call = vobiz.add_call(hangup_url=hooks.url + "/hangup")
    vobiz.end_call(call.call_uuid)
    first = vobiz.call(call.call_uuid).hangup_cause_code
    vobiz.end_call(call.call_uuid, code=7013)
    eventually(lambda: bool(hooks.hits))
    time.sleep(0.2)  # room for a second, were one sent
    assert len(hooks.hits) == 1 and vobiz.call(call.call_uuid).hangup_cause_code == first


def _answered_agent(vobiz: LocalVobiz, **kwargs: str) -> str:
    """The CallUUID of an agent call placed with make_call and answered."""
    with vobiz.client() as client:
        placed = client.make_call("+14155550100", "+14155550142", "https://v.example.com/a",
                                  **kwargs)  # fmt: skip
    uuid = placed.request_uuid if isinstance(placed.request_uuid, str) else placed.request_uuid[0]
    vobiz.answer_call(uuid)
    return uuid


@pytest.mark.parametrize("outcome", ["answer", "bridge"])
def test_a_dials_b_leg_is_live_from_dial_answer_and_completed_once_it_left(
    call_simulator: Any, local_vobiz: LocalVobiz, outcome: str
) -> None:
    # The simulator listed the B-leg only once bridged: a DialAnswer handler naming it by
    # its DialBLegUUID got 404, and a Dial answered without a bridge never listed it.
    from answerkit.app import CallFlow
    from answerkit.elements import Dial, Number
    from answerkit.elements import Response as Doc
    from answerkit.request import CallRequest
    from answerkit.state import MemoryStore

    flow = CallFlow("bleg", public_url="https://voice.example.com",
                    auth_token="fix-token-0123456789abcdef", state=MemoryStore())  # fmt: skip
    seen: dict[str, str] = {}

    @flow.route("/answer")
    def answer(call: CallRequest) -> Doc:
        return Doc(Dial(Number("+14155550142"), caller_id="+14155550111",
                        callback_url=flow.url_for("cb")))  # fmt: skip

    @flow.route("/cb", status_callback=True)
    def cb(call: CallRequest) -> None:
        if call.event == "DialAnswer":
            bleg = call.params["DialBLegUUID"]
            seen[bleg] = local_vobiz.client().get_live_call(bleg).call_status

    sim = call_simulator(flow)
    call = sim.call("answer", dial=outcome)
    call.run()
    call.end_bridge()
    sim.run_until_idle()
    assert not call.transcript.handler_errors
    [(bleg, status)] = seen.items()
    assert status == "in-progress"
    assert local_vobiz.calls[bleg].status == "completed"
