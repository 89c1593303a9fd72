"""The simulator's calls by CallUUID, and the Transfer and Hang-up requests made on them.

A request names a call by its CallUUID, as the REST API does: the test's own
:meth:`CallSimulator.transfer` / :meth:`CallSimulator.hangup`, or the flow's REST
calls that :class:`~answerkit.testing.LocalVobiz` hands over from its server thread.
The table finds the live leg the CallUUID means (a B-leg's CallUUID means the A-leg
it is bridged to, or whose Dial it answered) and queues the request on that call:
only the call's own thread acts on it, at its next step.
"""

from __future__ import annotations

import threading

from answerkit.testing.sim_call import SimulatedCall
from answerkit.testing.sim_signals import Pending
from answerkit.testing.sim_transcript import CAUSES

__all__ = ["CallTable"]


class CallTable:
    """Every call of one simulator, in the order placed (LocalVobiz's server thread uses it too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[SimulatedCall] = []
        self._by_uuid: dict[str, SimulatedCall] = {}

    def add(self, call: SimulatedCall) -> None:
        """List a new call (or transferred B-leg) under its CallUUID."""
        with self._lock:
            self._calls.append(call)
            self._by_uuid[call.call_uuid] = call

    def all(self) -> list[SimulatedCall]:
        """Every call so far, in the order they were placed."""
        return list(self._calls)

    def find(self, call_uuid: str) -> SimulatedCall:
        """The call with this CallUUID; KeyError if none."""
        with self._lock:
            return self._by_uuid[call_uuid]

    def live(
        self, call_uuid: str, ringing: bool = False
    ) -> tuple[SimulatedCall | None, str | None]:
        """The live answered call for ``call_uuid``, or the A-leg bridged to that B-leg
        (or whose Dial it answered, not bridged yet).

        ``ringing``: a call placed but not answered yet counts too (a make-call the
        simulator adopted, or a started call still ringing).
        """
        with self._lock:
            call = self._by_uuid.get(call_uuid)
            # A call leaving (its caller hung up while a Dial rang; the DialHangups still
            # go out) is no longer there to move or hang up (spec §4.3: finished calls 404).
            if call is not None and not call.ended and not call.leaving:
                placed = call.state != "new" or call.setup.registered
                if call.answered or (ringing and placed):
                    return call, None
            for candidate in self._calls:
                bridge = candidate.bridge
                if bridge is not None and bridge.up and bridge.target.uuid == call_uuid:
                    return candidate, "bleg"
                # Answered and not bridged yet (a DialAnswer or DialConnected handler asks).
                if candidate.dial_bleg == call_uuid and not candidate.ended:
                    return candidate, "bleg"
        return None, None

    def queue_transfer(self, call_uuid: str, leg: str, url: str, method: str) -> bool:
        """Queue a transfer of ``leg`` to ``url``; False when there is no such live call."""
        # Called by LocalVobiz from its server thread: only queue, the call acts itself.
        call, forced = self.live(call_uuid)
        if call is None:
            return False
        leg = forced or leg
        if leg in ("bleg", "both"):
            # Queued even with no bridge up yet: a handler of DialAnswer/DialConnected asks
            # before the bridge forms (LocalVobiz's requests come through take_transfer,
            # which refuses one with no Dial answered); the test's own legs=both moves the
            # A-leg regardless. Taken over, so LocalVobiz never fetches the URL itself in
            # the name of a simulated call (with the A-leg's CallUUID, off loopback).
            # Tagged with the B-leg meant: the one named, or the one the call has now.
            if forced == "bleg":
                bleg: str | None = call_uuid
            else:
                bridge = call.bridge
                bleg = bridge.target.uuid if bridge is not None and bridge.up else call.dial_bleg
            call._request(Pending("transfer-bleg", url, method, bleg=bleg))
        if leg in ("aleg", "both"):
            call._request(Pending("transfer", url, method))
        return True

    def take_transfer(self, call_uuid: str, leg: str, url: str, method: str) -> bool:
        """LocalVobiz's hook: queue a transfer of one leg, as :meth:`queue_transfer`.

        A B-leg transfer only while a Dial of the call has a B-leg (from DialAnswer until
        the bridge ends): else False, and LocalVobiz answers as it would on its own (400,
        no B-leg), where the test's own :meth:`CallSimulator.transfer` notes it instead.
        """
        if leg != "aleg":
            call, forced = self.live(call_uuid)
            if call is not None and forced is None and not call.dialing:
                return False
        return self.queue_transfer(call_uuid, leg, url, method)

    def queue_hangup(self, call_uuid: str) -> bool:
        """Queue a hang-up (source ``API Request``); False when there is no such live call."""
        # A ringing call is hung up too: taken at its next step, before it is answered.
        call, forced = self.live(call_uuid, ringing=True)
        if call is None:
            return False
        if forced == "bleg":
            cause = CAUSES["normal"].with_source("API Request")
            if call.bridge is not None and call.bridge.up:
                call.bridge.end(cause)
            else:  # answered, not bridged yet: the Dial ends it as the handler returns
                call.hang_up_bleg(cause)
            return True
        call._request(Pending("hangup", cause=CAUSES["normal"].with_source("API Request")))
        return True
