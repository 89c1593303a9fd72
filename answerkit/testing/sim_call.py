"""One simulated call: its state, the test's handle on it, and how the simulator steps it.

The call runs a program (:mod:`answerkit.testing.sim_program`): a generator that
yields after every element, and yields :data:`~answerkit.testing.sim_signals.BLOCK`
while it waits on something outside itself. The simulator steps calls one element at
a time, so several calls can share a conference. A transfer or a REST hang-up is
queued on the call (:mod:`answerkit.testing.sim_pending`) and taken at its next step;
one requested while a webhook is being answered interrupts the document as soon as
that webhook returns. A ``<Hangup schedule>`` that falls due during an element ends the
call at the scheduled time; it ends a blocked call once
:meth:`CallSimulator.run_until_idle` finds every call blocked. The call sends its
webhooks (signed, recorded in the transcript: :mod:`answerkit.testing.sim_webhooks`)
and, once it has ended, what follows the hang-up
(:mod:`answerkit.testing.sim_after_hangup`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from answerkit.errors import ConfigurationError
from answerkit.testing.sim_after_hangup import send_hangup, send_record_stops
from answerkit.testing.sim_bridge import Bridge
from answerkit.testing.sim_pending import PendingRequests
from answerkit.testing.sim_program import Program, run_documents, start_program
from answerkit.testing.sim_script import check_digits, check_speech
from answerkit.testing.sim_signals import (
    BLOCK,
    STEP,
    CallEnded,
    CallSetup,
    Fetch,
    Interrupted,
    Pending,
    Recording,
)
from answerkit.testing.sim_transcript import (
    CAUSES,
    CallPhase,
    Cause,
    EventKind,
    Transcript,
    TranscriptEvent,
    Webhook,
)
from answerkit.testing.sim_webhooks import notify, send_webhook, standard_params

if TYPE_CHECKING:
    from answerkit.testing.sim_engine import SimulatorEngine

__all__ = ["SimulatedCall"]


#: Why a call cannot be run from inside its own step (a listener, a handler of its webhook).
_RUN_INSIDE = (
    "this call is taking a step already (run() or run_until_idle() was asked from a "
    "listener or a handler of its own webhook): a listener may hang up, transfer, press or "
    "say; run the calls once run() or run_until_idle() has returned"
)


class SimulatedCall:
    """One call leg played against the application. Made by :class:`CallSimulator`.

    ``run()`` plays it until it ends or blocks (a conference, a bridged dial, hold
    music that loops until a transfer) and returns the :class:`Transcript`.
    """

    def __init__(self, sim: SimulatorEngine, setup: CallSetup) -> None:
        self.sim = sim
        self.setup = setup
        self.call_uuid = setup.call_uuid
        self.from_ = setup.from_
        self.to = setup.to
        self.direction = setup.direction
        self.transcript = Transcript(setup.call_uuid, setup.from_, setup.to, setup.direction)
        self._digits: deque[str | None] = deque(setup.digits)
        self._speech: deque[str | None] = deque(setup.speech)
        # press() and say(), in the order they were called: ("dtmf" | "speech", value).
        self._inputs: deque[tuple[str, str | None]] = deque()
        self._dial: deque[Any] = deque(setup.dial)
        self._record: deque[str] = deque(setup.record)
        self._pending = PendingRequests()
        self._gen: Program | None = None
        self._started = False
        self._ended = False
        self.paused = False
        self._executing = False
        self._cleanup = 0
        self.stop_at: str | None = None
        self._last_signal = STEP
        self._hanging_up = False
        #: Who ends the call (a cause's source), once it is being ended; "Caller" before.
        self.ending_source = "Caller"
        self._steps = 0
        self.clock = 0.0
        self.answered_at: float | None = None
        self.hangup_at: float | None = None
        self.recordings: list[Recording] = []
        self._after_hangup: list[Callable[[], object]] = []
        self.bridge: Bridge | None = None
        #: The CallUUID of the Dial's B-leg from its answer until it leaves: the Transfer
        #: and Hang-up APIs may name it meanwhile (sim_call_table).
        self.dial_bleg: str | None = None
        #: True once the caller is leaving but the Dial's last webhooks are still going out
        #: (it hung up while the Dial rang): the Transfer and Hang-up APIs no longer find it.
        self.leaving = False
        self._hinted: set[str] = set()  # URLs outside the app already looked at (a note)
        self._stream_open = False
        self.started_at = datetime.now()
        self.session_start = datetime.now(timezone.utc)
        self._status = "ringing" if setup.direction == "inbound" else "in-progress"
        self._std = standard_params(setup, self.session_start, sim.parent_auth_id)

    # -- public --------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """True once the call is over (the hangup webhook has been sent)."""
        return self._ended

    @property
    def state(self) -> CallPhase:
        """``"new"``, ``"running"``, ``"blocked"`` or ``"ended"``."""
        if self._ended:
            return "ended"
        if not self._started:
            return "new"
        return "blocked" if self._blocked else "running"

    @property
    def call_state(self) -> dict[str, Any]:
        """The call's ``call.state`` as the flow's store holds it now (a fresh copy): what
        the handlers wrote, kept after the hangup for the flow's ``hangup_linger``.
        (:attr:`state` is where the simulated call is.) Needs the simulator to have been
        given the flow."""
        flow = self.sim.flow
        if flow is None:
            raise ConfigurationError(
                "call_state reads the flow's store: make the simulator with the flow "
                "(CallSimulator(flow)), not only a URL"
            )
        return flow.store.get_all(self.call_uuid)

    def run(self, until: str | None = None) -> Transcript:
        """Play the call until it ends or blocks; returns its transcript.

        ``until="gather"`` stops at the next Gather once its prompt has been heard
        and before the caller answers it: a test can then transfer or hang up the
        call "mid-prompt", and ``run()`` again to go on.

        Simulated time does not jump here: a call that blocks with a ``<Hangup
        schedule>`` pending stays blocked; :meth:`CallSimulator.run_until_idle` lets
        that time pass and hangs it up.
        """
        if until not in (None, "gather"):
            raise ConfigurationError(
                f"run(until=...) takes None (play until the call ends or blocks) or "
                f"'gather' (stop at the next Gather once its prompt was heard), got {until!r}"
            )
        if self._executing:
            raise ConfigurationError(_RUN_INSIDE)
        self.stop_at = until
        self.paused = False
        while not self._ended:
            if not self._advance() and not self._pending:
                break
            if self.paused:
                break
        return self.transcript

    def hangup(self) -> Transcript:
        """The caller hangs up (NORMAL_CLEARING, 4000, source Caller)."""
        self._request(
            Pending("hangup", cause=CAUSES["normal"].with_source("Caller"), by_caller=True)
        )
        if not self._executing:
            self._advance()
        return self.transcript

    def press(self, digits: str | None) -> None:
        """Queue the caller's answer to a coming Gather: keys (None: no input).

        ``press`` and ``say`` queue in the order they are called, one answer per Gather,
        after the ``digits``/``speech`` given to :meth:`CallSimulator.call`. An answer a
        Gather does not take (keys at a speech-only Gather) waits for a later one.
        """
        self._inputs.append(("dtmf", check_digits(digits)))

    def say(self, speech: str | None) -> None:
        """Queue the caller's answer to a coming Gather: speech (None: nothing said);
        in order with :meth:`press`."""
        self._inputs.append(("speech", check_speech(speech)))

    def end_bridge(self) -> None:
        """The bridged B-leg of a ``"bridge"`` dial hangs up; the caller's flow goes on."""
        if self.bridge is not None:
            self.bridge.end(CAUSES["normal"].with_source("Callee"))

    def close_stream(self) -> None:
        """The app closes the socket of a ``keepCallAlive`` Stream; the next element runs.

        Such a Stream blocks the call until its socket closes (spec §1.2 Stream), or a
        transfer or hang-up. No StopStream callback is sent: Vobiz sends one only when
        the app sent ``stop`` on the socket (spec §2.10). Does nothing without such a
        Stream; ``run()`` again (or :meth:`CallSimulator.run_until_idle`) to go on.
        """
        self._stream_open = False

    def __repr__(self) -> str:
        return f"<SimulatedCall {self.call_uuid} {self.direction} {self.state}>"

    # -- queued actions (any thread; the queue is sim_pending's) ---------------------------

    def _request(self, pending: Pending) -> None:
        self._pending.put(pending)

    def take_pending(self, kind: str) -> Pending | None:
        """The first queued request of ``kind``, taken off the queue (None if none)."""
        return self._pending.take(kind)

    def take_bleg_transfer(self, bleg: str) -> Pending | None:
        """The first queued transfer of the B-leg ``bleg``, taken off the queue (None if
        none): one asked for another leg is never taken for this one."""
        return self._pending.take_bleg_transfer(bleg)

    def drop_bleg_transfers(self, bleg: str) -> list[Pending]:
        """Take off the queue every transfer asked for the B-leg ``bleg`` (its Dial ended
        before acting on them), so none moves a later Dial's B-leg."""
        return self._pending.drop_bleg_transfers(bleg)

    def leave(self, cause: Cause) -> None:
        """The caller has gone, though the call's last webhooks are still to be sent (a
        Dial's DialHangups, then the Hangup): REST requests naming it are refused from
        now on (CallTable.live), and LocalVobiz lists it as completed, so a Transfer or
        Hang-up of it answers 404 (spec §4.3) rather than being applied to a call that
        has left. A transfer already queued is dropped (a hang-up stays): the caller it
        would move has gone."""
        self.leaving = True
        dropped = self._pending.drop_transfers()
        self.sim.unregister_live(self, cause)
        for pending in dropped:
            self._emit(
                "note",
                f"transfer to {self._display(pending.url)} not acted on: "
                "the caller had hung up first",
            )

    @property
    def dialing(self) -> bool:
        """True while a Dial's B-leg has answered and not left yet."""
        return self.dial_bleg is not None

    def hang_up_bleg(self, cause: Cause) -> None:
        """The Hang-up API ends the Dial's answered B-leg before it is bridged (any
        thread): the Dial takes it as the handler it came from returns."""
        self._pending.hang_up_bleg(cause)

    def take_bleg_hangup(self) -> Cause | None:
        """How the Hang-up API ended the unbridged B-leg, once (None: it did not)."""
        return self._pending.take_bleg_hangup()

    @property
    def has_pending(self) -> bool:
        """True when a transfer or hang-up waits for the call's next step."""
        return bool(self._pending)

    @property
    def caller_hangup_pending(self) -> bool:
        """True when the caller's own hang-up (:meth:`hangup`, asked during a step) waits
        for the call's next step."""
        return any(pending.by_caller for pending in self._pending)

    @property
    def _blocked(self) -> bool:
        return self.paused or self._last_signal == BLOCK

    @property
    def driven(self) -> bool:
        """True while the simulator steps or closes the call's program.

        False when the garbage collector closes the program of a call nobody ran to its
        end: clean-up code then sends nothing (no webhook may reach the app, or a
        LocalVobiz shared with later tests, from an abandoned call).
        """
        return self._executing

    @property
    def hanging_up(self) -> bool:
        """True while the call is being ended (clean-up code tells hang-up from transfer)."""
        return self._hanging_up

    @contextmanager
    def cleanup(self) -> Iterator[None]:
        """Webhooks sent inside never interrupt (a transfer waits for clean-up to finish)."""
        self._cleanup += 1
        try:
            yield
        finally:
            self._cleanup -= 1

    # -- the driver ------------------------------------------------------------------------

    def _advance(self) -> bool:
        """Take one step; True when something happened."""
        if self._ended:
            return False
        pending = self._pending.take_next()
        if pending is not None:
            if pending.kind == "transfer-bleg":
                # Only the bridged B-leg it was asked for moves: this leg's document (or its
                # pause) goes on.
                bridge = self.bridge
                if bridge is not None and bridge.up and bridge.target.uuid == pending.bleg:
                    bridge.transfer_bleg(pending.url, pending.method)
                else:
                    self._emit(
                        "note",
                        "transfer of the B-leg requested, but no B-leg is bridged to this "
                        f"call: nothing moved to {self._display(pending.url)}",
                    )
                return True
            self.paused = False
            if pending.kind == "hangup":
                assert pending.cause is not None
                self._finish(pending.cause)
                return True
            self._close_program()
            self.transcript.transfers.append(pending.url)
            self._emit("transfer", f"transferred to {self._display(pending.url)}")
            if self._ended:
                # A listener on the event hung the call up: the caller is gone, and the new
                # URL is never fetched (it was fetched after the Hangup webhook).
                return True
            self._gen = run_documents(
                self, Fetch(pending.url, pending.method, "Transfer", {}, "transfer")
            )
        elif self.paused:
            return False
        if self._gen is None:
            if self._started:
                return False
            self._started = True
            self._gen = start_program(self)
        self._executing = True
        try:
            signal = next(self._gen)
        except StopIteration:
            self._gen = None
            self._finish(CAUSES["end_of_xml"])
            return True
        except CallEnded as ended:
            self._gen = None
            self._finish(ended.cause, ended.note)
            return True
        except Interrupted:
            self._gen = None
            return True
        finally:
            self._executing = False
        self._last_signal = signal
        return signal == STEP

    def _close_program(self) -> None:
        gen, self._gen = self._gen, None
        if gen is None:
            return
        self._cleanup += 1
        self._executing = True
        try:
            gen.close()
        finally:
            self._cleanup -= 1
            self._executing = False

    def _hangup_due(self) -> bool:
        """True when the call is blocked and only its ``<Hangup schedule>`` can end it."""
        return self.hangup_at is not None and self._blocked and not self.paused

    def _scheduled_hangup(self) -> None:
        """Let the simulated time pass to the scheduled hang-up, and end the call (4000)."""
        assert self.hangup_at is not None
        self.clock = max(self.clock, self.hangup_at)
        self._finish(CAUSES["normal"], "scheduled hangup")

    # -- the caller's script ---------------------------------------------------------------

    def _next_record_ending(self) -> str:
        return self._record.popleft() if self._record else "silence"

    def _next_dial_outcome(self) -> Any:
        return self._dial.popleft() if self._dial else "answer"

    # -- webhooks --------------------------------------------------------------------------

    def _params(self, event: str | None, extra: Mapping[str, str]) -> dict[str, str]:
        params = dict(self._std)
        params["CallStatus"] = self._status
        if event:
            params["Event"] = event
        params.update(extra)
        return params

    def _send(self, url: str, method: str, params: dict[str, str]) -> Webhook:
        """Send one signed webhook, record it, and honour a transfer queued meanwhile."""
        hook = send_webhook(self, url, method, params)
        # A B-leg-only transfer leaves this leg's document running: it waits for the next step
        # (the bridge may not be up yet when a DialAnswer handler asks for it).
        if not self._cleanup and any(p.kind != "transfer-bleg" for p in self._pending):
            hangup = next((p for p in self._pending if p.kind == "hangup"), None)
            if hangup is not None:
                self._hanging_up = True  # clean-up on the way out reports a hang-up
                if hangup.cause is not None:
                    self.ending_source = hangup.cause.source
            raise Interrupted
        return hook

    def _notify(
        self,
        url: str,
        method: str,
        event: str,
        extra: Mapping[str, str],
        omit: Collection[str] = (),
    ) -> None:
        """A status callback, retried as the platform does (see
        :func:`~answerkit.testing.sim_webhooks.notify`)."""
        notify(self, url, method, event, extra, omit)

    def _display(self, url: str) -> str:
        resolved = self.sim.router.resolve(url)
        return url if resolved is None else resolved[2]

    def _emit(self, kind: EventKind, line: str, /, **data: Any) -> None:
        event = TranscriptEvent(kind, line, self.clock, data)
        self.transcript.events.append(event)
        for listener in self.sim.listeners:
            listener(self, event)

    # -- answer and end --------------------------------------------------------------------

    @property
    def answered(self) -> bool:
        """True once the call has been answered."""
        return self.answered_at is not None

    def _mark_answered(self) -> None:
        if self.answered_at is None:
            self.answered_at = self.clock
            self._status = "in-progress"
            self.sim.register_live(self)

    def _finish(self, cause: Cause, note: str | None = None) -> None:
        if self._ended:
            return
        self._hanging_up = True
        self.ending_source = cause.source  # for the clean-up the closing program runs
        self._close_program()
        self._ended = True
        self._pending.clear()
        if note:
            self._emit("note", note)
        t = self.transcript
        answered = self.answered_at
        duration = 0 if answered is None else max(0, round(self.clock - answered))
        t.duration = duration
        t.bill_duration = 60 * math.ceil(duration / 60)
        t.hangup_cause, t.hangup_cause_code = cause.cause, cause.code
        t.hangup_cause_name, t.hangup_source = cause.name, cause.source
        t.ended = True
        if self._status in ("ringing", "in-progress"):
            self._status = "completed"
        self._emit("hangup", f"call ended: {cause.code} {cause.name} ({cause.source})", cause=cause)
        self.sim.unregister_live(self, cause)
        # A call hung up before it was ever placed has nothing to report; one placed through
        # make-call (registered) was, and a Hang-up request gets its hangup webhook (§4.2).
        if (self._started or self.setup.registered) and self.setup.send_hangup:
            with self.cleanup():
                send_hangup(self, cause)
        with self.cleanup():
            for action in self._after_hangup:
                action()
            send_record_stops(self)
