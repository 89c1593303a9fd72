"""One call's state as a mapping (:class:`CallState`), the ``call.state`` of a handler.

It reads from a snapshot of the call and writes straight through to its store; the
operations that must be atomic across workers (``setdefault``, ``pop``, ``del``,
``incr``) are left to the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, overload

from answerkit._state_values import _PLAIN, MISSING, _dumps, _plain_key

if TYPE_CHECKING:
    from _typeshed import SupportsKeysAndGetItem

    from answerkit._state_store import StateStore

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
        deadline (answerkit/_deadline.py), and a webhook's with no call takes them but says
        so at the first (:class:`~answerkit._state_memory.NoCallState`)."""

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


def _copy(value: Any) -> Any:
    """A deep copy of a JSON value (lists, dicts and immutable scalars only)."""
    if type(value) is list:
        return [_copy(item) for item in value]
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    return value
