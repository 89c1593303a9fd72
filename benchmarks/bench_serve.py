"""Issue 3: an answerkit route under gunicorn against a bare Flask view and a raw WSGI app.

Each target runs in its own gunicorn (2 sync workers, 127.0.0.1, started once); all stay
up, idle ones sleeping. The load generator is the same for every target: ``PROCS``
processes x ``CONNS`` threads, each thread with its own ``http.client`` connection sending
``POST /transfer`` with the same form fields and fresh signature headers (signed before
the timed window, so signing costs the client nothing). gunicorn's sync worker closes the
connection after every answer, so each request opens a new TCP connection: for every target
alike. The targets take turns: ``ROUNDS`` rounds of ``WINDOW`` seconds each, round-robin.

Run: ``.venv/bin/python benchmarks/bench_serve.py``
"""

from __future__ import annotations

import http.client
import io
import itertools
import logging
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from answerkit import sign
from benchmarks import serve_app as apps
from benchmarks._timing import BenchResult, Target, fmt_ns, interleave, percentile, table
from benchmarks.serve_app import BODY, PATH, PUBLIC_URL, TOKEN

HERE = Path(__file__).resolve().parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
WORKERS = 2
PROCS = 2  # load-generator processes
CONNS = 3  # connections (threads) per process: 6 requests in flight for 2 workers
ROUNDS = 5
WINDOW = 3.0  # seconds per target per round
CALLS = 64  # distinct CallUUIDs cycled through (state rows, like concurrent calls)

TARGETS = {
    "raw WSGI": "serve_app:make_raw()",
    "bare Flask": "serve_app:make_flask()",
    "answerkit (10 routes)": "serve_app:make_answerkit(10)",
    "answerkit (1,000 routes)": "serve_app:make_answerkit(1000)",
    # Diagnostic, no target: the same route with per-process memory state, to show what
    # SQLite (replay check and call.state, shared by the two workers) costs under load.
    "answerkit, memory state (diagnostic)": "serve_app:make_answerkit(10, 'memory://')",
    # Diagnostic: SQLite holding the replay record only (the handler leaves call.state
    # alone), to split the SQLite cost between the replay check and the state.
    "answerkit, SQLite replay record only (diagnostic)": (
        "serve_app:make_answerkit(10, touch_state=False)"
    ),
}


def _bodies() -> list[bytes]:
    out = []
    for _ in range(CALLS):
        fields = {
            "CallUUID": str(uuid.uuid4()),
            "From": "14155550100",
            "To": "14155550199",
            "Direction": "inbound",
            "CallStatus": "in-progress",
            "Event": "StartApp",
            "CallerName": "Bench Caller",
            "ParentAuthID": "MA_BENCH000",
            "BillRate": "0.00500",
            "SessionStart": "2025-01-01 10:00:00.000000",
            "STIRAttestation": "A",
        }
        out.append(urlencode(fields).encode())
    return out


# --- the load generator ---------------------------------------------------------------------


def _connection_loop(
    port: int,
    bodies: list[bytes],
    headers: list[dict[str, str]],
    deadline_box: list[float],
    go: threading.Event,
    out: list[float],
    errors: list[int],
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    go.wait()
    deadline = deadline_box[0]
    i = 0
    n = len(headers)
    clock = time.perf_counter
    while True:
        t0 = clock()
        if t0 >= deadline or i >= n:
            break
        try:
            conn.request("POST", PATH, bodies[i % len(bodies)], headers[i])
            resp = conn.getresponse()
            data = resp.read()
            ok = resp.status == 200 and data == BODY
        except (OSError, http.client.HTTPException):
            conn.close()
            ok = False
        # Only answers that count: a failure is an error, not a request served (it adds
        # nothing to req/s, and its often quick failure no latency).
        if ok:
            out.append(clock() - t0)
        else:
            errors.append(1)
        i += 1
    if i >= n and clock() < deadline:
        errors.append(-1)  # ran out of pre-signed headers before the window closed
    conn.close()


def _load_process(
    port: int, window: float, budget: int, bodies: list[bytes], pipe: Connection
) -> None:
    """One generator process: pre-sign, wait for the parent's start time, run, report."""
    url = PUBLIC_URL + PATH
    base = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Vobiz"}
    per_conn = [[{**base, **sign(url, TOKEN)} for _ in range(budget)] for _ in range(CONNS)]
    pipe.send("ready")
    start_at = pipe.recv()  # wall-clock time, shared by every process
    deadline_box = [0.0]
    go = threading.Event()
    results: list[list[float]] = [[] for _ in range(CONNS)]
    errors: list[int] = []
    threads = [
        threading.Thread(
            target=_connection_loop,
            args=(port, bodies, per_conn[k], deadline_box, go, results[k], errors),
        )
        for k in range(CONNS)
    ]
    for t in threads:
        t.start()
    time.sleep(max(0.0, start_at - time.time()))
    deadline_box[0] = time.perf_counter() + window
    go.set()
    for t in threads:
        t.join()
    pipe.send(([x for r in results for x in r], errors.count(1), -1 in errors))
    pipe.close()


@dataclass
class Round:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    exhausted: bool


def drive(port: int, window: float, budget: int, bodies: list[bytes]) -> Round:
    """Run the generator against ``port`` for ``window`` seconds."""
    ctx = mp.get_context("fork")
    pipes, procs = [], []
    for _ in range(PROCS):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_load_process, args=(port, window, budget, bodies, child))
        p.start()
        pipes.append(parent)
        procs.append(p)
    for pipe in pipes:
        if pipe.recv() != "ready":
            raise RuntimeError("load generator failed to start")
    start_at = time.time() + 0.2
    for pipe in pipes:
        pipe.send(start_at)
    latencies: list[float] = []
    errors = 0
    exhausted = False
    for pipe in pipes:
        lat, err, ran_out = pipe.recv()
        latencies += lat
        errors += err
        exhausted = exhausted or ran_out
    for p in procs:
        p.join()
    latencies.sort()
    return Round(
        rps=len(latencies) / window,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        errors=errors,
        exhausted=exhausted,
    )


# --- gunicorn ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn on port {port} did not answer within {timeout} s")


def start_gunicorn(app: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    cmd = [str(GUNICORN), "-w", str(WORKERS), "-k", "sync", "-b", f"127.0.0.1:{port}"]
    cmd += ["--chdir", str(HERE), "--log-level", "warning", app]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _wait_ready(port, proc)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- in-process: where answerkit's per-request time goes ---------------------------------------

IN_PROCESS_INNER = 100
IN_PROCESS_ROUNDS = 21


def _environ(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
        "RAW_URI": PATH,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def _wsgi_case(app: Any, bodies: list[bytes], n: int) -> Callable[[], object]:
    """One request per call, each with fresh signature headers made before timing."""
    headers = iter([sign(PUBLIC_URL + PATH, TOKEN) for _ in range(n)])
    count = itertools.count()

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
        if not status.startswith("200"):
            raise AssertionError(status)

    def case() -> object:
        env = _environ(bodies[next(count) % len(bodies)], next(headers))
        return b"".join(app(env, start_response))

    return case


def in_process(tmp: str, bodies: list[bytes]) -> str:
    """Per-request cost of each app called directly (no server, no socket), interleaved."""
    n = (IN_PROCESS_ROUNDS + 2) * IN_PROCESS_INNER
    quiet = logging.getLogger("answerkit")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # verify=False warns at start-up, by design
    try:
        made = {
            "raw WSGI": apps.make_raw(),
            "bare Flask": apps.make_flask(),
            "Flask view reading request.form": apps.make_flask_form(),
            "answerkit, verify off, memory state": apps.make_answerkit(
                10, "memory://", verify=False
            ),
            "answerkit, verify on, memory state": apps.make_answerkit(10, "memory://"),
            "answerkit, verify on, SQLite state (served)": apps.make_answerkit(
                10, f"sqlite:///{os.path.join(tmp, 'inproc.sqlite3')}"
            ),
        }
        cases = {name: _wsgi_case(app, bodies, n) for name, app in made.items()}
        got = interleave(cases, rounds=IN_PROCESS_ROUNDS, inner=IN_PROCESS_INNER)
    finally:
        quiet.setLevel(level)
    flask = got["bare Flask"].median
    rows = [[k, fmt_ns(v.median), f"{v.median / flask:.2f}x"] for k, v in got.items()]
    return (
        "In-process cost per request (the WSGI app called directly, median of "
        f"{IN_PROCESS_ROUNDS} interleaved rounds of {IN_PROCESS_INNER} requests), to show "
        "where answerkit's time goes:\n\n" + table(["app", "per request", "vs bare Flask"], rows)
    )


# --- the benchmark -------------------------------------------------------------------------


def run(rounds: int = ROUNDS, window: float = WINDOW) -> BenchResult:
    started = time.perf_counter()
    bodies = _bodies()
    res = BenchResult(
        "Webhooks under gunicorn (issue 3)",
        ".venv/bin/python benchmarks/bench_serve.py",
    )
    with tempfile.TemporaryDirectory(prefix="answerkit-bench-") as tmp:
        # A file of its own per target: one target's records never grow another's tables.
        servers = {
            name: start_gunicorn(
                app, dict(os.environ, ANSWERKIT_BENCH_STATE=os.path.join(tmp, f"state{i}.sqlite3"))
            )
            for i, (name, app) in enumerate(TARGETS.items())
        }
        try:
            # Warm every worker, then size the pre-signed header budget on the fastest target.
            probe = {name: drive(port, 0.5, 1500, bodies) for name, (_p, port) in servers.items()}
            fastest = max(r.rps for r in probe.values())
            budget = int(fastest * window * 2 / (PROCS * CONNS)) + 200
            per_round: dict[str, list[Round]] = {name: [] for name in servers}
            names = list(servers)
            for r in range(rounds):
                k = r % len(names)
                for name in names[k:] + names[:k]:
                    per_round[name].append(drive(servers[name][1], window, budget, bodies))
        finally:
            for proc, _port in servers.values():
                stop(proc)
        breakdown = in_process(tmp, bodies)
    res.seconds = time.perf_counter() - started
    _report(res, per_round, rounds, window)
    res.tables.append(breakdown)
    return res


def _med(rs: list[Round], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in rs)


def _report(res: BenchResult, per_round: dict[str, list[Round]], rounds: int, w: float) -> None:
    flask = per_round["bare Flask"]
    raw = per_round["raw WSGI"]
    rows = []
    for name, rs in per_round.items():
        rows.append(
            [
                name,
                f"{_med(rs, 'rps'):.0f}",
                f"{min(r.rps for r in rs):.0f}-{max(r.rps for r in rs):.0f}",
                f"{_med(rs, 'p50_ms'):.2f}",
                f"{_med(rs, 'p99_ms'):.2f}",
                f"{_med(rs, 'rps') / _med(flask, 'rps'):.2f}x",
                f"{_med(rs, 'rps') / _med(raw, 'rps'):.2f}x",
                str(sum(r.errors for r in rs)),
            ]
        )
    res.tables.append(
        f"Median over {rounds} interleaved rounds of {w:g} s per target "
        f"(gunicorn {WORKERS} sync workers; generator {PROCS} processes x {CONNS} "
        "connections, latencies in ms, client side):\n\n"
        + table(["target", "req/s", "range", "p50", "p99", "rps/Flask", "rps/raw", "errors"], rows)
    )
    ak10 = per_round["answerkit (10 routes)"]
    ak1000 = per_round["answerkit (1,000 routes)"]
    res.targets.append(
        Target(3, "answerkit req/s / bare Flask", _med(ak10, "rps") / _med(flask, "rps"), ">=", 0.9)
    )
    res.targets.append(
        Target(
            3, "answerkit p99 / bare Flask", _med(ak10, "p99_ms") / _med(flask, "p99_ms"), "<=", 1.2
        )
    )
    routes_ratio = _med(ak1000, "rps") / _med(ak10, "rps")
    spread = max(
        (max(r.rps for r in rs) - min(r.rps for r in rs)) / _med(rs, "rps") for rs in (ak10, ak1000)
    )
    res.targets.append(Target(3, "req/s 1,000 routes / 10 routes", routes_ratio, ">=", 0.95))
    res.notes.append(
        f"The 1,000/10-route limit of 0.95x stands for 'no change within noise': the "
        f"round-to-round range of answerkit's req/s was {spread:.0%} of its median."
    )
    res.notes.append(
        "answerkit's route verifies the signature (the requests carry V2, V3 and MA headers, "
        "as Vobiz sends them; the V3 one matches first, so one HMAC), records each (nonce, "
        "signature) pair in SQLite (replay check), reads and writes call.state in SQLite, "
        "builds and validates the document; the route is answered ahead of Flask's dispatch "
        "(answerkit/_wsgi.py). Flask and raw WSGI return the pre-rendered bytes."
    )
    res.notes.append(
        "Where the SQLite target's time goes (strace -c of a worker under this load): per "
        "webhook about 17 fcntl, 9 pread and 8 pwrite calls, from three SQLite transactions "
        "(the replay record, the state read, the state write). With two workers writing, "
        "each transaction starts with SQLite's page cache dropped, since another connection "
        "wrote. The memory-state row shows the same route without them; the replay-record-"
        "only row, with the first of them alone (the handler leaves call.state untouched)."
    )
    if any(r.exhausted for rs in per_round.values() for r in rs):
        res.notes.append("WARNING: a generator ran out of pre-signed headers in some round.")
    flask_raw = _med(flask, "rps") / _med(raw, "rps")
    res.notes.append(f"Flask reaches {flask_raw:.2f}x raw WSGI.")
    if flask_raw > 0.85:
        res.notes.append(
            "Flask and raw WSGI come out close: at their speed the Python load generator, "
            "sharing the 2 cores, is the limit, so the answerkit/Flask req/s ratio here "
            "understates the server-side difference (see the in-process table)."
        )


def main() -> BenchResult:
    result = run()
    result.print()
    return result


if __name__ == "__main__":
    main()
