"""How a simulated call sends its webhooks: their fields, the request, its record.

Every webhook of a call carries the same standard fields (:func:`standard_params`,
spec §2.1). :func:`send_webhook` signs it for the public URL Vobiz would have called,
sends it through the simulator's transport (a URL outside the application is never
requested), and records it in the transcript with what its reply hides: a handler's
error, an ``Event`` no handler takes, a status callback's lost fields, a URL that
looks meant for the app. :func:`notify` sends a status callback and retries it as the
platform does. The call's own ``_send`` wraps :func:`send_webhook`: a transfer or
hang-up queued while the webhook was answered interrupts the call's document there.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from answerkit.testing.sim_handler_errors import dropped_callback, unhandled_event
from answerkit.testing.sim_outside_hint import outside_hint
from answerkit.testing.sim_transcript import Webhook
from answerkit.testing.sim_transport import Reply

if TYPE_CHECKING:
    from answerkit.testing.sim_call import SimulatedCall
    from answerkit.testing.sim_signals import CallSetup

__all__ = ["UTC_FORMAT", "notify", "send_webhook", "standard_params"]

#: How Vobiz writes ``SessionStart`` (UTC, spec §2.1).
UTC_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

#: Why a webhook to a URL outside the simulated application got no answer: it was not sent
#: (tests stay on loopback); a hand-off to one ends the call as an unreachable URL would.
OUTSIDE = "outside the simulated application: not requested"


def _wire(number: str) -> str:
    # Vobiz sends E.164 without the "+" (spec §2.0); sip: URIs stay as they are.
    return number[1:] if number.startswith("+") else number


def standard_params(
    setup: CallSetup, session_start: datetime, parent_auth_id: str
) -> dict[str, str]:
    """The fields every webhook of the call carries (spec §2.1), with the test's own
    ``params`` over them; :meth:`SimulatedCall._params` adds the status and the event."""
    std = {
        "CallUUID": setup.call_uuid,
        "From": _wire(setup.from_),
        "To": _wire(setup.to),
        "Direction": setup.direction,
        "CallerName": setup.caller_name or setup.from_,
        "SessionStart": session_start.strftime(UTC_FORMAT),
        "STIRAttestation": "Not Applicable",
        "STIRVerification": "Not Applicable",
        "ParentAuthID": parent_auth_id,
    }
    if setup.direction == "outbound":
        request_uuid = setup.request_uuid or setup.call_uuid
        std.update(RequestUUID=request_uuid, ALegUUID=setup.call_uuid, ALegRequestUUID=request_uuid)
    std.update(setup.params)
    return std


def send_webhook(call: SimulatedCall, url: str, method: str, params: dict[str, str]) -> Webhook:
    """Send one signed webhook and record it, with the notes and handler errors its reply
    hides (:meth:`SimulatedCall._send` then honours a transfer queued meanwhile)."""
    sim = call.sim
    resolved = sim.router.resolve(url)
    started = perf_counter()
    errors: list[str] = []
    if resolved is None:
        reply = Reply(0, b"", "", OUTSIDE)
        display = url
    else:
        signed, target, display = resolved
        if sim.error_tap is None:
            reply = sim.transport.send(method, target, params, sim.sign(signed))
        else:
            # Filed by the CallUUID the webhook carries: an app served over HTTP fails
            # on its own threads, where the thread alone cannot say which call it was.
            with sim.error_tap.watching(errors, params.get("CallUUID") or None):
                reply = sim.transport.send(method, target, params, sim.sign(signed))
    hook = Webhook(
        url,
        method,
        params,
        reply.status,
        reply.body,
        reply.content_type,
        perf_counter() - started,
        reply.error,
        None if resolved is None else display,
    )
    call.transcript.webhooks.append(hook)
    what = _what_is_sent(params)
    # A URL outside the app is not "unreachable": the simulator never tried it.
    answer = (
        "not sent (outside the simulated application)"
        if resolved is None
        else reply.status or "unreachable"
    )
    call._emit("webhook", f"{method} {display} ({what}) -> {answer}", webhook=hook)
    if resolved is None:
        _hint_outside(call, url)
    if resolved is not None and sim.flow is not None and 200 <= reply.status < 300:
        missing = unhandled_event(sim.flow, urlsplit(display).path, params)
        if missing is not None:
            errors.append(missing)
        dropped = dropped_callback(sim.flow, urlsplit(display).path, params)
        if dropped is not None:
            call.transcript.unhandled_callbacks.append(dropped)
            call._emit("note", dropped)
    for error in errors:
        call.transcript.handler_errors.append(error)
        call._emit("error", f"handler error: {error}")
    return hook


def _hint_outside(call: SimulatedCall, url: str) -> None:
    """A note, once per URL, when one outside the app looks meant for it (a typo in
    its host, the app's host with another scheme or port, a path of the flow's): it
    is not sent, and a callback lost so would otherwise pass unnoticed."""
    where = url.split("?", 1)[0]
    if where in call._hinted:
        return
    call._hinted.add(where)
    hint = outside_hint(call.sim.router, call.sim.flow, where)
    if hint is not None:
        call._emit("note", f"not sent: {hint}")


def notify(
    call: SimulatedCall,
    url: str,
    method: str,
    event: str,
    extra: Mapping[str, str],
    omit: Collection[str] = (),
) -> None:
    """A status callback: any answer is fine; non-2xx is retried 3 times (spec §2.12).

    ``omit`` names standard fields the event does not carry (spec §2.9). A URL outside
    the simulated application is recorded once: it is never requested, and spec §2.12
    retries "Non-200 replies", so a request never made has no reply to retry.
    """
    params = call._params(event, extra)
    for name in omit:
        params.pop(name, None)
    attempts = 1 if call.sim.router.resolve(url) is None else 4
    for _attempt in range(attempts):
        if call._send(url, method, params).ok:
            return


def _what_is_sent(params: Mapping[str, str]) -> str:
    """A webhook's gist for the transcript: its event, the input it carries, or that it
    is a transcription."""
    event = params.get("Event")
    if event:
        return f"Event={event}"
    if "transcription_id" in params:
        return "transcription"
    if "StableSpeech" in params or "UnstableSpeech" in params:
        return "interim speech"
    if not any(name in params for name in ("InputType", "Digits", "Speech")):
        return "no Event"  # a dialMusic or confirmSound fetch (spec §2.5 names none)
    given = params.get("Digits") or params.get("Speech")
    kind = params.get("InputType", "")
    return f"{kind} input".lstrip() if given else f"no {kind} input".replace("  ", " ")
