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
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import enum
import importlib
import json
import math
import numbers
import operator
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Final, overload

from answerkit.errors import ConfigurationError, StateValueError

if TYPE_CHECKING:
    from _typeshed import SupportsKeysAndGetItem

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

DEFAULT_TTL = 4 * 3600.0
"""Seconds a call's state lives after its last write (longer than any sane call)."""

DEFAULT_SQLITE_PATH = "./answerkit-state.sqlite3"

_PURGE_INTERVAL = 60.0


# One encoder for every write: json.dumps with any option builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)

# Values that come back from JSON as they went in (finite floats included: NaN and the
# infinities are refused on the way in), so a cached copy needs no round trip.
_PLAIN = frozenset({str, int, float, bool, type(None)})


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing.MISSING
"""What :meth:`StateStore.take` returns when the call holds no live value under the key
(``None`` is a value a key may hold)."""


def _check_key(call_uuid: str, key: object) -> str:
    """``key`` as the plain str every backend stores; StateValueError if it cannot be one."""
    # Each backend bent other keys its own way (memory kept 1 and b"k" as they were,
    # SQLite and Redis turned 1 into "1", only Redis turned b"k" into "k"), so a key
    # written on one backend read back differently on another, or not at all.
    if type(key) is str and key.isascii():
        return key
    if not isinstance(key, str):  # a str subclass (a StrEnum member) stores its text
        raise StateValueError(
            f"cannot store under {key!r} for call {call_uuid}: state keys must be str, not "
            f"{type(key).__name__} (pass str(key); for an Enum member, its .value)"
        )
    if not key.isascii():
        try:
            key.encode()
        except UnicodeEncodeError:
            # SQLite raised a bare UnicodeEncodeError, Redis a StateError blaming the
            # connection, and memory kept it.
            raise StateValueError(
                f"cannot store under {key!r} for call {call_uuid}: a state key must be "
                f"valid Unicode text (it holds a lone surrogate)"
            ) from None
    # A str-mixin Enum member as its text: memory kept the member itself ("Key.MENU" when
    # formatted, and a type of its own when iterated) where SQLite and Redis gave "menu".
    return _plain_key(key)


def _plain_key(key: str) -> str:
    """A key (a str, or a str subclass such as a StrEnum member) as a plain str; any other
    key (one a store of one's own took) as it is."""
    return str.__str__(key) if type(key) is not str and isinstance(key, str) else key


def _read_key(key: object) -> str | None:
    """``key`` as stored, for a read; None for a key nothing can be stored under (a read
    finds nothing there: SQLite and Redis found "1" for 1, memory did not)."""
    if type(key) is str and key.isascii():
        return key
    if not isinstance(key, str):
        return None
    try:
        key.encode()
    except UnicodeEncodeError:
        return None
    return _plain_key(key)


def _overrides(store: object, base: type, *names: str) -> bool:
    """Whether a subclass of the built-in store ``base`` has its own version of one of
    ``names``: its atomic operations then go through those (an encrypting ``get``, a
    logging ``set``), one by one, as the contract's defaults do."""
    cls = type(store)
    return any(getattr(cls, name) is not getattr(base, name) for name in names)


def _dumps(call_uuid: str, key: str, value: Any) -> str:
    _check_key(call_uuid, key)
    try:
        raw = _ENCODER.encode(value)
        # JSON writes any key as text ({1: "a"} comes back {"1": "a"}, as documented);
        # two keys that become the same text ({1: "a", "1": "b"}) would lose a value. A
        # structure with a dict in it is checked unless it reads back equal (in C).
        if "{" in raw and isinstance(value, _NESTED) and json.loads(raw) != value:
            clash = _clashing_keys(value)
            if clash is not None:
                raise StateValueError(
                    f"cannot store {type(value).__name__} under {key!r} for call "
                    f"{call_uuid}: state values must be JSON-serialisable without loss, and "
                    f"the dict keys {clash[0]!r} and {clash[1]!r} both become "
                    f"{_key_text(clash[0])!r} in JSON (one value would be lost); give the "
                    "dict distinct text keys"
                )
        return raw
    except (TypeError, ValueError, RecursionError) as exc:
        raise StateValueError(
            f"cannot store {type(value).__name__} under {key!r} for call {call_uuid}: "
            f"state values must be JSON-serialisable (str, int, float, bool, None, list, dict) "
            f"({exc}){_value_advice(value)}"
        ) from exc


def _value_advice(value: object) -> str:
    """How to store a value of a common type JSON has no form for, or ""."""
    found = _find_unstorable(value)
    if found is None:
        return ""
    for kinds, advice in _ADVICE:
        if isinstance(found, kinds):
            where = "" if found is value else f" (a {type(found).__name__} inside it)"
            return f"; store {advice}{where}"
    return ""


def _find_unstorable(value: object, depth: int = 0) -> object | None:
    """The first value in ``value`` (itself, or nested in lists and dicts) that JSON
    cannot write, or None."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return None
    if depth > 20:
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            bad = _find_unstorable(k, depth + 1) if not isinstance(k, str) else None
            bad = bad if bad is not None else _find_unstorable(v, depth + 1)
            if bad is not None:
                return bad
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            bad = _find_unstorable(item, depth + 1)
            if bad is not None:
                return bad
        return None
    return value


_ADVICE: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (decimal.Decimal, "str(value) to keep it exact, or float(value)"),
    ((datetime.datetime, datetime.date, datetime.time), "value.isoformat()"),
    (datetime.timedelta, "value.total_seconds()"),
    (enum.Enum, "value.value"),
    (uuid.UUID, "str(value)"),
    ((set, frozenset), "sorted(value) or list(value)"),
    ((bytes, bytearray), "value.decode() for text, or base64 for binary data"),
)


_NESTED = (dict, list, tuple)


def _key_text(key: object) -> str:
    """A dict key as JSON writes it (a str as is, 1 as "1", True as "true")."""
    return key if isinstance(key, str) else json.dumps(key)


def _clashing_keys(value: Any) -> tuple[object, object] | None:
    """Two keys of one dict in ``value`` (searched through lists and dicts) that JSON
    writes as the same text, or None; a structure nested too deep raises RecursionError,
    as JSON would."""
    if isinstance(value, dict):
        seen: dict[str, object] = {}
        for k, v in value.items():
            text = _key_text(k)
            if text in seen:
                return seen[text], k
            seen[text] = k
            if isinstance(v, _NESTED):
                found = _clashing_keys(v)
                if found is not None:
                    return found
    elif isinstance(value, (list, tuple)):
        for v in value:
            if isinstance(v, _NESTED):
                found = _clashing_keys(v)
                if found is not None:
                    return found
    return None


# Redis counts in 64 bits (HINCRBY); the other backends keep to the same range so that a
# counter behaves the same wherever it lives.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _check_amount(call_uuid: str, key: str, amount: object) -> int:
    """``amount`` if it is an int a counter may be moved by; StateError otherwise."""
    _check_key(call_uuid, key)
    # Memory and SQLite stored 1.5 (or True as 1) and Redis refused it as "it holds None".
    # Whole numbers of other types (an IntEnum, numpy's) count as the int they stand for.
    number: int | None = None
    if not isinstance(amount, bool):
        with contextlib.suppress(TypeError):
            number = operator.index(amount)  # type: ignore[arg-type]
    if number is None or not _INT64_MIN <= number <= _INT64_MAX:
        raise StateValueError(
            f"cannot increment {key!r} for call {call_uuid} by {amount!r}: the amount must "
            f"be an int within 64 bits (set a float with call.state[key] = value instead)"
        )
    return number


def _incr_refused(call_uuid: str, key: str, current: Any, amount: int) -> StateValueError:
    if isinstance(current, bool) or not isinstance(current, int):
        return StateValueError(
            f"cannot increment {key!r} for call {call_uuid}: it holds "
            f"{type(current).__name__} {current!r}, not an integer"
        )
    return StateValueError(
        f"cannot increment {key!r} for call {call_uuid} by {amount}: {current} + {amount} is "
        f"outside the 64-bit range a counter holds"
    )


def _added(call_uuid: str, key: str, current: Any, amount: int) -> int:
    """``current + amount`` for incr, or the StateError saying why not."""
    if isinstance(current, bool) or not isinstance(current, int):
        raise _incr_refused(call_uuid, key, current, amount)
    new: int = current + amount
    if not _INT64_MIN <= new <= _INT64_MAX:
        raise _incr_refused(call_uuid, key, current, amount)
    return new


def _check_seconds(what: str, seconds: object, *, zero: bool, forever: bool = False) -> float:
    """``seconds`` as a float if it is a number of seconds: above 0 (or 0 if ``zero``),
    finite (or infinite if ``forever``), never NaN."""
    # NaN passed every "<= 0" check: memory then never expired a thing, SQLite failed every
    # write (NOT NULL), Redis raised ValueError; infinity broke Redis alone (OverflowError).
    # Any real number (numpy's, a Decimal: not a numbers.Real) is taken as its float.
    if not isinstance(seconds, bool) and isinstance(seconds, (numbers.Real, decimal.Decimal)):
        seconds = float(seconds)
    if (
        not isinstance(seconds, float)
        or math.isnan(seconds)
        or (math.isinf(seconds) and not forever)
        or seconds < 0
        or (seconds == 0 and not zero)
    ):
        least = "0 or more" if zero else "more than 0"
        kind = "a" if forever else "a finite"
        raise ConfigurationError(
            f"{what} must be {kind} number of seconds, {least}, not {seconds!r}"
        )
    return float(seconds)


class StateStore(ABC):
    """Where per-call state lives. Subclasses must be safe to share between threads."""

    def __init__(self, *, ttl: float = DEFAULT_TTL) -> None:
        self.ttl = _check_seconds("state ttl", ttl, zero=False)

    @abstractmethod
    def get_all(self, call_uuid: str) -> dict[str, Any]:
        """Every live key of the call (an empty dict for an unknown call)."""

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


# --------------------------------------------------------------------------- memory


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
        return {k: json.loads(v) for k, v in values.items()}

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


# --------------------------------------------------------------------------- mapping

# pop()'s default when none is given (MISSING is the store's word for "no value").
_NO_DEFAULT: Any = object()


class CallState(MutableMapping[str, Any]):
    """The state of one call, as a mapping (``call.state["attempts"] = 2``).

    Writes go straight to the store. Reads come from a snapshot of the whole call taken on
    first read and kept up to date with this object's own writes; a write made meanwhile by
    another worker shows only after :meth:`refresh`. Use :meth:`incr` for counters that
    several webhooks may bump at once. ``setdefault``, ``pop``, ``popitem`` and ``del`` are
    decided by the store, not the snapshot, in one atomic step: of two webhooks claiming
    one key with ``setdefault``, one stores its value and both get it; of two popping one
    key, one gets its value.

    Only assignment writes: a list or dict read from the state is a copy, so change it and
    assign it back (``menu = state["menu"]; menu.append(2); state["menu"] = menu``).
    """

    __slots__ = ("_cache", "call_uuid", "store")

    def __init__(self, store: StateStore, call_uuid: str) -> None:
        self.store = store
        self.call_uuid = call_uuid
        self._cache: dict[str, Any] | None = None

    def _snapshot(self) -> dict[str, Any]:
        if self._cache is None:
            self._cache = self.store.get_all(self.call_uuid)
        return self._cache

    def refresh(self) -> None:
        """Forget the snapshot; the next read fetches the store again."""
        self._cache = None

    def _writable(self) -> None:
        """Called before every write; a handler's state refuses writes past the handler's
        deadline (answerkit/_deadline.py), a webhook's with no call refuses them all
        (:class:`NoCallState`)."""

    def __getitem__(self, key: str) -> Any:
        value = self._snapshot()[key]
        # A copy: changed in place, the snapshot's own list would show the change to the
        # rest of this webhook while the store (and every later webhook) never saw it.
        return value if type(value) in _PLAIN else _copy(value)

    def __setitem__(self, key: str, value: Any) -> None:
        self._writable()
        self.store.set(self.call_uuid, key, value)
        if self._cache is not None:
            # Round-trip so the cached value matches what a later read would return.
            self._cache[_plain_key(key)] = (
                value if type(value) in _PLAIN else json.loads(_dumps(self.call_uuid, key, value))
            )

    def _take(self, key: str) -> Any:
        """Remove ``key`` from the store (and the snapshot); its value, or MISSING."""
        self._writable()
        # Decided by the store, not the snapshot: a key another worker wrote since is
        # there to remove, and of two workers removing one key only one gets its value.
        value = self.store.take(self.call_uuid, key)
        if self._cache is not None:
            self._cache.pop(_plain_key(key), None)
        return value

    def __delitem__(self, key: str) -> None:
        if self._take(key) is MISSING:
            raise KeyError(key)

    def pop(self, key: str, default: Any = _NO_DEFAULT) -> Any:
        """Remove ``key`` and return its value (``default``, or KeyError without one, if
        the call holds none); atomic: of two workers popping one key, one gets it."""
        value = self._take(key)
        if value is MISSING:
            if default is _NO_DEFAULT:
                raise KeyError(key)
            return default
        return value

    def popitem(self) -> tuple[str, Any]:
        """Remove some key of the call and return it with its value; KeyError if the call
        holds none."""
        self._writable()
        tried: set[str] = set()
        # The snapshot's keys first; if other workers took them all meanwhile, the keys the
        # store holds now (written since the snapshot).
        for fresh in (False, True):
            keys = self.store.get_all(self.call_uuid) if fresh else self._snapshot()
            for key in list(keys):
                if key not in tried:
                    tried.add(key)
                    value = self._take(key)
                    if value is not MISSING:
                        return key, value
        raise KeyError("popitem(): the call holds no state")

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._snapshot()))

    def __len__(self) -> int:
        return len(self._snapshot())

    def __contains__(self, key: object) -> bool:
        return key in self._snapshot()

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``self[key]``, first storing ``default`` there if the key is missing.

        Atomic, and decided by the store, not the snapshot: of two workers setting one
        key at once, exactly one stores its default and both get the value stored."""
        self._writable()
        value = self.store.set_if_absent(self.call_uuid, key, default)
        if self._cache is not None:
            self._cache[_plain_key(key)] = value
        # As stored: a tuple default comes back a list, as on a later read; and a copy,
        # as every read gives.
        return value if type(value) in _PLAIN else _copy(value)

    @overload
    def update(self, other: SupportsKeysAndGetItem[str, Any], /, **kwargs: Any) -> None: ...
    @overload
    def update(self, other: Iterable[tuple[str, Any]], /, **kwargs: Any) -> None: ...
    @overload
    def update(self, /, **kwargs: Any) -> None: ...

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Store every pair; a value or key that cannot be stored is refused before any
        is written, so a refused update leaves the call's state as it was."""
        items = dict(other, **kwargs)
        if not items:
            return
        self._writable()
        self.store.set_many(self.call_uuid, items)
        if self._cache is not None:
            for key, value in items.items():
                # As __setitem__: the cached value is what a later read would return.
                self._cache[_plain_key(key)] = (
                    value
                    if type(value) in _PLAIN
                    else json.loads(_dumps(self.call_uuid, key, value))
                )

    def incr(self, key: str, amount: int = 1) -> int:
        """Atomically add ``amount`` to an integer (0 if missing) and return the new value."""
        self._writable()
        value = self.store.incr(self.call_uuid, key, amount)
        if self._cache is not None:
            self._cache[_plain_key(key)] = value
        return value

    def clear(self) -> None:
        """Forget all state of this call."""
        self._writable()
        self.store.clear(self.call_uuid)
        self._cache = {}

    def __repr__(self) -> str:
        shown = "<not loaded>" if self._cache is None else repr(self._cache)
        return f"CallState({self.call_uuid!r}, {shown})"


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


def _copy(value: Any) -> Any:
    """A deep copy of a JSON value (lists, dicts and immutable scalars only)."""
    if type(value) is list:
        return [_copy(item) for item in value]
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    return value


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
