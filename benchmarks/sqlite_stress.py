"""Two processes doing a webhook's SQLite store work as fast as they can: the WAL upkeep check.

Each operation is what one webhook asks of the store: record two replay keys, read the
call's state, write one key. With ``--no-restart`` the background thread only runs passive
checkpoints (as before the WAL restart was added): under steady writes the WAL then never
starts over, grows past SQLite's auto-checkpoint size, and every commit of every process
checkpoints, with two fsyncs.

Run: ``.venv/bin/python benchmarks/sqlite_stress.py [--ops 20000] [--procs 2] [--no-restart]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import sys
import tempfile
import time
from multiprocessing.queues import Queue
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``answerkit`` importable from the repo
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _worker(path: str, ops: int, restart: bool, out: Queue[tuple[float, list[float]]]) -> None:
    from answerkit import _sqlite_connections, _sqlite_upkeep
    from answerkit.state_sqlite import SQLiteStore

    if not restart:
        _sqlite_upkeep.RESTART_INTERVAL = float("inf")
        _sqlite_connections.AUTOCHECKPOINT_PAGES = 10_000  # the earlier backstop
    store = SQLiteStore(path)
    calls = [secrets.token_hex(8) for _ in range(50)]
    keys = [(secrets.token_hex(22), secrets.token_hex(22)) for _ in range(ops)]
    latencies = []
    started = time.perf_counter()
    for i, pair in enumerate(keys):
        t = time.perf_counter()
        store.remember_all(pair, 300)
        call = calls[i % len(calls)]
        store.set(call, "served", store.get_all(call).get("served", 0) + 1)
        latencies.append(time.perf_counter() - t)
    out.put((time.perf_counter() - started, latencies))
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000, help="operations per process")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--no-restart", action="store_true", help="passive checkpoints only")
    args = parser.parse_args()
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="answerkit-stress-") as tmp:
        path = os.path.join(tmp, "state.sqlite3")
        out: Queue[tuple[float, list[float]]] = ctx.Queue()
        procs = [
            ctx.Process(target=_worker, args=(path, args.ops, not args.no_restart, out))
            for _ in range(args.procs)
        ]
        started = time.perf_counter()
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - started
    lat = sorted(x for _secs, ls in results for x in ls)
    total = args.procs * args.ops

    def pct(q: float) -> str:
        return f"{lat[min(len(lat) - 1, int(len(lat) * q))] * 1e6:,.0f} us"

    mode = "passive checkpoints only" if args.no_restart else "with WAL restarts"
    print(
        f"{args.procs} processes x {args.ops:,} webhook operations, {mode}: "
        f"{total / elapsed:,.0f} ops/s, p50 {pct(0.5)}, p99 {pct(0.99)}, "
        f"max {lat[-1] * 1e3:,.1f} ms"
    )


if __name__ == "__main__":
    main()
