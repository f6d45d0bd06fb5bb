"""Timing, fairness and the printed table, shared by every figure of ``bench.py``.

Fairness rules every timed figure follows:

* ours and its baseline run in the same round, and the round alternates which of the
  two goes first (round 0: ours first, round 1: baseline first, ...): the first of two
  big writers in a round pays more (page-cache pressure), and drift in background load
  hits both sides equally;
* a ``gc.collect()`` runs, untimed, before every run; results are freed after the clock
  stops, so neither side is charged for deallocating its output;
* the published time of each side is the MEDIAN of its rounds, and the published ratio
  is the median of the per-round ratios (each taken between two runs that shared a
  round), not a best case.
"""

from __future__ import annotations

import gc
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Pair",
    "Row",
    "Table",
    "alternated",
    "label",
    "machine_info",
    "mib",
    "ms",
    "ns",
    "percentile",
    "timed",
]


def timed(run: Callable[[], object], setup: Callable[[], object] | None = None) -> float:
    """Wall time of one ``run``; ``setup`` and a ``gc.collect()`` run untimed before it."""
    if setup is not None:
        setup()
    gc.collect()
    start = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - start
    # Freed only now, so that neither side's timing includes deallocating its result.
    del result
    return elapsed


@dataclass(frozen=True)
class Pair:
    """Alternated rounds of ours against a baseline, with their medians."""

    ours: list[float]
    base: list[float]

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def base_median(self) -> float:
        return statistics.median(self.base)

    @property
    def ratio(self) -> float:
        """Median of the per-round ratios ours / baseline."""
        return statistics.median(o / b for o, b in zip(self.ours, self.base, strict=True))

    def spread(self) -> str:
        """The range of the per-round ratios, for the notes."""
        ratios = [o / b for o, b in zip(self.ours, self.base, strict=True)]
        return f"{min(ratios):.2f}-{max(ratios):.2f}"


def alternated(
    rounds: int,
    ours: Callable[[], object],
    baseline: Callable[[], object],
    setup: Callable[[], object] | None = None,
    base_setup: Callable[[], object] | None = None,
) -> Pair:
    """``rounds`` rounds of one run of each side; odd rounds run the baseline first.

    ``setup`` runs untimed before each run of ours (and of the baseline too, unless
    ``base_setup`` is given for it).
    """
    o: list[float] = []
    b: list[float] = []
    for i in range(rounds):
        sides = [(ours, setup, o), (baseline, base_setup or setup, b)]
        if i % 2:
            sides.reverse()
        for run, prepare, out in sides:
            out.append(timed(run, prepare))
    return Pair(o, b)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


# ------------------------------------------------------------------------ report


@dataclass
class Row:
    figure: str
    ours: str
    baseline: str = ""
    ratio: float | None = None
    target: float | None = None
    note: str = ""
    #: ``"max"``: the target is an upper bound (the default); ``"min"``: a lower bound.
    bound: str = "max"

    @property
    def met(self) -> str:
        if self.ratio is None or self.target is None:
            return ""
        ok = self.ratio <= self.target if self.bound == "max" else self.ratio >= self.target
        return "yes" if ok else "NO"


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        # Progress on stderr, so a slow figure shows where it is.
        print(f"  {row.figure}: {row.ours}  {row.baseline}", file=sys.stderr, flush=True)

    def section(self, title: str) -> None:
        self.rows.append(Row(f"## {title}", ""))
        print(title, file=sys.stderr, flush=True)

    def render(self) -> str:
        head = ["figure", "ours", "baseline (same run)", "ratio", "target", "met?"]
        body: list[list[str]] = []
        for r in self.rows:
            if r.figure.startswith("## "):
                body.append([r.figure[3:], "", "", "", "", ""])
                continue
            ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
            sign = "<=" if r.bound == "max" else ">="
            target = "" if r.target is None else f"{sign} {r.target:g}"
            body.append([f"  {r.figure}", r.ours, r.baseline, ratio, target, r.met])
        widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

        def fmt(line: list[str]) -> str:
            return " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))

        out = [fmt(head), "-+-".join("-" * w for w in widths)]
        out += [fmt(line).rstrip() for line in body]
        notes = [(r.figure, r.note) for r in self.rows if r.note]
        if notes:
            out += ["", "notes:"]
            out += [f"  [{i}] {figure}: {note}" for i, (figure, note) in enumerate(notes, 1)]
        return "\n".join(out)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms" if seconds < 0.01 else f"{seconds * 1e3:,.1f} ms"


def ns(seconds: float) -> str:
    return f"{seconds * 1e9:,.0f} ns"


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def machine_info() -> str:
    versions = []
    for dist in ("etl-manifests", "pydantic", "pydantic-core", "orjson"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist} ?")
    return "\n".join(
        [
            f"python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} at start",
            ", ".join(versions),
        ]
    )
