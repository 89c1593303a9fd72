"""The contract every state store keeps (:class:`StateStore`), with its defaults.

Values are JSON, a call's entries expire ``ttl`` seconds after its last write, and the
store also records webhook nonces for the replay check. The defaults here are built from
the abstract methods, one step at a time; the built-in backends (answerkit/_state_memory.py,
answerkit/state_sqlite.py, answerkit/state_redis.py) override them to act atomically.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from answerkit._state_mapping import CallState
from answerkit._state_values import MISSING, _check_key, _check_seconds, _dumps, _read_key

DEFAULT_TTL = 4 * 3600.0
"""Seconds a call's state lives after its last write (longer than any sane call)."""

# How often expired calls and nonces are swept out: by the memory store as it writes, and by
# the SQLite store's background thread (answerkit/_sqlite_upkeep.py).
_PURGE_INTERVAL = 60.0


def _overrides(store: object, base: type, *names: str) -> bool:
    """Whether a subclass of the built-in store ``base`` has its own version of one of
    ``names``: its atomic operations then go through those (an encrypting ``get``, a
    logging ``set``), one by one, as the contract's defaults do."""
    cls = type(store)
    return any(getattr(cls, name) is not getattr(base, name) for name in names)


class StateStore(ABC):
    """Where per-call state lives. Subclasses must be safe to share between threads."""

    def __init__(self, *, ttl: float = DEFAULT_TTL) -> None:
        self.ttl = _check_seconds("state ttl", ttl, zero=False)

    @abstractmethod
    def get_all(self, call_uuid: str) -> dict[str, Any]:
        """Every live key of the call (an empty dict for an unknown call), in key order
        (``sorted``): every store lists a call's keys alike, so a flow iterating its state
        runs on Redis or SQLite as it did on memory in its tests."""

    @abstractmethod
    def get(self, call_uuid: str, key: str) -> Any:
        """One value; ``KeyError`` if absent or expired."""

    @abstractmethod
    def set(self, call_uuid: str, key: str, value: Any) -> None:
        """Store a JSON-serialisable value and refresh the call's expiry."""

    def set_many(self, call_uuid: str, items: Mapping[str, Any]) -> None:
        """Store several values at once: all of them or, on an error, none (the built-in
        stores write them in one transaction). Every value is checked before any is
        written. This default writes them one by one: override it in a store of your own
        that can write them together."""
        for key, value in items.items():
            _dumps(call_uuid, key, value)
        for key, value in items.items():
            self.set(call_uuid, key, value)

    def set_if_absent(self, call_uuid: str, key: str, value: Any) -> Any:
        """Store ``value`` under ``key`` unless the call holds a live value there, and
        return the value the key holds afterwards: the one found, or ``value`` as JSON
        gives it back. Only a write refreshes the call's expiry.

        The built-in stores decide and write in one step, so of two workers at once
        exactly one stores its value and both are told the same. This default reads,
        then writes: two workers at once may both write (the last one wins, and the
        other is told its own value). Override it in a store of your own that can do
        it atomically."""
        key = _check_key(call_uuid, key)
        raw = _dumps(call_uuid, key, value)  # refused before the read, as set() would be
        try:
            return self.get(call_uuid, key)
        except KeyError:
            pass
        self.set(call_uuid, key, value)
        return json.loads(raw)

    @abstractmethod
    def delete(self, call_uuid: str, key: str) -> None:
        """Remove one key (no error if it is absent)."""

    def take(self, call_uuid: str, key: str) -> Any:
        """Remove ``key`` and return the value it held, or :data:`MISSING` if the call held
        no live value there.

        The built-in stores read and delete in one step, so of two workers taking one key
        at once exactly one gets its value. This default reads, then deletes: two workers
        at once may both get it. Override it in a store of your own that can do it
        atomically."""
        stored = _read_key(key)
        if stored is None:  # nothing can be stored under it, so nothing is there to take
            return MISSING
        try:
            value = self.get(call_uuid, stored)
        except KeyError:
            return MISSING
        self.delete(call_uuid, stored)
        return value

    @abstractmethod
    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        """Atomically add ``amount`` (a missing key counts as 0) and return the new value."""

    @abstractmethod
    def clear(self, call_uuid: str) -> None:
        """Forget everything about the call now."""

    def expire(self, call_uuid: str, seconds: float) -> None:
        """Let the call's state lapse within ``seconds`` (or sooner, as its TTL says).

        Done on the ``Hangup`` event: the webhooks Vobiz sends after it (the Dial
        ``action``, RecordStop, late status callbacks; spec §2.13) still find the state.
        A later write extends it to the TTL again, as any write does. The built-in stores
        do this; a store of your own that does not override it clears the state at once.
        """
        self.clear(call_uuid)

    @abstractmethod
    def remember_once(self, key: str, ttl: float) -> bool:
        """True the first time ``key`` is seen within ``ttl`` seconds, False on a repeat."""

    def remember_all(self, keys: Sequence[str], ttl: float) -> bool:
        """Remember every key (as :meth:`remember_once`); True only if *none* was seen.

        Every key is recorded even when an earlier one is a repeat, so a replay that later
        drops some of them still matches. Backends override this to record all keys in one
        round trip (a webhook's replay check is on the request path).
        """
        fresh = [self.remember_once(key, ttl) for key in dict.fromkeys(keys)]
        return all(fresh)

    def forget_all(self, keys: Sequence[str]) -> None:
        """Forget keys :meth:`remember_all` recorded, so they may be recorded again (a
        status callback whose handler raised RetryLater: Vobiz's retry may carry the same
        signature). A store without it raises NotImplementedError; the retry may then be
        refused as a replay."""
        raise NotImplementedError(f"{type(self).__name__} cannot forget replay keys")

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`StateError` if the store cannot be used."""

    def close(self) -> None:  # noqa: B027 - optional hook; most stores hold nothing to close
        """Release connections. The store must not be used afterwards."""

    def state(self, call_uuid: str) -> CallState:
        """A :class:`CallState` mapping bound to ``call_uuid``."""
        return CallState(self, call_uuid)
