"""The store contract, checked the same way on every backend (memory, SQLite, a real Redis).

Each test states one promise of ``answerkit.state`` and runs it against all three, so a
backend that bends a key, a value, a counter or an expiry its own way shows up here.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import gc
import json
import math
import multiprocessing
import re
import shutil
import sqlite3
import threading
import time
import types
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import StoreFactory, new_call_uuid, wait_until

from answerkit.app import CallFlow
from answerkit.errors import ConfigurationError, StateError, StateValueError
from answerkit.state import (
    CallState,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    StateStore,
    open_store,
    redact_url,
)

# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize("key", [1, b"k", None, 1.5, ("a",)])
def test_a_key_that_is_not_str_is_refused_before_anything_is_written(
    store: StateStore, key: Any
) -> None:
    # Memory kept 1 and b"k" as given, SQLite and Redis turned 1 into "1", and only Redis
    # turned b"k" into "k": the same code read its state back differently per backend.
    call = new_call_uuid()
    with pytest.raises(StateError, match="keys must be str") as info:
        store.set(call, key, "x")
    assert repr(key) in str(info.value) and "str(key)" in str(info.value)
    with pytest.raises(StateError, match="keys must be str"):
        store.incr(call, key)
    state = store.state(call)
    with pytest.raises(StateError, match="keys must be str"):
        state[key] = "x"
    assert store.get_all(call) == {} and dict(state) == {}


def test_a_key_that_is_not_valid_unicode_is_refused(store: StateStore) -> None:
    # SQLite raised a bare UnicodeEncodeError, Redis a StateError blaming the connection.
    call = new_call_uuid()
    for write in (lambda: store.set(call, "a\ud800", 1), lambda: store.incr(call, "a\ud800")):
        with pytest.raises(StateError, match="lone surrogate"):
            write()
    assert store.get_all(call) == {}


@pytest.mark.parametrize("key", ["", "a:b", "*", "a\x00b", "ключ", "🙂", "k" * 10_000])
def test_any_str_key_round_trips(store: StateStore, key: str) -> None:
    call = new_call_uuid()
    store.set(call, key, 1)
    assert store.incr(call, key) == 2
    assert store.get_all(call) == {key: 2} and store.get(call, key) == 2
    store.delete(call, key)
    assert store.get_all(call) == {}


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ((1, 2), [1, 2]),
        ({1: "a", "b": (None,)}, {"1": "a", "b": [None]}),
        (2**100, 2**100),
        (-0.0, -0.0),
        (1e308, 1e308),
        (0.1 + 0.2, 0.1 + 0.2),
        ("a\x00b\ud800\U0001f642", "a\x00b\ud800\U0001f642"),
        ("x" * 1_000_000, "x" * 1_000_000),
        ([[[[{"deep": [True, False, None]}]]]], [[[[{"deep": [True, False, None]}]]]]),
    ],
)
def test_values_come_back_as_json_gives_them_on_every_backend(
    store: StateStore, value: Any, stored: Any
) -> None:
    call = new_call_uuid()
    state = store.state(call)
    assert len(state) == 0  # a snapshot is held, so the write below also updates it
    state["v"] = value
    assert state["v"] == stored and type(state["v"]) is type(stored)
    assert store.get(call, "v") == stored and store.get_all(call) == {"v": stored}
    assert store.state(call)["v"] == stored  # what the next webhook reads


def _deep(levels: int) -> list[Any]:
    outer: list[Any] = []
    inner = outer
    for _ in range(levels):
        inner.append([])
        inner = inner[0]
    return outer


def _circular() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


@pytest.mark.parametrize(
    "value",
    [
        object(),
        {1, 2},
        b"bytes",
        float("nan"),
        float("inf"),
        decimal.Decimal("1.5"),
        datetime.date(2024, 1, 1),
        {(1, 2): "tuple key"},
        {1: "a", "1": "b"},  # one of the two would be lost
        {"menu": [{"ok": 1}, {2: "b", "2": "c"}]},
        {True: 1, "true": 2},
        {"x": collections.OrderedDict({1: "a", "1": "b"})},
        _circular(),
        _deep(100_000),  # used to escape as a bare RecursionError
        _deep(100),  # stored, then a bare RecursionError for a reader deeper in its stack
    ],
    ids=lambda value: type(value).__name__,
)
def test_a_refused_value_is_a_state_error_and_the_old_value_stays(
    store: StateStore, value: Any
) -> None:
    call = new_call_uuid()
    store.set(call, "k", "old")
    with pytest.raises(StateError) as info:
        store.set(call, "k", value)
    message = str(info.value)
    assert "'k'" in message and call in message and "JSON-serialisable" in message
    state = store.state(call)
    with pytest.raises(StateError):
        state["k"] = value
    assert store.get_all(call) == {"k": "old"} and state["k"] == "old"


@pytest.mark.parametrize(
    ("value", "advice"),
    [
        (decimal.Decimal("0.012"), "; store str(value) to keep it exact, or float(value)"),
        (datetime.datetime(2026, 1, 2, 3, 4), "; store value.isoformat()"),
        ({"at": datetime.date(2026, 1, 2)}, "; store value.isoformat() (a date inside it)"),
        ([1, {3, 2}], "; store sorted(value) or list(value) (a set inside it)"),
        (uuid.UUID(int=1), "; store str(value)"),
        (b"raw", "; store value.decode() for text, or base64 for binary data"),
        (types.MappingProxyType({"a": "1"}), "; store dict(value)"),  # call.sip_headers
        (object(), ""),
    ],
    ids=lambda v: type(v).__name__,
)
def test_a_refused_value_of_a_common_type_names_how_to_store_it(
    store: StateStore, value: Any, advice: str
) -> None:
    with pytest.raises(StateValueError) as info:
        store.set(new_call_uuid(), "k", value)
    assert str(info.value).endswith(advice) and isinstance(info.value, ValueError)
    if not advice:
        assert "; store" not in str(info.value)


def test_a_value_nested_as_deep_as_allowed_reads_back_from_deep_in_a_stack(
    store: StateStore,
) -> None:
    call = new_call_uuid()
    store.set(call, "tree", _deep(99))  # 100 lists deep: the limit
    store.set(call, "name", "ada")

    def deeper(levels: int) -> dict[str, Any]:
        return store.get_all(call) if levels == 0 else deeper(levels - 1)

    assert deeper(700) == {"name": "ada", "tree": _deep(99)}


def test_dict_keys_that_clash_are_told_once(store: StateStore) -> None:
    # The clash's own message was caught and wrapped in the generic one, saying it twice.
    with pytest.raises(StateValueError) as info:
        store.set(new_call_uuid(), "k", {1.0: 1, "1.0": 2})
    assert str(info.value).count("cannot store") == 1 and "both become" in str(info.value)


# --------------------------------------------------------------------------- CallState


def test_call_state_is_a_full_mapping_on_every_backend(store: StateStore) -> None:
    call = new_call_uuid()
    state = store.state(call)
    assert len(state) == 0 and list(state) == [] and "a" not in state
    state["a"] = 1
    state.update({"b": [1]}, c="three")
    state.update([("d", None)])
    assert sorted(state) == ["a", "b", "c", "d"] and len(state) == 4
    assert state == {"a": 1, "b": [1], "c": "three", "d": None}
    assert sorted(state.items()) == sorted({"a": 1, "b": [1], "c": "three", "d": None}.items())
    assert state.get("d", "default") is None and state.get("zz", "default") == "default"
    assert state.pop("c") == "three" and state.pop("zz", "gone") == "gone"
    with pytest.raises(KeyError):
        state.pop("zz")
    del state["d"]
    with pytest.raises(KeyError):
        del state["d"]
    assert state.setdefault("a", 99) == 1 and state.setdefault("e", 5) == 5
    assert store.get_all(call) == {"a": 1, "b": [1], "e": 5}
    key, _value = state.popitem()
    assert key not in state and key not in store.get_all(call)
    for key in list(state):  # iterating a snapshot: deleting meanwhile is fine
        del state[key]
    assert len(state) == 0 and store.get_all(call) == {}
    state["x"] = 1
    state.clear()
    assert dict(state) == {} and store.get_all(call) == {}


def test_a_calls_keys_are_listed_in_key_order_on_every_backend(store: StateStore) -> None:
    # Memory and Redis listed them as written, SQLite sorted: a flow iterating its state
    # (or popitem) ran one way in its memory-backed tests and another in production.
    call = new_call_uuid()
    for key in ("zeta", "alpha", "mid", "Émile", "10", "9"):
        store.set(call, key, key)
    expected = ["10", "9", "alpha", "mid", "zeta", "Émile"]
    assert list(store.get_all(call)) == expected and list(store.state(call)) == expected
    assert store.state(call).popitem() == ("10", "10")


def test_a_nested_value_changed_in_place_is_not_shown_as_saved(store: StateStore) -> None:
    # Reads used to hand out the snapshot's own list: an append showed for the rest of the
    # webhook, yet the store (and every later webhook) never had it.
    call = new_call_uuid()
    state = store.state(call)
    state["menu"] = {"tries": [1]}
    state["menu"]["tries"].append(2)
    assert state["menu"] == {"tries": [1]} == store.get(call, "menu")
    assert dict(state)["menu"] == {"tries": [1]}
    menu = state["menu"]  # the way to change it: read, change, assign back
    menu["tries"].append(2)
    state["menu"] = menu
    assert store.state(call)["menu"] == {"tries": [1, 2]} == state["menu"]
    state["seen"] = ["a"]
    state["seen"] += ["b"]  # a read, an extend and an assignment: saved
    assert store.get(call, "seen") == ["a", "b"] == state["seen"]


def test_setdefault_returns_what_a_later_webhook_reads(store: StateStore) -> None:
    call = new_call_uuid()
    state = store.state(call)
    got = state.setdefault("path", ("menu", "sales"))
    assert got == ["menu", "sales"] == store.state(call)["path"]  # was the tuple given
    got.append("changed")  # not the snapshot's own list either
    assert state["path"] == ["menu", "sales"]
    assert state.setdefault("path", "ignored") == ["menu", "sales"]


def _loaded(state: CallState) -> CallState:
    """``state`` with its snapshot taken, as a handler that has read its state has it."""
    len(state)
    return state


def test_setdefault_is_decided_by_the_store_not_the_snapshot(store: StateStore) -> None:
    # Both workers decided from their snapshots that the key was missing and wrote: both
    # were told they had set it, and one of the two was overwritten.
    call = new_call_uuid()
    a, b = _loaded(store.state(call)), _loaded(store.state(call))
    assert a.setdefault("agent", "A") == "A"
    assert b.setdefault("agent", "B") == "A"
    assert store.get(call, "agent") == "A" and b["agent"] == "A" and a["agent"] == "A"
    # A key deleted by another worker since the snapshot is missing, so it is set.
    store.delete(call, "agent")
    assert a.setdefault("agent", ["A2"]) == ["A2"] == store.get(call, "agent")


def test_pop_takes_a_value_once_and_reaches_keys_written_since_the_snapshot(
    store: StateStore,
) -> None:
    call = new_call_uuid()
    store.set(call, "offer", "agent-7")
    x, y = _loaded(store.state(call)), _loaded(store.state(call))
    assert x.pop("offer", None) == "agent-7"
    assert y.pop("offer", None) is None  # taken already: its snapshot's copy is not given
    with pytest.raises(KeyError):
        y.pop("offer")
    assert "offer" not in y and store.get_all(call) == {}
    store.set(call, "transfer_to", "sales")  # by another worker, after x's snapshot
    assert x.pop("transfer_to") == "sales" and store.get_all(call) == {}
    store.set(call, "null", None)
    assert x.pop("null", "default") is None  # a None held is a value, not "missing"


def test_del_deletes_in_the_store_and_says_only_what_the_store_had(store: StateStore) -> None:
    call = new_call_uuid()
    store.set(call, "gone", 1)
    state = _loaded(store.state(call))
    store.set(call, "late", 1)  # by another worker, after the snapshot
    del state["late"]
    assert "late" not in store.get_all(call)
    store.delete(call, "gone")  # by another worker: the snapshot still shows it
    with pytest.raises(KeyError):
        del state["gone"]
    assert "gone" not in state and dict(state) == {} == store.get_all(call)


def test_popitem_takes_what_the_store_holds(store: StateStore) -> None:
    call = new_call_uuid()
    store.set(call, "a", 1)
    state = _loaded(store.state(call))
    store.delete(call, "a")  # taken by another worker
    store.set(call, "b", [2])  # and another key written since the snapshot
    assert state.popitem() == ("b", [2])
    assert store.get_all(call) == {}
    with pytest.raises(KeyError):
        state.popitem()


def test_threads_setting_or_popping_one_key_at_once_agree(store: StateStore) -> None:
    workers = 4
    call = new_call_uuid()
    barrier = threading.Barrier(workers)
    claims: list[Any] = [None] * workers
    popped: list[Any] = [None] * workers
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            state = _loaded(store.state(call))  # each handler read its state first
            barrier.wait()
            claims[worker] = state.setdefault("agent", worker)
            barrier.wait()
            if worker == 0:
                store.set(call, "token", "T")
            barrier.wait()
            popped[worker] = state.pop("token", None)
        except BaseException as exc:  # reported below: a thread's exception is easy to miss
            failures.append(exc)

    for _round in range(5):
        store.clear(call)
        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(set(claims)) == 1 and claims[0] == store.get(call, "agent")
        assert popped.count("T") == 1 and popped.count(None) == workers - 1


def test_set_if_absent_and_take_on_the_store(store: StateStore) -> None:
    from answerkit.state import MISSING

    call = new_call_uuid()
    assert store.set_if_absent(call, "path", ("menu", 1)) == ["menu", 1]  # as JSON gives it
    assert store.set_if_absent(call, "path", "other") == ["menu", 1]
    assert store.get_all(call) == {"path": ["menu", 1]}
    assert store.take(call, "path") == ["menu", 1]
    assert store.take(call, "path") is MISSING and store.get_all(call) == {}
    store.set(call, "none", None)
    assert store.set_if_absent(call, "none", 1) is None and store.take(call, "none") is None
    # Checked as set() checks: nothing is written.
    with pytest.raises(StateError, match="JSON"):
        store.set_if_absent(call, "bad", object())
    with pytest.raises(StateError, match="keys must be str"):
        store.set_if_absent(call, 1, "x")  # type: ignore[arg-type]
    # A removal finds nothing under a key nothing can be stored under, as a read does.
    assert store.take(call, 1) is MISSING  # type: ignore[arg-type]
    assert store.get_all(call) == {}


@pytest.mark.usefixtures("no_background_purge")
def test_set_if_absent_treats_expired_keys_as_absent_and_never_revives_them(
    make_store: StoreFactory,
) -> None:
    from answerkit.state import MISSING

    store = make_store(ttl=60)  # the new value stays for the checks below
    call, idle = new_call_uuid(), new_call_uuid()
    store.set(call, "old", 1)
    store.set(call, "other", 2)
    store.set(idle, "old", 1)
    store.expire(call, 0.3)
    store.expire(idle, 0.3)  # later than the call's: gone no sooner
    # Waited for on the idle call, so that the call's expired keys are first reached below.
    wait_until(lambda: store.get_all(idle) == {}, "the idle call is there past its expiry")
    assert store.take(call, "old") is MISSING
    assert store.set_if_absent(call, "old", "new") == "new"
    assert store.get_all(call) == {"old": "new"}  # "other" stays expired


_WRITES: dict[str, Callable[[StateStore, str], object]] = {
    "set": lambda store, call: store.set(call, "b", 2),
    "set_if_absent": lambda store, call: store.set_if_absent(call, "b", 2),
    "set_many": lambda store, call: store.set_many(call, {"b": 2}),
}


@pytest.mark.usefixtures("no_background_purge")
@pytest.mark.parametrize("write", list(_WRITES))
def test_a_write_refreshes_the_whole_call(make_store: StoreFactory, write: str) -> None:
    store = make_store(ttl=60)
    call, idle = new_call_uuid(), new_call_uuid()
    for target in (call, idle):
        store.set(target, "a", 1)
    store.expire(call, 5)  # "a" outlasts the write below by far
    store.expire(idle, 5)  # later than the call's: gone no sooner
    _WRITES[write](store, call)  # pushes the whole call's end to the TTL again
    wait_until(lambda: store.get_all(idle) == {}, "the idle call is there past its expiry")
    assert store.get_all(call) == {"a": 1, "b": 2}


class _DictStore(StateStore):
    """A store of one's own written to the contract's abstract methods only."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, dict[str, str]] = collections.defaultdict(dict)

    def get_all(self, call_uuid: str) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.calls[call_uuid].items()}

    def get(self, call_uuid: str, key: str) -> Any:
        return json.loads(self.calls[call_uuid][key])

    def set(self, call_uuid: str, key: str, value: Any) -> None:
        self.calls[call_uuid][str(key)] = json.dumps(value)

    def delete(self, call_uuid: str, key: str) -> None:
        self.calls[call_uuid].pop(key, None)

    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        new: int = self.get_all(call_uuid).get(key, 0) + amount
        self.set(call_uuid, key, new)
        return new

    def clear(self, call_uuid: str) -> None:
        self.calls.pop(call_uuid, None)

    def remember_once(self, key: str, ttl: float) -> bool:
        return True

    def ping(self) -> None:
        return None


def test_a_store_of_your_own_gets_setdefault_and_pop_from_the_contract() -> None:
    from answerkit.state import MISSING

    store = _DictStore()
    state = _loaded(store.state("c"))
    assert state.setdefault("a", (1,)) == [1] and store.set_if_absent("c", "a", 2) == [1]
    with pytest.raises(StateError, match="JSON"):
        store.set_if_absent("c", "bad", object())
    store.set("c", "late", "x")
    assert state.pop("late") == "x" and store.take("c", "late") is MISSING
    del state["a"]
    assert store.get_all("c") == {} and state.pop("a", None) is None


def test_a_built_in_store_subclass_sees_setdefault_and_pop_through_its_own_methods() -> None:
    # As with set_many: a subclass overriding set() or delete() (to log, or to fail in a
    # test) sees the writes setdefault and pop make.
    seen: list[str] = []

    class Logged(MemoryStore):
        def set(self, call_uuid: str, key: str, value: Any) -> None:
            seen.append(f"set {key}")
            super().set(call_uuid, key, value)

        def delete(self, call_uuid: str, key: str) -> None:
            seen.append(f"delete {key}")
            super().delete(call_uuid, key)

    state = Logged().state("c")
    state.setdefault("a", 1)
    state.pop("a")
    assert seen == ["set a", "delete a"]


def test_a_subclass_reading_in_its_own_way_sees_pop_and_setdefault_read_so(
    tmp_path: Path,
) -> None:
    # An encrypting store (its own set, get and get_all; delete as it was): pop, popitem
    # and del went past its get and handed back the stored text.
    import base64

    def encrypting(base: type[StateStore]) -> type[StateStore]:
        class Encrypting(base):  # type: ignore[valid-type,misc]
            def set(self, call_uuid: str, key: str, value: Any) -> None:
                super().set(call_uuid, key, base64.b64encode(json.dumps(value).encode()).decode())

            def get(self, call_uuid: str, key: str) -> Any:
                return json.loads(base64.b64decode(super().get(call_uuid, key)))

            def get_all(self, call_uuid: str) -> dict[str, Any]:
                return {
                    k: json.loads(base64.b64decode(v))
                    for k, v in super().get_all(call_uuid).items()
                }

        return Encrypting

    for store in (encrypting(MemoryStore)(), encrypting(SQLiteStore)(tmp_path / "e.sqlite3")):
        state = store.state("c")
        state["pin"] = 1234
        assert state.setdefault("pin", 0) == 1234
        assert state.pop("pin") == 1234
        state["pin"] = 1234
        assert _loaded(store.state("c")).popitem() == ("pin", 1234)


def test_removing_a_key_nothing_can_be_stored_under_finds_nothing(store: StateStore) -> None:
    # Refused as if written ("cannot store under 1"), where a read found nothing there.
    call = new_call_uuid()
    state = store.state(call)
    assert state.pop(1, "d") == "d" and state.pop("\ud800", "d") == "d"  # type: ignore[call-overload]
    with pytest.raises(KeyError):
        del state[1]  # type: ignore[arg-type]
    store.delete(call, 1)  # type: ignore[arg-type]


class _Key(str, enum.Enum):
    MENU = "menu"
    COUNT = "count"


def test_str_enum_keys_are_kept_as_their_text_on_every_backend(store: StateStore) -> None:
    # Memory kept the member itself (a key formatting as "_Key.MENU", of another type
    # when iterated), SQLite and Redis its text; the snapshot kept the member on all three.
    call = new_call_uuid()
    state = _loaded(store.state(call))
    state[_Key.MENU] = "sales"
    state.update({_Key.COUNT: 0})
    assert state.incr(_Key.COUNT) == 1
    for keys in (list(state), list(store.state(call)), list(store.get_all(call))):
        assert sorted(keys) == ["count", "menu"]
        assert {type(k) for k in keys} == {str}
    assert store.get(call, _Key.MENU) == "sales" and state[_Key.MENU] == "sales"
    assert state.pop(_Key.MENU) == "sales"
    assert state.setdefault(_Key.MENU, "support") == "support"
    assert [type(k) for k in state] == [str, str]
    store.set(call, _Key.MENU, "billing")
    assert store.set_if_absent(call, _Key.MENU, "x") == "billing"
    assert store.take(call, _Key.MENU) == "billing"
    store.delete(call, _Key.COUNT)
    assert store.get_all(call) == {}


def test_a_refused_update_writes_nothing(store: StateStore) -> None:
    # update() used to write the pairs before the refused one, leaving half an update.
    call = new_call_uuid()
    state = store.state(call)
    state["kept"] = 1
    with pytest.raises(StateError, match="'bad'"):
        state.update({"a": 1, "b": [2], "bad": object(), "z": 3})
    with pytest.raises(StateError, match="keys must be str"):
        state.update({"a": 1, 5: "x"})
    with pytest.raises(StateError):
        state.update([("a", 1)], bad={1, 2})
    assert store.get_all(call) == {"kept": 1} and dict(state) == {"kept": 1}


# --------------------------------------------------------------------------- incr


@pytest.mark.parametrize("amount", [1.5, True, "2", None, 2**63, -(2**63) - 1])
def test_incr_refuses_an_amount_that_is_not_a_64_bit_int(store: StateStore, amount: Any) -> None:
    # Memory and SQLite stored 1.5 (and True as 1) and failed on the next incr; Redis
    # refused 1.5 as "it holds None", True as a connection failure, and took "2".
    call = new_call_uuid()
    with pytest.raises(StateError, match="amount must be an int") as info:
        store.incr(call, "n", amount)
    assert repr(amount) in str(info.value) and "'n'" in str(info.value)
    with pytest.raises(StateError):
        store.state(call).incr("n", amount)
    assert store.get_all(call) == {}


def test_incr_counts_within_64_bits_on_every_backend(store: StateStore) -> None:
    # Redis counts in 64 bits and said "not an integer" past them; memory and SQLite
    # counted on, so a counter's limit depended on where it lived.
    call = new_call_uuid()
    top, bottom = 2**63 - 1, -(2**63)
    assert store.incr(call, "up", top) == top
    with pytest.raises(StateError, match="64-bit") as info:
        store.incr(call, "up")
    assert "'up'" in str(info.value)
    assert store.incr(call, "down", bottom) == bottom
    with pytest.raises(StateError, match="64-bit"):
        store.incr(call, "down", -1)
    store.set(call, "huge", 2**70)  # storable as a value, but past what a counter holds
    with pytest.raises(StateError, match="64-bit"):
        store.incr(call, "huge")
    assert store.get_all(call) == {"up": top, "down": bottom, "huge": 2**70}


def test_incr_returns_the_exact_count_past_2_to_the_53(store: StateStore) -> None:
    # Redis's script handed HINCRBY's reply back through a Lua double: rounded past 2**53,
    # and 2**63 - 1 came back as -2**63 (the stored count itself was right).
    call = new_call_uuid()
    assert store.incr(call, "n", 2**53) == 2**53
    assert store.incr(call, "n") == 2**53 + 1 == store.get(call, "n")
    assert store.incr(call, "top", 2**63 - 1) == 2**63 - 1


@pytest.mark.parametrize("value", ["abc", "5", 1.0, True, None, [1], {"n": 1}])
def test_incr_of_a_non_integer_says_what_it_holds_on_every_backend(
    store: StateStore, value: Any
) -> None:
    # Redis quoted the raw JSON ('"abc"'); the others the value and its type.
    call = new_call_uuid()
    store.set(call, "n", value)
    with pytest.raises(StateError, match="not an integer") as info:
        store.incr(call, "n")
    assert f"it holds {type(value).__name__} {value!r}, not an integer" in str(info.value)
    assert store.get_all(call) == {"n": value}


# --------------------------------------------------------------------------- TTL, expiry


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf, "300", True])
def test_a_ttl_that_is_not_a_positive_finite_number_is_refused(
    make_store: StoreFactory, ttl: Any
) -> None:
    # NaN passed the "<= 0" check: memory then kept state for good, SQLite failed every
    # write, Redis raised ValueError; infinity broke only Redis.
    with pytest.raises(ConfigurationError, match="ttl must be a finite number of seconds"):
        make_store(ttl=ttl)


def test_seconds_past_a_hundred_years_are_refused_on_every_backend(
    make_store: StoreFactory,
) -> None:
    # Redis counts milliseconds in 64 bits: ttl=1e16 was taken, then every write failed
    # after landing, never to expire; memory and SQLite took it.
    with pytest.raises(ConfigurationError, match=re.escape("at most 3.1536e+09 seconds")):
        make_store(ttl=1e16)
    store = make_store()
    call = new_call_uuid()
    store.set(call, "n", 1)
    with pytest.raises(ConfigurationError, match=re.escape("float('inf') for never")):
        store.expire(call, 1e16)
    with pytest.raises(ConfigurationError, match="replay window must be at most"):
        store.remember_all(["k"], 1e16)
    store.expire(call, math.inf)  # never: as before
    assert store.get_all(call) == {"n": 1}


def test_expire_now_forgets_at_once_on_every_backend(store: StateStore) -> None:
    # Redis kept a hash due "now" for another millisecond, readable by the next webhook.
    call = new_call_uuid()
    store.set(call, "n", 1)
    store.expire(call, 0)
    assert store.get_all(call) == {}
    with pytest.raises(KeyError):
        store.get(call, "n")


@pytest.mark.parametrize("seconds", [math.nan, -1.0, "300"])
def test_expire_refuses_what_is_no_number_of_seconds(store: StateStore, seconds: Any) -> None:
    # NaN: memory ignored it, SQLite failed (NOT NULL), Redis raised a bare ValueError.
    call = new_call_uuid()
    store.set(call, "n", 1)
    with pytest.raises(ConfigurationError, match="expiry"):
        store.expire(call, seconds)
    assert store.get_all(call) == {"n": 1}


@pytest.mark.usefixtures("no_background_purge")
def test_a_write_after_the_hangup_brings_back_the_full_ttl(make_store: StoreFactory) -> None:
    # A late callback writing after the Hangup's linger keeps the whole call for the TTL.
    store = make_store(ttl=60)
    call, idle = new_call_uuid(), new_call_uuid()
    for target in (call, idle):  # the idle call's linger ends no sooner than the call's
        store.set(target, "a", 1)
        store.expire(target, 5)  # the linger: "a" outlasts the late writes below by far
    store.set(call, "b", 2)
    store.incr(call, "late")
    wait_until(lambda: store.get_all(idle) == {}, "the idle call is there past its linger")
    assert store.get_all(call) == {"a": 1, "b": 2, "late": 1}


@pytest.mark.usefixtures("no_background_purge")
def test_keys_written_together_expire_at_the_ttl(make_store: StoreFactory) -> None:
    # set_many (behind call.state.update) sets the TTL as set() does: without it, Redis
    # kept the keys of a call written only through update() for good.
    ttl = 5.0  # long enough for the keys to be checked as there first
    store = make_store(ttl=ttl)
    many, updated = new_call_uuid(), new_call_uuid()
    store.set_many(many, {"a": 1, "b": [2], "c": None})
    store.state(updated).update({"a": 1}, b=[2])
    if isinstance(store, RedisStore):
        raw = store._client
        for call in (many, updated):
            assert 0 < raw.pttl(f"{store.prefix}call:{call}") <= ttl * 1000
    assert store.get_all(many) == {"a": 1, "b": [2], "c": None}
    assert store.get_all(updated) == {"a": 1, "b": [2]}

    def gone() -> bool:
        return store.get_all(many) == {} and store.get_all(updated) == {}

    wait_until(gone, "keys written together are there past the TTL")


# --------------------------------------------------------------------------- replay record


@pytest.mark.parametrize("window", [0, -5, math.nan, math.inf])
def test_a_replay_window_that_is_no_positive_number_is_refused(
    store: StateStore, window: float
) -> None:
    # With 0 or NaN memory and SQLite remembered nothing (replay protection silently off)
    # while Redis remembered for a millisecond; NaN made SQLite fail and Redis raise.
    key = f"nonce-{uuid.uuid4()}"
    with pytest.raises(ConfigurationError, match="replay window"):
        store.remember_all([key], window)
    with pytest.raises(ConfigurationError, match="replay window"):
        store.remember_once(key, window)
    assert store.remember_once(key, 60) is True  # nothing was recorded


@pytest.mark.parametrize("key", ["", "a:b*?", "ключ", "v1:" + "s" * 5000])
def test_any_nonce_is_remembered_once(store: StateStore, key: str) -> None:
    assert store.remember_all([key], 60) is True
    assert store.remember_all([key], 60) is False
    assert store.remember_once(key, 60) is False


def test_forgotten_replay_keys_may_be_recorded_again(store: StateStore) -> None:
    # A status callback that raised RetryLater: Vobiz's retry may carry the same signature.
    assert store.remember_all(["a", "b"], 60) is True
    store.forget_all(["a", "missing", "a"])
    assert store.remember_all(["a"], 60) is True
    assert store.remember_all(["b"], 60) is False
    store.forget_all([])


def test_memory_store_forgets_expired_nonces_without_state_writes() -> None:
    # Only state writes purged: a flow that never writes state kept every nonce.
    store = MemoryStore()
    for i in range(50):
        store.remember_once(f"n-{i}", 0.01)
    time.sleep(0.05)
    store._next_purge = 0.0  # a purge is due
    assert store.remember_once("last", 60) is True
    assert list(store._nonces) == ["last"]


# --------------------------------------------------------------------------- concurrency


# What one worker saw: which nonces were fresh to it, the value each claim holds (from its
# setdefault), and which tokens it popped.
_Seen = tuple[list[bool], list[Any], list[bool]]


def _seed(store: StateStore, call: str) -> None:
    """The tokens the workers pop (each exactly once, between them)."""
    store.set_many(call, {f"token-{j}": j for j in range(25)})


def _workload(store: StateStore, call: str, worker: int, nonces: list[str]) -> _Seen:
    won, claims, popped = [], [], []
    for j in range(25):
        store.set(call, f"w{worker}-{j}", j)
        store.incr(call, "n")
        won.append(store.remember_once(nonces[j], 60))
        state = store.state(call)
        len(state)  # a snapshot first, as a handler that read its state has it
        claims.append(state.setdefault(f"claim-{j}", worker))
        popped.append(state.pop(f"token-{j}", None) == j)
    return won, claims, popped


def _check_workload(store: StateStore, call: str, results: list[_Seen]) -> None:
    workers = len(results)
    stored = store.get_all(call)
    expected: dict[str, Any] = {f"w{w}-{j}": j for w in range(workers) for j in range(25)}
    expected["n"] = 25 * workers
    expected.update({f"claim-{j}": stored.get(f"claim-{j}") for j in range(25)})
    assert stored == expected  # no write lost, none clobbered another key, every token gone
    for j in range(25):
        # Each nonce was fresh to exactly one worker, each token popped by exactly one,
        # and every worker was told the one value its claim holds.
        assert sum(won[j] for won, _claims, _popped in results) == 1
        assert sum(popped[j] for _won, _claims, popped in results) == 1
        assert {claims[j] for _won, claims, _popped in results} == {stored[f"claim-{j}"]}


def test_threads_lose_no_update_of_any_kind(store: StateStore) -> None:
    call = new_call_uuid()
    nonces = [f"nonce-{uuid.uuid4()}" for _ in range(25)]
    results: list[_Seen] = [([], [], []) for _ in range(4)]
    failures: list[BaseException] = []
    _seed(store, call)

    def work(worker: int) -> None:
        try:
            results[worker] = _workload(store, call, worker, nonces)
        except BaseException as exc:  # reported below: a thread's exception is easy to miss
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    _check_workload(store, call, results)


def _process_workload(
    kind: str, target: str, prefix: str, call: str, worker: int, nonces: list[str]
) -> _Seen:
    store: StateStore = (
        SQLiteStore(target) if kind == "sqlite" else RedisStore(target, prefix=prefix)
    )
    try:
        return _workload(store, call, worker, nonces)
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
@pytest.mark.timeout(120)
def test_processes_lose_no_update_of_any_kind(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    target = (
        str(tmp_path / "shared.sqlite3")
        if kind == "sqlite"
        else request.getfixturevalue("redis_url")
    )
    prefix = f"test-{uuid.uuid4().hex}:"
    call = new_call_uuid()
    nonces = [f"nonce-{uuid.uuid4()}" for _ in range(25)]
    store: StateStore = (
        SQLiteStore(target) if kind == "sqlite" else RedisStore(target, prefix=prefix)
    )
    try:
        _seed(store, call)
        with multiprocessing.get_context("spawn").Pool(3) as pool:
            results = pool.starmap(
                _process_workload, [(kind, target, prefix, call, w, nonces) for w in range(3)]
            )
        _check_workload(store, call, results)
    finally:
        store.close()


# --------------------------------------------------------------------------- unreachable


def test_sqlite_directory_removed_under_the_store_is_a_state_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import answerkit._sqlite_connections as sqlite_connections

    monkeypatch.setattr(sqlite_connections, "FILE_CHECK_INTERVAL", 0.0)
    where = tmp_path / "gone"
    where.mkdir()
    store = SQLiteStore(where / "state.sqlite3")
    store.set("c", "k", 1)
    shutil.rmtree(where)
    operations: list[Callable[[], object]] = [
        lambda: store.set("c", "k", 2),
        lambda: store.get_all("c"),
        lambda: store.incr("c", "n"),
        lambda: store.remember_all(["n"], 60),
        lambda: store.expire("c", 10),
        lambda: store.clear("c"),
        store.ping,
    ]
    for operation in operations:
        with pytest.raises(StateError, match="directory exists") as info:
            operation()
        assert str(where / "state.sqlite3") in str(info.value)
    store.close()


def test_sqlite_full_disk_is_a_state_error_and_the_old_value_stays(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "full.sqlite3")
    call = new_call_uuid()
    store.set(call, "k", "old")
    store._connect().execute("PRAGMA max_page_count = 2")  # as if the disk were full
    with pytest.raises(StateError, match="disk is not full"):
        store.set(call, "k", "x" * 100_000)
    assert store.get_all(call) == {"k": "old"}
    store.close()


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize("password", ["Zqx/Ykw-9w7", "Zqx#Ykw-9w7", "Zqx?Ykw-9w7", "Zq@x/Ykw-9w7"])
def test_a_password_with_unencoded_delimiters_never_shows(password: str) -> None:
    # urlsplit ends the host part at the first "/", "?" or "#": the password was taken for
    # a path, query or fragment and printed whole in the errors of open_store.
    pieces = [piece for piece in re.split(r"[/?#@]", password) if len(piece) >= 3]
    for url in (f"redis://user:{password}@127.0.0.1:6379/0", f"redis://:{password}@h:6379/0"):
        with pytest.raises(ConfigurationError, match="percent-encode") as info:
            open_store(url)
        for text in (str(info.value), redact_url(url)):
            assert not any(piece in text for piece in pieces), text
    with pytest.raises(ConfigurationError) as unknown:
        open_store(f"postgres://user:{password}@db/x")
    assert not any(piece in str(unknown.value) for piece in pieces), str(unknown.value)


def test_a_redis_database_that_is_no_number_is_refused() -> None:
    # redis-py ignored the path and used database 0 without a word.
    with pytest.raises(ConfigurationError, match="names database 'one'"):
        open_store("redis://127.0.0.1:6379/one")
    with pytest.raises(ConfigurationError, match="IPv6"):  # a bare ValueError would escape
        open_store("redis://[::1:6379/0")
    for fine in ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/", "rediss://h/12"):
        open_store(fine).close()


def test_an_encoded_password_still_works(redis_url: str) -> None:
    # Percent-encoding, as the error says, is accepted (Redis without auth ignores it).
    store = open_store(redis_url.replace("redis://", "redis://:pa%2Fss@"))
    try:
        assert "pa%2Fss" not in repr(store) and "pa/ss" not in repr(store)
        store.ping()
    finally:
        store.close()


def test_url_schemes_are_case_insensitive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    # "SQLITE:///..." worked but "REDIS://..." reached redis-py, which refused it.
    monkeypatch.chdir(tmp_path)
    sqlite_store = open_store("SQLite:///upper.sqlite3")
    redis_store = open_store(redis_url.replace("redis://", "REDIS://"))
    try:
        assert isinstance(sqlite_store, SQLiteStore)
        assert sqlite_store.path == str(tmp_path / "upper.sqlite3")
        assert isinstance(redis_store, RedisStore)
        redis_store.ping()
        assert isinstance(open_store("Memory://"), MemoryStore)
    finally:
        sqlite_store.close()
        redis_store.close()


def test_a_url_without_scheme_separator_is_shown_as_given() -> None:
    # The error used to quote 'sqlite://relative.db', a URL the user never wrote.
    with pytest.raises(ConfigurationError) as info:
        open_store("sqlite:relative.db")
    assert "'sqlite:relative.db'" in str(info.value)
    with pytest.raises(ConfigurationError) as secret:
        open_store("redis:user:hunter2pw@host")
    assert "hunter2pw" not in str(secret.value)


def test_reprs_and_errors_never_show_the_password() -> None:
    store = RedisStore("redis://user:hunter2-secret@127.0.0.1:1/0?password=other-secret")
    try:
        for text in (repr(store), str(store), store.url):
            assert "hunter2-secret" not in text and "other-secret" not in text
    finally:
        store.close()


# --------------------------------------------------------------------------- cleanup


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "answerkit-sqlite-checkpoint"]


def test_closed_stores_leave_no_thread_and_no_resource_warning(
    make_store: StoreFactory,
) -> None:
    before = set(_checkpoint_threads())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            store = make_store()
            worker = threading.Thread(target=store.incr, args=("c", "n"))
            worker.start()
            worker.join()
            store.set("c", "k", 1)
            store.close()
        del store, worker
        gc.collect()
    assert set(_checkpoint_threads()) <= before
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_sqlite_connection_is_closed_when_its_thread_ends(tmp_path: Path) -> None:
    # Left to the garbage collector, each warned "unclosed database" (ResourceWarning,
    # Python 3.13+): one per request under a server that starts a thread per request.
    store = SQLiteStore(tmp_path / "threads.sqlite3")
    held: list[sqlite3.Connection] = []
    worker = threading.Thread(target=lambda: held.append(store._connect()))
    worker.start()
    worker.join()
    del worker
    gc.collect()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        held[0].execute("SELECT 1")
    store.set("c", "k", 1)  # the store's other connections are untouched
    main = store._connect()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        main.execute("SELECT 1")


def test_redis_close_disconnects_every_connection(redis_url: str) -> None:
    import redis

    watcher = redis.Redis.from_url(redis_url, decode_responses=True)
    name = f"answerkit-test-{uuid.uuid4().hex}"
    store = RedisStore(f"{redis_url}?client_name={name}", prefix=f"test-{uuid.uuid4().hex}:")

    def ours() -> int:
        return sum(client.get("name") == name for client in watcher.client_list())

    threads = [threading.Thread(target=store.get_all, args=("c",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ours() >= 1
    store.close()
    deadline = time.monotonic() + 10  # the server notices a closed socket on its next loop
    while ours() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ours() == 0
    watcher.close()


@pytest.mark.parametrize("scheme", ["memory://", "sqlite:///{tmp}/t.db"])
def test_the_state_url_sets_the_ttl(scheme: str, tmp_path: Any) -> None:
    from answerkit.state_urls import open_store

    store = open_store(scheme.format(tmp=tmp_path) + "?ttl=90")
    try:
        assert store.ttl == 90.0
    finally:
        store.close()


@pytest.mark.parametrize("query", ["ttl=0", "ttl=abc", "ttl=", "ttl=inf", "mode=ro"])
def test_a_bad_state_url_query_is_refused(query: str, tmp_path: Any) -> None:
    from answerkit.state_urls import open_store

    with pytest.raises(ConfigurationError):
        open_store(f"sqlite:///{tmp_path}/t.db?{query}")


def test_a_redis_url_gives_its_ttl_and_passes_the_rest_to_redis_py(redis_url: str) -> None:
    from answerkit.state_urls import open_store

    store = open_store(f"{redis_url}?ttl=90&socket_timeout=5")
    try:
        store.set("ttl-call", "k", 1)
        assert store.ttl == 90.0 and store.get_all("ttl-call") == {"k": 1}
    finally:
        store.close()


def test_a_closed_sqlite_store_is_not_reopened_behind_your_back(tmp_path: Path) -> None:
    """Reopening would also start a background checkpoint thread nothing stops any more."""
    from answerkit.state_sqlite import SQLiteStore

    store = SQLiteStore(str(tmp_path / "closed.db"))
    store.set("c", "k", 1)
    store.close()
    before = threading.active_count()
    with pytest.raises(StateError, match="closed"):
        store.set("c", "k", 2)
    assert threading.active_count() == before


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://cache:6379/0?password=s3cr@tP4ssw0rd", "redis://cache:6379/0?password=***"),
        ("unix:///run/redis/redis-server@main.sock?db=0", None),
        ("redis://user:pa/ss@host:6379/0", "redis://user:***@host:6379/0"),
    ],
)
def test_an_at_sign_in_a_query_or_a_socket_path_is_no_user_info(
    url: str, shown: str | None
) -> None:
    """Only an @ inside the authority (or one a password's unencoded '/', '?' or '#' pushed
    out of it) ends user info; an @ in ?password= or a socket's name is part of them."""
    from answerkit.state_urls import redact_url

    assert redact_url(url) == (shown or url)
    assert "P4ssw0rd" not in redact_url(url) and "pa/ss" not in redact_url(url)


def test_str_subclass_keys_and_whole_number_amounts_are_taken() -> None:
    import decimal
    import enum

    class Key(str, enum.Enum):
        LANG = "lang"

    class Step(enum.IntEnum):
        TWO = 2

    state = CallState(MemoryStore(ttl=decimal.Decimal("60")), "c-keys")
    state[Key.LANG] = "en"
    assert state["lang"] == "en"
    assert state.incr("n", Step.TWO) == 2
    with pytest.raises(StateError, match=r"str\(key\); for an Enum member, its \.value"):
        state[1] = "x"  # type: ignore[index]


def test_the_ttl_is_found_after_the_user_info_and_other_parameters_stay_as_written() -> None:
    """A '?' inside an unencoded password was taken for the query: the URL was re-encoded
    and the password printed in redis-py's error."""
    from answerkit.state_urls import _ttl_from_query

    url, ttl = _ttl_from_query("redis://:pa?ssW0rd@h.example/0?db=1&ttl=30", 5.0)
    assert (url, ttl) == ("redis://:pa?ssW0rd@h.example/0?db=1", 30.0)
    assert _ttl_from_query("redis://h/0?TTL=60&socket_timeout=5", 5.0) == (
        "redis://h/0?socket_timeout=5",
        60.0,
    )
    with pytest.raises(ConfigurationError, match="percent-encode") as info:
        open_store("redis://:pa?ssW0rd@h.example/0?db=1&ttl=30")
    assert "ssW0rd" not in str(info.value)


def test_every_secret_query_parameter_and_sqlite_user_info_stay_hidden() -> None:
    assert redact_url("rediss://h/0?ssl_password=s3cr3tPW") == "rediss://h/0?ssl_password=***"
    with pytest.raises(ConfigurationError, match="no user or password") as info:
        open_store("sqlite://user:s3cr3tPW@/tmp/x.db")
    assert "s3cr3tPW" not in str(info.value)


def test_update_writes_every_key_in_one_call_to_the_store(store: StateStore) -> None:
    call = new_call_uuid()
    state = store.state(call)
    state["kept"] = 0
    state.update({"a": 1, "b": [2]}, c={"d": None})
    assert store.get_all(call) == {"kept": 0, "a": 1, "b": [2], "c": {"d": None}}
    assert dict(state) == store.get_all(call)


def test_a_handler_past_its_deadline_cannot_update_its_state(store: StateStore) -> None:
    from answerkit._deadline import HandlerState, HandlerTimeout

    call = new_call_uuid()
    store.set(call, "kept", 1)
    state = HandlerState(store, call)
    state.abandoned = True
    writes = [
        lambda: state.update(a=1),
        lambda: state.__setitem__("a", 1),
        lambda: state.setdefault("a", 1),
        lambda: state.__delitem__("kept"),
        lambda: state.pop("kept"),
        lambda: state.incr("kept"),
        state.clear,
    ]
    for write in writes:
        with pytest.raises(HandlerTimeout, match="state write refused"):
            write()
    assert store.get_all(call) == {"kept": 1}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis//user:s3cret@localhost/0", "unknown state store URL"),
        ("redis://:s3cret@localhost:99999/0", "Port out of range"),
        ("redis://:s3cret@localhost:6379/abc", "names database .abc."),
    ],
)
def test_a_malformed_redis_url_is_refused_without_its_password(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as caught:
        CallFlow("u", public_url="https://voice.example.com", auth_token="t" * 20, state=url)
    assert "s3cret" not in str(caught.value)
