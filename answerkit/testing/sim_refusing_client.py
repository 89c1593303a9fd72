"""The REST client a simulator without a LocalVobiz lends its flow: it sends nothing.

A flow with no client of its own makes one from ``VOBIZ_AUTH_ID``/``VOBIZ_AUTH_TOKEN``
on first use. In a test process that holds real credentials (a developer's shell, a CI
job that also deploys), a handler's ``flow.transfer(...)`` played by a plain
``CallSimulator(flow)`` would then move or hang up real calls, and the simulated call
would show nothing of it. This client stands in for the flow's while such a simulator is
open: every request the flow makes fails with a :class:`ConfigurationError` saying how
to give the simulator a LocalVobiz, and the handler fails visibly, as any failing
handler does (its error in ``t.handler_errors``, the caller hears the fallback).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from answerkit.client import VobizClient
from answerkit.errors import ConfigurationError

__all__ = ["RefusingClient"]

_AUTH_ID = "MA_SIMULATOR"  # the account the simulator signs its webhooks for, without one


class RefusingClient(VobizClient):
    """A :class:`~answerkit.client.VobizClient` whose every request is refused, unsent.

    Its own class so that the loan stack (:mod:`~answerkit.testing.sim_loans`) knows it
    for a stand-in, not a client the flow was given: a simulator with a LocalVobiz lends
    over it, and one without leaves the flow's own client alone.
    """

    def __init__(self) -> None:
        # Settings of its own, never the environment's: they may be production's. http
        # allowed as a LocalVobiz client allows it, so that a transfer to the simulated
        # app's http URL meets the refusal below, not an argument check that would send
        # the reader after the URL.
        super().__init__(
            _AUTH_ID,
            "simulator-sends-nothing",
            base_url="http://127.0.0.1/api/v1",
            allow_http=True,
            max_retries=0,
        )

    def __repr__(self) -> str:
        return "RefusingClient(a CallSimulator without a LocalVobiz: every request refused)"

    def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        call_uuid: str | None = None,
    ) -> NoReturn:
        # The one funnel of every endpoint (transfer, hangup, get_live_call, make_call),
        # reached once the arguments passed the checks the API would make.
        shown = ".../" + path.removeprefix(f"/Account/{_AUTH_ID}/")
        raise ConfigurationError(
            f"this simulator has no LocalVobiz, so the flow's REST request ({method} "
            f"{shown}) would reach the real Vobiz API from a test; nothing was sent: make "
            "the simulator with local_vobiz=LocalVobiz().start() (the call_simulator "
            "fixture does), or give the flow a client of its own (CallFlow(client=...))"
        )
