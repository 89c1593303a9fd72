"""The clients simulators lend a flow while they are open, and what each loan stands in for.

A flow's REST requests (its transfers, a WarmTransfer's agent call, a TransferTrigger,
``flow.client`` in a handler) must never reach the real platform from a test, so a
simulator playing a flow without a client of its own lends it one:

* a simulator bound to a :class:`~answerkit.testing.LocalVobiz` lends a client of that
  server, whose requests act on the simulated calls;
* one without a LocalVobiz, playing the flow in-process, lends a
  :class:`~answerkit.testing.sim_refusing_client.RefusingClient`, which sends nothing
  (the flow would otherwise make a client from the environment's credentials, perhaps
  real ones, on first use).

The loans made to one flow form a stack: a simulator lends again when the flow's client
is another simulator's loan (that simulator may never have been closed, and its
LocalVobiz may be stopped) or a refusing stand-in, and a loan that ends puts back what
was there before it, once no later loan still relies on it (:func:`release_loans` ends
those of one server, for the pytest fixture and for a LocalVobiz on a port of the
system's choosing when it stops). A loan of a LocalVobiz stopped on a fixed port stays
open: started again, the server serves it. One flow has one client, so it has live loans
of one running LocalVobiz at a time: a simulator for another one is refused
(ConfigurationError) rather than have its calls' REST requests reach the wrong server
(routing each request by its CallUUID would hide a setup that cannot work in production
either: one flow, one platform account). A refusing stand-in never clashes: any
LocalVobiz may lend over it, and it goes in under the loans of the LocalVobiz simulators
still open, whose calls rely on them, to be what comes back when they close.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from answerkit.errors import ConfigurationError
from answerkit.testing.sim_refusing_client import RefusingClient

if TYPE_CHECKING:
    from answerkit.client import VobizClient
    from answerkit.testing.local_vobiz import LocalVobiz
    from answerkit.transfer import TransferPlanner

__all__ = ["Loan", "end_loan", "lend", "lend_refusing", "release_loans"]


@dataclass(eq=False)
class Loan:
    """A client lent to a flow, and the client it stands in for. ``server`` is the
    LocalVobiz the client reaches, None for a refusing stand-in."""

    server: LocalVobiz | None
    client: VobizClient
    previous: VobizClient | None
    open: bool = True


# The loans made to each flow (its TransferPlanner), oldest first. Weak: a flow that is
# gone needs no bookkeeping.
_LOANS: weakref.WeakKeyDictionary[TransferPlanner, list[Loan]] = weakref.WeakKeyDictionary()
_LOANS_LOCK = threading.Lock()


def _lent(current: VobizClient | None, loans: list[Loan]) -> bool:
    """Whether ``current`` is a simulator's, not the flow's own: one of its loans, or a
    refusing stand-in (one the stack lost track of too: put back by a
    ``flow.standing_in`` block that began while it was lent)."""
    return isinstance(current, RefusingClient) or any(loan.client is current for loan in loans)


def lend(planner: TransferPlanner, server: LocalVobiz) -> Loan | None:
    """Lend ``planner`` a client of ``server`` unless it has one of its own.

    Raises ConfigurationError if another running LocalVobiz has a loan open on the flow:
    one lent client serves the flow, so one simulator's REST calls would reach the
    other's server (and find no such call there).
    """
    client = server.client()  # made before the lock: it holds up no other simulator
    clash: Loan | None = None
    with _LOANS_LOCK:
        loans = _LOANS.setdefault(planner, [])
        # Looked at, never taken away: another thread's flow.transfer() would find None
        # and make a client from the environment (the real platform), which then stays.
        current = planner.peek_client()
        if current is None or _lent(current, loans):
            clash = next(
                (
                    loan
                    for loan in loans
                    if loan.open
                    and loan.server is not None
                    and loan.server is not server
                    and loan.server.running
                ),
                None,
            )
            if clash is None:
                # Nothing, a refusing stand-in, or another simulator's loan (perhaps of a
                # LocalVobiz stopped for now).
                return _push(planner, loans, Loan(server, client, current))
    client.close()
    if clash is not None:
        raise ConfigurationError(
            f"this flow's REST client is lent to {clash.server!r} by another simulator that "
            f"is still open, so {server!r} cannot have it too: use one LocalVobiz per flow "
            "(the local_vobiz fixture, say), or close the other simulator first"
        )
    return None  # the flow's own client: its REST calls go there


def lend_refusing(planner: TransferPlanner) -> Loan | None:
    """Lend ``planner`` a client that refuses every request, unless it has one of its own.

    Under the other simulators' loans, not on top: their calls rely on their LocalVobiz's
    client for as long as they are open (and a LocalVobiz is on loopback), and when they
    close, the refusing one is what comes back rather than None, from which the flow
    would make a client from the environment.
    """
    client = RefusingClient()
    with _LOANS_LOCK:
        loans = _LOANS.setdefault(planner, [])
        current = planner.peek_client()
        if current is None or _lent(current, loans):
            if not loans or current is None:  # None: the loans' client was taken away
                return _push(planner, loans, Loan(None, client, current))
            # What the bottom loan puts back when it ends: None, or a refusing one.
            loan = Loan(None, client, loans[0].previous)
            loans[0].previous = client
            loans.insert(0, loan)
            return loan
    client.close()
    return None


def _push(planner: TransferPlanner, loans: list[Loan], loan: Loan) -> Loan:
    # Swapped, never cleared first: see lend().
    loans.append(loan)
    planner.swap_client(loan.client)
    return loan


def end_loan(planner: TransferPlanner, loan: Loan) -> None:
    """End ``loan``; put back what each ended loan on top of the stack stood in for."""
    done: list[Loan] = []
    with _LOANS_LOCK:
        loan.open = False
        loans = _LOANS.get(planner, [])
        # Only ended loans go: a later loan still open relies on what is below it, even
        # one of a LocalVobiz stopped for now (started again, it serves the same port).
        while loans and not loans[-1].open:
            top = loans.pop()
            done.append(top)
            if planner.peek_client() is not top.client:  # replaced (flow.transfers.client =)
                # That client stays: the loans below are moot (their simulators' REST
                # calls go to the new client whatever happens here).
                for moot in loans:
                    moot.open = False
                done += loans
                loans.clear()
                break
            planner.swap_client(top.previous)
        if not any(loan is each for each in loans):
            done.append(loan)  # out of the stack: nothing refers to its client any more
    for each in {id(each): each for each in done}.values():
        each.client.close()


def release_loans(server: LocalVobiz) -> None:
    """End every loan of a client of ``server``, to any flow (simulators never closed)."""
    with _LOANS_LOCK:
        found = [
            (planner, loan)
            for planner, loans in list(_LOANS.items())
            for loan in loans
            if loan.open and loan.server is server
        ]
    for planner, loan in found:
        end_loan(planner, loan)
