"""Per-call state kept across the webhooks of one call, keyed by CallUUID.

Backends share one contract (:class:`StateStore`): values are JSON, entries of a call expire
``ttl`` seconds after the call's last write, ``incr``, ``set_if_absent`` and ``take`` (behind
``call.state``'s ``setdefault``, ``pop`` and ``del``) are atomic across processes and hosts,
and every failure is a :class:`~answerkit.errors.StateError` whose message names the store and
what to check (never a password).

* :class:`SQLiteStore`: the default; one file shared by every worker on a host (WAL).
* :class:`RedisStore`: for several hosts; one hash per call plus ``PEXPIRE``.
* :class:`MemoryStore`: one process only; for tests.

The store also remembers webhook nonces (:meth:`StateStore.remember_once`) so replay
protection holds across workers.

This module is the public home of those names; each idea lives in a module of its own:
the contract (answerkit/_state_store.py), the checks and JSON encoding every backend shares
(answerkit/_state_values.py), the ``call.state`` mapping (answerkit/_state_mapping.py),
the in-memory store (answerkit/_state_memory.py), and the SQLite and Redis backends and
store URLs (answerkit/state_sqlite.py, state_redis.py, state_urls.py), imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from answerkit._state_mapping import CallState as CallState
from answerkit._state_memory import MemoryStore as MemoryStore
from answerkit._state_memory import NoCallState as NoCallState
from answerkit._state_store import _PURGE_INTERVAL as _PURGE_INTERVAL
from answerkit._state_store import DEFAULT_TTL as DEFAULT_TTL
from answerkit._state_store import StateStore as StateStore
from answerkit._state_store import _overrides
from answerkit._state_values import MISSING as MISSING

if TYPE_CHECKING:
    # Defined in their own modules (which import this one) and re-exported lazily by
    # __getattr__ below, so importing answerkit.state never imports them eagerly.
    from answerkit.state_redis import RedisStore
    from answerkit.state_sqlite import SQLiteStore
    from answerkit.state_urls import open_store
    from answerkit.state_urls import redact_url as redact_url

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "DEFAULT_TTL",
    "MISSING",
    "CallState",
    "MemoryStore",
    "NoCallState",
    "RedisStore",
    "SQLiteStore",
    "StateStore",
    "open_store",
]

DEFAULT_SQLITE_PATH = "./answerkit-state.sqlite3"


# --------------------------------------------------------------------------- re-exports

_BACKENDS = {
    "SQLiteStore": "answerkit.state_sqlite",
    "RedisStore": "answerkit.state_redis",
    "open_store": "answerkit.state_urls",
    "redact_url": "answerkit.state_urls",
}


if not TYPE_CHECKING:  # a type checker sees the real names (imported above) and no others

    def __getattr__(name: str) -> Any:
        """Import :class:`SQLiteStore`, :class:`RedisStore` and :func:`open_store` on first
        use (PEP 562)."""
        module_name = _BACKENDS.get(name)
        if module_name is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_BACKENDS})


def claims_are_atomic(store: StateStore) -> bool:
    """Whether ``store.set_if_absent`` decides in one atomic step: on a built-in store whose
    ``get`` and ``set`` are its own (a subclass's own makes it a read, then a write), or on a
    store of one's own that overrides it."""
    from answerkit.state_redis import RedisStore
    from answerkit.state_sqlite import SQLiteStore

    for base in (MemoryStore, SQLiteStore, RedisStore):
        if isinstance(store, base):
            return not _overrides(store, base, "set", "get")
    return type(store).set_if_absent is not StateStore.set_if_absent
