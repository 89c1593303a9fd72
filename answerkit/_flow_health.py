"""A flow's health endpoint (:meth:`CallFlow.add_health_endpoint
<answerkit.app.CallFlow.add_health_endpoint>`): whether its state store takes a write.

A webhook route's own answer says nothing of the store: with it down every call gets the
fallback while the app answers every probe, so the probe writes what a webhook writes first.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING

from flask import Response as FlaskResponse

if TYPE_CHECKING:
    from answerkit.app import CallFlow

log = logging.getLogger("answerkit")

#: Seconds a health probe's replay record is kept (see CallFlow.add_health_endpoint).
HEALTH_PROBE_TTL = 5.0
#: Seconds a store write that succeeded answers for later probes: the endpoint takes no
#: signature, and a flood of probes wrote a row each (19,617 in 5 s), now one a second.
HEALTH_WRITE_FRESH = 1.0


def health_view(flow: CallFlow) -> Callable[[], FlaskResponse]:
    """The view add_health_endpoint serves: 200 while ``flow``'s store takes a replay
    record and a handler thread is free, else 503 with the cause logged."""

    wrote_at = -math.inf  # monotonic() of the last write that succeeded

    def health() -> FlaskResponse:
        nonlocal wrote_at
        if flow.handlers_saturated:
            # Every handler thread is held by a handler past its deadline: each call here
            # gets the fallback at once, so send them to another process.
            log.warning(
                "flow %s: health check failed: every handler thread runs a handler past "
                "its deadline (stuck on a call with no timeout?)",
                flow.name,
            )
            return _health_answer("unavailable", 503)
        if monotonic() - wrote_at < HEALTH_WRITE_FRESH:
            return _health_answer("ok", 200)
        try:
            flow.store.remember_all([f"health:{uuid.uuid4().hex}"], HEALTH_PROBE_TTL)
        except Exception as exc:  # anything at all: the webhooks would fail the same way
            log.warning("flow %s: health check failed: the state store: %s", flow.name, exc)
            return _health_answer("unavailable", 503)
        wrote_at = monotonic()
        return _health_answer("ok", 200)

    return health


def _health_answer(status: str, code: int) -> FlaskResponse:
    return FlaskResponse(
        json.dumps({"status": status}), code, mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )  # fmt: skip
