"""Per-call state in Redis, for several hosts (:class:`RedisStore`).

Import it from :mod:`answerkit.state`, which re-exports it and documents the store contract.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from answerkit._state_store import _overrides
from answerkit._state_values import (
    _added,
    _check_amount,
    _check_key,
    _check_seconds,
    _dumps,
    _read_key,
)
from answerkit.errors import AnswerkitError, ConfigurationError, StateError
from answerkit.state import DEFAULT_TTL, MISSING, StateStore
from answerkit.state_urls import _userinfo, is_secret_param, redact_url, url_password

if TYPE_CHECKING:
    import redis

__all__ = ["RedisStore"]

_T = TypeVar("_T")


def _url_secrets(url: str) -> list[str]:
    """The password(s) in ``url``, raw and decoded, to scrub from error messages."""
    try:
        found = [url_password(url)]
        found += [v for k, v in parse_qsl(urlsplit(url).query) if is_secret_param(k)]
    except ValueError:
        return []
    return [s for v in found if v for s in {v, unquote(v)} if len(s) >= 3]


# HINCRBY once per receipt (KEYS[2]): run again, it answers the first run's result. The
# result goes back as the stored text, not HINCRBY's reply: Lua holds that as a double, so
# past 2**53 it came back rounded (2**63 - 1 even came back as -2**63).
_INCR_ONCE = """
local done = redis.call('GET', KEYS[2])
if done then return done end
local value = redis.pcall('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if type(value) == 'table' and value.err then return value end
value = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], value, 'PX', 60000)
return value
"""

# HSETNX and, only when it wrote, the expiry refreshed as any write refreshes it; the value
# the field holds either way. A write leaves a receipt (KEYS[2]), as take's: run again after
# a lost reply, it answers the value it wrote, and does not write again a value another
# worker took meanwhile. A run that only found the field leaves none: run again, it finds
# what is there then, as if first run then. (It left a copy of the value for 60 s on every
# setdefault of a key held: a handler's reads filled a Redis at its maxmemory.)
_SET_IF_ABSENT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return ARGV[2] end
local found = redis.call('HGET', KEYS[1], ARGV[1])
if found then return found end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], '1', 'PX', 60000)
return ARGV[2]
"""

# HGET and HDEL in one step, once per receipt (KEYS[2]): run again after a lost reply, it
# answers what the first run took instead of finding the field gone. "" (no JSON text) for
# a field that was not there.
_TAKE_ONCE = """
local done = redis.call('GET', KEYS[2])
if done then return done end
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return '' end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], value, 'PX', 60000)
return value
"""

# Bring the expiry forward, never back (PEXPIRE's LT option needs Redis 7).
_EXPIRE_SOONER = """
local left = redis.call('PTTL', KEYS[1])
if left == -1 or left > tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return left
"""


def _beside(name: str, suffix: str) -> str:
    """A key in the same Redis Cluster slot as ``name`` (a script's keys must share one):
    ``name`` and ``suffix`` under ``name``'s hash tag, or one made of ``name`` whole."""
    start = name.find("{")
    end = name.find("}", start + 1) if start >= 0 else -1
    if start >= 0 and end > start + 1:  # name's own tag decides its slot: keep it first
        return name + suffix
    if "}" in name:  # "{" + name + "}" would end its tag early: no tag to share
        return name + suffix
    return "{" + name + "}" + suffix


def _check_prefix(prefix: str) -> None:
    """Refuse a key prefix with braces that make no Redis Cluster hash tag ("{}app:",
    "app}:"): a script's keys (a call's and its receipt) could not be put in one slot.
    One with a tag ("{answerkit}:") puts every key of the store in that tag's slot."""
    if "{" not in prefix and "}" not in prefix:
        return
    start = prefix.find("{")
    end = prefix.find("}", start + 1) if start >= 0 else -1
    # Redis's rule: the first "{", then the first "}" after it; a "}" before it is text.
    if start < 0 or end <= start + 1:
        raise ConfigurationError(
            f"RedisStore prefix {prefix!r} has braces that make no Redis Cluster hash tag: "
            "leave them out, or write one tag first ('{answerkit}:')"
        )


def _connection_options(connection_class: object) -> list[str]:
    """The keyword arguments ``connection_class`` takes (its own and, through ``**kwargs``,
    its base classes'), or [] when they cannot be told."""
    if not isinstance(connection_class, type):  # ?connection_class=x: a string, no class
        return []
    known: list[str] = []
    for cls in connection_class.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return []
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        known += [p.name for p in params if p.kind in named and p.name != "self"]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            break
    return known


class RedisStore(StateStore):
    """State in Redis, for several hosts: one hash per call plus ``PEXPIRE``.

    Keys are ``{prefix}call:{CallUUID}`` (a hash of JSON values) and ``{prefix}nonce:{key}``.
    Sockets time out after ``socket_timeout`` seconds (1 s by default) and a failed command is
    retried once without delay, so a Redis that refuses connections costs a webhook next to
    nothing and one that stops answering up to twice ``socket_timeout`` per command (a
    webhook runs two or three), not a dropped call. A status callback must be answered
    within 3 s (spec §2.12): keep ``socket_timeout`` at 0.5 s or less where Redis may stall.
    Needs ``pip install 'answerkit[redis]'``.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = DEFAULT_TTL,
        prefix: str = "answerkit:",
        socket_timeout: float = 1.0,
        client: redis.Redis | None = None,
    ) -> None:
        super().__init__(ttl=ttl)
        self.url = redact_url(url)
        # For the messages of a URL refused here: without its query, whose values may be
        # secrets under a name not known as one (?pasword=, a misspelt option).
        shown = self.url.partition("?")[0] + ("?..." if "?" in self.url else "")
        self._secrets = _url_secrets(url)
        _check_prefix(prefix)
        self.prefix = prefix
        self._ttl_ms = max(1, int(self.ttl * 1000))
        userinfo = _userinfo(url)
        if userinfo is not None and any(c in userinfo for c in "/?#"):
            # redis-py would read the password's start as a host or port, connect there
            # and put that part of the password in its error messages.
            raise ConfigurationError(
                f"the Redis state URL {shown} has '/', '?' or '#' in its user name or "
                f"password: percent-encode them there (%2F, %3F, %23)"
            )
        try:
            database = unquote(urlsplit(url).path).replace("/", "")
        except ValueError:  # "redis://[::1/0": left to redis-py, whose error is reported below
            database = ""
        if database and not database.isdigit() and url.lower().startswith("redis"):
            # redis-py ignores a path that is no number and uses database 0 unsaid.
            raise ConfigurationError(
                f"the Redis state URL {shown} names database {database!r}: give its "
                f"number (redis://host:6379/0)"
            )
        if client is not None:
            kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
            if not kwargs.get("decode_responses"):
                # Bytes keys would never match the str keys handlers read: state lost.
                raise ConfigurationError(
                    "RedisStore(client=...) needs a client made with decode_responses=True "
                    "(redis.Redis(..., decode_responses=True))"
                )
            self._client = client
            return
        try:
            import redis as redis_module
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise ConfigurationError(
                f"state URL {self.url} needs the redis package: pip install 'answerkit[redis]'"
            ) from exc
        try:
            self._client = redis_module.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry=Retry(NoBackoff(), 1),
                decode_responses=True,
            )
        except (ValueError, redis_module.RedisError) as exc:
            detail = self._scrub(str(exc))
            raise ConfigurationError(f"invalid Redis state URL {shown}: {detail}") from None
        if not self._client.connection_pool.connection_kwargs.get("decode_responses"):
            # The URL's own ?decode_responses=false wins over the keyword (redis-py): bytes
            # keys would never match the str keys handlers read, as with client= above.
            raise ConfigurationError(
                f"the Redis state URL {shown} turns decode_responses off: remove it "
                "from the URL (the store needs text replies)"
            )
        self._check_options(shown)

    def _check_options(self, shown: str) -> None:
        """Refuse now a URL option redis-py takes but cannot use (a misspelt one, a TLS
        one on redis://): it fails only when a connection is made, as a TypeError on every
        webhook. A connection object is built, never connected, and dropped."""
        pool = self._client.connection_pool
        try:
            pool.connection_class(**pool.connection_kwargs).disconnect()
        except TypeError as exc:
            raise ConfigurationError(
                f"the Redis state URL {shown} {self._unknown_options(exc)}"
            ) from None
        except Exception as exc:  # protocol=4: "must be either 2 or 3"; ?connection_class=x
            detail = self._scrub(str(exc))
            raise ConfigurationError(
                f"invalid Redis state URL {shown}: {type(exc).__name__}: {detail}"
            ) from None

    def _unknown_options(self, exc: TypeError) -> str:
        """Which of the URL's options redis-py does not know, and what to do instead."""
        pool = self._client.connection_pool
        known = _connection_options(pool.connection_class)
        unknown = [name for name in pool.connection_kwargs if known and name not in known]
        if not unknown:
            named = re.search(r"keyword argument '(\w+)'", str(exc))
            if named is None:
                return f"has an option redis-py refuses: {self._scrub(str(exc))}"
            unknown = [named.group(1)]
        advice = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            if name == "busy_timeout":
                advice.append(f"{name} is for sqlite URLs; Redis has socket_timeout")
            elif name.startswith("socket_keepalive"):
                advice.append(f"{name} is a TCP option, not for unix:// URLs")
            elif name.startswith("ssl") and "ssl_cert_reqs" not in known:
                advice.append(f"{name} is a TLS option, for rediss:// URLs only")
            elif close:
                advice.append(f"{name}: did you mean {close[0]}?")
            else:
                advice.append(f"{name}: no connection option has that name")
        several = len(unknown) > 1
        return (
            f"has {'options' if several else 'an option'} redis-py's connections do not "
            f"take ({'; '.join(advice)}): correct or remove {'them' if several else 'it'}"
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, action: str, exc: BaseException) -> StateError:
        return StateError(
            f"Redis state store {self.url} failed to {action}: "
            f"{type(exc).__name__}: {self._scrub(str(exc))}. "
            f"Check that Redis is running and reachable from this host, and the URL, "
            f"password and TLS settings."
        )

    def _call(self, action: str, fn: Callable[[redis.Redis], _T]) -> _T:
        try:
            result = fn(self._client)
        except AnswerkitError:
            # Ours, the handler deadline among them: wrapped as a StateError, an
            # ``except StateError`` meant for an outage would swallow the deadline.
            raise
        except Exception as exc:  # redis-py raises many types; all mean "store failed"
            raise self._error(action, exc) from None
        # A deadline put off while this call ran (answerkit/_deadline.py) is not taken
        # here, right after a write that landed: a recipe's next step (recording a move it
        # owes the caller) must not be cut from it. The handler's call.state takes it
        # before its next write, or the timer soon after.
        return result

    def _key(self, call_uuid: str) -> str:
        return f"{self.prefix}call:{call_uuid}"

    def get_all(self, call_uuid: str) -> dict[str, Any]:
        raw = cast(
            "dict[str, str]",
            self._call("read call state", lambda r: r.hgetall(self._key(call_uuid))),
        )
        return {k: json.loads(raw[k]) for k in sorted(raw)}  # in key order, as every store

    def get(self, call_uuid: str, key: str) -> Any:
        stored = _read_key(key)
        if stored is None:
            raise KeyError(key)
        raw = self._call("read call state", lambda r: r.hget(self._key(call_uuid), stored))
        if raw is None:
            raise KeyError(key)
        return json.loads(raw)

    def set(self, call_uuid: str, key: str, value: Any) -> None:
        key = _check_key(call_uuid, key)
        raw = _dumps(call_uuid, key, value)

        def write(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=True)
            pipe.hset(self._key(call_uuid), key, raw)
            pipe.pexpire(self._key(call_uuid), self._ttl_ms)
            pipe.execute()

        self._call("write call state", write)

    def set_many(self, call_uuid: str, items: Mapping[str, Any]) -> None:
        if type(self).set is not RedisStore.set:  # a subclass's own set() sees every write
            return super().set_many(call_uuid, items)
        raws: dict[Any, Any] = {
            _check_key(call_uuid, key): _dumps(call_uuid, key, value)
            for key, value in items.items()
        }

        def write(r: redis.Redis) -> None:
            # One HSET of every field: Redis applies it whole or (out of memory, say) not
            # at all.
            pipe = r.pipeline(transaction=True)
            pipe.hset(self._key(call_uuid), mapping=raws)
            pipe.pexpire(self._key(call_uuid), self._ttl_ms)
            pipe.execute()

        if raws:
            self._call("write call state", write)

    def set_if_absent(self, call_uuid: str, key: str, value: Any) -> Any:
        if _overrides(self, RedisStore, "set", "get"):
            return super().set_if_absent(call_uuid, key, value)
        key = _check_key(call_uuid, key)
        raw = _dumps(call_uuid, key, value)
        name = self._key(call_uuid)
        receipt = _beside(name, f":claim:{uuid.uuid4().hex}")
        found = self._call(
            "write call state",
            lambda r: r.eval(_SET_IF_ABSENT, 2, name, receipt, key, raw, self._ttl_ms),
        )
        return json.loads(cast("str", found))

    def delete(self, call_uuid: str, key: str) -> None:
        stored = _read_key(key)  # None: nothing can be stored under it, so nothing to delete
        if stored is not None:
            self._call("delete call state", lambda r: r.hdel(self._key(call_uuid), stored))

    def take(self, call_uuid: str, key: str) -> Any:
        stored = _read_key(key)
        if stored is None or _overrides(self, RedisStore, "delete", "get"):
            return super().take(call_uuid, key)
        key = stored
        name = self._key(call_uuid)
        # A receipt key, as incr's: a run repeated after a lost reply must not find the
        # field gone and report nothing taken.
        receipt = _beside(name, f":take:{uuid.uuid4().hex}")
        raw = self._call("delete call state", lambda r: r.eval(_TAKE_ONCE, 2, name, receipt, key))
        return json.loads(cast("str", raw)) if raw else MISSING

    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        key = _check_key(call_uuid, key)
        amount = _check_amount(call_uuid, key, amount)
        # A receipt key makes the increment safe to run twice: redis-py runs a command again
        # when its reply is lost, and the second run must not count again.
        receipt = _beside(self._key(call_uuid), f":incr:{uuid.uuid4().hex}")

        def add(r: redis.Redis) -> int:
            from redis.exceptions import ResponseError  # redis is an optional dependency

            try:
                result = r.eval(
                    _INCR_ONCE, 2, self._key(call_uuid), receipt, key, amount, self._ttl_ms
                )
            except ResponseError:
                # Not an integer, or past 64 bits: the same words as the other backends.
                # Any other refusal (out of memory, a read-only replica) is the store's.
                raw = r.hget(self._key(call_uuid), key)
                try:
                    current = 0 if raw is None else json.loads(raw)  # missing counts as 0
                except ValueError:
                    current = raw
                _added(call_uuid, key, current, amount)
                raise
            return int(result)

        return self._call("increment call state", add)

    def clear(self, call_uuid: str) -> None:
        self._call("clear call state", lambda r: r.delete(self._key(call_uuid)))

    def expire(self, call_uuid: str, seconds: float) -> None:
        # Never past the TTL, which also keeps an infinite or huge value out of int().
        # 0 ms (PEXPIRE 0 deletes the hash) when it is due now: the other backends then
        # forget it at once, where 1 ms left it readable to the next webhook.
        seconds = _check_seconds("the expiry", seconds, zero=True, forever=True)
        ms = int(min(seconds, self.ttl) * 1000)
        key = self._key(call_uuid)
        self._call("shorten call state expiry", lambda r: r.eval(_EXPIRE_SOONER, 1, key, ms))

    def remember_once(self, key: str, ttl: float) -> bool:
        return self.remember_all((key,), ttl)

    def remember_all(self, keys: Sequence[str], ttl: float) -> bool:
        ttl_ms = max(1, int(_check_seconds("the replay window", ttl, zero=False) * 1000))
        names = [f"{self.prefix}nonce:{key}" for key in dict.fromkeys(keys)]
        # Each key holds a token of this call: when redis-py runs a SET NX again because
        # its reply was lost, the key it finds is our own, not a replay's.
        token = uuid.uuid4().hex

        def record(r: redis.Redis) -> bool:
            # One round trip, in MULTI/EXEC: two copies of one request interleaving their
            # SET NXs would each win one key and lose the other, and both be refused.
            pipe = r.pipeline(transaction=len(names) > 1)
            for name in names:
                pipe.set(name, token, nx=True, px=ttl_ms)
            missed = [name for name, ok in zip(names, pipe.execute(), strict=True) if not ok]
            return not missed or all(held == token for held in r.mget(missed))

        return self._call("record webhook nonces", record)

    def forget_all(self, keys: Sequence[str]) -> None:
        names = [f"{self.prefix}nonce:{key}" for key in dict.fromkeys(keys)]
        if names:
            self._call("forget webhook nonces", lambda r: r.delete(*names))

    def ping(self) -> None:
        self._call("answer a ping", lambda r: r.ping())

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a broken connection has nothing to report
            self._client.close()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, ttl={self.ttl})"
