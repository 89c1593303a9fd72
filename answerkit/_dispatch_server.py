"""What the first webhook of a process tells of the server it runs under.

A memory store is right for tests and wrong under a server of several worker processes,
where each keeps its own: the first webhook is the first moment answerkit can tell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from answerkit._dispatch_failures import log
from answerkit.errors import StateError
from answerkit.state import MemoryStore

if TYPE_CHECKING:
    from answerkit.dispatch import Dispatcher


def saw_server(dispatcher: Dispatcher, environ: Mapping[str, object]) -> None:
    """Look at the server once per process (``dispatcher.server_seen``): under several
    worker processes a memory store keeps a state and a replay record per process (one
    worker's writes unseen by the next webhook's, a signature refused only by the worker
    that saw it), which a test's single process never shows."""
    dispatcher.server_seen = True
    if not environ.get("wsgi.multiprocess"):
        return
    try:
        store = dispatcher.store()
    except StateError:
        return  # the webhook itself reports it
    if isinstance(store, MemoryStore):
        log.warning(
            "flow %s: its state is memory://, kept in each process, and this server runs "
            "several worker processes: call.state written in one is not seen by the others, "
            "and a replayed signature is refused only by the worker that saw it first. Use "
            "sqlite:/// (one host) or redis:// (several hosts)",
            dispatcher.flow_name,
        )
