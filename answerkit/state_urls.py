"""Naming a state store by URL (``ANSWERKIT_STATE_URL``): :func:`open_store`, the
``?ttl=`` every URL takes (sqlite's ``?busy_timeout=``, Redis's ``?prefix=``), and URLs
shown without their passwords (:func:`redact_url`)."""

from __future__ import annotations

import math
import os
import re
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlencode

from answerkit.errors import ConfigurationError
from answerkit.state import DEFAULT_SQLITE_PATH, DEFAULT_TTL, MemoryStore, StateStore

__all__ = [
    "check_store_url",
    "open_store",
    "redact_url",
    "sqlite_directory_problem",
    "url_password",
]


# --------------------------------------------------------------------------- URLs


#: A URL's host[:port] as RFC 3986 writes it (a port is digits).
_HOST_PORT = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=%-]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")


def _userinfo(url: str) -> str | None:
    """``url``'s user name and password (what comes before its ``@``), or None.

    As RFC 3986 reads it (the authority ends at the first ``/``, ``?`` or ``#``), except
    when that reading gives no host: a password with an unencoded ``/``, ``?`` or ``#``
    ends the authority early ("user:pa/ss@host" reads as host "user", port "pa"), and then
    the user info runs to the last ``@``. An ``@`` in a path or a query (a unix socket's
    name, ``?password=p@ss``) after a real host[:port] is no user info.
    """
    rest = url.partition("://")[2] if "://" in url else url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        # A password may hold "@" and "/" both: the user info then runs on to the last "@"
        # of the path part ("user:p@ss/word@host" is user "user", password "p@ss/word").
        path = tail.partition("?")[0].partition("#")[0]
        if "@" in path:
            return rest[: len(authority) + path.rindex("@")]
        return authority.rpartition("@")[0]
    if "@" in tail and authority and not _HOST_PORT.fullmatch(authority):
        return rest.rpartition("@")[0]
    return None


def url_password(url: str) -> str:
    """The password in ``url``'s user info ('' for none), however badly it is encoded."""
    userinfo = _userinfo(url)
    if userinfo is None:
        return ""
    user, sep, password = userinfo.partition(":")
    # A lone userinfo is a username to redis-py, but people do put passwords there.
    return password if sep and not any(c in user for c in "/?#") else userinfo


def redact_url(url: str) -> str:
    """``url`` with any password (userinfo or ``?password=``) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        if "@" in url:
            # Malformed ("redis//user:secret@host"): no telling where the user info starts,
            # so everything before the last "@" of the part up to the query is hidden.
            head, _, tail = url.partition("?")
            return "***@" + head.rpartition("@")[2] + ("?***" if tail else "")
        scheme, rest = "", url
    userinfo = _userinfo(url)
    shown = ""
    tail = rest
    if userinfo is not None:
        # All of it is hidden but a plain user name.
        tail = rest[len(userinfo) + 1 :]
        user, colon, _password = userinfo.partition(":")
        plain_user = colon and not any(c in user for c in "/?#")
        shown = f"{user}:***@" if plain_user else "***@"
    # Not urlsplit/urlunsplit: see _userinfo, and urlunsplit turns "unix:///p" into "unix:/p".
    where, _, query = tail.partition("#")[0].partition("?")
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if is_secret_param(k) else v) for k, v in pairs],
            safe="*",
        )
    head = f"{scheme}://" if sep else ""
    return f"{head}{shown}{where}{'?' if query else ''}{query}"


# --------------------------------------------------------------------------- factory


def open_store(url: str | None = None, *, ttl: float = DEFAULT_TTL) -> StateStore:
    """Open the store a URL names.

    * ``None``: SQLite at ``./answerkit-state.sqlite3`` (a sqlite URL with no path,
      ``"sqlite://"``, is refused: it is most often an unset variable);
    * ``"sqlite:///relative/path.db"`` or ``"sqlite:////absolute/path.db"``;
    * ``"memory://"``: this process only (tests);
    * ``"redis://[:password@]host[:port][/db]"``, ``"rediss://..."``, ``"unix://..."``.

    Any of them takes ``?ttl=SECONDS``, how long a call's state lives (default
    :data:`DEFAULT_TTL`, 4 hours), so ``ANSWERKIT_STATE_URL`` alone can set it; it wins
    over ``ttl``. A sqlite URL also takes ``?busy_timeout=SECONDS``, how long a statement
    waits for another worker's write lock (default 2), and a Redis URL ``?prefix=``, the
    start of every key the store writes (default ``answerkit:``; one per application
    sharing a Redis database). A Redis URL's other query parameters go to redis-py, which
    must know them.
    """
    from answerkit.state_sqlite import SQLiteStore

    plan = _store_plan(url, ttl)
    if plan.kind == "sqlite":
        if plan.busy_timeout is None:
            return SQLiteStore(plan.target, ttl=plan.ttl)
        return SQLiteStore(plan.target, ttl=plan.ttl, busy_timeout=plan.busy_timeout)
    if plan.kind == "memory":
        return MemoryStore(ttl=plan.ttl)
    return _redis_store(plan)


def _redis_store(plan: _Plan) -> StateStore:
    """The RedisStore a "redis" plan names (its URL's ?prefix= if it gave one)."""
    from answerkit.state_redis import RedisStore

    if plan.prefix is None:
        return RedisStore(plan.target, ttl=plan.ttl)
    return RedisStore(plan.target, ttl=plan.ttl, prefix=plan.prefix)


def check_store_url(url: str) -> None:
    """Raise ConfigurationError, as :func:`open_store` would, if ``url`` names no store
    it can open; nothing is opened or connected."""
    plan = _store_plan(url, DEFAULT_TTL)
    if plan.kind == "redis":
        # Made and closed: redis-py parses the URL without connecting, and RedisStore
        # refuses what it would misread (a database that is no number, a bad port, an
        # option redis-py does not know, a prefix that makes no hash tag, a TLS file
        # that is not there).
        _redis_store(plan).close()


def sqlite_directory_problem(url: str | None) -> str | None:
    """What keeps a sqlite URL's file from being made, if anything: its directory (the
    file's real one, past symlinks, where SQLite also makes the -wal and -shm) missing or
    not writable. Said when a flow is mounted; a directory made later (an app factory
    making its instance folder) is fine by the first webhook, so it is not an error."""
    plan = _store_plan(url, DEFAULT_TTL)
    if plan.kind != "sqlite":
        return None
    try:
        directory = os.path.dirname(os.path.realpath(plan.target))
    except OSError:  # a relative path, and the working directory gone: the store says so
        return None
    if not os.path.isdir(directory):
        problem = "does not exist"
    elif not os.access(directory, os.W_OK | os.X_OK):
        problem = "is not writable by this user"
    else:
        return None
    return (
        f"state store URL {redact_url(url or '')!r}: the directory {directory!r} {problem}, "
        f"so every webhook will get the fallback until it is; create it for the user the "
        f"workers run as (mkdir -p {directory} and chown), or give another path"
    )


class _Plan(NamedTuple):
    """What a state URL names: ``kind`` "sqlite" (``target`` the path), "memory" (no
    target) or "redis" (``target`` the URL for redis-py); its TTL; for sqlite, the busy
    timeout its URL gives, and for Redis, the key prefix (None: the store's default)."""

    kind: str
    target: str
    ttl: float
    busy_timeout: float | None
    prefix: str | None = None


def _store_plan(url: str | None, ttl: float) -> _Plan:
    """What ``url`` names (see :class:`_Plan`); ConfigurationError if nothing."""
    if url is None or not url.strip():
        return _Plan("sqlite", DEFAULT_SQLITE_PATH, ttl, None)
    url = url.strip()
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    # Schemes are case-insensitive (RFC 3986), and redis-py accepts lower case only.
    url = scheme + url[len(scheme) :] if scheme else url
    url, ttl = _ttl_from_query(url, ttl)
    busy_timeout: float | None = None
    if scheme == "sqlite":
        url, busy_timeout = _seconds_from_query(url, "busy_timeout", None)
    if scheme in ("sqlite", "memory") and "?" in url:
        also = " and ?busy_timeout=SECONDS" if scheme == "sqlite" else ""
        raise ConfigurationError(
            f"state store URL {redact_url(url)!r}: {scheme} URLs take no query parameter "
            f"but ?ttl=SECONDS{also}"
        )
    if scheme == "sqlite" and _userinfo(url) is not None:
        # A file has no user or password: the whole "user:pw@/path" would become a path,
        # and the password part of every error about it.
        raise ConfigurationError(
            f"state store URL {redact_url(url)!r}: a sqlite URL takes no user or password; "
            "use 'sqlite:////absolute/path.db'"
        )
    if scheme == "sqlite":
        rest = url.partition("://")[2]
        path = rest[1:] if rest.startswith("/") else rest
        path = unquote(path)
        if "\x00" in path:
            # os.path and SQLite raised a bare ValueError ("embedded null byte"), when the
            # flow was mounted or on the first webhook.
            raise ConfigurationError(
                f"state store URL {redact_url(url)!r}: the path holds a NUL byte (%00), "
                "which no file name can; remove it"
            )
        if not path.strip() or path.endswith(("/", os.sep)):
            # As SQLiteStore("") is: an unset variable in 'sqlite:///${STATE_FILE}' would
            # put the calls' state in whatever directory the workers started in.
            raise ConfigurationError(
                f"state store URL {redact_url(url)!r} names no file (an unset environment "
                "variable?): give a path, 'sqlite:///calls.sqlite3', or no state URL at all "
                f"for the default {DEFAULT_SQLITE_PATH!r}"
            )
        if os.path.isdir(path):
            raise ConfigurationError(
                f"state store URL {redact_url(url)!r} names a directory, not a file (an "
                "unset environment variable at its end?): give the file's path, such as "
                f"'sqlite:///{path.rstrip('/')}/state.sqlite3'"
            )
        if path == ":memory:" or path.startswith("file::memory:"):
            # Refused when the flow is made, as SQLiteStore refuses it when opened: each
            # thread's connection would get an empty database of its own, and every
            # webhook the fallback.
            raise ConfigurationError(
                f"state store URL {redact_url(url)!r}: an in-memory SQLite database is not "
                "shared between threads or workers; use 'memory://' (tests) or a file path"
            )
        return _Plan("sqlite", path, ttl, busy_timeout)
    if scheme == "memory":
        return _Plan("memory", "", ttl, None)
    if scheme in ("redis", "rediss", "unix"):
        # Taken here, as ?ttl= is: redis-py would refuse it as an option of its own.
        url, prefix = _param_from_query(url, "prefix")
        if prefix is not None and not prefix.strip():
            raise ConfigurationError(
                f"state store URL {redact_url(url)!r}: its ?prefix= is empty (an unset "
                "environment variable?): give the key prefix (?prefix=billing:), or leave "
                "it out for 'answerkit:'"
            )
        return _Plan("redis", url, ttl, None, prefix)
    raise ConfigurationError(
        f"unknown state store URL {redact_url(url)!r}: use 'sqlite:///path/to/file.sqlite3', "
        f"'redis://host:6379/0' or 'memory://'"
    )


def is_secret_param(name: str) -> bool:
    """Whether a URL query parameter holds a secret (``password``, redis-py's
    ``ssl_password``, ``pass``, ``pwd``...): shown as ``***``, scrubbed from errors."""
    name = name.lower()
    return "password" in name or "secret" in name or name in ("pass", "pwd")


def _ttl_from_query(url: str, ttl: float) -> tuple[str, float]:
    """``url`` without its ``ttl`` query parameter, and the TTL it gives (else ``ttl``)."""
    url, given = _seconds_from_query(url, "ttl", ttl)
    return url, ttl if given is None else given


def _seconds_from_query(url: str, name: str, default: float | None) -> tuple[str, float | None]:
    """``url`` without its ``name`` query parameter (any case), and the number of seconds
    it gives (else ``default``); ConfigurationError unless finite and above 0."""
    url, raw = _param_from_query(url, name)
    if raw is None:
        return url, default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigurationError(
            f"the state URL's ?{name}= must be a finite number of seconds above 0, got {raw!r}"
        )
    return url, seconds


def _param_from_query(url: str, name: str) -> tuple[str, str | None]:
    """``url`` without its ``name`` query parameter (any case), and the value it gives,
    percent-decoded (the last one, if several; else None)."""
    # The query starts after the user info: a password may hold an unencoded "?".
    userinfo = _userinfo(url)
    scheme, sep, _rest = url.partition("://")
    head_len = (len(scheme) + len(sep) if sep else 0) + (
        len(userinfo) + 1 if userinfo is not None else 0
    )
    after = url[head_len:]
    base, mark, query = after.partition("?")
    if not mark:
        return url, None
    # The other parameters are kept byte for byte (a re-encoding would change them).
    parts = query.split("&")
    given = [unquote(p.partition("=")[2]) for p in parts if p.partition("=")[0].lower() == name]
    if not given:
        return url, None
    kept = [p for p in parts if p.partition("=")[0].lower() != name]
    base = url[:head_len] + base
    return (f"{base}?{'&'.join(kept)}" if kept else base), given[-1]
