"""The simulator as its calls see it: what it is made with, and what they use of it.

:class:`SimulatorEngine` checks the simulator's settings when it is made (the app it
reaches and how, the token it signs with, what a Gather without input and a Dial's
action do), binds it to a :class:`~answerkit.testing.LocalVobiz` (or, without one,
lends the flow a client that sends nothing, :mod:`~answerkit.testing.sim_loans`), and
serves its calls: genuine signatures, LocalVobiz's list of live calls and B-legs, the
conference rooms, a moved B-leg's new call, the make-calls placed since the last look.
:class:`~answerkit.testing.simulator.CallSimulator` adds what a test does with it
(placing, running, transferring and hanging up calls); the calls
(:mod:`~answerkit.testing.sim_call`) need only this part.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask

from answerkit._flow_flask import flows_of
from answerkit.app import CallFlow
from answerkit.errors import ConfigurationError
from answerkit.signature import sign
from answerkit.testing._settings import positive_seconds
from answerkit.testing.sim_call import SimulatedCall
from answerkit.testing.sim_call_table import CallTable
from answerkit.testing.sim_handler_errors import HandlerErrorTap
from answerkit.testing.sim_loans import Loan, end_loan, lend_refusing
from answerkit.testing.sim_remote import VobizLink
from answerkit.testing.sim_script import OutboundScript, take_script
from answerkit.testing.sim_signals import CallSetup, ConferenceRoom, Fetch, GatherPrompt
from answerkit.testing.sim_transcript import Cause, TranscriptEvent
from answerkit.testing.sim_transport import (
    HTTPTransport,
    Router,
    Transport,
    WSGIApp,
    WSGITransport,
)

if TYPE_CHECKING:
    from answerkit.testing.local_vobiz import LocalVobiz
    from answerkit.transfer import TransferPlanner

__all__ = ["InputProvider", "Listener", "SimulatorEngine"]

log = logging.getLogger("answerkit")

Listener = Callable[[SimulatedCall, TranscriptEvent], None]
InputProvider = Callable[[SimulatedCall, GatherPrompt], "str | None"]
GATHER_TIMEOUTS = ("next", "post-empty")
DIAL_ACTION_EVENTS = ("Redirect", "DialAction")


class SimulatorEngine:
    """The simulator's settings and what its calls use of it (see the module docstring).

    Made as a :class:`~answerkit.testing.simulator.CallSimulator`, whose docstring
    gives the options.
    """

    def __init__(
        self,
        target: CallFlow | str | None = None,
        *,
        app: WSGIApp | None = None,
        flow: CallFlow | None = None,
        auth_token: str | None = None,
        public_url: str | None = None,
        local_vobiz: LocalVobiz | None = None,
        gather_timeout: str = "next",
        dial_action_event: str = "Redirect",
        timeout: float = 10.0,
        input_provider: InputProvider | None = None,
    ) -> None:
        if gather_timeout not in GATHER_TIMEOUTS:
            raise ConfigurationError(
                f"gather_timeout must be 'next' or 'post-empty', got {gather_timeout!r}"
            )
        timeout = positive_seconds("timeout", timeout)
        if dial_action_event not in DIAL_ACTION_EVENTS:
            raise ConfigurationError(
                "dial_action_event must be 'DialAction' or 'Redirect' (spec §6 item 8), "
                f"got {dial_action_event!r}"
            )
        if isinstance(target, CallFlow):
            flow = target
        elif target is not None and not isinstance(target, str):
            what = "a Flask app" if callable(target) else type(target).__name__
            raise ConfigurationError(
                f"CallSimulator takes a CallFlow or a base URL first, got {what}; for an app "
                "that serves the flow, pass both: CallSimulator(flow, app=app)"
            )
        self.flow = flow
        self.local_vobiz = local_vobiz
        self.gather_timeout = gather_timeout
        self.dial_action_event = dial_action_event
        self.input_provider = input_provider
        self.listeners: list[Listener] = []
        self._table = CallTable()
        # The flow's REST calls (flow.transfer, a WarmTransfer's agent call, a
        # TransferTrigger) go to this LocalVobiz unless the flow has a client of its own.
        # Lent before the app is made: its mount-time checks (a recipe's client) see it.
        self._link = (
            VobizLink(local_vobiz, flow, self._table.take_transfer, self._take_hangup)
            if local_vobiz is not None
            else None
        )
        # Without one, a flow played in-process would make its client from the
        # environment's credentials, perhaps real ones: it gets one that sends nothing, and
        # so does every other flow the app serves (a Redirect may reach one), the
        # LocalVobiz's flow apart. Over HTTP the flows may be served by this process as in
        # production (a loopback VOBIZ_BASE_URL, say), and their clients are the server's.
        self._refusing: list[tuple[TransferPlanner, Loan]] = []
        if (
            not isinstance(target, str)
            and flow is None
            and app is not None
            and not isinstance(app, Flask)
        ):
            # Middleware around the app (a DispatcherMiddleware) hides its flows.
            log.warning(
                "CallSimulator(app=...) of a WSGI app that is not a Flask app, and no flow: "
                "its flows are lent no client, and a handler's REST request (flow.transfer) "
                "would use the environment's credentials; name the flow: "
                "CallSimulator(flow, app=app)"
            )
        if not isinstance(target, str):
            for each in _flows_played(flow, app):
                if local_vobiz is not None and each is flow:
                    continue
                loan = lend_refusing(each.transfers)
                if loan is not None:
                    self._refusing.append((each.transfers, loan))
        try:
            self.transport: Transport
            if isinstance(target, str):
                root = public_url or (flow.public_url if flow else None) or target
                self.router = Router(root, target)
                self.transport = HTTPTransport(timeout)
                self.base_url: str | None = target.rstrip("/")
            else:
                if app is None:
                    if flow is None:
                        raise TypeError("CallSimulator needs a CallFlow, a base URL, or app=")
                    app = flow.create_app(getattr(flow, "_mount_prefix", None))
                root = public_url or (flow.public_url if flow else None) or "http://localhost"
                self.router = Router(root)
                self.transport = WSGITransport(app, self.router.public_root)
                self.base_url = None
        except BaseException:
            self._end_loans()
            raise
        if auth_token is None and flow is not None and flow.auth_tokens:
            auth_token = flow.auth_tokens[0]
        if auth_token is None and local_vobiz is not None:
            auth_token = local_vobiz.auth_token
        self._token = auth_token
        self.parent_auth_id = local_vobiz.auth_id if local_vobiz else "MA_SIMULATOR"
        self._nonce_prefix = f"{random.SystemRandom().randrange(10**10):010d}"
        self._nonces = itertools.count()
        self._sync_lock = threading.Lock()  # adoption runs in the server's thread too
        self._rooms: dict[str, ConferenceRoom] = {}
        self._scripts: list[OutboundScript] = []
        # The flow's handler errors reach the transcript (its fallback hides them otherwise);
        # a flow without the settings to serve (no token) has no dispatcher to tap.
        # Every flow the app serves, as a call may go on to any (a Redirect).
        self.error_tap: HandlerErrorTap | None = None
        dispatchers = []
        for each in _flows_played(flow, app):
            with contextlib.suppress(ConfigurationError):
                dispatchers.append(each.dispatcher())
        if dispatchers:
            self.error_tap = HandlerErrorTap(*dispatchers)

    # -- engine API (used by the calls) ---------------------------------------------------------

    def conference(self, name: str) -> ConferenceRoom:
        """The room called ``name`` (created empty if no call has joined it yet)."""
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = ConferenceRoom(name)
        return room

    def sign(self, url: str) -> dict[str, str]:
        """Genuine signature headers for ``url`` (fresh, unique nonces), or none without a token."""
        if self._token is None:
            return {}
        n = next(self._nonces) * 2
        return sign(
            url,
            self._token,
            nonce_v2=f"{self._nonce_prefix}{n:010d}",
            nonce_v3=f"{self._nonce_prefix}{n + 1:010d}",
        )

    def register_live(self, call: SimulatedCall) -> None:
        """The call was answered (LocalVobiz lists it as live)."""
        if self._link is not None:
            self._link.register(call)

    def unregister_live(self, call: SimulatedCall, cause: Cause) -> None:
        """The call ended (LocalVobiz marks it completed)."""
        if self._link is not None:
            self._link.unregister(call, cause)

    def register_bleg(self, bleg_uuid: str, caller_id: str, address: str) -> None:
        """A Dial's B-leg answered (LocalVobiz lists it as live, under its own UUID)."""
        if self._link is not None:
            self._link.register_bleg(bleg_uuid, caller_id, address)

    def unregister_bleg(self, bleg_uuid: str, cause: Cause) -> None:
        """The Dial's B-leg left (LocalVobiz marks it completed)."""
        if self._link is not None:
            self._link.end(bleg_uuid, cause)

    def start_bleg(
        self,
        a_call: SimulatedCall,
        bleg_uuid: str,
        address: str,
        caller_id: str,
        url: str,
        method: str,
    ) -> SimulatedCall:
        """A bridged B-leg moved by the Transfer API becomes a call of its own."""
        script = take_script(self._scripts, address)
        setup = CallSetup(
            call_uuid=bleg_uuid,
            from_=caller_id,
            to=address,
            direction="outbound",
            answer_url=None,
            params={"ALegUUID": a_call.call_uuid},
            digits=script.digits if script else [],
            speech=script.speech if script else [],
            dial=script.dial if script else [],
            first_fetch=Fetch(url, method, "Transfer", {}, "transfer"),
            send_hangup=False,  # spec §2.2: a B-leg sends no hangup webhook
        )
        call = SimulatedCall(self, setup)
        # The moved leg was already in progress: answered from the start, so the Transfer
        # and Hang-up APIs find it at once (CallTable.live), even from the DialHangup
        # handler that runs before it takes its first step.
        call._mark_answered()
        self._table.add(call)
        call.transcript.transfers.append(url)
        return call

    # -- internals ---------------------------------------------------------------------------

    def _end_loans(self) -> None:
        """Unhook from LocalVobiz, and give back the clients lent to the flows."""
        if self._link is not None:
            self._link.close()
        lent, self._refusing = self._refusing, []
        for planner, loan in lent:
            end_loan(planner, loan)

    def _add(self, setup: CallSetup) -> SimulatedCall:
        call = SimulatedCall(self, setup)
        self._table.add(call)
        return call

    def _take_hangup(self, call_uuid: str) -> bool:
        # A make-call placed since the last look is adopted first, so that its hangup webhook
        # reaches the app through the simulator as every other webhook does.
        self._sync_remote()
        return self._table.queue_hangup(call_uuid)

    def _sync_remote(self) -> bool:
        """Adopt the outbound calls placed through LocalVobiz's make-call API since last
        time; whether there were any."""
        if self._link is None:
            return False
        adopted = False
        with self._sync_lock:
            for setup in self._link.adopt(self._scripts):
                self._add(setup)
                adopted = True
        return adopted


def _flows_played(flow: CallFlow | None, app: object) -> list[CallFlow]:
    """The flow, and every other flow the Flask ``app`` serves (a call may go on to any)."""
    played = [flow] if flow is not None else []
    if isinstance(app, Flask):
        played += [each for each in flows_of(app) if not any(each is f for f in played)]
    return played
