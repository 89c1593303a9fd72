"""Webhook parameters as they arrive: the form body, first values, repeated names, and the
typed fields :mod:`answerkit.request` derives from them on demand.

The flow's Flask view parses the body with :func:`parse_form`. All of it sits on every
webhook's path, so it does the least work the common case allows (a dozen fields, none
repeated, a few of them read).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

ParamsLike = Mapping[str, Any] | Iterable[tuple[str, Any]]
"""A mapping, a Werkzeug ``MultiDict`` (every value kept), or ``(name, value)`` pairs."""


class FormFields(dict[str, str]):
    """A parsed form: the first value of each name, in order, plus ``repeated``: every
    value of the names sent more than once (None when none was)."""

    repeated: dict[str, list[str]] | None = None

    def lists(self) -> Iterator[tuple[str, list[str]]]:
        """Every value of every name, as a Werkzeug ``MultiDict`` gives them."""
        repeated = self.repeated or {}
        for key, value in self.items():
            yield key, list(repeated.get(key, [value]))


def _decode(text: str) -> str:
    text = text.replace("+", " ")
    return unquote(text, errors="replace") if "%" in text else text


def parse_form(body: bytes) -> FormFields:
    """The fields of an ``application/x-www-form-urlencoded`` body.

    Reads as ``urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
    keep_blank_values=True, errors="replace")`` does, at a fraction of its cost: only the
    names and values holding ``+`` or ``%`` are decoded. Never raises: undecodable bytes
    become U+FFFD.
    """
    fields = FormFields()
    repeated: dict[str, list[str]] | None = None
    for field in body.decode("utf-8", "replace").split("&"):
        if not field:
            continue
        name, _eq, value = field.partition("=")
        if "%" in field or "+" in field:
            if "%" in name or "+" in name:
                name = _decode(name)
            if "%" in value or "+" in value:
                value = _decode(value)
        if name in fields:
            if repeated is None:
                repeated = fields.repeated = {}
            repeated.setdefault(name, [fields[name]]).append(value)
        else:
            fields[name] = value
    return fields


def as_text(value: Any) -> str:
    """A parameter name or value as text (bytes decoded leniently, None as empty)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)


def collect(params: ParamsLike | None) -> tuple[dict[str, str], dict[str, list[str]] | None]:
    """The first value of every parameter, in order, and every value of the repeated ones
    (None when nothing repeats). Werkzeug MultiDicts and pairs keep their duplicates."""
    if type(params) is FormFields:  # parse_form has done the work
        return params, params.repeated
    first: dict[str, str] = {}
    repeated: dict[str, list[str]] | None = None
    if params is None:
        return first, repeated
    pairs: Iterable[tuple[Any, Any]]
    lists = getattr(params, "lists", None)
    if callable(lists):
        pairs = ((k, v) for k, values in lists() for v in values)
    elif isinstance(params, Mapping):
        # A list of values is every value of that name (parse_qs, to_dict(flat=False)).
        pairs = (
            (k, v)
            for k, value in params.items()
            for v in (value if isinstance(value, (list, tuple)) else (value,))
        )
    else:
        pairs = params
    for key, value in pairs:
        if type(key) is not str:
            key = as_text(key)
        if type(value) is not str:
            value = as_text(value)
        if key in first:
            if repeated is None:
                repeated = {}
            repeated.setdefault(key, [first[key]]).append(value)
        else:
            first[key] = value
    return first, repeated


class OneEach(Mapping[str, tuple[str, ...]]):
    """Every value of each parameter when none repeats: a view of the first values."""

    __slots__ = ("_first",)

    def __init__(self, first: Mapping[str, str]) -> None:
        self._first = first

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return (self._first[key],)

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def convert_first(
    params: Mapping[str, str], names: tuple[str, ...], convert: Callable[[str], Any]
) -> Any:
    """The field from its first non-empty spelling; None when absent, empty or malformed."""
    for name in names:
        value = params.get(name)
        if value:
            try:
                converted = convert(value)
            except Exception:  # lenient by contract: the raw value stays in params
                return None
            return None if converted == "" else converted
    return None


class FromParams:
    """A typed field of a request built by ``CallRequest.from_params``, converted from the
    instance's ``params`` on first read and kept in the instance (whose own value then
    shadows this non-data descriptor). A webhook sends a dozen of the ~80 fields and a
    handler reads a few, so converting all of them up front was most of a request's parsing
    cost. Requests built by ``CallRequest(...)`` hold every field themselves and never get
    here.
    """

    __slots__ = ("attr", "compute")

    def __init__(self, attr: str, compute: Callable[[Mapping[str, str]], Any]) -> None:
        self.attr = attr
        self.compute = compute

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.compute(obj.__dict__["params"])
        obj.__dict__[self.attr] = value
        return value


def query_value(value: Any) -> str:
    """A parameter value as our own query strings carry it (booleans as true/false, an
    enum member as its value)."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _query_item(name: object, value: object) -> str:
    """One parameter's text (``str()`` of a number, a UUID, a date...); bytes and
    collections are refused: they would arrive as their repr ("b'...'", "[1, 2]")."""
    if not isinstance(name, str):
        raise QueryParamError(
            f"query parameter names must be text, got {type(name).__name__} {name!r}"
        )
    if not name:
        # "?=x": a value no handler can ask for by name (call.query[""]).
        raise QueryParamError(f"query parameter names must not be empty (value {value!r})")
    if not _finite(value):
        # "inf" or "nan" in the URL: a JSON 1e999 becomes one, and no handler expects it.
        raise QueryParamError(f"query parameter {name!r}: give a finite number, got {value!r}")
    if isinstance(value, Enum):
        value = value.value  # a Flag member is iterable, but one value
    if (
        isinstance(value, (bytes, bytearray, memoryview, Collection, Iterator))
        and not isinstance(value, str)
    ) or (type(value).__str__ is object.__str__ and type(value).__repr__ is object.__repr__):
        raise QueryParamError(
            f"query parameter {name!r}: give one value (text, a number, a boolean), got "
            f"{type(value).__name__} {value!r} (join a list yourself: ','.join(items); "
            "decode bytes)"
        )
    try:
        text = query_value(value)
        (name + text).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (text decoded with surrogateescape, say): no URL can carry it.
        raise QueryParamError(
            f"query parameter {name!r} = {value!r}: holds a character that is not text (a "
            "lone surrogate), which no URL can carry; decode it properly first"
        ) from None
    except ValueError as exc:  # str() of an int past Python's digit limit, say
        raise QueryParamError(f"query parameter {name!r}: cannot be written out ({exc})") from None
    return text


def _finite(value: object) -> bool:
    """False for a number that is infinite or not a number: a float, a Decimal, a NumPy
    scalar (any number but an integer); True for anything else."""
    if not isinstance(value, numbers.Number) or isinstance(value, numbers.Integral):
        return True
    if isinstance(value, Decimal):  # beyond a float's range, and still finite
        return value.is_finite()
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except OverflowError:  # a Fraction beyond a float's range: finite
        return True
    except TypeError:  # a complex number: its text is its own
        return True


class QueryParamError(ValueError):
    """A query parameter a URL cannot carry (raised as the caller's own error type)."""


def check_query(params: Mapping[str, Any]) -> None:
    """Raise QueryParamError for the first parameter :func:`with_query` would refuse."""
    for name, value in params.items():
        if value is not None:
            _query_item(name, value)


def with_query(url: str, params: Mapping[str, Any]) -> str:
    """``url`` with ``params`` added to its query string (None values left out), ahead of
    any ``#fragment``: a parameter written after the ``#`` never reaches the server."""
    query = urlencode({k: _query_item(k, v) for k, v in params.items() if v is not None})
    if not query:
        return url
    if "#" not in url and "?" not in url:  # the common case: a route's bare URL
        return f"{url}?{query}"
    parts = urlsplit(url)
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit(parts._replace(query=joined))
