"""LocalVobiz: a real HTTP server on 127.0.0.1 that plays the Vobiz live-call REST API.

For tests, the call simulator and the demo. It is as strict as the platform where
the spec says how the platform behaves (§4), and says so where it had to choose:

* Paths are ``/api/v1/Account/{auth_id}/Call/`` and ``…/Call/{call_uuid}/``. A
  wrong-case ``account``/``call`` answers 401, as the real API does. A missing
  trailing slash answers 404 ``{"message": "Not Found"}``: the pages disagree
  (401 or 404, spec §6 item 18), and 404 is the answer that points at the path
  rather than at the credentials.
* ``X-Auth-ID`` and ``X-Auth-Token`` must both match, and the path's auth id must
  be the header's; otherwise 401. POST bodies must be JSON objects sent with a
  JSON content type; otherwise 400.
* A transfer validates ``legs``, the URL of every selected leg and its method
  (400; a URL for a leg not selected is ignored, as the platform does), needs an
  ``in-progress`` call (else 404) and, for ``legs=bleg`` or ``both``, a B-leg bridged
  to it (``add_call(bleg_uuid=…)``; else 400 naming ``legs``, nothing applied: the
  platform's behaviour is undocumented, spec §6 item 10, and fetching the URL in the
  A-leg's name would hide the mistake), answers 202 and then, in a background thread,
  fetches each URL with a genuinely signed ``Event=Transfer`` webhook (form POST,
  or query string for GET; ``User-Agent: Vobiz``; numbers without ``+``). The
  reply is judged as Vobiz judges it: unreachable or non-2xx drops the leg with
  cause 7013; a content type other than ``application/xml``/``text/xml``, over
  100 KB, or XML that answerkit's parser rejects drops it with 8013. A dropped
  A-leg ends the call; a dropped B-leg is cleared. ``http://`` targets are
  accepted, since tests serve them on loopback.
* A B-leg given with ``add_call(bleg_uuid=…)`` is also listed as a call of its own
  (outbound, in progress, ``ALegUUID`` on its webhooks), so Transfer, Retrieve and
  Hang-up may name it by its own CallUUID, as the vendor's Transfer page allows ("both
  call legs independently using their respective UUIDs"). Moved (``legs=aleg`` on its
  own UUID, or ``legs=bleg`` on the A-leg's), it leaves the A-leg and lives on as a call
  of its own, as a simulated B-leg does; hung up or dropped, it leaves the A-leg live with
  no B-leg; it ends when the A-leg does.
* ``GET …/?status=live`` describes a ringing or answered call; without ``status``
  it answers 404, since LocalVobiz keeps no CDRs. ``DELETE`` answers 204 and ends
  the call, POSTing a signed ``Event=Hangup`` webhook to its ``hangup_url``.
* ``POST …/Call/`` answers 201 ``call fired`` and adds a ``queued`` outbound call: success
  means queued, not answered (spec §4.4), so a Transfer on it answers 404 until it is
  answered, by a simulator playing it or by :meth:`LocalVobiz.answer_call`.

A simulator takes over through hooks: :attr:`LocalVobiz.on_make_call`,
:attr:`~LocalVobiz.on_transfer_request`, :attr:`~LocalVobiz.on_hangup_request`
and :attr:`~LocalVobiz.on_transfer`.

Fault switches (:meth:`LocalVobiz.fail_next` …) each apply to the next *n* API
requests, in the order they were set.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from answerkit.errors import ConfigurationError
from answerkit.testing._settings import port_number, positive_seconds
from answerkit.testing._vobiz_api import Fault, RestApi, TransferRequestHook, error_body
from answerkit.testing._vobiz_http import ReplyServer
from answerkit.testing._vobiz_records import (
    CallTable,
    LiveCallRecord,
    ReceivedRequest,
    SentWebhook,
    TransferOutcome,
)
from answerkit.testing._vobiz_webhooks import WebhookSender

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from answerkit.client import ClientOptions, VobizClient

__all__ = [
    "DEFAULT_AUTH_ID",
    "DEFAULT_AUTH_TOKEN",
    "LiveCallRecord",
    "LocalVobiz",
    "ReceivedRequest",
    "SentWebhook",
    "TransferOutcome",
]

MakeCallHook = Callable[[LiveCallRecord, Mapping[str, Any]], None]

DEFAULT_AUTH_ID = "MA_LOCAL0000"
DEFAULT_AUTH_TOKEN = "local-token-0000000000000000"


_Local = TypeVar("_Local", bound="LocalVobiz")


class LocalVobiz:
    """A local stand-in for the Vobiz live-call REST API (see the module docstring).

    ::

        with LocalVobiz() as vobiz:
            call = vobiz.add_call()
            vobiz.client().transfer(call.call_uuid, aleg_url="http://127.0.0.1:5000/hold")
            [outcome] = vobiz.wait_for_transfer(call.call_uuid)
            assert outcome.executed

    One server may serve a whole test session: :meth:`reset` between tests.
    """

    def __init__(
        self,
        auth_id: str = DEFAULT_AUTH_ID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        parent_auth_id: str | None = None,
        parent_auth_token: str | None = None,
        webhook_timeout: float = 5.0,
    ) -> None:
        port = port_number(port)
        webhook_timeout = positive_seconds("webhook_timeout", webhook_timeout)
        self.auth_id = auth_id
        self.auth_token = auth_token
        self._host, self._port = host, port
        self._table = CallTable()
        self._webhooks = WebhookSender(auth_token, parent_auth_token, webhook_timeout)
        self._api = RestApi(
            self._table,
            self._webhooks,
            auth_id=auth_id,
            auth_token=auth_token,
            parent_auth_id=parent_auth_id,
        )
        self._server: ReplyServer | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self: _Local) -> _Local:
        """Start serving in a daemon thread; returns self."""
        if self._server is None:
            self._server = ReplyServer((self._host, self._port), self._api.handle)
            self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection.

        On a port of the system's choosing (``port=0``, the default) the clients lent to
        flows by simulators never closed are taken back too: started again, the server
        listens elsewhere, so they could never reach it. On a fixed port they stay, for a
        restart to serve them.
        """
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._webhooks.close()
        if self._port == 0:
            from answerkit.testing.sim_remote import release_loans  # the simulator side

            release_loans(self)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._server is not None

    def __enter__(self: _Local) -> _Local:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._server else "stopped"
        return f"LocalVobiz(auth_id={self.auth_id!r}, {where})"

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("LocalVobiz is not started: call start() or use `with`")
        return self._server.port

    @property
    def base_url(self) -> str:
        """The API root to give a client: ``http://127.0.0.1:PORT/api/v1``."""
        return f"http://{self._host}:{self.port}/api/v1"

    def client(self, **options: Unpack[ClientOptions]) -> VobizClient:
        """A :class:`~answerkit.client.VobizClient` for this server (``allow_http=True``),
        taking VobizClient's other options (``timeout``, ``max_retries``, ...)."""
        from answerkit.client import VobizClient

        return VobizClient(
            self.auth_id, self.auth_token, base_url=self.base_url, allow_http=True, **options
        )

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since start or :meth:`reset` (shows connection reuse)."""
        return self._server.connections if self._server else 0

    def reset(self) -> None:
        """Forget calls, outcomes, the request log, faults and sent webhooks."""
        self._table.clear()
        with self._table.lock:
            self._api.log.clear()
            self._api.faults.clear()
            self._webhooks.forget()
            if self._server is not None:
                self._server.connections = 0

    # -- hooks for a simulator ---------------------------------------------------------

    @property
    def on_make_call(self) -> MakeCallHook | None:
        """Called in a thread with each new outbound call and the request body."""
        return self._api.on_make_call

    @on_make_call.setter
    def on_make_call(
        self, hook: Callable[[LiveCallRecord, Mapping[str, Any]], None] | None
    ) -> None:
        self._api.on_make_call = hook

    @property
    def on_transfer(self) -> Callable[[TransferOutcome], None] | None:
        """Called in a thread with every transfer outcome once it is recorded."""
        return self._api.on_transfer

    @on_transfer.setter
    def on_transfer(self, hook: Callable[[TransferOutcome], None] | None) -> None:
        self._api.on_transfer = hook

    @property
    def on_transfer_request(self) -> TransferRequestHook | None:
        """Asked ``(call_uuid, leg, url, method)`` per leg of an accepted transfer.

        True means a simulator took that leg over: LocalVobiz then neither fetches its
        URL nor records an outcome for it.
        """
        return self._api.on_transfer_request

    @on_transfer_request.setter
    def on_transfer_request(self, hook: TransferRequestHook | None) -> None:
        self._api.on_transfer_request = hook

    @property
    def on_hangup_request(self) -> Callable[[str], bool] | None:
        """Asked ``(call_uuid)`` on a Hang-up request for a live call.

        True means a simulator ends the call itself: LocalVobiz answers 204 and leaves
        the table to it.
        """
        return self._api.on_hangup_request

    @on_hangup_request.setter
    def on_hangup_request(self, hook: Callable[[str], bool] | None) -> None:
        self._api.on_hangup_request = hook

    # -- the call table ----------------------------------------------------------------

    def add_call(
        self,
        call_uuid: str | None = None,
        *,
        from_: str = "+14155550100",
        to: str = "+14155550199",
        direction: str = "inbound",
        status: str = "in-progress",
        answer_url: str | None = None,
        hangup_url: str | None = None,
        caller_name: str | None = None,
        bleg_uuid: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> LiveCallRecord:
        """Add a call (answered and inbound unless told otherwise); returns its record.

        ``bleg_uuid``: a B-leg bridged to it, listed under that UUID as a call of its own
        too (see the module docstring).
        """
        call_uuid = call_uuid or str(uuid.uuid4())
        return self._table.add(
            LiveCallRecord(
                call_uuid=call_uuid,
                from_=from_,
                to=to,
                direction=direction,
                status=status,
                answer_url=answer_url,
                hangup_url=hangup_url,
                caller_name=caller_name,
                request_uuid=call_uuid if direction == "outbound" else None,
                bleg_uuid=bleg_uuid,
                params=dict(params or {}),
            )
        )

    def end_call(
        self, call_uuid: str, *, code: int = 4000, source: str = "Caller", notify: bool = True
    ) -> LiveCallRecord:
        """End a call as if a party hung up (KeyError if unknown); POST its hangup webhook."""
        return self._api.end_call(call_uuid, code=code, source=source, notify=notify)

    def answer_call(self, call_uuid: str) -> LiveCallRecord:
        """Answer a queued or ringing call (a make-call starts queued, spec §4.4), as its
        callee picking up would: it is ``in-progress`` from now on, so it may be moved.
        KeyError if unknown, ValueError if it has ended. A simulator answers the
        make-calls it plays by itself."""
        return self._table.answer(call_uuid)

    def call(self, call_uuid: str) -> LiveCallRecord:
        """The call's record (KeyError if LocalVobiz never had it)."""
        record = self._table.get(call_uuid)
        if record is None:
            raise KeyError(call_uuid)
        return record

    @property
    def calls(self) -> dict[str, LiveCallRecord]:
        """Every call, live or ended, by UUID (a copy of the table)."""
        return self._table.calls()

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received, oldest first."""
        with self._table.lock:
            return list(self._api.log)

    @property
    def transfers(self) -> list[TransferOutcome]:
        """Every transfer outcome, in the order the legs were judged."""
        return self._table.outcomes()

    @property
    def sent_webhooks(self) -> list[SentWebhook]:
        """Every webhook sent (transfer and hangup), in order."""
        with self._table.lock:
            return list(self._webhooks.sent)

    def wait_for_transfer(self, call_uuid: str, timeout: float = 5.0) -> list[TransferOutcome]:
        """Wait until every accepted transfer of the call is judged; return its outcomes.

        Raises AssertionError when none finished within ``timeout`` seconds, and at once
        when a :class:`~answerkit.testing.CallSimulator` took the transfer over: a
        simulated call records its transfers in its transcript, not here.
        """
        return self._table.wait_for_transfer(call_uuid, timeout)

    # -- fault switches ----------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 503,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``n`` API requests with ``status`` (and ``body``), doing nothing."""
        if body is None:
            body = error_body(f"HTTP_{status}", f"injected failure {status}")
        self._add_fault(Fault("fail", n, status=status, body=body, headers=dict(headers or {})))

    def rate_limit_next(self, n: int = 1, *, retry_after: float | None = 1) -> None:
        """Answer the next ``n`` API requests 429 with ``Retry-After``/``details.retryAfter``."""
        details: dict[str, Any] = {"limitType": "cps", "limit": 1, "current": 2}
        headers = {}
        if retry_after is not None:
            details["retryAfter"] = retry_after
            headers["Retry-After"] = f"{retry_after:g}"
        body = error_body("RATE_LIMITED", "rate limit exceeded", details)
        self._add_fault(Fault("fail", n, status=429, body=body, headers=headers))

    def delay_next(self, n: int = 1, seconds: float = 1.0) -> None:
        """Wait ``seconds`` before handling each of the next ``n`` API requests (still applied)."""
        self._add_fault(Fault("delay", n, seconds=seconds))

    def reset_next(self, n: int = 1) -> None:
        """Close the connection without answering the next ``n`` API requests (not applied)."""
        self._add_fault(Fault("reset", n))

    def malformed_next(self, n: int = 1) -> None:
        """Handle the next ``n`` API requests normally but cut their JSON answer short."""
        self._add_fault(Fault("malformed", n))

    def _add_fault(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ConfigurationError(f"n must be 1 or more, got {fault.remaining}")
        with self._table.lock:
            self._api.faults.append(fault)
