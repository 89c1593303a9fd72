"""What a state store may hold, checked and written the same way by every backend.

A key must be a str, a value JSON that reads back as it went in, a counter's step an int
within 64 bits, a TTL a positive number of seconds: each check lives here once, so the
memory, SQLite and Redis stores refuse the same input with the same
:class:`~answerkit.errors.StateValueError` (they each bent it their own way before). Also
:data:`MISSING`, what a store's ``take`` returns when there was nothing to take.
"""

from __future__ import annotations

import array
import contextlib
import datetime
import decimal
import enum
import itertools
import json
import math
import numbers
import operator
import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

from answerkit.errors import ConfigurationError, StateValueError

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
        if raw.count("[") + raw.count("{") > MAX_NESTING and _nested_deeper(raw, MAX_NESTING):
            # Written at the writer's stack depth, it failed to read at a deeper one (a bare
            # RecursionError) and took the whole call's state with it, on every webhook.
            raise StateValueError(
                f"cannot store {type(value).__name__} under {key!r} for call {call_uuid}: "
                f"state values must be JSON-serialisable with lists and dicts nested at most "
                f"{MAX_NESTING} deep (a reader deeper in its own stack must decode them too); "
                "flatten it (a list of records, keys joined with '.')"
            )
        return raw
    except StateValueError:
        raise
    except (TypeError, ValueError, RecursionError) as exc:
        raise StateValueError(
            f"cannot store {type(value).__name__} under {key!r} for call {call_uuid}: "
            f"state values must be JSON-serialisable (str, int, float, bool, None, list, dict) "
            f"({exc}){_value_advice(value)}"
        ) from exc


MAX_NESTING = 100
"""How deep lists and dicts may nest in a state value (a reader deeper in its own stack
must still decode it)."""


# JSON text's strings (escapes included), and what is not a bracket.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# An opening bracket as the byte 1, a closing one as 255 (-1 read as a signed byte).
_STEPS = str.maketrans({"[": "\x01", "{": "\x01", "]": "\xff", "}": "\xff"})


def _nested_deeper(raw: str, limit: int) -> bool:
    """Whether the JSON text ``raw`` nests arrays and objects more than ``limit`` deep:
    its brackets alone (outside strings), as steps of +1 and -1 whose running sum is the
    depth, all in C (a walk of the value in Python doubled the cost of writing a large
    one, and taking innermost pairs away a level at a time cost size times depth)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", raw))
    if len(brackets) <= 2 * limit:
        return False
    steps = array.array("b", brackets.translate(_STEPS).encode("latin-1"))
    return max(itertools.accumulate(steps)) > limit


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
    # Last: a dict is one too. A read-only mapping (call.sip_headers, call.query).
    (Mapping, "dict(value)"),
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
    if seconds > MOST_SECONDS and not math.isinf(seconds):
        # Redis counts milliseconds in 64 bits: a TTL of 1e16 s failed every write, after
        # the write itself had landed, never to expire.
        never = "; float('inf') for never" if forever else ""
        raise ConfigurationError(
            f"{what} must be at most {MOST_SECONDS:g} seconds (100 years){never}, not {seconds!r}"
        )
    return float(seconds)


MOST_SECONDS = 100 * 365 * 86400.0
"""The longest finite number of seconds a TTL, an expiry or a window may be."""
