"""How a simulated Dial ends for the flow: each B-leg's DialHangup, then the Dial's action.

The action (spec §2.5) is a hand-off, or with ``redirect="false"`` a request; after a
hang-up that cut the Dial short it follows the Hangup webhook instead, its XML ignored
(spec §2.13: DialHangup, Hangup, Dial action). Apart from the Dial
(:mod:`~answerkit.testing.sim_dial`) because the answered B-leg
(:mod:`~answerkit.testing.sim_bridge`), which the Dial imports, ends through it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from answerkit.elements import Element
from answerkit.testing.sim_elements import check_schedule
from answerkit.testing.sim_signals import Fetch, Interrupted
from answerkit.testing.sim_transcript import Cause

if TYPE_CHECKING:
    from answerkit.testing.sim_bridge import _Target
    from answerkit.testing.sim_call import SimulatedCall


def _action_params(
    call: SimulatedCall, status: str, ring: str, hangup_cause: str, bleg_uuid: str
) -> dict[str, str]:
    """The Dial action's own parameters (spec §2.5)."""
    return {
        "DialStatus": status,
        "DialRingStatus": ring,
        "DialHangupCause": hangup_cause,
        "DialALegUUID": call.call_uuid,
        "DialBLegUUID": bleg_uuid,
    }


def _end_legs(
    call: SimulatedCall,
    el: Element,
    legs: list[tuple[_Target, Cause, int]],
    leg_hangup: Any,
    params: dict[str, str],
) -> None:
    """Send each B-leg's DialHangup (``legs``: the leg, its cause, its talk seconds).

    A hang-up or transfer of the call that a DialHangup handler asks for (a REST request,
    taken as that webhook returns) loses nothing that was due: the other legs still get
    their own DialHangup (spec §1.2 Dial), and after a hang-up the Dial action (``params``)
    follows the Hangup webhook (spec §2.13: DialHangup, Hangup, Dial action, RecordStop).
    """
    waiting = list(legs)
    try:
        while waiting:
            target, cause, duration = waiting.pop(0)  # taken first: an interrupted one went out
            leg_hangup(target, cause, duration)
    except Interrupted:
        if call.driven:
            with call.cleanup():
                for target, cause, duration in waiting:
                    leg_hangup(target, cause, duration)
            _action_after_hangup(call, el, params)
        raise


def _action_after_hangup(call: SimulatedCall, el: Element, params: dict[str, str]) -> None:
    """After a hang-up that interrupted the Dial, queue its action to follow the Hangup
    webhook (spec §2.13), whatever ``redirect`` says: the call is over, so its XML is
    ignored. A transfer sends none: the call went on elsewhere."""
    action = el.get("action")
    if not action or not call.hanging_up:
        return
    method = el.get("method") or "POST"
    event = call.sim.dial_action_event
    call._after_hangup.append(lambda: call._send(action, method, call._params(event, params)))


def _dial_action(call: SimulatedCall, el: Element, params: dict[str, str]) -> Fetch | None:
    """Send the Dial action (spec §2.5): a hand-off, or with ``redirect="false"`` a request.

    A Dial the scheduled hang-up cut short ends the call here; its action, whatever
    ``redirect`` says, follows the hangup webhook (spec §2.13), its XML ignored.
    """
    action = el.get("action")
    method = el.get("method") or "POST"
    event = call.sim.dial_action_event  # DialAction or Redirect: spec §6 item 8
    fetch = Fetch(action, method, event, params, "action") if action else None
    check_schedule(call, after_hangup=fetch)
    if fetch is None:
        return None
    if el.get("redirect") == "false":
        call._send(fetch.url, method, call._params(event, params))
        return None
    return fetch
