"""Per-call state in Redis, for several hosts (:class:`RedisStore`).

Import it from :mod:`answerkit.state`, which re-exports it and documents the store contract.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import logging
import os
import re
import threading
import uuid
import weakref
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
from answerkit.errors import AnswerkitError, ConfigurationError, StateError, StateValueError
from answerkit.state import DEFAULT_TTL, MISSING, StateStore
from answerkit.state_urls import _userinfo, is_secret_param, redact_url, url_password

if TYPE_CHECKING:
    import redis
    from redis.cluster import RedisCluster

__all__ = ["RedisStore"]

_T = TypeVar("_T")

#: Every RedisStore of the process, told of a fork: the child asks for the eviction policy
#: again (the check is once per process), under a lock of its own (one held by a parent's
#: thread at the fork would be held in the child for ever).
_fork_aware_stores: weakref.WeakSet[RedisStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_fork_aware_stores):
        store._eviction_lock = threading.Lock()
        store._eviction_check = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

log = logging.getLogger("answerkit")

# redis-py's option (redis.client.NEVER_DECODE) to leave one reply as bytes on a client
# that decodes: a field another program wrote in some other encoding then fails as that
# field, here, not as the whole command inside redis-py (an outage, to the dispatcher).
# Every read of call state asks for it: a reply that fails to decode inside redis-py
# leaves a connection that stays open on errors (Sentinel's) one reply behind.
_UNDECODED: dict[str, Any] = {"NEVER_DECODE": []}


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


def _beside(prefix: str, name: str, suffix: str) -> str:
    """A key under ``prefix`` in the same Redis Cluster slot as ``name`` (a script's keys
    must share one): ``name`` and ``suffix`` under ``name``'s hash tag, or ``prefix`` and a
    tag made of ``name`` whole. Every key starts with the prefix: an ACL user limited to
    ``~prefix*`` (the usual way to share a Redis) was refused the receipts."""
    start = name.find("{")
    end = name.find("}", start + 1) if start >= 0 else -1
    if start >= 0 and end > start + 1:  # name's own tag decides its slot: keep it first
        return name + suffix
    if "}" in name:  # "{" + name + "}" would end its tag early: no tag to share
        return name + suffix
    # The first "{...}" is the tag: name is hashed whole, as the untagged name is itself.
    return prefix + "{" + name + "}" + suffix


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


def _client_options(client: object) -> Mapping[str, Any]:
    """A redis-py client's connection options: ``get_connection_kwargs()`` (a RedisCluster
    has no ``connection_pool``), else its pool's; {} when neither can be told."""
    getter = getattr(client, "get_connection_kwargs", None)
    if callable(getter):
        with contextlib.suppress(Exception):
            found = getter()
            if isinstance(found, Mapping):
                return found
    found = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    return found if isinstance(found, Mapping) else {}


def _client_decodes(client: object) -> bool:
    """Whether ``client`` gives replies as text: its encoder says, for a Redis and a
    RedisCluster alike (the pool's options alone read {} for a RedisCluster)."""
    getter = getattr(client, "get_encoder", None)
    if callable(getter):
        with contextlib.suppress(Exception):
            decodes = getattr(getter(), "decode_responses", None)
            if decodes is not None:
                return bool(decodes)
    return bool(_client_options(client).get("decode_responses"))


def _is_cluster(client: object) -> bool:
    try:
        from redis.cluster import RedisCluster
    except ImportError:  # pragma: no cover - every redis-py the store supports has it
        return False
    return isinstance(client, RedisCluster)


def _redis_version_text() -> str:
    import redis

    return str(getattr(redis, "__version__", "unknown"))


def _cluster_transactions() -> bool:
    """Whether this redis-py runs MULTI/EXEC in a RedisCluster's pipeline (6.1 and later)."""
    found = re.match(r"(\d+)\.(\d+)", _redis_version_text())
    return found is None or (int(found.group(1)), int(found.group(2))) >= (6, 1)


#: Seconds a client's socket timeout may be for RedisStore(client=...) to say nothing: a
#: command retried once may then take twice that, within Vobiz's 3 s for a status callback.
_CLIENT_TIMEOUT_LIMIT = 1.5


def _bounded(timeout: object) -> bool:
    """Whether a client's socket timeout keeps a command within Vobiz's wait."""
    return (
        isinstance(timeout, (int, float))
        and not isinstance(timeout, bool)
        and 0 < timeout <= _CLIENT_TIMEOUT_LIMIT
    )


def _retry_problem(retry: object) -> str | None:
    """What in a redis-py Retry makes a failed command wait long: more than one retry, or
    a backoff between them; None when neither (or it cannot be told)."""
    if retry is None:
        return None
    problems = []
    with contextlib.suppress(Exception):
        retries = cast("Any", retry).get_retries()
        if isinstance(retries, int) and retries < 0:
            problems.append("retries for ever")
        elif isinstance(retries, int) and retries > 1:
            problems.append(f"{retries} retries")
    backoff = getattr(retry, "_backoff", None)
    with contextlib.suppress(Exception):
        # max: a jittered backoff may draw a 0 now and then.
        if backoff is not None and max(cast("Any", backoff).compute(n) for n in (1, 2, 3)) > 0:
            problems.append(f"a backoff ({type(backoff).__name__})")
    return " with ".join(problems) or None


def _retry_problems(client: object) -> list[str]:
    """What in ``client``'s retry policies (its own and, for a Sentinel's master_for,
    the Sentinel's connections') makes a failed command wait long."""
    found: list[str] = []
    retry = getattr(client, "retry", None) if _is_cluster(client) else None
    if retry is None:
        getter = getattr(client, "get_retry", None)
        with contextlib.suppress(Exception):
            retry = getter() if callable(getter) else None
    if retry is None:  # the connections' own, as redis.Redis(...) passes its default there
        retry = _client_options(client).get("retry")
    problem = _retry_problem(retry)
    if problem:
        found.append(f"the client retries a failed command: {problem}")
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", None) or []:
        getter = getattr(sentinel, "get_retry", None)
        with contextlib.suppress(Exception):
            problem = _retry_problem(getter() if callable(getter) else None)
            options = _client_options(sentinel)
            slow = [
                name
                for name in ("socket_timeout", "socket_connect_timeout")
                if not _bounded(options.get(name))
            ]
            if slow:
                problem = " and ".join(filter(None, (problem, "no short " + ", ".join(slow))))
            if problem:
                found.append(
                    f"its Sentinel's connections: {problem} (give the Sentinel "
                    f"sentinel_kwargs with socket timeouts and that retry)"
                )
                break
    return found


def _client_encoding(client: object) -> str:
    """The encoding ``client`` writes text in (redis-py's ``encoding=``, UTF-8 by default):
    values read as bytes are decoded in it, as the client would have."""
    encoding = _client_options(client).get("encoding")
    return encoding if isinstance(encoding, str) and encoding else "utf-8"


def _has_hash_tag(prefix: str) -> bool:
    start = prefix.find("{")
    return start >= 0 and prefix.find("}", start + 1) > start + 1


def _text(raw: bytes | str, encoding: str = "utf-8", errors: str = "strict") -> str:
    """A reply read with _UNDECODED as text, in the client's ``encoding`` (its writes are
    encoded so); a client of one's own may give text anyway."""
    return raw.decode(encoding, errors) if isinstance(raw, bytes) else raw


def _undecoded(r: redis.Redis, *args: object) -> Any:
    """``args`` run as one command, its reply left as bytes (see _UNDECODED)."""
    # Through Any: redis-py's execute_command has no annotations (mypy --strict).
    return cast("Any", r).execute_command(*args, **_UNDECODED)


class RedisStore(StateStore):
    """State in Redis, for several hosts: one hash per call plus ``PEXPIRE``.

    Keys are ``{prefix}call:{CallUUID}`` (a hash of JSON values), ``{prefix}nonce:{key}``
    and, for 60 s, the receipts of ``incr``, ``setdefault`` and ``pop``
    (``{prefix}{{prefix}call:{CallUUID}}:incr:...``): all of them start with ``prefix``,
    which a URL may give as ``?prefix=``. Sockets time out after ``socket_timeout`` seconds
    (1 s by default; a URL's ``?socket_timeout=`` bounds connecting too) and a failed
    command is retried once without delay, so a Redis that refuses connections costs a
    webhook next to nothing and one that stops answering up to twice ``socket_timeout``
    per command (a webhook runs two or three), not a dropped call. A status callback must
    be answered within 3 s (spec §2.12): keep ``socket_timeout`` at 0.5 s or less where
    Redis may stall. A URL speaks RESP2 unless it gives ``?protocol=3``.

    ``client=`` takes a redis-py client of your own, made with ``decode_responses=True``
    and socket timeouts: ``Sentinel(...).master_for(name, ...)`` to follow failovers, or
    ``RedisCluster.from_url(url, ...)`` for Redis Cluster, with a hash-tagged prefix
    (``prefix="{answerkit}:"``). Needs ``pip install 'answerkit[redis]'``.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = DEFAULT_TTL,
        prefix: str = "answerkit:",
        socket_timeout: float = 1.0,
        client: redis.Redis | RedisCluster | None = None,
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
        # Asked of Redis once, off the webhook's path, after the first command that
        # succeeds (see _check_eviction); claimed under the lock.
        self._eviction_lock = threading.Lock()
        self._eviction_check: threading.Thread | None = None
        _fork_aware_stores.add(self)
        if client is not None:
            self._take_client(client)
            return
        try:
            import redis as redis_module
            from redis.backoff import NoBackoff
            from redis.connection import parse_url
            from redis.retry import Retry
        except ImportError as exc:
            raise ConfigurationError(
                f"state URL {self.url} needs the redis package: pip install 'answerkit[redis]'"
            ) from exc
        try:
            # parse_url has no annotations (mypy --strict): called through its type.
            given = cast("Callable[[str], dict[str, Any]]", parse_url)(url)
            # A password without a user name goes as "AUTH default <password>", as
            # RESP3's HELLO sends it: a Redis with no password then takes it, where the
            # old one-argument AUTH is refused ("called without any password configured").
            user = (
                {"username": "default"}
                if given.get("password") and not given.get("username")
                else {}
            )
            self._client = redis_module.Redis.from_url(
                url,
                **user,
                socket_timeout=socket_timeout,
                # The URL's options win over these keywords: its ?socket_timeout= alone
                # left connecting to the keyword's timeout (1 s for 0.5 s asked).
                socket_connect_timeout=given.get("socket_timeout", socket_timeout),
                # RESP2, which every Redis and proxy speaks: redis-py 8 says HELLO 3 by
                # default, refused by Redis before 6 and by some proxies (every webhook
                # failed). The store needs nothing of RESP3; ?protocol=3 still wins.
                protocol=2,
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
        self._check_tls_files(shown)
        self._encoding = _client_encoding(self._client)

    def _take_client(self, client: redis.Redis | RedisCluster) -> None:
        """Use ``client``, a redis-py client of the caller's (a RedisCluster, a Sentinel's
        master_for), once it is fit: refused if it gives bytes, told if it has no timeouts."""
        if not _client_decodes(client):
            # Bytes keys would never match the str keys handlers read: state lost.
            raise ConfigurationError(
                "RedisStore(client=...) needs a client made with decode_responses=True "
                "(redis.Redis(..., decode_responses=True))"
            )
        if _is_cluster(client) and not _cluster_transactions():
            # set, set_many and a webhook's replay record run in MULTI/EXEC, which a
            # RedisCluster's pipeline refuses before redis-py 6.1 ("transaction is
            # deprecated in cluster mode"): every webhook would fail.
            raise ConfigurationError(
                f"RedisStore(client=RedisCluster(...)) needs redis-py 6.1 or later, for "
                f"transactions in cluster pipelines; this is redis-py "
                f"{_redis_version_text()}: pip install -U 'redis>=6.1'"
            )
        if _is_cluster(client) and not _has_hash_tag(self.prefix):
            # A webhook's replay records go in one MULTI, and a transaction's keys must
            # share a slot: every webhook with two of them would fail (CROSSSLOT).
            raise ConfigurationError(
                f"RedisStore(client=RedisCluster(...)) needs a prefix with a hash tag, so "
                f"that a webhook's keys share one cluster slot: prefix='{{answerkit}}:', "
                f"not {self.prefix!r}"
            )
        options = _client_options(client)
        unbounded = [
            f"{name}={options.get(name)}"
            for name in ("socket_timeout", "socket_connect_timeout")
            if not _bounded(options.get(name))
        ]
        if unbounded:
            # The replay record runs before any deadline: a Redis that stalls holds each
            # webhook for as long as the client waits (redis-py 8's default is 5 s, and
            # none before it: minutes, for a host that drops packets), past the 3 s
            # Vobiz waits for a status callback.
            log.warning(
                "RedisStore(client=...) for %s: the client has %s, so a Redis that stalls "
                "or cannot be reached holds each webhook for longer than the 3 s Vobiz "
                "waits for a status callback; make the client with socket_timeout=0.5, "
                "socket_connect_timeout=0.5",
                self.url,
                " and ".join(unbounded),
            )
        retrying = _retry_problems(client)
        if retrying:
            # A failed command is tried again as the client's retry policy says: redis-py
            # 8's default is 10 times with backoff (a RedisCluster retries on its own), so
            # a Redis that refuses connections held a Hangup 4 s, one unreachable 8.6 s.
            log.warning(
                "RedisStore(client=...) for %s: %s, so a Redis that is down or cannot be "
                "reached holds each webhook for several times the socket timeout, past "
                "the 3 s Vobiz waits for a status callback; make the client with "
                "retry=Retry(NoBackoff(), 1) (from redis.retry and redis.backoff)",
                self.url,
                "; ".join(retrying),
            )
        # A RedisCluster runs every command the store sends (one slot per operation, the
        # hash tag sees to that) under the same names: used as a Redis.
        self._client = cast("redis.Redis", client)
        self._encoding = _client_encoding(client)

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

    def _check_tls_files(self, shown: str) -> None:
        """Refuse now a TLS file the URL names that is not there: found only at the first
        webhook, it read as a socket error ("Error 2 connecting to host. No such file or
        directory"), and every webhook got the fallback."""
        options = self._client.connection_pool.connection_kwargs
        for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
            path = options.get(name)
            if isinstance(path, str) and path and not os.path.exists(path):
                raise ConfigurationError(
                    f"the Redis state URL {shown} gives {name}={path}, which does not "
                    "exist: correct the path (absolute, or from the directory the workers "
                    "start in), or copy the file there"
                )

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
            if name.lower() == "prefix":  # open_store's option, not redis-py's
                advice.append(
                    "?prefix= is for state URLs (ANSWERKIT_STATE_URL); pass "
                    "RedisStore(url, prefix=...)"
                )
            elif name == "busy_timeout":
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
        # redis-py's own sentences end with ".": one only before the advice.
        detail = self._scrub(str(exc)).strip().rstrip(".")
        return StateError(
            f"Redis state store {self.url} failed to {action}: "
            f"{type(exc).__name__}: {detail}. {self._advice(exc)}"
        )

    def _advice(self, exc: BaseException) -> str:
        """What to do about ``exc``: each refusal has its own cause, and "check that Redis
        is running" sent the reader of an out-of-memory or an ACL refusal the wrong way."""
        from redis import exceptions as redis_errors  # redis is an optional dependency

        text = str(exc)
        if isinstance(
            exc,
            (redis_errors.AuthenticationError, redis_errors.AuthenticationWrongNumberOfArgsError),
        ):
            if not self._has_password():
                return (
                    "Redis requires a password: give it in the URL "
                    "(redis://:PASSWORD@host:6379/0, or redis://USER:PASSWORD@host:6379/0 for "
                    "an ACL user; percent-encode '@', ':', '/', '?', '#' and '%' in it)."
                )
            return (
                "Redis refused the user name or password: check those in the URL (an ACL "
                "user must exist and be on; percent-encode '@', ':', '/', '?', '#' and '%')."
            )
        if isinstance(exc, redis_errors.AskError):  # MOVED or ASK: a cluster's node
            return (
                "This Redis is a node of a Redis Cluster, whose redirections a redis:// URL "
                "does not follow: pass client=RedisCluster.from_url(url, "
                "decode_responses=True, socket_timeout=0.5, socket_connect_timeout=0.5) "
                "(from redis.cluster) with a hash-tagged prefix, "
                "RedisStore(url, prefix='{answerkit}:', client=...)."
            )
        if isinstance(exc, redis_errors.ReadOnlyError):
            return (
                "This Redis is a read-only replica, as a primary becomes after a failover: "
                "point the URL at the primary, or at a name that follows failovers (the "
                "store's idle connections were closed, so the next command connects anew; "
                "with Sentinel pass client=Sentinel(...).master_for(...))."
            )
        if isinstance(exc, redis_errors.MasterDownError):
            return (
                "This Redis is a replica that lost its primary: point the URL at the "
                "primary (the store's idle connections were closed, so the next command "
                "connects anew)."
            )
        if isinstance(exc, redis_errors.BusyLoadingError):
            return "Redis is loading its data after a restart: it answers once loaded."
        if isinstance(exc, redis_errors.OutOfMemoryError):
            return (
                "Redis is full (maxmemory reached, and its policy evicts nothing): raise "
                "maxmemory or free memory, or give answerkit a Redis of its own."
            )
        if isinstance(exc, redis_errors.NoPermissionError):
            # SELECT too for a database other than 0: refused, the advice alone left the
            # user with the same refusal and the same advice.
            database = _client_options(self._client).get("db")
            select = "" if database in (None, 0, "0") else " +select"
            named = re.search(r"permissions to run the '([^']+)' command", text)
            refused = (
                f"Redis refused it the command {named.group(1)}: add +{named.group(1).lower()}. "
                if named
                else ""
            )
            return (
                f"The Redis user may not run a command or touch a key the store needs: "
                f"{refused}Give it the key pattern ~{self.prefix}* and the commands "
                f"+@read +@write +@transaction +@scripting +ping +info{select} (ACL SETUSER)."
            )
        if "DB index is out of range" in text:
            return (
                "The URL's database number is past the server's 'databases' setting (16 "
                "by default): give a lower one (redis://host:6379/0)."
            )
        if "same slot" in text or "same key slot" in text or "CROSSSLOT" in text:
            return (
                "In Redis Cluster the keys of one operation must share a slot: give the "
                "store a hash-tagged prefix (prefix='{answerkit}:')."
            )
        if isinstance(exc, redis_errors.ResponseError) and "'HELLO'" in text:
            return (
                "This Redis (before 6) or proxy does not speak RESP3: remove ?protocol=3 "
                "from the URL."
            )
        if isinstance(exc, redis_errors.ResponseError) and "WRONGTYPE" in text:
            return (
                "Another program uses this store's keys: give answerkit a prefix of its "
                "own (?prefix=myapp: in the URL, or RedisStore(url, prefix=...))."
            )
        if isinstance(exc, redis_errors.ResponseError):
            return (
                "Redis refused the command: the store needs Redis 5 or later with the hash "
                "commands, EVAL and MULTI (a proxy in between must pass them)."
            )
        return (
            "Check that Redis is running and reachable from this host, and the URL, "
            "password and TLS settings."
        )

    def _has_password(self) -> bool:
        options = _client_options(self._client)
        return bool(options.get("password") or options.get("credential_provider"))

    def _drop_connections(self) -> None:
        """Close the pool's idle connections (the one that just failed among them): after
        a failover that moved a DNS name or a VIP they still reach the demoted primary,
        which refuses every write (READONLY) for as long as they live, and the store
        failed until the app restarted. The next command connects anew, to the new one."""
        pool = getattr(self._client, "connection_pool", None)  # a RedisCluster follows by itself
        if pool is not None:
            with contextlib.suppress(Exception):  # nothing to do about a close that fails
                pool.disconnect(inuse_connections=False)

    def _call(self, action: str, fn: Callable[[redis.Redis], _T]) -> _T:
        try:
            result = fn(self._client)
        except AnswerkitError:
            # Ours, the handler deadline among them: wrapped as a StateError, an
            # ``except StateError`` meant for an outage would swallow the deadline.
            raise
        except Exception as exc:  # redis-py raises many types; all mean "store failed"
            from redis import exceptions as redis_errors

            # Answers of a server that is no longer (or not yet) the primary: redis-py
            # keeps such a connection (only a connection error drops it).
            moved_on = (
                redis_errors.ReadOnlyError,
                redis_errors.MasterDownError,
                redis_errors.BusyLoadingError,
            )
            if isinstance(exc, moved_on):
                self._drop_connections()
            raise self._error(action, exc) from None
        if self._eviction_check is None:
            self._start_eviction_check()
        # A deadline put off while this call ran (answerkit/_deadline.py) is not taken
        # here, right after a write that landed: a recipe's next step (recording a move it
        # owes the caller) must not be cut from it. The handler's call.state takes it
        # before its next write, or the timer soon after.
        return result

    def _start_eviction_check(self) -> None:
        """Start _check_eviction, once per store and process (the first of concurrent
        first calls claims it), on a daemon thread: INFO inline cost the first webhook of
        a process its INFO waits (a Redis or proxy that did not answer INFO: a Hangup
        answered 503 after 4 s), and each concurrent first call ran INFO and warned."""
        with self._eviction_lock:
            if self._eviction_check is not None:
                return
            self._eviction_check = threading.Thread(
                target=self._check_eviction, name="answerkit-redis-eviction-check", daemon=True
            )
        with contextlib.suppress(RuntimeError):  # interpreter shutting down: nothing to tell
            self._eviction_check.start()

    def _check_eviction(self) -> None:
        """Warn if Redis may evict the store's keys: every one has a TTL, so the
        volatile-* policies take them as readily as allkeys-*, and call state vanished
        mid-call, and replay records before their window ended, without a word. Asked
        once (a failure, a timeout among them, is not asked again); INFO, which managed
        Redis allows where CONFIG GET is not. Not told when INFO is refused, nor when
        maxmemory is 0 (no limit: nothing is evicted)."""
        try:
            info = cast("Any", self._client.info("memory"))
        except Exception:  # INFO refused (an ACL, a renamed command), or Redis away
            return
        if not isinstance(info, Mapping):
            return
        policy = info.get("maxmemory_policy")
        if info.get("maxmemory") in (0, "0"):
            return
        if isinstance(policy, str) and policy != "noeviction":
            log.warning(
                "Redis state store %s: its maxmemory-policy is %s, so Redis may evict "
                "answerkit's keys (call state, replay records) when it reaches maxmemory: "
                "a call then loses its state mid-call, and a replayed webhook is taken. "
                "Use maxmemory-policy noeviction (redis.conf, or CONFIG SET), or a Redis "
                "of its own for answerkit",
                self.url,
                policy,
            )

    def _key(self, call_uuid: str) -> str:
        return f"{self.prefix}call:{call_uuid}"

    def get_all(self, call_uuid: str) -> dict[str, Any]:
        name = self._key(call_uuid)

        # As bytes, each field and value decoded here: a field in another encoding than
        # UTF-8 (another program's) failed inside redis-py, and a connection that stays
        # open on errors (Sentinel's, under RESP3) was left one reply behind, so later
        # commands read the replies of the commands before them: other calls' values.
        raw = self._call(
            "read call state",
            lambda r: cast("dict[Any, Any]", _undecoded(r, "HGETALL", name)),
        )
        found = {self._field(call_uuid, field): value for field, value in raw.items()}
        # In key order, as every store.
        return {k: self._value(call_uuid, k, found[k]) for k in sorted(found)}

    def get(self, call_uuid: str, key: str) -> Any:
        stored = _read_key(key)
        if stored is None:
            raise KeyError(key)
        name = self._key(call_uuid)

        # As bytes, decoded here (as in get_all).
        raw = self._call("read call state", lambda r: _undecoded(r, "HGET", name, stored))
        if raw is None:
            raise KeyError(key)
        return self._value(call_uuid, stored, raw)

    def _field(self, call_uuid: str, field: bytes | str) -> str:
        """A field name of the call's hash as text; StateValueError for one that is not."""
        try:
            return _text(field, self._encoding)
        except UnicodeDecodeError:
            why = f"its name is not {self._encoding.upper()} text"
            raise self._foreign(call_uuid, field, why) from None

    def _value(self, call_uuid: str, key: str, raw: bytes | str, *, taken: bool = False) -> Any:
        """A stored value read back, or StateValueError naming the call and the key for
        one answerkit did not write (not UTF-8, not JSON): another program's, or damaged.
        Not an outage to retry (a status callback asked again would fail alike), and it
        named no key (a bare JSONDecodeError, or UnicodeDecodeError as "unreachable")."""
        try:
            return json.loads(_text(raw, self._encoding))
        except UnicodeDecodeError:
            why = f"not {self._encoding.upper()} text"
        except (ValueError, RecursionError) as exc:
            why = f"not JSON: {exc}"
        raise self._foreign(call_uuid, key, why, taken=taken) from None

    def _foreign(
        self, call_uuid: str, field: bytes | str, why: str, *, taken: bool = False
    ) -> StateValueError:
        name = self._key(call_uuid)
        if taken:
            fix = "it has been removed by this pop"
        else:
            plain = isinstance(field, str) and field.isprintable() and " " not in field
            shown = field if isinstance(field, str) and plain else "<field>"
            fix = f"delete it (redis-cli HDEL {name} {shown}), and the call's state reads again"
        return StateValueError(
            f"call {call_uuid}: the state key {field!r} (a field of the Redis hash {name}) "
            f"holds no value answerkit wrote ({why}): another program wrote it, or it was "
            f"damaged; {fix}"
        )

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
        receipt = _beside(self.prefix, name, f":claim:{uuid.uuid4().hex}")
        found = self._call(
            "write call state",
            lambda r: _undecoded(
                r, "EVAL", _SET_IF_ABSENT, 2, name, receipt, key, raw, self._ttl_ms
            ),
        )
        return self._value(call_uuid, key, found)

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
        receipt = _beside(self.prefix, name, f":take:{uuid.uuid4().hex}")
        raw = self._call(
            "delete call state",
            lambda r: _undecoded(r, "EVAL", _TAKE_ONCE, 2, name, receipt, key),
        )
        return self._value(call_uuid, key, raw, taken=True) if raw else MISSING

    def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
        key = _check_key(call_uuid, key)
        amount = _check_amount(call_uuid, key, amount)
        # A receipt key makes the increment safe to run twice: redis-py runs a command again
        # when its reply is lost, and the second run must not count again.
        receipt = _beside(self.prefix, self._key(call_uuid), f":incr:{uuid.uuid4().hex}")

        def add(r: redis.Redis) -> int:
            from redis.exceptions import ResponseError  # redis is an optional dependency

            try:
                result = r.eval(
                    _INCR_ONCE, 2, self._key(call_uuid), receipt, key, amount, self._ttl_ms
                )
            except ResponseError:
                # Not an integer, or past 64 bits: the same words as the other backends.
                # Any other refusal (out of memory, a read-only replica) is the store's.
                raw = _undecoded(r, "HGET", self._key(call_uuid), key)
                try:
                    current = 0 if raw is None else json.loads(_text(raw, self._encoding))
                except (ValueError, RecursionError):  # not UTF-8 or not JSON: shown as is
                    current = _text(raw, self._encoding, "replace")
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
            # As bytes: a value another program left there, not UTF-8, failed inside
            # redis-py, and a connection that keeps itself on errors fell a reply behind.
            mine = token.encode()
            return not missed or all(held == mine for held in _undecoded(r, "MGET", *missed))

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
