"""The simulator's side of LocalVobiz: the lent client, live calls, make-call adoption, hooks.

The flow under test reaches "Vobiz" through its REST client, pointed at a
:class:`~answerkit.testing.LocalVobiz`. For those requests to act on simulated
calls, the two must agree on which calls are live and who carries out a transfer
or a hang-up:

* a flow without a client of its own borrows one for LocalVobiz while the link
  lasts (its transfers, a WarmTransfer's agent call, a TransferTrigger): a loan on the
  flow's stack of loans (:mod:`~answerkit.testing.sim_loans`, which also says when one
  is refused, and how :func:`release_loans` takes back those of simulators never
  closed);
* an answered simulated call is added to LocalVobiz's table (in progress), and
  marked completed when it ends (without LocalVobiz sending a webhook of its own);
* an outbound call placed through LocalVobiz's make-call API is adopted: the
  simulator plays it from its ``answer_url`` (read from the table, so the call is
  known as soon as the API answered), as scripted by
  :meth:`CallSimulator.expect_outbound` if a script matches;
* LocalVobiz asks ``on_transfer_request(call_uuid, leg, url, method) -> bool`` and
  ``on_hangup_request(call_uuid) -> bool`` while it handles a Transfer or Hang-up
  request for a live call; True means the simulator took it over (it fetches the
  URL itself, in-process or over HTTP, and sends the webhooks).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from answerkit.testing.sim_loans import end_loan, lend, release_loans
from answerkit.testing.sim_script import OutboundScript, take_script
from answerkit.testing.sim_signals import CallSetup
from answerkit.testing.sim_transcript import Cause

if TYPE_CHECKING:
    from answerkit.app import CallFlow
    from answerkit.testing.local_vobiz import LiveCallRecord, LocalVobiz
    from answerkit.testing.sim_call import SimulatedCall

__all__ = ["VobizLink", "release_loans"]  # release_loans: where the fixture and LocalVobiz look

TransferHook = Callable[[str, str, str, str], bool]
HangupHook = Callable[[str], bool]
HOOK_NAMES = ("on_transfer_request", "on_hangup_request")


class _ChainedHook:
    """One simulator's LocalVobiz hook, in front of the one installed before it: a request
    for a call this simulator does not play (its hook answers False) goes on down."""

    def __init__(self, own: Callable[..., bool], previous: Callable[..., bool] | None) -> None:
        self.own = own
        self.previous = previous
        self.closed = False

    def __call__(self, *args: str) -> bool:
        if not self.closed and self.own(*args):
            return True
        return self.previous(*args) if self.previous is not None else False

    def live_previous(self) -> Callable[..., bool] | None:
        """The first hook below this one whose simulator is still open."""
        hook = self.previous
        while isinstance(hook, _ChainedHook) and hook.closed:
            hook = hook.previous
        return hook


class VobizLink:
    """Keeps one simulator and one LocalVobiz in step (see the module docstring)."""

    def __init__(
        self,
        server: LocalVobiz,
        flow: CallFlow | None,
        transfer: TransferHook,
        hangup: HangupHook,
    ) -> None:
        self.server = server
        self.flow = flow
        # close() ends the loan.
        self._loan = lend(flow.transfers, server) if flow is not None else None
        self._known = set(server.calls)  # calls from before the simulator are not its own
        # Chained in front of whatever hook is there: several simulators may share one
        # LocalVobiz (one per flow), and each takes over only the calls it plays.
        owns: tuple[Callable[..., bool], ...] = (transfer, hangup)
        self._hooks = tuple(
            _ChainedHook(own, getattr(server, name, None))
            for name, own in zip(HOOK_NAMES, owns, strict=True)
        )
        for name, hook in zip(HOOK_NAMES, self._hooks, strict=True):
            setattr(server, name, hook)

    def register(self, call: SimulatedCall) -> None:
        """The call was answered: LocalVobiz lists it as in progress."""
        self._known.add(call.call_uuid)
        if call.setup.registered:  # a make-call LocalVobiz holds as queued: answered now
            with contextlib.suppress(KeyError, ValueError):  # reset, or ended meanwhile
                self.server.answer_call(call.call_uuid)
            return
        # No hangup_url: the simulator sends the call's webhooks, never LocalVobiz.
        self.server.add_call(
            call.call_uuid,
            from_=call.from_,
            to=call.to,
            direction=call.direction,
            status="in-progress",
            answer_url=call.setup.answer_url,
            caller_name=call.setup.caller_name,
        )

    def register_bleg(self, bleg_uuid: str, caller_id: str, address: str) -> None:
        """A Dial's answered B-leg: LocalVobiz lists it as in progress, so a Transfer,
        Hang-up or Retrieve request may name it (the hooks hand the first two to the
        simulator)."""
        self._known.add(bleg_uuid)
        self.server.add_call(
            bleg_uuid, from_=caller_id, to=address, direction="outbound", status="in-progress"
        )

    def unregister(self, call: SimulatedCall, cause: Cause) -> None:
        """The call ended: LocalVobiz marks it completed."""
        self.end(call.call_uuid, cause)

    def end(self, call_uuid: str, cause: Cause) -> None:
        """LocalVobiz marks the call (or bridged B-leg) completed, with no webhook."""
        # KeyError: LocalVobiz was reset meanwhile, or never had the call.
        with contextlib.suppress(KeyError):
            self.server.end_call(call_uuid, code=cause.code, source=cause.source, notify=False)

    def new_outbound(self) -> Iterator[LiveCallRecord]:
        """Live outbound calls with an answer URL that appeared since the last look."""
        for call_uuid, record in self.server.calls.items():
            if call_uuid in self._known:
                continue
            self._known.add(call_uuid)
            waiting = record.live or record.status == "queued"
            if record.direction == "outbound" and record.answer_url and waiting:
                yield record

    def adopt(self, scripts: list[OutboundScript]) -> Iterator[CallSetup]:
        """A call to play for each new make-call, scripted by the first script that fits."""
        for record in self.new_outbound():
            script = take_script(scripts, record.to)
            yield CallSetup(
                call_uuid=record.call_uuid,
                from_=record.from_,
                to=record.to,
                direction="outbound",
                **record.hooks(),
                caller_name=record.caller_name,
                request_uuid=record.request_uuid,
                outcome=script.outcome if script else "answer",
                params=dict(record.params),
                digits=script.digits if script else [],
                speech=script.speech if script else [],
                dial=script.dial if script else [],
                max_steps=script.max_steps if script else 200,
                registered=True,
            )

    def close(self) -> None:
        """Unhook from LocalVobiz (the simulators hooked in before keep theirs); end the
        loan."""
        for name, hook in zip(HOOK_NAMES, self._hooks, strict=True):
            hook.closed = True  # still in a later simulator's chain: it passes requests on
            if getattr(self.server, name, None) is hook:
                setattr(self.server, name, hook.live_previous())
        loan, self._loan = self._loan, None
        if loan is not None and self.flow is not None and loan.open:
            end_loan(self.flow.transfers, loan)
