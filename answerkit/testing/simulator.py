"""The call simulator: play Vobiz against a call flow, without a phone, a tunnel or an account.

::

    sim = CallSimulator(flow)                       # in-process (WSGI), or
    sim = CallSimulator("http://127.0.0.1:8000",    # a running server (gunicorn)
                        auth_token=TOKEN, public_url="https://voice.example.com")
    t = sim.call("answer", digits="1").run()
    assert t.heard[0] == "Welcome"
    assert t.hangup_cause_code == 4010
    print(t)                                        # one readable line per event

Every webhook is signed (:func:`answerkit.signature.sign`) for the public URL Vobiz
would have called, and judged as Vobiz judges it: an error status, a wrong content
type or invalid VobizXML drops the call with the cause Vobiz gives (7011/8011 for
the answer URL, 7012/8012 for an action, 7013/8013 for a transfer, 7014/8014 for a
Redirect). Several calls can run at once: a call in a conference blocks, and
:meth:`CallSimulator.run_until_idle` steps every call in turn.

Bound to a :class:`~answerkit.testing.LocalVobiz`, the simulator registers its
answered calls there (so the flow's own Transfer and Hangup API calls find them),
plays every outbound call placed through the make-call API, and takes over
transfers and hang-ups of its calls through the server's ``on_transfer_request`` /
``on_hangup_request`` hooks. REST actions take effect at the call's next step.
Without one, a flow played in-process that has no client of its own is lent, until
:meth:`~CallSimulator.close`, a client that refuses every REST request (it would reach
the real API with the environment's credentials): the handler that makes one fails.

Here: placing and running calls. Elsewhere: the simulator's settings and what its
calls use of it (``sim_engine``), how a call is scripted (``sim_script``), the calls by
CallUUID and the REST actions on them (``sim_call_table``), the LocalVobiz side
(``sim_remote``), the clients lent to the flow (``sim_loans``), one call (``sim_call``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from answerkit._keywords import advise_keywords
from answerkit.errors import ConfigurationError
from answerkit.testing._settings import step_limit
from answerkit.testing.sim_call import _RUN_INSIDE, SimulatedCall
from answerkit.testing.sim_engine import Listener, SimulatorEngine
from answerkit.testing.sim_script import (
    Inputs,
    OutboundScript,
    check_outcome,
    parse_dials,
    parse_digits,
    parse_records,
    parse_speech,
)
from answerkit.testing.sim_signals import CallSetup
from answerkit.testing.sim_transport import SignedPost, SignRequest, sign_request, signed_post

if TYPE_CHECKING:
    from answerkit.dispatch import Route

__all__ = [
    "CallSimulator", "CallSimulatorFactory", "SignRequest", "SignedPost", "sign_request",
    "signed_post",
]  # fmt: skip


_Simulator = TypeVar("_Simulator", bound="CallSimulator")


class CallSimulator(SimulatorEngine):
    """Plays Vobiz against one application (see the module docstring).

    ``target`` is a :class:`~answerkit.CallFlow` (served in-process by
    ``flow.create_app()``, or by ``app=`` if given) or the base URL of a running
    server. ``public_url`` is where Vobiz would reach the app (default: the flow's
    ``public_url``, else ``http://localhost`` in-process or the base URL over HTTP);
    ``auth_token`` signs the webhooks (default: the flow's first token, else the
    LocalVobiz token; None sends them unsigned). ``gather_timeout`` picks what a
    Gather without input does: ``"next"`` element (default) or ``"post-empty"``
    (the action gets empty Digits), spec §6 item 2. ``dial_action_event`` is the
    ``Event`` a Dial's ``action`` request carries: ``"Redirect"`` (default) or
    ``"DialAction"``. The spec's sources disagree (§2.5, §6 item 8) and say not to
    branch on it: the default is the value a route declared with
    ``event=Event.DialAction`` does not match, so a flow that depends on the value
    fails here rather than on Vobiz; branch on ``DialStatus`` instead, or run the
    tests with both values.

    The settings are checked, and what the calls use of the simulator served, by
    :class:`~answerkit.testing.sim_engine.SimulatorEngine`; here is what a test does.
    """

    def __repr__(self) -> str:
        target = self.flow.name if self.flow is not None else "an app over HTTP"
        return f"CallSimulator({target!r}, calls={len(self.calls)})"

    # -- placing calls -----------------------------------------------------------------------

    def call(
        self,
        route_or_url: str | None = None,
        *,
        from_: str = "+14155550100",
        to: str = "+14155550199",
        direction: str = "inbound",
        digits: Inputs = None,
        speech: Inputs = None,
        dial: Sequence[Any] | str | None = None,
        record: Sequence[str] | str | None = None,
        params: Mapping[str, str] | None = None,
        max_steps: int = 200,
        caller_name: str | None = None,
        method: str = "POST",
        hangup_url: str | None = None,
        fallback_url: str | None = None,
        speech_confidence: float = 0.9,
        call_uuid: str | None = None,
    ) -> SimulatedCall:
        """A new call to ``route_or_url`` (a route name, a path or a URL; default "answer").

        ``digits`` (``"1,2"`` or a list; ``-``/None for no input) and ``speech`` feed
        the Gathers in order: each Gather takes the next entry of the list of each input
        type it accepts; one that takes both takes the keys when the next digits entry
        holds some, else the speech, a None in one list pairing with the other's entry
        (``digits=[None, "1"], speech=["english", None]`` answers two such Gathers
        "english", then 1; see :func:`answerkit.testing.sim_gather._take_input`). A string
        is split on commas; a list or tuple is taken item by item, so
        ``speech=["sales, please"]`` is one utterance that keeps its comma. ``dial`` gives
        one outcome per Dial (``answer``,
        ``bridge``, ``busy``, ``no-answer``, ``timeout`` (rings out as ``no-answer`` does,
        reported as ``DialStatus=timeout``), ``failed``, ``cancel`` (the caller hangs up
        while it rings), or a list per target). ``record`` gives one ending per Record: after a
        5 s message, ``silence`` (the default: its ``timeout``, or ``maxLength``),
        ``key`` (its ``finishOnKey``: FinishedOnKey) or ``hangup`` (HungUp, the call ends);
        a ``maxLength`` under 5 s cuts the message first (maxLength, no key, no hang-up).
        Nothing is sent until :meth:`SimulatedCall.run` or :meth:`run_until_idle`.
        """
        if direction not in ("inbound", "outbound"):
            raise ConfigurationError(
                f"direction must be 'inbound' or 'outbound', got {direction!r}"
            )
        if (
            isinstance(speech_confidence, bool)
            or not isinstance(speech_confidence, (int, float))
            or not 0 <= speech_confidence <= 1  # NaN fails this too
        ):
            raise ConfigurationError(
                f"speech_confidence must be a number from 0.0 to 1.0 (the "
                f"SpeechConfidenceScore Vobiz sends, spec §2.4), got {speech_confidence!r}"
            )
        self._check_new_uuid(call_uuid)
        setup = CallSetup(
            call_uuid=call_uuid or str(uuid.uuid4()),
            from_=from_,
            to=to,
            direction=direction,
            answer_url=self.url(route_or_url if route_or_url is not None else self._default()),
            answer_method=method.upper(),
            hangup_url=self.url(hangup_url) if hangup_url else None,
            fallback_url=self.url(fallback_url) if fallback_url else None,
            caller_name=caller_name,
            params=dict(params or {}),
            digits=parse_digits(digits),
            speech=parse_speech(speech),
            dial=parse_dials(dial),
            record=parse_records(record),
            speech_confidence=speech_confidence,
            max_steps=step_limit(max_steps),
        )
        return self._add(setup)

    def outbound_call(
        self,
        answer_url: str,
        from_: str = "+14155550199",
        to: str = "+14155550100",
        *,
        outcome: str = "answer",
        answer_method: str = "POST",
        hangup_url: str | None = None,
        ring_url: str | None = None,
        digits: Inputs = None,
        speech: Inputs = None,
        dial: Sequence[Any] | str | None = None,
        params: Mapping[str, str] | None = None,
        max_steps: int = 200,
        call_uuid: str | None = None,
        ring_method: str = "POST",
        fallback_url: str | None = None,
        fallback_method: str = "POST",
    ) -> SimulatedCall:
        """A call the platform places (as make-call does): ``to`` answers, or not (``outcome``).

        ``ring_url`` gets ``Event=Ring`` before the answer (spec §2.3); ``fallback_url``
        takes over when the answer URL fails (spec §2.1).
        """
        check_outcome(outcome)
        self._check_new_uuid(call_uuid)
        setup = CallSetup(
            call_uuid=call_uuid or str(uuid.uuid4()),
            from_=from_,
            to=to,
            direction="outbound",
            answer_url=self.url(answer_url),
            answer_method=answer_method.upper(),
            hangup_url=self.url(hangup_url) if hangup_url else None,
            fallback_url=self.url(fallback_url) if fallback_url else None,
            fallback_method=fallback_method.upper(),
            ring_url=self.url(ring_url) if ring_url else None,
            ring_method=ring_method.upper(),
            outcome=outcome,
            params=dict(params or {}),
            digits=parse_digits(digits),
            speech=parse_speech(speech),
            dial=parse_dials(dial),
            max_steps=step_limit(max_steps),
        )
        return self._add(setup)

    def expect_outbound(
        self,
        to: str | None = None,
        *,
        outcome: str = "answer",
        digits: Inputs = None,
        speech: Inputs = None,
        dial: Sequence[Any] | str | None = None,
        max_steps: int = 200,
    ) -> None:
        """Script the next call the flow places (make-call) to ``to`` (None: any number).

        Scripts are used once each, oldest first; an unscripted outbound call answers
        and gives no input.
        """
        check_outcome(outcome)
        self._scripts.append(
            OutboundScript(
                to,
                outcome,
                parse_digits(digits),
                parse_speech(speech),
                parse_dials(dial),
                max_steps,
            )
        )

    # -- running -----------------------------------------------------------------------------

    def run_until_idle(self, max_rounds: int = 100_000) -> None:
        """Step every call in turn until each has ended or is blocked.

        When every call is blocked, simulated time passes: the call nearest its
        ``<Hangup schedule>`` is hung up (4000), and the others go on. A call paused
        by ``run(until="gather")`` is left alone.
        """
        if any(call.driven for call in self._table.all()):
            raise ConfigurationError(_RUN_INSIDE)
        for _round in range(max_rounds):
            self._sync_remote()
            progressed = False
            calls = self._table.all()
            for call in calls:
                if call.ended:
                    continue
                if call._advance() or call.has_pending:
                    progressed = True
                # The caller's hang-up asked for during the step (by a listener, at a
                # prompt) ends the call now: another call's step in this round may span
                # simulated minutes (an agent's phone ringing out) the caller never waited
                # through. A hang-up through the REST API waits its turn, as it came.
                while not call.ended and call.caller_hangup_pending:
                    call._advance()
            # A call placed by a step that then blocked (an agent called from the handler
            # whose document is a Conference, or a B-leg moved before its Dial's bridge
            # formed) is new work too.
            if progressed or len(self._table.all()) > len(calls) or self._sync_remote():
                continue
            due = [c for c in self._table.all() if not c.ended and c._hangup_due()]
            if not due:
                return
            min(due, key=lambda c: (c.hangup_at or 0.0) - c.clock)._scheduled_hangup()
        raise RuntimeError(f"calls still running after {max_rounds} rounds")

    @property
    def calls(self) -> list[SimulatedCall]:
        """Every call so far, in the order they were placed."""
        self._sync_remote()
        return self._table.all()

    def _check_new_uuid(self, call_uuid: str | None) -> None:
        """Refuse a CallUUID one of the simulator's calls, or their live B-legs, has: one
        CallUUID is one call (spec §2.1); two would share their state, the second's Hangup
        would end the first's, and the first would go on after it."""
        if call_uuid is None:
            return
        self._sync_remote()  # make-calls not yet adopted count too
        calls = self._table.all()
        if call_uuid in {u for c in calls for u in (c.call_uuid, c.dial_bleg) if u}:
            raise ConfigurationError(
                f"call_uuid {call_uuid!r} is already a call of this simulator (or the live "
                "B-leg of one): give each call its own (or leave it out for a fresh one)"
            )

    def find(self, call_uuid: str) -> SimulatedCall:
        """The call (or transferred B-leg) with this CallUUID; KeyError if none."""
        self._sync_remote()
        return self._table.find(call_uuid)

    @advise_keywords(
        "CallSimulator.transfer",
        {
            "aleg": "the simulator moves one leg to one URL: transfer(call_uuid, url, "
            "leg='aleg'); flow.transfer(call_uuid, aleg=..., bleg=...) sends the Transfer "
            "API request the app would",
            "bleg": "the simulator moves one leg to one URL: transfer(call_uuid, url, "
            "leg='bleg'); flow.transfer(call_uuid, aleg=..., bleg=...) sends the Transfer "
            "API request the app would",
            "legs": "write leg= ('aleg', 'bleg' or 'both')",
            "aleg_url": "the URL is the second argument: transfer(call_uuid, url, leg='aleg')",
            "bleg_url": "the URL is the second argument: transfer(call_uuid, url, leg='bleg')",
        },
    )
    def transfer(
        self, call_uuid: str, url: str, *, leg: str = "aleg", method: str = "POST"
    ) -> bool:
        """Move a live call's leg to ``url`` (a route name, path or URL), as the Transfer API.

        The leg drops its current document at its next step (at once when it is
        blocked) and runs the XML the URL returns (``Event=Transfer``). ``bleg`` moves the
        B-leg bridged to the call (a transcript note says so when none is bridged), and
        leaves the A-leg's document running. Returns False when there is no such live,
        answered call (the API would answer 404).
        """
        if leg not in ("aleg", "bleg", "both"):
            raise ConfigurationError(f"leg must be aleg, bleg or both, got {leg!r}")
        return self._table.queue_transfer(call_uuid, leg, self.url(url), method.upper())

    def hangup(self, call_uuid: str) -> bool:
        """Hang a live call up as the Hang-up API does (source ``API Request``).

        A call still ringing ends unanswered: its answer URL is never requested, and its
        hangup webhook is sent (spec §4.2). Returns False when there is no such live call.
        """
        return self._take_hangup(call_uuid)

    # -- output ------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(call, event)`` for every transcript event, as it happens."""
        self.listeners.append(listener)

    def url(self, route_or_url: str, **params: Any) -> str:
        """The public URL of a route name, an app path or an absolute URL (with ``params``)."""
        if "://" in route_or_url:
            url = route_or_url
        elif route_or_url.startswith("/"):
            url = self.router.absolute(route_or_url)
        elif self.flow is not None:
            route = self.flow.get_route(route_or_url)
            prefix = getattr(self.flow, "_mount_prefix", None) or ""
            url = self.router.absolute(prefix + route.path)
        else:
            url = self.router.absolute("/" + route_or_url)
        if params:
            url += ("&" if "?" in url else "?") + urlencode({k: str(v) for k, v in params.items()})
        return url

    def close(self) -> None:
        """Release connections, unhook from LocalVobiz and end the loan of a client to the
        flow (a LocalVobiz's, or the refusing one).

        (The flow's error hook needs nothing: it is tapped only while a webhook runs.)
        """
        self.transport.close()
        self._end_loans()
        if self.error_tap is not None:
            self.error_tap.close()

    def __enter__(self: _Simulator) -> _Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _default(self) -> str:
        if self.flow is None:
            return "/answer"
        flow = self.flow

        def starts_calls(route: Route) -> bool:
            # Not a status callback, a sound URL or a recipe's own step (a WarmTransfer
            # declared first made its hold route the call's start), and a route that
            # answers the StartApp a call starts with (not one taking only a Hangup).
            return not (
                route.status_callback or route.sound or route.path in flow._inner_paths
            ) and (route.handler_for("StartApp") is not None)

        answer = flow._by_name.get("answer")  # an alias too, as url_for finds it
        if answer is not None and starts_calls(answer):
            return "answer"
        first = next((r for r in flow.routes if starts_calls(r)), None)
        if first is None:
            names = ", ".join(r.name for r in flow.routes) or "none"
            raise ConfigurationError(
                f"flow {flow.name!r}: no route answers the StartApp a call starts with "
                f"(routes: {names}); give one a handler without event=, or name the route "
                "to call (--route)"
            )
        return first.name


#: The ``call_simulator`` fixture's type: it hands out a subclass of CallSimulator bound
#: to the test's LocalVobiz, so a type checker reads CallSimulator's own options (a
#: misspelt one is an error) with no second copy of its signature to keep in step::
#:
#:     def test_menu(call_simulator: CallSimulatorFactory) -> None:
#:         t = call_simulator(flow).call("main", digits="2").run()
CallSimulatorFactory = type[CallSimulator]
