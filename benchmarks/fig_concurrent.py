"""Figure 8: 8 processes x 200 single-record commits on one manifest of 100k records.

Against: the same 8 processes doing 200 bare conditional creates each
(``write(key, data, expect=ABSENT)`` of new objects the size of one entry) on the same
store, in the same run. The processes are started and load the manifest once; then
rounds alternate (ours first, then bare first, ...) and each round releases all 8 at
once. Aggregate rate = operations / (last end - first start) over the 8 processes.
Each worker counts its snapshot reads (a commit must never re-read the snapshot).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import Row, Table, label, ms, percentile
from _data import KEY, fresh_inputs, snapshot_bytes, write_snapshot

from etl_manifests.registry import open_backend

PROCESSES = 8
COMMITS = 200
# The GCS emulator rewrites a JSON index of every object it holds on each write, so a
# write gets slower with every object stored; on it each process does fewer.
COMMITS_ON = {"gcs": 50}
WORKER = Path(__file__).resolve().parent / "_worker.py"


@dataclass
class Round:
    side: str
    rate: float  # operations per second, all processes together
    snapshot_reads: int
    snapshot_writes: int
    calls: dict[str, int]
    latencies: list[float]  # every operation's, all processes


class Workers:
    """The 8 worker processes of one store."""

    def __init__(self, root: str, options: dict[str, Any], entry_bytes: int, commits: int) -> None:
        self.commits = commits
        self.procs: list[subprocess.Popen[str]] = []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        for i in range(PROCESSES):
            args = {
                "root": root,
                "storage_options": options,
                "worker": i,
                "entry_bytes": entry_bytes,
            }
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, str(WORKER), json.dumps(args)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"worker did not start: {line!r}")

    def run(self, side: str) -> Round:
        for proc in self.procs:  # release them all at once
            assert proc.stdin is not None
            proc.stdin.write(f"{side} {self.commits}\n")
            proc.stdin.flush()
        stats = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker died during {side!r} (exit {proc.wait()})")
            stats.append(json.loads(line))
        ops = sum(s["ops"] for s in stats)
        span = max(s["end"] for s in stats) - min(s["start"] for s in stats)
        calls: dict[str, int] = {}
        for s in stats:
            for kind, count in s["calls"].items():
                calls[kind] = calls.get(kind, 0) + count
        return Round(
            side,
            ops / span,
            sum(s["snapshot_reads"] for s in stats),
            sum(s["snapshot_writes"] for s in stats),
            calls,
            [t for s in stats for t in s["latencies"]],
        )

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.write("quit\n")
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def workers(
    root: str, options: dict[str, Any], entry_bytes: int, commits: int
) -> Iterator[Workers]:
    group = Workers(root, options, entry_bytes, commits)
    try:
        yield group
    finally:
        group.close()


def _entry_bytes(root: str, options: dict[str, Any]) -> int:
    """The size of a one-record log entry, as this store holds it."""
    from _data import open_manifest

    backend = open_backend(root, options)
    try:
        manifest = open_manifest(backend, load=False)
        manifest.add_record(fresh_inputs(1, tag=99)[0])
        stem = KEY.removesuffix(".json")
        sizes = [i.size for i in backend.list(f"{stem}.log/") if i.key.endswith(".json") and i.size]
        return int(sizes[0])
    finally:
        backend.close()


def race(
    table: Table,
    title: str,
    root: str,
    options: dict[str, Any],
    rounds: int,
    commits: int = COMMITS,
) -> None:
    entry_bytes = _entry_bytes(root.rstrip("/") + "-entry-size", options)
    with workers(root, options, entry_bytes, commits) as group:
        results: list[Round] = []
        for i in range(rounds):
            sides = ["ours", "bare"] if i % 2 == 0 else ["bare", "ours"]
            for side in sides:
                results.append(group.run(side))
    ours = [r for r in results if r.side == "ours"]
    bare = [r for r in results if r.side == "bare"]
    ratios = [o.rate / b.rate for o, b in zip(ours, bare, strict=True)]
    lat_ours = [t for r in ours for t in r.latencies]
    lat_bare = [t for r in bare for t in r.latencies]
    table.add(
        Row(
            f"{title}: aggregate commits/s, {PROCESSES} x {commits}",
            f"{statistics.median(r.rate for r in ours):,.0f}/s",
            f"{statistics.median(r.rate for r in bare):,.0f}/s bare creates",
            statistics.median(ratios),
            0.5,
            bound="min",
            note=f"{len(ours)} alternated rounds each; per-round ratios "
            f"{min(ratios):.2f}-{max(ratios):.2f}; per operation p50 / p99 / max: ours "
            f"{_spread(lat_ours)}, bare {_spread(lat_bare)}",
        )
    )
    per_commit = {k: v / (PROCESSES * commits * len(ours)) for k, v in _sum_calls(ours).items()}
    table.add(
        Row(
            f"{title}: snapshot reads / writes during the commits",
            f"{sum(r.snapshot_reads for r in ours)} / {sum(r.snapshot_writes for r in ours)}",
            "backend calls per commit: "
            + ", ".join(f"{v:.2f} {k}" for k, v in sorted(per_commit.items()) if v),
        )
    )


def _spread(latencies: list[float]) -> str:
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return f"{ms(p50)} / {ms(p99)} / {ms(max(latencies))}"


def _sum_calls(rounds: list[Round]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rounds:
        for kind, count in r.calls.items():
            out[kind] = out.get(kind, 0) + count
    return out


def fig_concurrent(table: Table, work: Path, n: int, rounds: int, *, cloud: bool) -> None:
    table.section(
        f"8. {PROCESSES} processes x {COMMITS} single-record commits on one manifest of "
        f"{label(n)} records"
    )
    folder = work / "concurrent"
    write_snapshot(folder, n)
    race(table, "local disk", str(folder), {}, rounds)
    if not cloud:
        return
    from _cloud import running_store

    data = snapshot_bytes(n)
    for name in ("s3", "gcs"):
        with running_store(name) as store:
            prefix = f"concurrent-{uuid.uuid4().hex[:8]}"
            store.backend(prefix).write(KEY, data)
            race(
                table,
                store.title,
                store.root(prefix),
                store.storage_options,
                min(rounds, 2),
                COMMITS_ON.get(name, COMMITS),
            )
