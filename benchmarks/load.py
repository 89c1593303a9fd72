"""Load proof: benchmarks/load_app.py under real gunicorn, driven at saturation on loopback.

For each state backend (SQLite in a temp file, then Redis on a redis-server started
here) gunicorn runs 2 sync workers; several load-generator processes send signed
webhooks (fresh nonces, precomputed) over ``http.client`` connections for ``--seconds``,
spread over ``--calls`` simultaneous CallUUIDs. Counted:

* answers that are not 200, and 200s that are the fallback document (both must be 0);
* answers that are not valid VobizXML (every ``--parse-every``-th is parsed with
  ``answerkit.parse``; every one is checked for the Gather and its visit number);
* lost state updates: after the run each call's stored counter is read from the store
  and compared with the 200s the call got (``lost = 200s - stored``, must be 0), and the
  visit numbers a call was answered with must all differ (atomic ``incr``);
* p50/p99 latency as the client sees it (connect to last byte).

``--kill-worker`` SIGKILLs one gunicorn worker halfway through (``--kills N``: N times,
evenly spaced). Requests in flight on
it fail at the connection level: they are counted apart and retried on a fresh
connection with a fresh signature. Such a request may have been applied before the
worker died, so ``stored - 200s`` is reported as "applied, unanswered" and must not
exceed the connection failures; ``stored <= sent`` always.

    .venv/bin/python benchmarks/load.py                       # 60 s, SQLite then Redis
    .venv/bin/python benchmarks/load.py --seconds 60 --kill-worker
    .venv/bin/python benchmarks/load.py --seconds 5 --state sqlite --kills 3 --json -
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
PUBLIC_URL = "https://voice.example.com"
PATH = "/ivr"
TOKEN = "load-token-" + "5e1d" * 6
VISIT = re.compile(rb"Visit (\d+)\.")


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A throwaway redis-server on loopback; returns the process and its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Gunicorn:
    """gunicorn serving load_app:app with ``workers`` sync workers on 127.0.0.1."""

    def __init__(self, state_url: str, workers: int, log: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "VOBIZ_AUTH_TOKEN": TOKEN,
            "ANSWERKIT_STATE_URL": state_url,
            "ANSWERKIT_PUBLIC_URL": PUBLIC_URL,
        }
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class",
             "sync", "--bind", f"127.0.0.1:{self.port}", "--backlog", "2048", "--timeout",
             "30", "--graceful-timeout", "5", "--log-level", "warning", "--chdir", str(HERE),
             "load_app:app"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers = workers
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        signer = Signer(0, 10)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.proc.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("POST", PATH, _body("warm-up", 0), signer.headers())
                if conn.getresponse().status == 200 and len(self.worker_pids()) == self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("gunicorn did not answer")

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


# --------------------------------------------------------------------------- load generator


class Signer:
    """Signature headers with fresh, unique nonces, computed ahead of the timed loop."""

    def __init__(self, seed: int, precompute: int) -> None:
        from answerkit import sign

        self._sign = sign
        self._prefix = f"{seed % 10**9:09d}{random.SystemRandom().randrange(10):01d}"
        self._counter = itertools.count()
        self._ready: list[dict[str, str]] = []
        self._refill(precompute)

    def _refill(self, n: int) -> None:
        url = PUBLIC_URL + PATH
        made = []
        for _ in range(n):
            k = next(self._counter) * 2
            headers = self._sign(url, TOKEN, nonce_v2=f"{self._prefix}{k:010d}",
                                 nonce_v3=f"{self._prefix}{k + 1:010d}")  # fmt: skip
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["User-Agent"] = "Vobiz"
            made.append(headers)
        made.reverse()
        self._ready = made + self._ready

    def headers(self) -> dict[str, str]:
        if not self._ready:
            self._refill(2_000)
        return self._ready.pop()


def _body(call_uuid: str, n: int) -> str:
    fields = {
        "CallUUID": call_uuid,
        "From": "14155550100",
        "To": "14155550199",
        "Direction": "inbound",
        "CallStatus": "in-progress",
        "CallerName": "+14155550100",
        "ParentAuthID": "MA_LOAD0000",
    }
    if n == 0:
        fields["Event"] = "StartApp"
    else:
        fields.update(InputType="dtmf", Digits=str(n % 10))
    return urlencode(fields)


@dataclass
class ClientStats:
    """What one load-generator process saw."""

    ok: Counter[str] = field(default_factory=Counter)  # 200 answers per call
    sent: Counter[str] = field(default_factory=Counter)  # attempts per call
    conn_failures: Counter[str] = field(default_factory=Counter)  # per call
    failure_kinds: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    fallbacks: int = 0
    invalid_xml: int = 0
    parsed: int = 0
    duplicate_visits: int = 0
    visits: dict[str, list[int]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    ok_times: list[float] = field(default_factory=list)


def client_process(port: int, calls: list[str], start_at: float, stop_at: float, seed: int,
                   parse_every: int, out: Any) -> None:  # fmt: skip
    """Send webhooks round-robin over ``calls`` until ``stop_at`` (time.time())."""
    from answerkit import ParseError, parse

    signer = Signer(seed, precompute=int(max(2_000, (stop_at - start_at) * 600)))
    stats = ClientStats()
    seen: dict[str, set[int]] = {c: set() for c in calls}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    order = itertools.cycle(calls)
    retry: str | None = None
    answers = 0
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < stop_at:
        call = retry or next(order)
        retry = None
        stats.sent[call] += 1
        body = _body(call, stats.sent[call] - 1)
        headers = signer.headers()
        started = time.perf_counter()
        try:
            conn.request("POST", f"{PATH}?n={stats.sent[call]}", body, headers)
            response = conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError) as exc:
            # The worker died under this request: count it, then retry the same call on
            # a fresh connection with a fresh signature (the old nonce may have been seen).
            stats.conn_failures[call] += 1
            stats.failure_kinds[type(exc).__name__] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            retry = call
            continue
        stats.latencies.append(time.perf_counter() - started)
        stats.statuses[response.status] += 1
        if response.status != 200:
            continue
        stats.ok[call] += 1
        stats.ok_times.append(time.time())
        match = VISIT.search(data)
        if match is None:
            stats.fallbacks += 1
        else:
            visit = int(match.group(1))
            if visit in seen[call]:
                stats.duplicate_visits += 1
            seen[call].add(visit)
        answers += 1
        if answers % parse_every == 0:
            stats.parsed += 1
            try:
                parse(data)
            except ParseError:
                stats.invalid_xml += 1
    conn.close()
    stats.visits = {c: sorted(v) for c, v in seen.items()}
    out.put(stats)


# --------------------------------------------------------------------------- one scenario


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    # Nearest rank, ceil(q * n) (int(q * n) took the next rank up: p99 of 100 was the max).
    rank = math.ceil(q * len(ordered) - 1e-9)
    return ordered[min(len(ordered) - 1, max(0, rank - 1))]


def run_scenario(state: str, *, seconds: float, procs: int, calls: int, workers: int,
                 kills: int, parse_every: int) -> dict[str, Any]:  # fmt: skip
    """One run against one backend; returns the figures (see the module docstring)."""
    from answerkit.state_urls import open_store

    workdir = Path(tempfile.mkdtemp(prefix=f"answerkit-load-{state}-"))
    redis_proc = None
    server = None
    try:
        if state == "redis":
            redis_proc, state_url = start_redis(workdir)
        else:
            state_url = f"sqlite:///{workdir / 'state.sqlite3'}"
        server = Gunicorn(state_url, workers, workdir / "gunicorn.log")
        run_id = f"{os.getpid()}-{int(time.time())}"
        uuids = [f"load-{run_id}-{i:05d}" for i in range(calls)]
        ctx = mp.get_context("fork")
        out = ctx.Queue()
        start_at = time.time() + 1.5 + 0.1 * procs  # after every process has precomputed
        stop_at = start_at + seconds
        clients = [
            ctx.Process(target=client_process,
                        args=(server.port, uuids[p::procs], start_at, stop_at, p + 1,
                              parse_every, out))
            for p in range(procs)
        ]  # fmt: skip
        for c in clients:
            c.start()
        killed: dict[str, Any] = {}
        if kills:
            killed = {"pids": [], "at": [], "workers_before": server.worker_pids()}
            for i in range(kills):
                time.sleep(max(0.0, start_at + seconds * (i + 1) / (kills + 1) - time.time()))
                current = [p for p in server.worker_pids() if p not in killed["pids"]]
                if not current:
                    continue
                victim = current[i % len(current)]
                os.kill(victim, signal.SIGKILL)
                killed["pids"].append(victim)
                killed["at"].append(time.time())
        results: list[ClientStats] = [out.get(timeout=seconds + 120) for _ in clients]
        for c in clients:
            c.join(timeout=30)
        if kills:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                now = server.worker_pids()
                if len(now) == workers and not set(killed["pids"]) & set(now):
                    break
                time.sleep(0.1)
            now = server.worker_pids()
            killed["workers_after"] = now
            killed["restarted"] = len(now) == workers and not set(killed["pids"]) & set(now)
        server.stop()
        server = None
        store = open_store(state_url)
        try:
            stored = {}
            for u in uuids:
                try:
                    stored[u] = int(store.get(u, "visits"))
                except KeyError:
                    stored[u] = 0
        finally:
            store.close()
    finally:
        if server is not None:
            server.stop()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    return summarise(state, seconds, procs, calls, workers, results, stored, killed)


def summarise(state: str, seconds: float, procs: int, calls: int, workers: int,
              results: list[ClientStats], stored: dict[str, int],
              killed: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    ok: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    ok_times: list[float] = []
    visits: dict[str, list[int]] = {}
    for r in results:
        ok.update(r.ok)
        sent.update(r.sent)
        failures.update(r.conn_failures)
        kinds.update(r.failure_kinds)
        statuses.update(r.statuses)
        latencies += r.latencies
        ok_times += r.ok_times
        visits.update(r.visits)
    lost = sum(max(0, ok[u] - stored[u]) for u in stored)
    unanswered = sum(max(0, stored[u] - ok[u]) for u in stored)
    over_sent = sum(1 for u in stored if stored[u] > sent[u])
    unexplained = sum(1 for u in stored if stored[u] - ok[u] > failures[u])
    gaps = sum(1 for u, v in visits.items() if v and v != list(range(1, len(v) + 1))
               and stored[u] == ok[u])  # fmt: skip
    requests = sum(statuses.values())
    figures: dict[str, Any] = {
        "state": state,
        "seconds": seconds,
        "load_processes": procs,
        "calls": calls,
        "workers": workers,
        "requests": requests,
        "requests_per_second": round(requests / seconds, 1),
        "ok_200": sum(ok.values()),
        "non_200": requests - statuses.get(200, 0),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "fallback_answers": sum(r.fallbacks for r in results),
        "parsed_with_answerkit_parse": sum(r.parsed for r in results),
        "invalid_xml": sum(r.invalid_xml for r in results),
        "duplicate_visit_numbers": sum(r.duplicate_visits for r in results),
        "visit_sequences_with_gaps": gaps,
        "connection_failures": sum(failures.values()),
        "connection_failure_kinds": dict(kinds),
        "lost_updates": lost,
        "applied_unanswered": unanswered,
        "calls_stored_over_sent": over_sent,
        "calls_with_unexplained_extra_updates": unexplained,
        "calls_with_answers": sum(1 for u in stored if ok[u] > 0),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
    }
    if killed:
        first = killed["at"][0] if killed["at"] else float("inf")
        figures["worker_kills"] = {
            "killed_pids": killed["pids"],
            "restarted": killed.get("restarted", False),
            "workers_before": killed["workers_before"],
            "workers_after": killed.get("workers_after", []),
            "ok_in_1s_before_first_kill": sum(1 for t in ok_times if first - 1 <= t < first),
            "ok_in_1s_after_each_kill": [
                sum(1 for t in ok_times if at <= t < at + 1) for at in killed["at"]
            ],
            "ok_after_first_kill": sum(1 for t in ok_times if t >= first),
        }
    return figures


def verdict(f: dict[str, Any]) -> list[str]:
    """The properties that must hold; an empty list means the run passed."""
    problems = []
    for key in ("non_200", "fallback_answers", "invalid_xml", "lost_updates",
                "duplicate_visit_numbers", "calls_stored_over_sent",
                "calls_with_unexplained_extra_updates", "visit_sequences_with_gaps"):  # fmt: skip
        if f[key]:
            problems.append(f"{key}={f[key]}")
    if f["ok_200"] == 0:
        problems.append("no request succeeded")
    kill = f.get("worker_kills")
    if kill is not None:
        if not kill["restarted"]:
            problems.append("gunicorn did not restart the killed worker(s)")
        if kill["ok_after_first_kill"] == 0:
            problems.append("no answer after the kill")
    elif f["connection_failures"]:
        problems.append(f"connection_failures={f['connection_failures']} without a kill")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--state", choices=["sqlite", "redis", "both"], default="both")
    parser.add_argument("--procs", type=int, default=4, help="load-generator processes")
    parser.add_argument("--calls", type=int, default=500, help="simultaneous CallUUIDs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--parse-every", type=int, default=10)
    parser.add_argument("--kill-worker", action="store_true", help="same as --kills 1")
    parser.add_argument(
        "--kills",
        type=int,
        default=0,
        help="SIGKILL a gunicorn worker this many times, evenly spaced",
    )
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    states = ["sqlite", "redis"] if args.state == "both" else [args.state]
    runs = []
    for state in states:
        figures = run_scenario(state, seconds=args.seconds, procs=args.procs, calls=args.calls,
                               workers=args.workers, kills=max(args.kills, int(args.kill_worker)),
                               parse_every=args.parse_every)  # fmt: skip
        figures["problems"] = verdict(figures)
        runs.append(figures)
        if args.json != "-":
            print(json.dumps(figures, indent=2), flush=True)
    if args.json == "-":
        print(json.dumps(runs))
    elif args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2) + "\n")
    return 1 if any(r["problems"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
