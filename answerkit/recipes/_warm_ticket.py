"""The one decision of a warm transfer's attempt, on any store: taken once, read back.

Every callback that decides (accept, decline, agent hangup, caller exit) takes the
attempt's decision with :func:`take_decision`, and whatever needs the outcome or the move
it owes reads it back with :func:`read_decision`. Apart from the recipe and its moves: it
is the one algorithm that must hold on a store whose ``set_if_absent`` is not atomic (a
ticket taken with ``incr``, then its record, taken over when the record never came).
"""

from __future__ import annotations

import uuid
from typing import Any

from answerkit.errors import StateError
from answerkit.recipes._warm_state import DECIDED, at
from answerkit.state import CallState, claims_are_atomic

#: Per attempt and generation: the decision's ticket, taken with ``incr`` (see
#: :func:`take_decision`).
TICKET = "warm.ticket"

#: Rounds of :func:`take_decision` before it gives up (raising StateError, so that the
#: webhook is sent again): each takes a generation that another callback was taking.
DECISION_ROUNDS = 5


def _generation(key: str, gen: int) -> str:
    # Generation 1 keeps the key itself: b912e1b wrote the decision there (setdefault).
    return key if gen == 1 else f"{key}.g{gen}"


def read_decision(state: CallState, attempt: int) -> tuple[dict[str, Any] | None, int]:
    """The decision of a numbered attempt, once it stands (None: none yet, or one still
    being taken, see :func:`take_decision`), and the last generation begun (0: none)."""
    gen, latest, latest_gen = 1, None, 0
    while True:
        record: Any = state.get(_generation(at(DECIDED, attempt), gen))
        if isinstance(record, dict):
            latest, latest_gen = record, gen
        elif not state.get(_generation(at(TICKET, attempt), gen)):
            break
        gen += 1
    top = gen - 1
    # A generation begun after the latest record is taking over from it (or copying it):
    # until it writes its own, nothing stands.
    return (latest if latest_gen == top else None), top


def _latest_record(state: CallState, attempt: int, below: int) -> dict[str, Any] | None:
    for gen in range(below - 1, 0, -1):
        record: Any = state.get(_generation(at(DECIDED, attempt), gen))
        if isinstance(record, dict):
            return dict(record)
    return None


def take_decision(state: CallState, attempt: int, outcome: str) -> bool:
    """Decide a numbered ``attempt`` as ``outcome``: whether this callback's outcome won.

    Only ``incr`` is atomic on every store (``set_if_absent`` reads, then writes, on a
    store of one's own or a built-in one whose ``get`` or ``set`` is overridden), so the
    decision is a ticket: the callback whose ``incr`` gives 1 writes the record (the
    outcome). Between the two the store may fail: the ticket is then taken, the record
    missing. Its holder acts only once its record is written, so its outcome took effect
    nowhere, but nobody can tell a holder that failed from one that is still writing.
    So a callback that finds a ticket without a record takes the next generation's ticket
    (``warm.ticket.2.g2``): its holder copies the latest record written by then (or, if
    none is, writes its own outcome), and a record's writer acts only if, read after its
    write, the next generation is still untaken. Of a writer (record, then the next
    ticket) and the next generation's holder (ticket, then the record), at least one sees
    the other's write: a record someone acted on is always seen, and copied, by the next
    generation, so every later generation carries that one outcome; a writer that sees
    the next generation begun does nothing (it loses), and the decision is what that
    generation writes. A blip at any step leaves a ticket without a record, which the next
    callback takes over in turn: exactly one outcome wins, and none strands the caller.
    A winner that copied another's record returns False: the work the outcome owes is
    found from the decision by whoever comes next (the move, the tell, the hangup).
    """
    mine = {"outcome": outcome, "id": uuid.uuid4().hex[:12]}
    if claims_are_atomic(state.store):
        # One atomic write decides (the built-in stores): no ticket, no record to miss,
        # nothing to take over. The tickets below are for the other stores only: there a
        # slow (not failed) ticket holder that is taken over can leave the decision's
        # work to a callback that may never come (a limit of such stores, README).
        record = state.setdefault(at(DECIDED, attempt), mine)
        return isinstance(record, dict) and bool(record.get("id") == mine["id"])
    gen = 1
    for _ in range(DECISION_ROUNDS):
        if state.incr(_generation(at(TICKET, attempt), gen)) == 1:
            record = mine
            if gen > 1:
                state.refresh()  # the records written up to now, after this ticket
                record = _latest_record(state, attempt, gen) or mine
            key = _generation(at(DECIDED, attempt), gen)
            if gen == 1:
                # b912e1b wrote this record with no ticket (setdefault): one it wrote
                # stands (during a rolling deploy), as it would have there.
                record = state.setdefault(key, record)
            else:
                state[key] = record
            state.refresh()  # the next ticket, after this record
            if state.get(_generation(at(TICKET, attempt), gen + 1)):
                return False  # taken over: that generation decides (or copies this record)
            return bool(record.get("id") == mine["id"])
        state.refresh()
        decided, top = read_decision(state, attempt)
        if decided is not None:
            return False
        gen = max(top, gen) + 1  # a ticket without a record: take the next generation
    raise StateError(
        f"warm transfer: the decision of attempt {attempt} is still being taken by other "
        f"callbacks ({state.call_uuid})"
    )
