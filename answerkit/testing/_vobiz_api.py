"""The REST endpoints LocalVobiz serves, with the platform's status codes and error shapes.

Every request is logged; then the next fault switch, if any, applies; then the
path, the credentials and the body are checked as strictly as the platform does
(see :mod:`answerkit.testing.local_vobiz` for the choices made).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from answerkit._api_args import check_destinations, check_phone
from answerkit._xmltext import names_this_machine
from answerkit.errors import ArgumentError
from answerkit.testing._vobiz_http import Reply
from answerkit.testing._vobiz_records import (
    CALL_HOOKS,
    CallTable,
    LiveCallRecord,
    ReceivedRequest,
    TransferOutcome,
)
from answerkit.testing._vobiz_webhooks import WebhookSender, judge_transfer_reply, webhook_params

__all__ = ["Fault", "RestApi", "TransferRequestHook", "error_body"]

#: ``hook(call_uuid, leg, url, method) -> bool``: True when a simulator takes the leg over.
TransferRequestHook = Callable[[str, str, str, str], bool]

LEGS = ("aleg", "bleg", "both")
logger = logging.getLogger("answerkit.testing")
METHODS = ("GET", "POST")
MAX_DESTINATIONS = 1000  # make-call's "<"-separated destinations (spec §4.4)


@dataclass
class Fault:
    """One fault switch: applies to the next ``remaining`` API requests."""

    kind: str  # "fail" | "delay" | "reset" | "malformed"
    remaining: int
    status: int = 503
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The documented error shape (spec §4.0, first form)."""
    return {
        "status": "error",
        "error": {"code": code, "message": message, "details": details or {}},
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "requestId": str(uuid.uuid4()),
    }


def json_reply(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON answer with an ``X-Request-ID``."""
    request_id = None
    if isinstance(body, dict):
        request_id = body.get("requestId") or body.get("api_id")
    merged = {"Content-Type": "application/json", "X-Request-ID": request_id or str(uuid.uuid4())}
    merged.update(headers or {})
    return Reply(status, json.dumps(body).encode(), merged)


def _bad_request(message: str, field_name: str | None = None) -> Reply:
    details = {"field": field_name} if field_name else None
    return json_reply(400, error_body("VALIDATION_ERROR", message, details))


def _unauthorized(message: str) -> Reply:
    return json_reply(401, error_body("UNAUTHORIZED", message))


def _gateway_not_found() -> Reply:
    return json_reply(404, {"message": "Not Found"})  # the gateway's own shape


def _call_not_found(call_uuid: str) -> Reply:
    return json_reply(404, {"api_id": str(uuid.uuid4()), "error": f"call {call_uuid} not found"})


def _method_not_allowed() -> Reply:
    return json_reply(405, error_body("METHOD_NOT_ALLOWED", "method not allowed"))


def _refused_callback_url(name: str, url: object) -> Reply | None:
    """The 400 for a callback URL Vobiz could not call, or None."""
    if not _is_url(url):
        return _bad_request(f"{name} is not a valid absolute URL", name)
    if str(url).lower().startswith("http://") and not names_this_machine(str(url)):
        # Vobiz calls https URLs only (spec §1.0); http is taken for this machine's own
        # servers, which tests serve on loopback. Else a test would pass with a callback
        # production never reaches (the production client refuses it before sending).
        return _bad_request(
            f"{name} is plain http to another machine: Vobiz calls https URLs only (spec "
            "§1.0); LocalVobiz takes http for this machine's servers",
            name,
        )
    return None


def _is_url(value: object) -> bool:
    if not isinstance(value, str) or any(ord(c) < 33 for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:  # an unclosed [IPv6 bracket, a bad port: a malformed URL is a 400
        return False
    # The host itself, not just a netloc: "https://:80/hold" and "https://@/hold" have a
    # netloc but no host to fetch, and the platform answers a malformed URL with 400.
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _json_object(headers: Mapping[str, str], body: bytes) -> dict[str, Any] | Reply:
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return _bad_request("send a JSON body with Content-Type: application/json")
    try:
        data = json.loads(body)
    except ValueError:
        return _bad_request("the body is not valid JSON")
    if not isinstance(data, dict):
        return _bad_request("the body must be a JSON object")
    return data


class RestApi:
    """Turns one HTTP request into a :class:`Reply`; owns the request log and the faults."""

    def __init__(
        self,
        table: CallTable,
        webhooks: WebhookSender,
        *,
        auth_id: str,
        auth_token: str,
        parent_auth_id: str | None,
    ) -> None:
        self.table = table
        self.webhooks = webhooks
        self.auth_id = auth_id
        self.auth_token = auth_token
        self.parent_auth_id = parent_auth_id or auth_id
        self.log: list[ReceivedRequest] = []
        self.faults: list[Fault] = []
        self.on_make_call: Callable[[LiveCallRecord, Mapping[str, Any]], None] | None = None
        self.on_transfer: Callable[[TransferOutcome], None] | None = None
        self.on_transfer_request: TransferRequestHook | None = None
        self.on_hangup_request: Callable[[str], bool] | None = None

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Log the request, apply the next fault, and answer it."""
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with self.table.lock:
            self.log.append(
                ReceivedRequest(method, parts.path, query, dict(headers), parsed, body, time.time())
            )
            fault = self._take_fault() if parts.path.startswith("/api/") else None
        if fault is not None and fault.kind == "fail":
            return json_reply(fault.status, fault.body, fault.headers)
        if fault is not None and fault.kind == "reset":
            return Reply(0, drop=True)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        reply = self._route(method, parts.path, query, headers, body)
        if fault is not None and fault.kind == "malformed" and reply.status != 204:
            cut = reply.body[: max(1, len(reply.body) // 2)] + b"<"
            reply = Reply(reply.status, cut, reply.headers, after=reply.after)
        return reply

    def _take_fault(self) -> Fault | None:
        if not self.faults:
            return None
        fault = self.faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self.faults.pop(0)
        return fault

    def _route(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        prefix = "/api/v1/"
        if not path.startswith(prefix):
            return _gateway_not_found()
        segments = path[len(prefix) :].split("/")
        if len(segments) < 3 or segments[0].lower() != "account" or segments[2].lower() != "call":
            return _gateway_not_found()
        if segments[0] != "Account" or segments[2] != "Call":
            return _unauthorized(
                "authentication failed: paths are case-sensitive, use /Account/{auth_id}/Call/"
            )
        if segments[-1] != "" or len(segments) not in (4, 5):
            return _gateway_not_found()
        lower = {k.lower(): v for k, v in headers.items()}
        if lower.get("x-auth-id") != self.auth_id or lower.get("x-auth-token") != self.auth_token:
            return _unauthorized("authentication failed: check X-Auth-ID and X-Auth-Token")
        if segments[1] != self.auth_id:
            return _unauthorized("authentication failed: the path's auth id is not X-Auth-ID's")
        if len(segments) == 4:
            return self._make_call(lower, body) if method == "POST" else _method_not_allowed()
        call_uuid = segments[3]
        if method == "POST":
            return self._transfer(call_uuid, lower, body)
        if method == "DELETE":
            return self._hangup(call_uuid)
        if method == "GET":
            return self._get(call_uuid, query)
        return _method_not_allowed()

    # -- endpoints ---------------------------------------------------------------------

    def _transfer(self, call_uuid: str, headers: Mapping[str, str], body: bytes) -> Reply:
        data = _json_object(headers, body)
        if isinstance(data, Reply):
            return data
        legs = data.get("legs", "aleg")
        if legs not in LEGS:
            return _bad_request("legs must be aleg, bleg or both", "legs")
        targets: list[tuple[str, str, str]] = []
        for leg in ("aleg", "bleg"):
            if legs not in (leg, "both"):
                continue  # the real API ignores a URL for a leg that is not selected
            url, method = data.get(f"{leg}_url"), data.get(f"{leg}_method", "POST")
            if not url:
                return _bad_request(f"{leg}_url is required when legs is {legs}", f"{leg}_url")
            refused = _refused_callback_url(f"{leg}_url", url)
            if refused is not None:
                return refused
            if method not in METHODS:
                return _bad_request(f"{leg}_method must be GET or POST", f"{leg}_method")
            targets.append((leg, url, method))
        record = self.table.get(call_uuid)
        if record is None or record.status != "in-progress":
            return _call_not_found(call_uuid)
        take_over = self.on_transfer_request
        kept: list[tuple[str, str, str]] = []
        # The B-leg is asked first: when it is refused, the A-leg must not have moved.
        for target in sorted(targets, key=lambda t: t[0] != "bleg"):
            if take_over is not None and take_over(call_uuid, *target):
                continue
            if target[0] == "bleg" and not record.bleg_uuid:
                # Spec §6 item 10: what Vobiz does is unknown. Fetching the URL in the
                # A-leg's name would run B-leg XML on the caller, so nothing is applied and
                # the answer says why (a 404 would read as "the call ended", which it has not).
                aleg = self.table.bridged_aleg(call_uuid)
                if aleg is not None:
                    # The B-leg's own CallUUID with legs=bleg: its A-leg is the call with
                    # a B-leg. Both ways that work, in the API's words and answerkit's.
                    why = (
                        f"call {call_uuid} is itself the B-leg of {aleg.call_uuid}: move it "
                        f"with legs=aleg on its own CallUUID (aleg= in answerkit), or with "
                        f"legs=bleg on {aleg.call_uuid} (bleg= in answerkit)"
                    )
                else:
                    why = (
                        f"call {call_uuid} has no B-leg bridged to it: use legs=aleg to move "
                        "the caller (aleg= in answerkit)"
                    )
                return _bad_request(f"legs={legs}, but {why}", "legs")
            kept.append(target)
        # With legs=both the B-leg moves first, as in the simulator: the A-leg's leaving
        # (its URL failing, say) would end a B-leg still bridged to it.
        kept.sort(key=lambda t: t[0] != "bleg")
        self.table.note_taken_over(call_uuid, len(targets) - len(kept))
        targets = kept
        generation = self.table.begin_transfer(call_uuid, len(targets)) if targets else 0
        if generation is None:
            return _call_not_found(call_uuid)

        def deliver() -> None:
            both = len(targets) == 2  # the whole session moves: neither leg hangs up the other
            for leg, url, method in targets:
                self._deliver_transfer(generation, call_uuid, leg, url, method, both=both)

        reply = json_reply(
            202,
            {"api_id": str(uuid.uuid4()), "message": "call transferred", "call_uuid": call_uuid},
        )
        if targets:  # the platform answers 202 first and fetches the URL afterwards
            reply.after.append(threading.Thread(target=deliver, daemon=True).start)
        return reply

    def _hangup(self, call_uuid: str) -> Reply:
        record = self.table.get(call_uuid)
        if record is None or not (record.live or record.status == "queued"):
            return _call_not_found(call_uuid)
        take_over = self.on_hangup_request
        if take_over is not None and take_over(call_uuid):
            return Reply(204, b"", {"X-Request-ID": str(uuid.uuid4())})  # the simulator ends it
        self.end_call(call_uuid, code=4000, source="API Request", notify=True)
        return Reply(204, b"", {"X-Request-ID": str(uuid.uuid4())})

    def _get(self, call_uuid: str, query: Mapping[str, str]) -> Reply:
        status = query.get("status")
        if status not in (None, "live", "queued"):
            return _bad_request("status must be live or queued", "status")
        record = self.table.get(call_uuid)
        record = self.table.snapshot(call_uuid) if record is not None else None
        if (
            record is None
            or status is None  # no CDRs are kept, so the final-record lookup finds nothing
            or (status == "live" and not record.live)
            or (status == "queued" and record.status != "queued")
        ):
            return _call_not_found(call_uuid)
        return json_reply(
            200,
            {
                "api_id": str(uuid.uuid4()),
                "call_status": record.status,
                "call_uuid": record.call_uuid,
                "request_uuid": record.request_uuid,
                "caller_name": record.caller_name or record.from_,
                "direction": record.direction,
                "from": record.from_,
                "to": record.to,
                "session_start": record.session_start,
                "stir_attestation": "Not Applicable",
                "stir_verification": "Not Applicable",
            },
        )

    def _make_call(self, headers: Mapping[str, str], body: bytes) -> Reply:
        data = _json_object(headers, body)
        if isinstance(data, Reply):
            return data
        # answer_method too: the API reference requires it (spec §4.4).
        for name in ("from", "to", "answer_url", "answer_method"):
            if not data.get(name) or not isinstance(data[name], str):
                return _bad_request(f"{name} is required", name)
        try:
            check_phone("from", data["from"])
            check_destinations("to", data["to"])
        except ArgumentError as exc:  # as the production client refuses them
            return _bad_request(str(exc), exc.field)
        detection = data.get("machine_detection")
        if not (detection is None or detection is True or detection in ("true", "hangup")):
            return _bad_request("machine_detection must be true or hangup", "machine_detection")
        for name in (*CALL_HOOKS, "machine_detection"):
            if f"{name}_url" in data:
                refused = _refused_callback_url(f"{name}_url", data[f"{name}_url"])
                if refused is not None:
                    return refused
            if data.get(f"{name}_method", "POST") not in METHODS:
                return _bad_request(f"{name}_method must be GET or POST", f"{name}_method")
        caller_name = data.get("caller_name")
        if caller_name is not None and (not isinstance(caller_name, str) or len(caller_name) > 50):
            return _bad_request("caller_name must be at most 50 characters", "caller_name")
        sip_params = {}
        for pair in str(data.get("sip_headers") or "").split(","):
            key, sep, value = pair.partition("=")
            if sep and key:
                sip_params[f"X-PH-{key}"] = value  # they come back with this prefix (§2.1)
        # Spec §4.4: "Use < to dial up to 1000 destinations at once": one call each.
        destinations = data["to"].split("<")
        if len(destinations) > MAX_DESTINATIONS or not all(destinations):
            return _bad_request(
                f"to takes 1 to {MAX_DESTINATIONS} destinations separated by '<', none empty",
                "to",
            )
        hooks: dict[str, Any] = {}
        for kind in CALL_HOOKS:
            hooks[f"{kind}_url"] = data.get(f"{kind}_url")
            hooks[f"{kind}_method"] = data.get(f"{kind}_method", "POST")
        records = [
            self.table.add(
                LiveCallRecord(
                    call_uuid=(call_uuid := str(uuid.uuid4())),
                    from_=data["from"],
                    to=to,
                    direction="outbound",
                    **hooks,
                    caller_name=caller_name,
                    request_uuid=call_uuid,
                    params=dict(sip_params),
                    # Spec §4.4: success means queued, not answered; a Transfer gets 404
                    # until the call is answered (a simulator playing it, or answer_call()).
                    status="queued",
                )
            )
            for to in destinations
        ]
        uuids = [record.call_uuid for record in records]
        reply = json_reply(
            201,
            {
                "api_id": str(uuid.uuid4()),
                "message": "call fired",
                # One destination: its UUID, as documented; several: one UUID each.
                "request_uuid": uuids[0] if len(uuids) == 1 else uuids,
            },
        )
        hook = self.on_make_call
        if hook is not None:
            for record in records:
                thread = threading.Thread(target=hook, args=(record, data), daemon=True)
                reply.after.append(thread.start)
        return reply

    # -- what happens after the answer -------------------------------------------------

    def end_call(self, call_uuid: str, *, code: int, source: str, notify: bool) -> LiveCallRecord:
        """End the call; POST its hangup webhook (in a thread) when ``notify`` and it has one.
        A B-leg bridged to it is hung up with it (normal clearing, by the same party, as a
        simulated bridge ends), with its own hangup webhook if it has one (an agent placed
        with make_call, then bridged)."""
        with self.table.lock:  # checked and ended at once: two enders send one webhook
            ended = self.table.get(call_uuid)
            if ended is not None and ended.hangup_cause_code is not None:
                # Ended once already (spec §2.2: one Hangup webhook per call): its cause stays.
                return self.table.snapshot(call_uuid)
            bleg = self.table.bridged_bleg(call_uuid)
            snapshot = self.table.end(call_uuid, code, source)
            if bleg is not None:
                self.end_call(bleg.call_uuid, code=4000, source=source, notify=True)
        if notify and snapshot.hangup_url:
            params = webhook_params(snapshot, "Hangup", self.parent_auth_id)
            url, method = snapshot.hangup_url, snapshot.hangup_method
            threading.Thread(
                # The log it belongs in is taken now: a reset() before the thread runs
                # keeps it out of the next test's.
                target=self.webhooks.notify,
                args=(url, method, params, self.webhooks.generation),
                daemon=True,
            ).start()
        return snapshot

    def _drop_bleg(self, aleg: LiveCallRecord, code: int) -> None:
        """A B-leg whose transfer URL failed is dropped: its own record ends (with its
        Hangup webhook only if it is a call with one of its own, an agent placed with
        make_call), and the A-leg has no B-leg any more."""
        bleg = self.table.get(aleg.bleg_uuid) if aleg.bleg_uuid else None
        if bleg is not None and bleg.live and self.table.bridged_aleg(bleg.call_uuid) is aleg:
            self.end_call(bleg.call_uuid, code=code, source="Error", notify=True)
        aleg.bleg_uuid = None

    def _moved_out_of_bridge(self, moved: LiveCallRecord) -> None:
        """``moved`` (with legs=aleg) left its bridge: a B-leg bridged to it is hung up, as a
        simulated Dial's is when its caller is transferred away (sim_bridge); a B-leg moved
        by its own CallUUID just leaves the bridge and lives on."""
        bleg = self.table.bridged_bleg(moved.call_uuid)
        if bleg is not None:
            self.end_call(bleg.call_uuid, code=4000, source="API Request", notify=True)
        else:
            self.table.leave_bridge(moved.call_uuid)
        moved.bleg_uuid = None

    def _deliver_transfer(
        self, generation: int, call_uuid: str, leg: str, url: str, method: str, *, both: bool
    ) -> None:
        with self.table.lock:
            if generation != self.table.generation:
                return  # reset() happened meanwhile: the call is gone
            record = self.table.snapshot(call_uuid)
            moving = self.table.get(record.bleg_uuid or "") if leg == "bleg" else None
            gone = leg == "bleg" and (moving is None or not moving.live)
            # The moving leg's own parameters: a B-leg's Direction, From and To are its
            # own (the caller's, under legs=bleg, differed from the same leg's under
            # legs=aleg on its own UUID).
            sender = self.table.snapshot(moving.call_uuid) if moving is not None else record
        if gone:
            # Hung up meanwhile (between the API's answer and this fetch): a leg that is
            # gone fetches nothing.
            why = "the B-leg had ended before its URL was fetched"
            outcome = TransferOutcome(call_uuid, leg, url, method, "dropped", None, error=why)
            with self.table.lock:
                if generation != self.table.generation:
                    return
                self.table.finish_transfer(generation, outcome)
            self._tell_transfer(outcome)
            return
        params = webhook_params(sender, "Transfer", self.parent_auth_id)
        if leg == "bleg" and record.bleg_uuid:
            params.update(CallUUID=record.bleg_uuid, ALegUUID=record.call_uuid)
        response, error = self.webhooks.send(url, method, params)
        try:
            outcome = judge_transfer_reply(call_uuid, leg, url, method, response, error)
        except Exception as exc:  # a fault in the fake must not leave wait_for_transfer hanging
            logger.exception("LocalVobiz could not judge the transfer reply from %s", url)
            why = f"LocalVobiz could not judge the reply: {type(exc).__name__}: {exc}"
            outcome = TransferOutcome(call_uuid, leg, url, method, "dropped", 8013, error=why)
        with self.table.lock:
            if generation != self.table.generation:
                return  # reset() happened meanwhile: this outcome belongs to an earlier test
            # End the call before recording, so a test woken by the outcome sees it ended.
            live = self.table.get(call_uuid)
            # The leg that was asked to move: a B-leg named by its own UUID moves with
            # legs=aleg, one bridged to the named call with legs=bleg.
            moved = record.bleg_uuid if leg == "bleg" else call_uuid
            if outcome.hangup_cause_code is not None and leg == "aleg":
                # Only a live call ends here: one the caller hung up meanwhile already had
                # its one Hangup webhook (spec §2.2: once per call) and keeps its cause.
                if live is not None and live.live:
                    self.end_call(
                        call_uuid, code=outcome.hangup_cause_code, source="Error", notify=True
                    )
            elif outcome.hangup_cause_code is not None and live is not None:
                self._drop_bleg(live, outcome.hangup_cause_code)
            if outcome.executed and moved and leg == "bleg":
                # A moved B-leg lives on as a call of its own, out of its bridge, as a
                # simulated one does (Bridge.transfer_bleg).
                self.table.leave_bridge(moved)
            elif outcome.executed and live is not None and not both:
                self._moved_out_of_bridge(live)
            self.table.finish_transfer(generation, outcome)
        self._tell_transfer(outcome)

    def _tell_transfer(self, outcome: TransferOutcome) -> None:
        hook = self.on_transfer
        if hook is not None:
            hook(outcome)
