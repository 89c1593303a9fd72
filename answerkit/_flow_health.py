"""A flow's health endpoint (:meth:`CallFlow.add_health_endpoint
<answerkit.app.CallFlow.add_health_endpoint>`): whether its state store takes a write.

A webhook route's own answer says nothing of the store: with it down every call gets the
fallback while the app answers every probe, so the probe asks of the store what a webhook
does (see _probe_store).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import uuid
import weakref
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING

from flask import Response as FlaskResponse

if TYPE_CHECKING:
    from answerkit.app import CallFlow
    from answerkit.state import StateStore

log = logging.getLogger("answerkit")

#: Seconds a health probe's replay record is kept (see CallFlow.add_health_endpoint).
HEALTH_PROBE_TTL = 5.0
#: Seconds a store write that succeeded answers for later probes: the endpoint takes no
#: signature, and a flood of probes wrote a row each (19,617 in 5 s), now one a second.
HEALTH_WRITE_FRESH = 1.0


def health_view(flow: CallFlow) -> Callable[[], FlaskResponse]:
    """The view add_health_endpoint serves: 200 while ``flow``'s store does what a
    webhook asks of it (see _probe_store) and a handler thread is free, else 503 with the
    cause logged."""

    wrote_at = -math.inf  # monotonic() of the last write that succeeded
    failed_at = -math.inf  # ... and of the last that failed
    # One write at a time: probes that come while one is under way (a slow store, when it
    # matters most) wait for it and take its result, rather than each write too.
    writing = _WriteLock()
    # The probe's call, one per view: a probe whose incr landed but whose reply was lost
    # (a timeout) left a call hash for the store's TTL, one per such probe; under one name
    # the next probe counts on it and clears it, so at most one is ever left.
    probe_call = f"answerkit-health-{uuid.uuid4().hex}"

    def health() -> FlaskResponse:
        nonlocal wrote_at, failed_at
        if flow.handlers_saturated:
            # Every handler thread is held by a handler past its deadline: each call here
            # gets the fallback at once, so send them to another process.
            log.warning(
                "flow %s: health check failed: every handler thread runs a handler past "
                "its deadline (stuck on a call with no timeout?)",
                flow.name,
            )
            return _health_answer("unavailable", 503)
        came = monotonic()
        if came - wrote_at < HEALTH_WRITE_FRESH:
            return _health_answer("ok", 200)
        with writing.lock:
            if monotonic() - wrote_at < HEALTH_WRITE_FRESH:  # the write waited for took
                return _health_answer("ok", 200)
            if failed_at > came:  # the write waited for, begun after this probe came, failed
                return _health_answer("unavailable", 503)
            try:
                _probe_store(flow.store, probe_call, clears=flow.hangup_linger == 0)
            except Exception as exc:  # anything at all: the webhooks would fail the same way
                failed_at = monotonic()
                log.warning("flow %s: health check failed: the state store: %s", flow.name, exc)
                return _health_answer("unavailable", 503)
            wrote_at = monotonic()
        return _health_answer("ok", 200)

    return health


def _probe_store(store: StateStore, call: str, *, clears: bool) -> None:
    """Ask of ``store`` what a webhook asks, once each: a replay record of two keys (a
    MULTI on Redis), an increment of the probe's call (``call``, the view's own: a script,
    and its receipt key) and that call's state cleared. A one-key record alone said 200
    while every webhook failed: a Redis user allowed no MULTI or no EVAL, or only keys
    under the prefix. A store of one's own without counters (incr raises
    NotImplementedError) has that step skipped: its webhooks do not need it."""
    probe = uuid.uuid4().hex
    store.remember_all([f"health:{probe}", f"health:{probe}:2"], HEALTH_PROBE_TTL)
    with contextlib.suppress(NotImplementedError):
        store.incr(call, "probe")
    # Not after a failed incr: a store that stalled would hold the probe twice as long.
    # What such an incr may have written is ended by the next probe (the same call), as
    # the flow's Hangups end a call's state (``clears``: hangup_linger=0): a store that
    # cannot fails every Hangup, and the probe says so.
    if clears:
        store.clear(call)
    else:
        store.expire(call, 0)


class _WriteLock:
    """A health endpoint's write lock, made anew in a forked child: one held by a probe
    under way when the process forked would be held there for ever (by a thread the child
    does not have), and every probe of the child would wait on it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        _every.add(self)


_every: weakref.WeakSet[_WriteLock] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for each in list(_every):
        each.lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _health_answer(status: str, code: int) -> FlaskResponse:
    return FlaskResponse(
        json.dumps({"status": status}), code, mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )  # fmt: skip
