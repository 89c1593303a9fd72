"""RedisStore against Redis servers that fail or are set up in ways a production Redis is:
a failover, a replica, ACL users, a password, no HELLO, an evicting maxmemory-policy, a
cluster, foreign values in a call's hash. Each test starts the real redis-server(s) it
needs, as the ``redis_url`` fixture does."""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import free_port, new_call_uuid, stop_process, wait_until
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.retry import Retry

from answerkit import CallFlow, CallRequest, Response, Speak
from answerkit.errors import ConfigurationError, StateError, StateValueError
from answerkit.state import RedisStore, open_store

# --------------------------------------------------------------------------- servers


def _answers(port: int) -> bool:
    """Whether a Redis on ``port`` has started (any reply: one asking for a password too)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64)[:1] in (b"+", b"-")
    except OSError:
        return False


def _start_server(workdir: Path, port: int, args: tuple[str, ...]) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not on PATH: install it (apt-get install redis-server)")
    logfile = workdir / f"redis-{port}.log"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--logfile", str(logfile), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    give_up = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < give_up:
        if _answers(port):
            return proc
        time.sleep(0.05)
    stop_process(proc, timeout=5)
    log = logfile.read_text(errors="replace") if logfile.exists() else ""
    pytest.fail(f"redis-server {' '.join(args)} did not start: {log[-2000:]}")


StartRedis = Callable[..., int]


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[StartRedis]:
    """Starts a throwaway redis-server with extra config arguments; returns its port.
    Every server started is stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> int:
        port = free_port()
        started.append(_start_server(tmp_path, port, args))
        return port

    yield start
    for proc in started:
        stop_process(proc, timeout=5)


def _user(rule: str) -> tuple[str, ...]:
    """redis-server's arguments for an ACL user (one argument per word of its rule)."""
    return ("--user", *rule.split())


def _closed_port() -> int:
    return free_port()  # nothing listens there once free_port has closed its socket


def _admin(port: int) -> redis.Redis:
    return redis.Redis(port=port, decode_responses=True, protocol=2, socket_timeout=5)


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


class _Proxy:
    """A TCP proxy on loopback that sends each new connection to the port ``target``
    names then, and leaves established ones where they are: what a failover that moves
    a DNS name or a VIP looks like to a client."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                near, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            near.settimeout(None)
            far = socket.create_connection(("127.0.0.1", self.target))
            self._open += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closing = True
        self._thread.join(5)
        self._listener.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.close()


# --------------------------------------------------------------------------- B1: failover


@pytest.mark.parametrize(
    ("replica_args", "fails_on"),
    [
        # A demoted primary: it still serves reads, and refuses writes (READONLY).
        ((), "write"),
        # A replica that lost its primary and serves nothing (MASTERDOWN).
        (("--replica-serve-stale-data", "no"), "read"),
    ],
)
def test_a_failover_that_moves_the_name_is_followed_by_the_next_command(
    start_redis: StartRedis, replica_args: tuple[str, ...], fails_on: str
) -> None:
    # The pooled connection stayed on the demoted primary: every webhook got the apology
    # and the health check 503 until the app restarted.
    replica = start_redis("--replicaof", "127.0.0.1", str(_closed_port()), *replica_args)
    primary = start_redis()
    proxy = _Proxy(replica)
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", prefix=_prefix())
    call = new_call_uuid()
    try:
        if fails_on == "write":
            assert store.get_all(call) == {}  # reads are served: the connection is pooled
            with pytest.raises(StateError, match="read-only replica") as info:
                store.set(call, "k", 1)
        else:
            with pytest.raises(StateError, match="lost its primary") as info:
                store.get_all(call)
        assert "Check that Redis is running" not in str(info.value)
        proxy.target = primary  # the name now leads to the new primary
        store.set(call, "k", 1)
        assert store.get(call, "k") == 1
    finally:
        store.close()
        proxy.close()


@pytest.mark.parametrize(
    ("error", "drops"),
    [
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), True),
        (redis.exceptions.MasterDownError("Link with MASTER is down"), True),
        (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), True),
        (redis.exceptions.OutOfMemoryError("command not allowed when used memory"), False),
    ],
)
def test_a_server_that_is_no_primary_has_the_pool_dropped(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, error: Exception, drops: bool
) -> None:
    store = RedisStore(redis_url, prefix=_prefix())
    dropped: list[bool] = []

    def refuse(*args: Any, **options: Any) -> Any:
        raise error

    monkeypatch.setattr(store._client, "execute_command", refuse)
    monkeypatch.setattr(
        store._client.connection_pool,
        "disconnect",
        lambda inuse_connections=True: dropped.append(inuse_connections),
    )
    with pytest.raises(StateError):
        store.get_all(new_call_uuid())
    assert dropped == ([False] if drops else [])
    monkeypatch.undo()
    store.close()


# --------------------------------------------------------------------------- B2: prefix


def test_every_key_the_store_writes_starts_with_its_prefix(start_redis: StartRedis) -> None:
    # The receipts of incr, setdefault and pop were "{tnt:call:U}:incr:...": an ACL user
    # limited to ~tnt:* (the usual way to share a Redis) got NOPERM on each of them.
    port = start_redis(*_user("app on >app-pw-123 ~tnt:* +@all"))
    store = RedisStore(f"redis://app:app-pw-123@127.0.0.1:{port}/0", prefix="tnt:")
    admin = _admin(port)
    call = new_call_uuid()
    try:
        state = store.state(call)
        state["a"] = 1
        state.update(b=2, c=3)
        assert store.incr(call, "n") == 1
        assert state.setdefault("claim", "mine") == "mine"
        assert state.pop("a") == 1
        del state["b"]
        assert state.popitem() == ("c", 3)
        assert store.remember_all(["n1", "n2"], 30)
        store.expire(call, 60)
        keys = [str(key) for key in admin.keys("*")]
        assert len(keys) >= 6 and all(key.startswith("tnt:") for key in keys), keys
        for key in keys:
            if ":{" in key:  # a receipt: in its call's cluster slot
                assert key_slot(key.encode()) == key_slot(f"tnt:call:{call}".encode())
    finally:
        admin.close()
        store.close()


# --------------------------------------------------------------------------- B3: cluster


def _cluster_port() -> int:
    """A port free for a cluster node and for its bus (the port + 10000)."""
    for _ in range(200):
        port = random.randint(20000, 55000)
        try:
            for each in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", each))
        except OSError:
            continue
        return port
    pytest.fail("found no free port pair for a cluster node")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """Two Redis Cluster nodes: the first serves slots 0-8191, the second the rest."""
    workdir = tmp_path_factory.mktemp("cluster")
    ports = [_cluster_port(), _cluster_port()]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            config = ("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf")
            procs.append(_start_server(workdir, port, config))
        nodes = [_admin(port) for port in ports]
        nodes[0].cluster("ADDSLOTS", *range(0, 8192))
        nodes[1].cluster("ADDSLOTS", *range(8192, 16384))
        nodes[0].cluster("MEET", "127.0.0.1", ports[1])

        def ready() -> bool:
            infos: list[Any] = [node.cluster("INFO") for node in nodes]
            return all(
                info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == 2
                for info in infos
            )

        wait_until(ready, "the two cluster nodes agree")
        for node in nodes:
            node.close()
        yield ports[0], ports[1]
    finally:
        for proc in procs:
            stop_process(proc, timeout=5)


def _cluster_client(port: int, **options: Any) -> RedisCluster:
    options.setdefault("decode_responses", True)
    return RedisCluster.from_url(f"redis://127.0.0.1:{port}/0", **options)


def test_a_redis_cluster_client_is_taken_and_every_operation_works(
    cluster: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    # It was refused: "needs a client made with decode_responses=True", which it was
    # (a RedisCluster has no connection_pool for the check to read).
    url = f"redis://127.0.0.1:{cluster[0]}/0"
    client = _cluster_client(cluster[0], socket_timeout=1, socket_connect_timeout=1)
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        store = RedisStore(url, prefix="{ak-cluster}:", client=client)
    assert "socket_timeout" not in caplog.text
    call = new_call_uuid()
    try:
        store.set(call, "a", 1)
        store.set_many(call, {"b": [2], "c": {"d": None}})
        assert store.incr(call, "n", 5) == 5
        assert store.set_if_absent(call, "claim", "x") == "x"
        assert store.take(call, "a") == 1
        assert store.get(call, "b") == [2]
        assert store.get_all(call) == {"b": [2], "c": {"d": None}, "claim": "x", "n": 5}
        assert store.remember_all(["one", "two"], 30)
        assert not store.remember_all(["one", "two"], 30)
        store.expire(call, 0)
        assert store.get_all(call) == {}
        store.ping()
    finally:
        store.close()


def test_a_redis_cluster_client_is_refused_when_it_gives_bytes_or_without_a_hash_tag(
    cluster: tuple[int, int],
) -> None:
    url = f"redis://127.0.0.1:{cluster[0]}/0"
    raw = _cluster_client(cluster[0], decode_responses=False)
    with pytest.raises(ConfigurationError, match="decode_responses=True"):
        RedisStore(url, prefix="{ak}:", client=raw)
    raw.close()
    # A webhook's replay records go in one MULTI: without a tag, in different slots.
    decoding = _cluster_client(cluster[0])
    with pytest.raises(ConfigurationError, match=r"hash tag.*prefix='\{answerkit\}:'"):
        RedisStore(url, client=decoding)
    decoding.close()


def test_a_redis_cluster_client_is_refused_on_a_redis_py_without_cluster_transactions(
    cluster: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # On redis-py 6.0 (the floor then) every write and replay record failed: "transaction
    # is deprecated in cluster mode", with advice to check that Redis is running.
    url = f"redis://127.0.0.1:{cluster[0]}/0"
    client = _cluster_client(cluster[0], socket_timeout=1, socket_connect_timeout=1)
    try:
        monkeypatch.setattr(redis, "__version__", "6.0.0")
        with pytest.raises(ConfigurationError, match=r"redis-py 6\.1 or later.*6\.0\.0"):
            RedisStore(url, prefix="{ak}:", client=client)
        monkeypatch.setattr(redis, "__version__", "6.1.0")
        RedisStore(url, prefix="{ak}:", client=client).set(new_call_uuid(), "k", 1)
    finally:
        client.close()


def test_a_url_naming_a_cluster_node_is_told_to_use_a_cluster_client(
    cluster: tuple[int, int],
) -> None:
    # Every command met MOVED (a plain client does not follow it), reported with "check
    # that Redis is running"; or it worked while the prefix's slot stayed on that node.
    prefix = "{answerkit}:"
    assert key_slot(b"answerkit") >= 8192  # served by the second node
    store = RedisStore(f"redis://:cl-pw-77@127.0.0.1:{cluster[0]}/0", prefix=prefix)
    try:
        with pytest.raises(StateError) as info:
            store.set(new_call_uuid(), "k", 1)
    finally:
        store.close()
    message = str(info.value)
    assert "MovedError" in message and "Redis Cluster" in message
    assert "client=RedisCluster.from_url(url, decode_responses=True, socket_timeout=" in message
    assert "prefix='{answerkit}:'" in message
    assert "cl-pw-77" not in message and "Check that Redis is running" not in message


# --------------------------------------------------------------------------- B4: RESP2


def test_a_redis_without_hello_is_spoken_to_in_resp2(start_redis: StartRedis) -> None:
    # redis-py 8 says HELLO 3 by default: a Redis before 6 (or a proxy) refusing it
    # failed every webhook.
    port = start_redis("--rename-command", "HELLO", "")
    store = RedisStore(f"redis://127.0.0.1:{port}/0", prefix=_prefix())
    call = new_call_uuid()
    try:
        store.set(call, "k", 1)
        assert store.get_all(call) == {"k": 1}
    finally:
        store.close()
    asked = RedisStore(f"redis://127.0.0.1:{port}/0?protocol=3")
    try:
        with pytest.raises(StateError, match=r"does not speak RESP3: remove \?protocol=3"):
            asked.ping()
    finally:
        asked.close()


def test_a_redis_asking_for_a_password_the_url_lacks_says_so(start_redis: StartRedis) -> None:
    # It said "HELLO must be called with the client already authenticated, otherwise the
    # HELLO AUTH <user> <pass> option can be used".
    port = start_redis("--requirepass", "right-pw-456")
    bare = RedisStore(f"redis://127.0.0.1:{port}/0")
    wrong = RedisStore(f"redis://:wrong-pw-789@127.0.0.1:{port}/0")
    right = RedisStore(f"redis://:right-pw-456@127.0.0.1:{port}/0", prefix=_prefix())
    try:
        with pytest.raises(StateError, match="Redis requires a password: give it in the URL"):
            bare.ping()
        with pytest.raises(StateError) as info:
            wrong.ping()
        assert "refused the user name or password" in str(info.value)
        assert "wrong-pw-789" not in str(info.value) and "HELLO" not in str(info.value)
        right.set(new_call_uuid(), "k", 1)
    finally:
        for store in (bare, wrong, right):
            store.close()


def test_a_url_speaks_resp2_unless_it_asks_for_resp3(redis_url: str) -> None:
    plain = RedisStore(redis_url)
    three = RedisStore(f"{redis_url}?protocol=3")
    try:
        assert plain._client.connection_pool.connection_kwargs["protocol"] == 2
        assert three._client.connection_pool.connection_kwargs["protocol"] == 3
        three.ping()
    finally:
        plain.close()
        three.close()


# --------------------------------------------------------------------------- B6: timeouts


@pytest.mark.parametrize(
    ("query", "keyword", "connect"),
    [
        ("", 1.0, 1.0),
        ("", 0.3, 0.3),
        ("?socket_timeout=0.25", 1.0, 0.25),
        ("?socket_timeout=0.25&socket_connect_timeout=0.75", 1.0, 0.75),
        ("?socket_connect_timeout=0.75", 1.0, 0.75),
    ],
)
def test_a_url_socket_timeout_bounds_connecting_too(
    redis_url: str, query: str, keyword: float, connect: float
) -> None:
    # ?socket_timeout=0.5 left connecting to the keyword's 1 s: an unreachable Redis cost
    # 2 s per webhook, not 2 x 0.5 s.
    store = RedisStore(redis_url + query, socket_timeout=keyword)
    try:
        connection: Any = store._client.connection_pool.make_connection()
        assert connection.socket_connect_timeout == connect
        connection.disconnect()
    finally:
        store.close()


# --------------------------------------------------------------------------- B7: health


def _health(store: RedisStore, caplog: pytest.LogCaptureFixture, linger: float = 300.0) -> int:
    flow = CallFlow("f", verify=False, state=store, hangup_linger=linger)
    flow.add_health_endpoint()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        status: int = flow.create_app().test_client().get("/_answerkit/health").status_code
    return status


@pytest.mark.parametrize(
    ("user", "refused", "linger"),
    [
        ("+@all -multi -exec", "multi", 300.0),  # remember_all of two keys: MULTI
        ("+@all -eval -evalsha", "eval", 300.0),  # incr, expire, setdefault, pop: scripts
        ("+@all -del", "del", 0.0),  # clear at a Hangup with hangup_linger=0
    ],
)
def test_the_health_check_asks_what_a_webhook_asks(
    start_redis: StartRedis,
    caplog: pytest.LogCaptureFixture,
    user: str,
    refused: str,
    linger: float,
) -> None:
    # It wrote one key with SET NX and said 200 while every webhook failed.
    port = start_redis(*_user(f"limited on >lim-pw-1 ~* {user}"))
    limited = RedisStore(f"redis://limited:lim-pw-1@127.0.0.1:{port}/0")
    full = RedisStore(f"redis://127.0.0.1:{port}/0", prefix="full:")
    try:
        assert _health(limited, caplog, linger) == 503
        assert "NoPermissionError" in caplog.text and refused in caplog.text.lower()
        assert "lim-pw-1" not in caplog.text
        assert _health(full, caplog, linger) == 200
        admin = _admin(port)
        assert admin.keys("full:call:*") == []  # the probe's call cleared
        admin.close()
    finally:
        limited.close()
        full.close()


def test_a_health_probe_whose_incr_reply_was_lost_leaves_at_most_one_call(
    start_redis: StartRedis, caplog: pytest.LogCaptureFixture
) -> None:
    # Each probe counted on a call of its own: one whose incr landed but whose reply was
    # lost left that call's hash for the store's TTL (4 h), one per such probe.
    class LosesReplies(RedisStore):
        lose = 0

        def incr(self, call_uuid: str, key: str, amount: int = 1) -> int:
            value = super().incr(call_uuid, key, amount)
            if self.lose:
                self.lose -= 1
                raise StateError("the reply was lost (a timeout)")
            return value

    port = start_redis()
    store = LosesReplies(f"redis://127.0.0.1:{port}/0", prefix=_prefix())
    flow = CallFlow("f", verify=False, state=store)
    flow.add_health_endpoint()
    client = flow.create_app().test_client()
    admin = _admin(port)
    try:
        store.lose = 3
        with caplog.at_level(logging.WARNING, logger="answerkit"):
            for _ in range(3):
                assert client.get("/_answerkit/health").status_code == 503
        assert len(admin.keys(f"{store.prefix}call:*")) == 1  # one, not one per probe
        assert client.get("/_answerkit/health").status_code == 200
        assert admin.keys(f"{store.prefix}call:*") == []  # and the next probe cleared it
    finally:
        admin.close()
        store.close()


@pytest.mark.parametrize("missing", ["incr", "clear"])
def test_a_store_without_counters_is_healthy(missing: str) -> None:
    # A store of one's own whose incr raised NotImplementedError (its webhooks never
    # count) made the endpoint answer 503 for ever: every host out of the balancer.
    from answerkit.state import MemoryStore

    def refuse(*args: Any) -> Any:
        raise NotImplementedError(f"this store has no {missing}")

    store = MemoryStore()
    setattr(store, missing, refuse)
    flow = CallFlow("f", verify=False, state=store)
    flow.add_health_endpoint()
    assert flow.create_app().test_client().get("/_answerkit/health").status_code == 200


# --------------------------------------------------------------------------- B8: eviction


def _eviction_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]


def _checked(store: RedisStore) -> None:
    """Wait for the store's eviction check (a thread of its own) to have ended."""
    check = store._eviction_check
    assert check is not None
    check.join(30)
    assert not check.is_alive()


def test_an_evicting_maxmemory_policy_is_told_once(
    start_redis: StartRedis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Under allkeys-* and volatile-* (every key of the store has a TTL) call state and
    # replay records were evicted without a word.
    port = start_redis(
        "--maxmemory-policy", "volatile-ttl", "--maxmemory", "100mb",
        *_user("noinfo on >noinfo-pw ~* +@all -info"),
    )  # fmt: skip
    evicting = RedisStore(f"redis://127.0.0.1:{port}/0", prefix=_prefix())
    keeping = RedisStore(redis_url, prefix=_prefix())
    not_allowed = RedisStore(f"redis://noinfo:noinfo-pw@127.0.0.1:{port}/0", prefix=_prefix())
    call = new_call_uuid()
    try:
        with caplog.at_level(logging.WARNING, logger="answerkit"):
            for _ in range(3):
                evicting.set(call, "k", 1)
                assert evicting.get(call, "k") == 1
            _checked(evicting)
        warnings = _eviction_warnings(caplog)
        assert len(warnings) == 1
        assert "volatile-ttl" in warnings[0] and "noeviction" in warnings[0]
        assert "call state, replay records" in warnings[0]
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="answerkit"):
            keeping.set(call, "k", 1)
            not_allowed.set(call, "k", 1)  # INFO refused: nothing told, nothing failed
            assert not_allowed.get(call, "k") == 1
            _checked(keeping)
            _checked(not_allowed)
        assert "maxmemory-policy" not in caplog.text
    finally:
        for store in (evicting, keeping, not_allowed):
            store.close()


def test_an_evicting_policy_without_maxmemory_is_not_told(
    start_redis: StartRedis, caplog: pytest.LogCaptureFixture
) -> None:
    # maxmemory 0 is no limit: nothing is ever evicted, whatever the policy; it was told.
    port = start_redis("--maxmemory-policy", "allkeys-lru", "--maxmemory", "0")
    store = RedisStore(f"redis://127.0.0.1:{port}/0", prefix=_prefix())
    try:
        with caplog.at_level(logging.WARNING, logger="answerkit"):
            store.set(new_call_uuid(), "k", 1)
            _checked(store)
        assert _eviction_warnings(caplog) == []
    finally:
        store.close()


def test_the_eviction_check_runs_once_and_off_the_webhooks_path(
    start_redis: StartRedis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # INFO ran inline on the first webhook of a process (an INFO that did not answer cost
    # a Hangup a 503 after 4 s, three INFO waits), and concurrent first calls each ran
    # INFO and warned (3 warnings from 16 threads).
    port = start_redis("--maxmemory-policy", "allkeys-lru", "--maxmemory", "100mb")
    store = RedisStore(f"redis://127.0.0.1:{port}/0", prefix=_prefix())
    client: Any = store._client
    asked_on: list[threading.Thread] = []
    answer = threading.Event()
    info = client.info

    def held_info(*args: Any) -> Any:
        asked_on.append(threading.current_thread())
        answer.wait(30)  # a Redis that does not answer INFO, until the test lets it
        return info(*args)

    monkeypatch.setattr(client, "info", held_info)
    threads = 16
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def first_webhook() -> None:
        try:
            start.wait()
            store.set(new_call_uuid(), "k", 1)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    try:
        with caplog.at_level(logging.WARNING, logger="answerkit"):
            workers = [threading.Thread(target=first_webhook) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(30)
            # Every call returned while INFO was still unanswered: none waited for it.
            assert not answer.is_set() and not failures
            assert not any(worker.is_alive() for worker in workers)
            store.set(new_call_uuid(), "k", 2)
            answer.set()
            _checked(store)
            store.set(new_call_uuid(), "k", 3)
        assert len(asked_on) == 1 and asked_on[0] not in workers
        assert asked_on[0] is not threading.current_thread()
        assert len(_eviction_warnings(caplog)) == 1
    finally:
        answer.set()
        store.close()


# --------------------------------------------------------------------------- B9: foreign


@pytest.mark.parametrize(
    ("foreign", "why"),
    [(b"\xff\xfe not text", "not UTF-8 text"), (b"hello", "not JSON")],
)
def test_a_foreign_value_in_a_calls_hash_names_the_call_and_the_key(
    redis_url: str, foreign: bytes, why: str
) -> None:
    # Non-UTF-8 bytes were reported as an outage (UnicodeDecodeError: "check that Redis
    # is running"), and text that is no JSON as a bare JSONDecodeError naming no key.
    store = RedisStore(redis_url, prefix=_prefix())
    admin = redis.Redis.from_url(redis_url)
    call = new_call_uuid()
    name = f"{store.prefix}call:{call}"
    try:
        store.set(call, "fine", 1)
        admin.hset(name, "note", foreign)
        for read in (
            lambda: store.get_all(call),
            lambda: store.get(call, "note"),
            lambda: store.set_if_absent(call, "note", 2),
        ):
            with pytest.raises(StateValueError) as info:
                read()
            message = str(info.value)
            assert call in message and "'note'" in message and why in message
            assert f"HDEL {name} note" in message
        assert store.get(call, "fine") == 1  # the other fields still read
        with pytest.raises(StateValueError, match="removed by this pop"):
            store.take(call, "note")
        assert store.get_all(call) == {"fine": 1}
        admin.hset(name, "count", foreign)
        with pytest.raises(StateValueError, match="not an integer"):
            store.incr(call, "count")
        admin.hset(name, b"\xffname", b"1")
        with pytest.raises(StateValueError, match="its name is not UTF-8"):
            store.get_all(call)
    finally:
        admin.close()
        store.close()


def test_a_foreign_value_is_no_outage_to_a_status_callback(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A status callback reading a call with a non-UTF-8 field got 503, asked again three
    # times, failing alike each time.
    store = RedisStore(redis_url, prefix=_prefix())
    flow = CallFlow("f", verify=False, state=store)

    @flow.route("/answer")
    def answer(call: CallRequest) -> Response:
        return Response(Speak(f"note {call.state.get('note')}"))

    @flow.route("/events", status_callback=True)
    def events(call: CallRequest) -> None:
        call.state.get("note")

    admin = redis.Redis.from_url(redis_url)
    call = new_call_uuid()
    admin.hset(f"{store.prefix}call:{call}", "note", b"\xff\xfe")
    form = {"CallUUID": call, "From": "14155550100", "To": "14155550199",
            "Direction": "inbound", "CallStatus": "completed"}  # fmt: skip
    try:
        client = flow.create_app().test_client()
        with caplog.at_level(logging.WARNING, logger="answerkit"):
            status = client.post("/events", data={**form, "Event": "DialHangup"})
            answered = client.post("/answer", data={**form, "Event": "StartApp"})
        assert status.status_code == 200
        assert answered.status_code == 200 and b"note" not in answered.data  # the fallback
        assert "StateValueError" in caplog.text and "'note'" in caplog.text
    finally:
        admin.close()
        store.close()


@pytest.fixture
def sentinel_client(start_redis: StartRedis, tmp_path: Path) -> Iterator[tuple[int, Any]]:
    """A Redis and a Sentinel that watches it; yields the Redis's port and a client of
    the Sentinel's (master_for, RESP3 under redis-py 8), whose connections stay open
    when a reply fails to decode."""
    from redis.sentinel import Sentinel

    port = start_redis()
    sentinel_port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor m 127.0.0.1 {port} 1\n"
        f'dir "{tmp_path}"\nlogfile "{tmp_path}/sentinel.log"\n'
    )
    binary = shutil.which("redis-server")
    assert binary is not None
    proc = subprocess.Popen(
        [binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    sentinel = Sentinel([("127.0.0.1", sentinel_port)], socket_timeout=5)
    client = sentinel.master_for("m", decode_responses=True, socket_timeout=5)
    try:

        def found() -> bool:
            with contextlib.suppress(redis.RedisError):
                return bool(client.ping())
            return False

        wait_until(found, "the sentinel names its primary")
        yield port, client
    finally:
        client.close()
        stop_process(proc, timeout=5)


def test_a_foreign_field_leaves_a_sentinel_clients_connection_in_step(
    sentinel_client: tuple[int, Any],
) -> None:
    # The read failed to decode inside redis-py and was read again as bytes; a Sentinel's
    # connection (kept open on errors) was left one reply behind, and other calls then
    # got each other's values: get(B, 'visits') gave call D's 'sales'.
    port, client = sentinel_client
    store = RedisStore("redis://sentinel-managed", prefix=_prefix(), client=client)
    admin = _admin(port)
    first, second, third = new_call_uuid(), new_call_uuid(), new_call_uuid()
    try:
        store.set(second, "visits", 7)
        store.set(third, "menu", "sales")
        admin.hset(f"{store.prefix}call:{first}", "note", b"caf\xe9")  # not UTF-8
        for read in (lambda: store.get_all(first), lambda: store.get(first, "note")):
            for _ in range(2):
                with pytest.raises(StateValueError, match="not UTF-8"):
                    read()
                assert store.get(third, "menu") == "sales"
                assert store.get(second, "visits") == 7
                assert store.get_all(second) == {"visits": 7}
        assert store.incr(second, "visits") == 8
        assert store.get_all(third) == {"menu": "sales"}
    finally:
        admin.close()
        store.close()


# --------------------------------------------------------------------------- B10: client=


@pytest.mark.parametrize(
    ("timeouts", "told"),
    [
        ({}, True),  # redis-py's own: none before 8, 5 s since
        ({"socket_timeout": None, "socket_connect_timeout": None}, True),
        ({"socket_timeout": 0.5}, True),  # connecting still unbounded (or redis-py's 5 s)
        ({"socket_timeout": 5, "socket_connect_timeout": 5}, True),
        ({"socket_timeout": 0.5, "socket_connect_timeout": 0.5}, False),
    ],
)
def test_a_client_without_short_timeouts_is_told_to_have_them(
    redis_url: str, caplog: pytest.LogCaptureFixture, timeouts: dict[str, Any], told: bool
) -> None:
    # The replay record runs before any deadline: a client with no timeout (or redis-py
    # 8's 5 s) held each webhook for as long as Redis stalled (5.9 s; Vobiz waits 3 s).
    client = redis.Redis.from_url(
        redis_url, decode_responses=True, retry=Retry(NoBackoff(), 1), **timeouts
    )
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        RedisStore(redis_url, client=client).close()
    if told:
        assert "socket_timeout=0.5, socket_connect_timeout=0.5" in caplog.text
    else:
        assert caplog.text == ""


@pytest.mark.parametrize(
    ("retry", "told"),
    [
        ("default", "10 retries with a backoff"),  # redis-py 8's own
        (Retry(NoBackoff(), 3), "3 retries"),
        (Retry(ExponentialBackoff(), 1), "a backoff (ExponentialBackoff)"),
        (Retry(NoBackoff(), -1), "retries for ever"),  # a Hangup still waited after 8 s
        (Retry(NoBackoff(), 1), None),
        (Retry(NoBackoff(), 0), None),
    ],
)
def test_a_client_that_retries_long_is_told_to_retry_once(
    redis_url: str, caplog: pytest.LogCaptureFixture, retry: Any, told: str | None
) -> None:
    # With README's recipes a Redis refusing connections held a Hangup 4.0 s, one that
    # could not be reached 8.6 s (redis-py 8 retries 10 times, backing off), unsaid.
    options: dict[str, Any] = {} if retry == "default" else {"retry": retry}
    client = redis.Redis(
        port=int(redis_url.rsplit(":", 1)[1].split("/")[0]), decode_responses=True,
        socket_timeout=0.5, socket_connect_timeout=0.5, **options,
    )  # fmt: skip
    if retry == "default" and client.get_retry() is None:  # pragma: no cover - redis-py < 8
        pytest.skip("this redis-py's client does not retry by default")
    with caplog.at_level(logging.WARNING, logger="answerkit"):
        RedisStore(redis_url, client=client).close()
    if told is None:
        assert caplog.text == ""
    else:
        assert told in caplog.text and "retry=Retry(NoBackoff(), 1)" in caplog.text


def test_a_cluster_client_that_retries_long_is_told_to_retry_once(
    cluster: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    # A RedisCluster retries on its own (cluster_error_retry_attempts, with backoff): a
    # node down held each webhook 2.6-4.6 s.
    url = f"redis://127.0.0.1:{cluster[0]}/0"
    timeouts = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    for options, told in (({}, True), ({"retry": Retry(NoBackoff(), 1)}, False)):
        client = _cluster_client(cluster[0], **timeouts, **options)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="answerkit"):
            RedisStore(url, prefix="{ak}:", client=client).close()
        assert ("retry=Retry(NoBackoff(), 1)" in caplog.text) is told, caplog.text


# --------------------------------------------------------------------------- N2: advice


def test_each_refusal_gets_advice_that_fits_it(start_redis: StartRedis) -> None:
    # Every StateError ended "Check that Redis is running and reachable", an OOM or an
    # ACL refusal included, and redis-py's own "." made it "..".
    port = start_redis(*_user("narrow on >narrow-pw ~other:* +@all"))
    admin = _admin(port)
    url = f"redis://127.0.0.1:{port}/0"
    cases: list[tuple[RedisStore, str]] = [
        (RedisStore(f"redis://narrow:narrow-pw@127.0.0.1:{port}/0", prefix="mine:"), "~mine:*"),
        (RedisStore(f"redis://127.0.0.1:{port}/99"), "'databases' setting"),
        (RedisStore(f"redis://127.0.0.1:{_closed_port()}/0"), "Check that Redis is running"),
    ]
    try:
        for store, advice in cases:
            with pytest.raises(StateError) as info:
                store.set(new_call_uuid(), "k", 1)
            message = str(info.value)
            assert advice in message and ".." not in message
            if advice != "Check that Redis is running":
                assert "Check that Redis is running" not in message
        full = RedisStore(url, prefix=_prefix())
        cases.append((full, ""))
        admin.config_set("maxmemory", 1)
        with pytest.raises(StateError, match="maxmemory reached") as info:
            full.set(new_call_uuid(), "k", 1)
        assert "Check that Redis is running" not in str(info.value)
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
        for store, _advice in cases:
            store.close()


def test_the_acl_advice_names_the_command_refused_and_select_for_another_database(
    start_redis: StartRedis,
) -> None:
    # A user made as the advice said (+@read +@write ... +info) was refused SELECT for a
    # database other than 0, and got the same advice again.
    rule = "~mine:* +@read +@write +@transaction +@scripting +ping +info"
    port = start_redis(
        *_user(f"advised on >adv-pw {rule}"), *_user("noeval on >ne-pw ~* +@all -eval")
    )
    other_db = RedisStore(f"redis://advised:adv-pw@127.0.0.1:{port}/2", prefix="mine:")
    first_db = RedisStore(f"redis://advised:adv-pw@127.0.0.1:{port}/0", prefix="mine:")
    no_eval = RedisStore(f"redis://noeval:ne-pw@127.0.0.1:{port}/0", prefix="mine:")
    try:
        with pytest.raises(StateError) as info:
            other_db.set(new_call_uuid(), "k", 1)
        assert "+select" in str(info.value) and "+info +select" in str(info.value)
        first_db.set(new_call_uuid(), "k", 1)  # the advice is enough for database 0
        with pytest.raises(StateError) as info:
            no_eval.incr(new_call_uuid(), "k")
        assert "add +eval" in str(info.value) and "+select" not in str(info.value)
    finally:
        for store in (other_db, first_db, no_eval):
            store.close()


# --------------------------------------------------------------------------- N3: ?prefix=


def test_a_store_url_gives_the_key_prefix(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Two apps on one Redis database shared call hashes, and ?prefix= was refused as an
    # option unknown to redis-py.
    store = open_store(f"{redis_url}?prefix=billing-{uuid.uuid4().hex[:6]}:&ttl=60")
    assert isinstance(store, RedisStore)
    assert store.prefix.startswith("billing-") and store.ttl == 60
    call = new_call_uuid()
    store.set(call, "k", 1)
    admin = redis.Redis.from_url(redis_url, decode_responses=True)
    assert admin.hgetall(f"{store.prefix}call:{call}") == {"k": "1"}
    admin.close()
    store.close()
    tagged = open_store(f"{redis_url}?PREFIX=%7Bak%7D:")
    assert isinstance(tagged, RedisStore) and tagged.prefix == "{ak}:"
    tagged.close()
    monkeypatch.setenv("ANSWERKIT_STATE_URL", f"{redis_url}?prefix={{}}app:")
    with pytest.raises(ConfigurationError, match="hash tag"):
        CallFlow("f", verify=False)  # refused when the flow is made, as the keyword is
    with pytest.raises(ConfigurationError, match=r"\?prefix= is empty"):
        open_store(f"{redis_url}?prefix=")
    with pytest.raises(ConfigurationError, match="take no query parameter"):
        open_store(f"sqlite:///{tmp_path}/s.db?prefix=x:")
    # Given to the class itself, it was "prefix: no connection option has that name".
    with pytest.raises(ConfigurationError) as info:
        RedisStore(f"{redis_url}?prefix=billing:")
    assert "?prefix= is for state URLs (ANSWERKIT_STATE_URL)" in str(info.value)
    assert "pass RedisStore(url, prefix=...)" in str(info.value)


# --------------------------------------------------------------------------- N8: TLS files


@pytest.mark.parametrize("option", ["ssl_ca_certs", "ssl_certfile", "ssl_keyfile"])
def test_a_tls_file_that_is_not_there_is_refused_when_the_flow_is_made(
    tmp_path: Path, option: str
) -> None:
    # It was found at the first webhook, as "Error 2 connecting to host. No such file or
    # directory", and every webhook got the fallback.
    missing = tmp_path / "nowhere" / "file.pem"
    url = f"rediss://:tls-pw-3@127.0.0.1:6380/0?{option}={missing}"
    with pytest.raises(ConfigurationError) as info:
        CallFlow("f", verify=False, state=url)
    message = str(info.value)
    assert f"{option}={missing}" in message and "does not exist" in message
    assert "tls-pw-3" not in message
    there = tmp_path / "file.pem"
    there.write_text("not checked here")
    CallFlow("f", verify=False, state=f"rediss://127.0.0.1:6380/0?{option}={there}")


def test_a_client_writing_another_encoding_reads_its_own_keys_back(redis_url: str) -> None:
    # Read as bytes (so that a foreign field fails as that field), values were decoded as
    # UTF-8 whatever the client wrote them in: with encoding="latin-1", every non-ASCII
    # key made get_all raise StateValueError.
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    client = redis.Redis(
        port=port, decode_responses=True, encoding="latin-1", socket_timeout=0.5,
        socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 1),
    )  # fmt: skip
    store = RedisStore(redis_url, client=client, prefix="latin:")
    try:
        store.set("c-enc", "café", "crème")
        assert store.get_all("c-enc") == {"café": "crème"}
        assert store.get("c-enc", "café") == "crème"
        assert store.remember_all(["enc-1", "enc-2"], 60) is True
        assert store.remember_all(["enc-1", "enc-2"], 60) is False
    finally:
        store.close()
