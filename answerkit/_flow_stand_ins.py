"""Stand-ins for a flow's state store and REST client (:meth:`CallFlow.standing_in
<answerkit.app.CallFlow.standing_in>`), for as long as a check or a local call runs.

Separate because the stand-ins stack: blocks on other threads may overlap and end in any
order, and the flow's own store and client come back only when the last one closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from answerkit.client import VobizClient
from answerkit.state import StateStore

if TYPE_CHECKING:
    from answerkit.app import CallFlow


@contextmanager
def standing_in(
    flow: CallFlow, store: StateStore | None, client: VobizClient | None
) -> Iterator[None]:
    """Use ``store`` and ``client`` instead of ``flow``'s own while the block runs."""
    # Stand-ins stack up (blocks on other threads may overlap and end in any order):
    # the newest one still open is in use, and the flow's own once none is.
    with flow._store_lock:
        if not flow._stand_ins:
            flow._own = (flow._store, flow.transfers.peek_client())
        entry = (store, client)
        flow._stand_ins.append(entry)
        flow._use_stand_in()
    try:
        yield
    finally:
        with flow._store_lock:
            flow._stand_ins.remove(entry)
            flow._use_stand_in()
