"""The records LocalVobiz keeps: calls, received requests, transfer outcomes, sent webhooks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from answerkit.elements import Response

__all__ = [
    "CALL_HOOKS",
    "CAUSE_NAMES",
    "LIVE_STATUSES",
    "CallTable",
    "LiveCallRecord",
    "ReceivedRequest",
    "SentWebhook",
    "TransferOutcome",
]

LIVE_STATUSES = ("ringing", "in-progress")
#: The webhooks a placed call names, each with a URL and a method (spec §4.4).
CALL_HOOKS = ("answer", "hangup", "ring", "fallback")
CAUSE_NAMES = {
    4000: ("NORMAL_CLEARING", "Normal Hangup"),
    7013: ("ERROR_REACHING_TRANSFER_URL", "Error Reaching Transfer URL"),
    8013: ("INVALID_TRANSFER_XML", "Invalid Transfer XML"),
}


def now_utc() -> str:
    """UTC now as Vobiz writes ``SessionStart``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass
class LiveCallRecord:
    """One call in LocalVobiz's table. Mutated only under the server's lock."""

    call_uuid: str
    from_: str
    to: str
    direction: str = "inbound"
    status: str = "in-progress"
    answer_url: str | None = None
    answer_method: str = "POST"
    hangup_url: str | None = None
    hangup_method: str = "POST"
    ring_url: str | None = None
    ring_method: str = "POST"
    fallback_url: str | None = None
    fallback_method: str = "POST"
    caller_name: str | None = None
    request_uuid: str | None = None
    bleg_uuid: str | None = None
    #: Extra webhook fields (``X-PH-*`` …), added to every webhook of the call.
    params: dict[str, str] = field(default_factory=dict)
    session_start: str = field(default_factory=now_utc)
    #: Epoch seconds: placed, answered (None until then) and ended (None while live).
    started_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    hangup_cause: str | None = None
    hangup_cause_code: int | None = None
    hangup_source: str | None = None

    def hooks(self) -> dict[str, Any]:
        """The call's webhook URLs and methods (``answer_url``, ``answer_method``...), by
        the names a make-call body, this record and a simulator's CallSetup share."""
        return {
            f"{hook}_{part}": getattr(self, f"{hook}_{part}")
            for hook in CALL_HOOKS
            for part in ("url", "method")
        }

    @property
    def live(self) -> bool:
        """True while the call is ringing or answered."""
        return self.status in LIVE_STATUSES


@dataclass(frozen=True)
class TransferOutcome:
    """What happened when LocalVobiz fetched one leg's transfer URL."""

    call_uuid: str
    leg: str
    url: str
    method: str
    status: Literal["executed", "dropped"]
    hangup_cause_code: int | None = None
    http_status: int | None = None
    xml: str | None = field(default=None, repr=False)
    document: Response | None = field(default=None, repr=False)  # the xml, parsed
    error: str | None = None

    @property
    def executed(self) -> bool:
        """True when the leg runs the returned XML."""
        return self.status == "executed"


@dataclass(frozen=True)
class ReceivedRequest:
    """One request LocalVobiz received. ``repr`` leaves out the headers (they hold the token)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(repr=False)
    json: object  # the decoded JSON body, None when there was none
    body: bytes = field(repr=False)
    time: float


@dataclass(frozen=True)
class SentWebhook:
    """A webhook LocalVobiz sent (transfer or hangup), and what came back."""

    event: str
    url: str
    method: str
    params: dict[str, str]
    http_status: int | None
    error: str | None = None


def _mark_ended(record: LiveCallRecord, code: int, source: str) -> None:
    """Set the record's final state (the caller holds the table's lock)."""
    record.status = "completed"
    record.ended_at = time.time()
    record.hangup_cause_code = code
    record.hangup_cause = CAUSE_NAMES.get(code, ("UNKNOWN", ""))[0]
    record.hangup_source = source


class CallTable:
    """LocalVobiz's thread-safe state: the calls, and the transfers in flight and judged.

    ``generation`` moves on at every :meth:`clear`, so a transfer still in flight from
    before a reset cannot record an outcome into the next test.
    """

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.generation = 0
        self._calls: dict[str, LiveCallRecord] = {}
        self._outcomes: list[TransferOutcome] = []
        self._pending: dict[str, int] = {}
        self._requested: set[str] = set()
        self._taken_over: dict[str, int] = {}

    def clear(self) -> None:
        """Forget every call and outcome."""
        with self.lock:
            self.generation += 1
            self._calls.clear()
            self._outcomes.clear()
            self._pending.clear()
            self._requested.clear()
            self._taken_over.clear()
            self.lock.notify_all()

    def add(self, record: LiveCallRecord) -> LiveCallRecord:
        """Add (or replace) a call, and list the B-leg bridged to it under its own UUID."""
        with self.lock:
            if record.status == "in-progress" and record.answered_at is None:
                record.answered_at = record.started_at  # added as answered
            self._calls[record.call_uuid] = record
            if record.bleg_uuid and record.status == "in-progress":
                self._list_bleg(record, record.bleg_uuid)
        return record

    def _list_bleg(self, aleg: LiveCallRecord, bleg_uuid: str) -> None:
        """The B-leg bridged to ``aleg`` as a call of its own, as the simulator lists a
        bridged Dial's (``register_bleg``): the vendor's Transfer page moves each leg by
        its own CallUUID, and Retrieve and Hang-up name it the same way. Its webhooks carry
        ``ALegUUID``, as a moved B-leg's do in the simulator. The number it was dialled at
        is not known here, so ``to`` stays empty; it presents the account's number."""
        existing = self._calls.get(bleg_uuid)
        if existing is not None:
            # A call listed already (an agent placed with make_call, then bridged): linked,
            # so that it ends with its A-leg and leaves the bridge when it ends or moves.
            existing.params["ALegUUID"] = aleg.call_uuid
            return
        account_number = aleg.to if aleg.direction == "inbound" else aleg.from_
        self._calls[bleg_uuid] = LiveCallRecord(
            call_uuid=bleg_uuid,
            from_=account_number,
            to="",
            direction="outbound",
            status="in-progress",
            params={"ALegUUID": aleg.call_uuid},
            answered_at=time.time(),
        )

    def bridged_aleg(self, bleg_uuid: str) -> LiveCallRecord | None:
        """The call whose B-leg ``bleg_uuid`` is, while they are bridged; else None."""
        with self.lock:
            record = self._calls.get(bleg_uuid)
            aleg_uuid = record.params.get("ALegUUID") if record is not None else None
            aleg = self._calls.get(aleg_uuid) if aleg_uuid else None
            return aleg if aleg is not None and aleg.bleg_uuid == bleg_uuid else None

    def leave_bridge(self, bleg_uuid: str) -> None:
        """The B-leg ``bleg_uuid`` left its bridge (moved, or ended): its A-leg has no
        B-leg from now on, and the moved leg lives on as a call of its own, as a
        simulated B-leg does after ``Bridge.transfer_bleg``."""
        with self.lock:
            aleg = self.bridged_aleg(bleg_uuid)
            if aleg is not None:
                aleg.bleg_uuid = None

    def get(self, call_uuid: str) -> LiveCallRecord | None:
        """The call's record, or None."""
        with self.lock:
            return self._calls.get(call_uuid)

    def snapshot(self, call_uuid: str) -> LiveCallRecord:
        """A copy of the call's record, safe to read outside the lock."""
        with self.lock:
            return replace(self._calls[call_uuid], params=dict(self._calls[call_uuid].params))

    def calls(self) -> dict[str, LiveCallRecord]:
        """A copy of the table."""
        with self.lock:
            return dict(self._calls)

    def outcomes(self) -> list[TransferOutcome]:
        """Every outcome, in the order the legs were judged."""
        with self.lock:
            return list(self._outcomes)

    def end(self, call_uuid: str, code: int, source: str) -> LiveCallRecord:
        """Mark the call completed with a hangup cause; returns a snapshot. A B-leg that
        ends leaves its A-leg without one (the caller ends a B-leg bridged to it, see
        LocalVobizAPI.end_call)."""
        with self.lock:
            record = self._calls[call_uuid]
            _mark_ended(record, code, source)
            self.leave_bridge(call_uuid)
            return self.snapshot(call_uuid)

    def bridged_bleg(self, aleg_uuid: str) -> LiveCallRecord | None:
        """The live B-leg bridged to ``aleg_uuid``, or None."""
        with self.lock:
            record = self._calls.get(aleg_uuid)
            bleg = self._calls.get(record.bleg_uuid) if record and record.bleg_uuid else None
            if bleg is not None and bleg.live and self.bridged_aleg(bleg.call_uuid) is record:
                return bleg
            return None

    def answer(self, call_uuid: str) -> LiveCallRecord:
        """Mark a queued or ringing call answered (``in-progress``); returns a snapshot."""
        with self.lock:
            record = self._calls[call_uuid]
            if record.status not in ("queued", "ringing", "in-progress"):
                raise ValueError(f"call {call_uuid} has ended ({record.status}); it cannot answer")
            if record.status != "in-progress":
                record.status = "in-progress"
                record.answered_at = time.time()
            return self.snapshot(call_uuid)

    def note_taken_over(self, call_uuid: str, legs: int) -> None:
        """A Transfer request reached the call; a simulator took ``legs`` of its legs over."""
        with self.lock:
            self._requested.add(call_uuid)
            if legs:
                self._taken_over[call_uuid] = self._taken_over.get(call_uuid, 0) + legs
            self.lock.notify_all()

    def begin_transfer(self, call_uuid: str, legs: int) -> int | None:
        """Accept a transfer of an in-progress call: its generation, or None (-> 404)."""
        with self.lock:
            record = self._calls.get(call_uuid)
            if record is None or record.status != "in-progress":
                return None
            self._requested.add(call_uuid)
            self._pending[call_uuid] = self._pending.get(call_uuid, 0) + legs
            return self.generation

    def finish_transfer(self, generation: int, outcome: TransferOutcome) -> bool:
        """Record one leg's outcome; False when a reset made it stale."""
        with self.lock:
            if generation != self.generation:
                return False
            self._outcomes.append(outcome)
            left = self._pending.get(outcome.call_uuid, 0) - 1
            self._pending[outcome.call_uuid] = max(0, left)
            self.lock.notify_all()
            return True

    def wait_for_transfer(self, call_uuid: str, timeout: float) -> list[TransferOutcome]:
        """Block until the call has outcomes and no leg in flight; return its outcomes.

        Raises AssertionError at once when a simulator took every requested leg over
        (no outcome will ever be recorded), else after ``timeout`` seconds, saying which.
        """
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                outcomes = [o for o in self._outcomes if o.call_uuid == call_uuid]
                pending = self._pending.get(call_uuid, 0)
                if outcomes and not pending:
                    return outcomes
                if not outcomes and not pending and call_uuid in self._taken_over:
                    raise AssertionError(self._taken_over_message(call_uuid))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(self._timeout_message(call_uuid, timeout, outcomes))
                self.lock.wait(left)

    def _taken_over_message(self, call_uuid: str) -> str:
        return (
            f"the transfer of call {call_uuid} was taken over by a CallSimulator (the call "
            "is simulated), so LocalVobiz fetches nothing and records no TransferOutcome "
            "for it: play the call on (call.run() or sim.run_until_idle()) and assert on "
            "its transcript (t.transfers, t.webhooks_for('Transfer'), t.heard)"
        )

    def _timeout_message(
        self, call_uuid: str, timeout: float, outcomes: list[TransferOutcome]
    ) -> str:
        record = self._calls.get(call_uuid)
        if record is None:
            why = f"LocalVobiz has no call {call_uuid!r} (add_call() it, or check the UUID)"
        elif call_uuid not in self._requested:
            why = (
                f"no Transfer request for call {call_uuid} was accepted (its status is "
                f"{record.status}; a transfer of a call not in progress is refused with 404)"
            )
        else:
            why = f"legs still in flight: {self._pending.get(call_uuid, 0)}"
        return (
            f"no finished transfer for call {call_uuid} within {timeout}s: {why} "
            f"(outcomes so far: {outcomes})"
        )
