"""Shared benchmark plumbing: interleaved median timing, results, Markdown tables.

Every benchmark compares answerkit with a baseline *in the same run*, and the cases take
turns (round-robin, the starting case rotating each round) so that noise from the machine
(frequency scaling, another process) hits every case alike. A case's figure is the median
over the rounds of the time per operation; ratios are taken between medians.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "BenchResult",
    "Sample",
    "Target",
    "calibrate",
    "fmt_ns",
    "interleave",
    "percentile",
    "table",
]


@dataclass(frozen=True)
class Sample:
    """The per-operation times of one case, one value per round (nanoseconds)."""

    name: str
    per_op_ns: tuple[float, ...]
    inner: int

    @property
    def median(self) -> float:
        return statistics.median(self.per_op_ns)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (a noise indicator)."""
        if len(self.per_op_ns) < 4:
            return 0.0
        q = statistics.quantiles(self.per_op_ns, n=4)
        return (q[2] - q[0]) / self.median


@dataclass(frozen=True)
class Target:
    """One issue target: ``value`` compared with ``limit`` by ``op`` ("<=" or ">=")."""

    issue: int
    name: str
    value: float
    op: str
    limit: float
    unit: str = "x"

    @property
    def passed(self) -> bool:
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"

    def row(self) -> list[str]:
        return [
            f"#{self.issue}",
            self.name,
            f"{self.value:.2f}{self.unit}",
            f"{self.op} {self.limit:g}{self.unit}",
            self.verdict,
        ]


@dataclass
class BenchResult:
    """What a benchmark script returns: its tables, its targets and notes for RESULTS.md."""

    title: str
    command: str
    tables: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def markdown(self) -> str:
        parts = [f"## {self.title}", "", f"`{self.command}` ({self.seconds:.0f} s)", ""]
        for t in self.tables:
            parts += [t, ""]
        if self.targets:
            parts += [table(["issue", "target", "measured", "limit", "verdict"],
                            [t.row() for t in self.targets]), ""]  # fmt: skip
        parts += [f"- {n}" for n in self.notes]
        return "\n".join(parts).rstrip() + "\n"

    def print(self) -> None:
        print(self.markdown())


def calibrate(fn: Callable[[], object], sample_ns: int = 2_000_000) -> int:
    """How many calls of ``fn`` make one sample of about ``sample_ns`` (at least 1)."""
    fn()  # warm caches, imports, memoisation
    n = 1
    while True:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        took = time.perf_counter_ns() - t0
        if took >= sample_ns // 4 or n >= 1 << 20:
            return max(1, round(n * sample_ns / max(took, 1)))
        n *= 2


def _time(fn: Callable[[], object], inner: int) -> float:
    loop = range(inner)
    t0 = time.perf_counter_ns()
    for _ in loop:
        fn()
    return (time.perf_counter_ns() - t0) / inner


def interleave(
    cases: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    inner: Mapping[str, int] | int | None = None,
    sample_ns: int = 2_000_000,
    between: Callable[[], object] | None = None,
    collect: bool = True,
) -> dict[str, Sample]:
    """Time every case once per round, round-robin, and return its samples.

    ``inner`` fixes the number of calls per sample (per case, or one for all); left out, it
    is calibrated once, before timing, so a sample lasts about ``sample_ns``. The garbage
    collector is off inside a sample (as in ``timeit``) and, with ``collect``, runs between
    samples, so one case does not pay for another's garbage. ``between`` runs untimed
    after each round (resetting a server's log, say).
    """
    names = list(cases)
    if inner is None:
        counts = {n: calibrate(cases[n], sample_ns) for n in names}
    elif isinstance(inner, int):
        counts = dict.fromkeys(names, inner)
    else:
        counts = dict(inner)
    for n in names:  # one untimed sample each: the first round is not a warm-up
        _time(cases[n], min(counts[n], 50))
    times: dict[str, list[float]] = {n: [] for n in names}
    enabled = gc.isenabled()
    # Everything alive now (modules, fixtures) is moved out of the collector's sight, so the
    # collection between samples costs what the cases' own garbage costs.
    gc.collect()
    gc.freeze()
    try:
        for r in range(rounds):
            k = r % len(names)
            for n in names[k:] + names[:k]:
                if collect:
                    gc.collect()
                gc.disable()
                try:
                    times[n].append(_time(cases[n], counts[n]))
                finally:
                    if enabled:
                        gc.enable()
            if between is not None:
                between()
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
    return {n: Sample(n, tuple(times[n]), counts[n]) for n in names}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, nearest rank: the smallest value
    with at least ``q`` of the values at or below it (rank ``ceil(q * n)``)."""
    if not sorted_values:
        return float("nan")
    # Not round(q * n + 0.5): round() takes halves to even, so where q * n is an odd whole
    # number it picked the next rank up (the maximum, for p99 of 100 values). The epsilon
    # keeps float error (0.07 * 100 = 7.000000000000001) from moving a rank.
    rank = math.ceil(q * len(sorted_values) - 1e-9)
    return sorted_values[min(len(sorted_values) - 1, max(0, rank - 1))]


def fmt_ns(ns: float) -> str:
    """A duration for a table: ns, µs or ms with three significant figures."""
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.3g} us"
    return f"{ns / 1_000_000:.3g} ms"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (first column left-aligned, the others right-aligned)."""
    align = [":---"] + ["---:"] * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
