"""Run every benchmark and write benchmarks/RESULTS.md.

Run: ``.venv/bin/python benchmarks/run_all.py`` (about 2-3 minutes on 2 cores).
``--only xml,transfer`` runs a subset (RESULTS.md is still written, with those only).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bench_serve, bench_simulator, bench_transfer, bench_xml
from benchmarks._timing import BenchResult, table

HERE = Path(__file__).resolve().parent
COMMAND = ".venv/bin/python benchmarks/run_all.py"

# The server benchmark forks its load generators: it goes first, while this process has
# no other threads (LocalVobiz's) to copy into the children.
BENCHES: dict[str, Callable[[], BenchResult]] = {
    "serve": bench_serve.run,
    "xml": bench_xml.run,
    "transfer": bench_transfer.run,
    "simulator": bench_simulator.run,
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _revision() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _versions() -> str:
    names = ("answerkit", "flask", "werkzeug", "gunicorn", "lxml", "plivo", "twilio", "requests")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def header(seconds: float, load_before: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "# answerkit benchmark results",
            "",
            f"- Date: {now}",
            f"- Machine: {os.cpu_count()} cores ({_cpu_model()}), {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()} "
            f"({platform.python_implementation()})",
            f"- Revision: {_revision()}",
            f"- Packages: {_versions()}",
            f"- Command: `{COMMAND}` (total {seconds:.0f} s)",
            f"- Load average (1, 5, 15 min) before: {load_before}; after: {_load()}. Other "
            "work on the machine slows every case of a round alike, but widens the spread.",
            "- Method: answerkit and its baselines run in the same run, taking turns "
            "(round-robin) so machine noise hits all alike; figures are medians over the "
            "rounds. These are benchmarks, not tests: nothing here fails a build.",
        ]
    )


def write(
    results: list[BenchResult], seconds: float, load_before: str, path: Path = HERE / "RESULTS.md"
) -> str:
    targets = [t for r in results for t in r.targets]
    summary = table(["issue", "target", "measured", "limit", "verdict"], [t.row() for t in targets])
    passed = sum(t.passed for t in targets)
    parts = [
        header(seconds, load_before),
        "",
        f"## Targets: {passed} of {len(targets)} met",
        "",
        summary,
        "",
    ]
    parts += [r.markdown() for r in results]
    text = "\n".join(parts).rstrip() + "\n"
    path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> list[BenchResult]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHES))
    args = parser.parse_args(argv)
    chosen = list(BENCHES) if not args.only else [s.strip() for s in args.only.split(",")]
    unknown = [c for c in chosen if c not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}")
    load_before = _load()
    started = time.perf_counter()
    results = []
    for name in chosen:
        print(f"-- running {name} ...", file=sys.stderr, flush=True)
        result = BENCHES[name]()
        result.print()
        results.append(result)
    elapsed = time.perf_counter() - started
    write(results, elapsed, load_before)
    print(f"wrote {HERE / 'RESULTS.md'} ({elapsed:.0f} s)", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
