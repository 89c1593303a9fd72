"""How the webhook pipeline treats a failure it catches: which exceptions it must let
through to the server, and how it describes one in its log.

Also the pipeline's one log: answerkit/dispatch.py and answerkit/_dispatch_fallback.py
write through the same adapter, so that patching ``answerkit.dispatch.log`` in a test
reaches every line the pipeline writes.
"""

from __future__ import annotations

import threading

from answerkit._log import QuietLog, bounded

log = QuietLog("answerkit")


#: The only exceptions a handler may pass on to the server: the process is being stopped.
#: Every other one, BaseExceptions included (asyncio.CancelledError out of a handler's
#: asyncio.run, a library's own BaseException), gets the fallback: Flask would let them
#: reach the WSGI server, which answers 500 or loses the worker.
PROCESS_EXITS: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit)


def _passes_through(exc: BaseException) -> bool:
    """Whether ``exc`` must reach the server: the process is being stopped, or (greenlet's
    GreenletExit, under gevent or eventlet workers) the greenlet serving it is being killed,
    which a fallback answer would keep running.

    A stop comes as a signal, and Python raises those in the main thread only: off it (a
    gthread worker's request thread, a handler thread), a SystemExit or KeyboardInterrupt
    is the handler's own code (argparse, a ``sys.exit`` in a helper), which dropped the
    caller and took the worker down with it."""
    if type(exc).__name__ == "GreenletExit":
        return True
    return isinstance(exc, PROCESS_EXITS) and threading.current_thread() is threading.main_thread()


def describe(exc: BaseException) -> str:
    """``str(exc)`` for a log line: bounded, and never raising (an exception whose
    ``__str__`` fails lost the whole log line, CallUUID and all)."""
    try:
        text = str(exc)
    except Exception:
        return f"<{type(exc).__name__} whose text cannot be shown>"
    return bounded(text)


def hint(exc: BaseException) -> str:
    """What a handler error usually means, where the exception's own text does not say."""
    if isinstance(exc, RuntimeError) and "request context" in describe(exc):
        # flask.request in a handler: the route may be answered ahead of Flask's dispatch.
        return (
            " (a handler takes the webhook as its one argument: read call.params or the "
            "typed fields such as call.digits, not flask.request)"
        )
    return ""
