"""State kept in this process's memory: :class:`MemoryStore`, for tests and single-process
development, and :class:`NoCallState`, the state of a webhook that names no call, which a
MemoryStore of its own holds for that webhook alone.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from answerkit._state_mapping import CallState
from answerkit._state_store import _PURGE_INTERVAL, DEFAULT_TTL, StateStore, _overrides
from answerkit._state_values import (
    MISSING,
    _added,
    _check_amount,
    _check_key,
    _check_seconds,
    _dumps,
    _read_key,
)


class MemoryStore(StateStore):
    """State in this process's memory. For tests and single-process development only.

    Values go through JSON like every other backend, so code that works here works there.
    """

    def __init__(self, *, ttl: float = DEFAULT_TTL) -> None:
        super().__init__(ttl=ttl)
        self._lock = threading.Lock()
        self._calls: dict[str, tuple[float, dict[str, str]]] = {}
        self._nonces: dict[str, float] = {}
        self._next_purge = time.time() + _PURGE_INTERVAL

    def _live(self, call_uuid: str, now: float) -> dict[str, str] | None:
        entry = self._calls.get(call_uuid)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._calls[call_uuid]
            return None
        return entry[1]

    def _purge(self, now: float) -> None:
        # Run by nonce records too: a flow that never writes state still records a nonce
        # per webhook, and they piled up for the life of the process.
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_INTERVAL
            self._calls = {k: v for k, v in self._calls.items() if v[0] > now}
            self._nonces = {k: v for k, v in self._nonces.items() if v > now}

    def _write(self, call_uuid: str, now: float) -> dict[str, str]:
        self._purge(now)
        values = self._live(call_uuid, now) or {}
        self._calls[call_uuid] = (now + self.ttl, values)
        return values

    def get_all(self, call_uuid: str) -> dict[str, Any]:
        with self._lock:
            values = dict(self._live(call_uuid, time.time()) or {})
        return {k: json.loads(values[k]) for k in sorted(values)}  # in key order, as every store

    def get(self, call_uuid: str, key: str) -> Any:
        stored = _read_key(key)
        with self._lock:
            raw = None if stored is None else (self._live(call_uuid, time.time()) or {}).get(stored)
        if raw is None:
            raise KeyError(key)
        return json.loads(raw)

    def set(self, call_uuid: str, key: str, value: Any) -> None:
        key = _check_key(call_uuid, key)
        raw = _dumps(call_uuid, key, value)
        with self._lock:
            self._write(call_uuid, time.time())[key] = raw

    def set_many(self, call_uuid: str, items: Mapping[str, Any]) -> None:
        if type(self).set is not MemoryStore.set:  # a subclass's own set() sees every write
            return super().set_many(call_uuid, items)
        raws = {
            _check_key(call_uuid, key): _dumps(call_uuid, key, value)
            for key, value in items.items()
        }
        if not raws:
            return
        with self._lock:
            self._write(call_uuid, time.time()).update(raws)

    def set_if_absent(self, call_uuid: str, key: str, value: Any) -> Any:
        if _overrides(self, MemoryStore, "set", "get"):
            return super().set_if_absent(call_uuid, key, value)
        key = _check_key(call_uuid, key)
        raw = _dumps(call_uuid, key, value)
        with self._lock:
            now = time.time()
            found = (self._live(call_uuid, now) or {}).get(key)
            if found is None:
                self._write(call_uuid, now)[key] = raw
        return json.loads(raw if found is None else found)

    def delete(self, call_uuid: str, key: str) -> None:
        stored = _read_key(key)  # None: nothing can be stored under it, so nothing to delete
        if stored is not None:
            with self._lock:
                (self._live(call_uuid, time.time()) or {}).pop(stored, None)

    def take(self, call_uuid: str, key: str) -> Any:
        stored = _read_key(key)
        if stored is None or _overrides(self, MemoryStore, "delete", "get"):
            return super().take(call_uuid, key)
        with self._lock:
            raw = (self._live(call_uuid, time.time()) or {}).pop(stored, None)
        return MISSING if raw is None else json.loads(raw)

    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        key = _check_key(call_uuid, key)
        amount = _check_amount(call_uuid, key, amount)
        with self._lock:
            values = self._write(call_uuid, time.time())
            new = _added(call_uuid, key, json.loads(values.get(key, "0")), amount)
            values[key] = str(new)
            return new

    def clear(self, call_uuid: str) -> None:
        with self._lock:
            self._calls.pop(call_uuid, None)

    def expire(self, call_uuid: str, seconds: float) -> None:
        seconds = _check_seconds("the expiry", seconds, zero=True, forever=True)
        with self._lock:
            entry = self._calls.get(call_uuid)
            if entry is not None:
                self._calls[call_uuid] = (min(entry[0], time.time() + seconds), entry[1])

    def remember_once(self, key: str, ttl: float) -> bool:
        return self.remember_all((key,), ttl)

    def remember_all(self, keys: Sequence[str], ttl: float) -> bool:
        ttl = _check_seconds("the replay window", ttl, zero=False)
        now = time.time()
        fresh = True
        with self._lock:
            self._purge(now)
            for key in dict.fromkeys(keys):
                expires = self._nonces.get(key)
                if expires is not None and expires > now:
                    fresh = False
                else:
                    self._nonces[key] = now + ttl
        return fresh

    def forget_all(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._nonces.pop(key, None)

    def ping(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"MemoryStore(ttl={self.ttl})"


class NoCallState(CallState):
    """``call.state`` of a webhook that names no call: a Record's transcription callback,
    which carries no CallUUID (spec §2.6). It is the webhook's own: it starts empty, and
    what the handler writes lasts until the webhook ends. ``tell`` is called at the first
    write (the flow logs a warning: the write is kept nowhere)."""

    __slots__ = ("_tell",)

    def __init__(self, tell: Callable[[], None] | None = None) -> None:
        super().__init__(MemoryStore(), "")
        self._tell = tell

    def _writable(self) -> None:
        tell, self._tell = self._tell, None
        if tell is not None:
            tell()
