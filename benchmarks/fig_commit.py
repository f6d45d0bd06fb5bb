"""Figure 6: one ``add_record`` outside a batch on local disk, checkpoints included.

Each commit writes one small log entry; every ``max(every, size_ratio * records)``
commits (the default :class:`~etl_manifests.CheckpointPolicy`: 1,010 commits from 100k records,
10,101 from 1M) a background thread folds the log into a new snapshot. The figure times
exactly one such cycle in its steady state: half a cycle of untimed commits first, then
a full cycle timed, so the one checkpoint it triggers lands in the middle of the timed
commits and slows whatever it slows.

Against: the durable-create primitive (:func:`_data.durable_create`: create a file of
the entry's size, fsync it, fsync its folder), in blocks alternating with ours (50
commits, 50 creates, then the other way round), so drift hits both. A background
checkpoint still running at the end of one of our blocks is waited for inside that
block's time: the average carries every checkpoint in full, and the primitive never
runs beside one.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _common import Row, Table, label, mib, ms, percentile
from _data import Record, durable_create, fresh_inputs, local_manifest
from fig_log_load import longest_log

from etl_manifests.model import Manifest

BLOCK = 50


def wait_for_checkpoints() -> float:
    """Join the manifests' background checkpoint threads; returns the seconds waited."""
    start = time.perf_counter()
    for thread in threading.enumerate():
        if thread.name.startswith("checkpoint ") and thread is not threading.current_thread():
            thread.join()
    return time.perf_counter() - start


def entry_size(manifest: Manifest) -> int:
    """The median size of the log entries stored so far (single-record commits)."""
    stem = manifest.key.removesuffix(".json")
    sizes = [
        info.size
        for info in manifest.backend.list(f"{stem}.log/")
        if info.size is not None and info.key.endswith(".json")
    ]
    return int(statistics.median(sizes))


def _written() -> int | None:
    """Bytes this process passed to write(2) so far (Linux), for bytes per commit."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Cycle:
    """One timed checkpoint cycle of single-record commits, and the primitive beside it."""

    records: int
    commits: int
    latencies: list[float]  # each add_record, as its caller saw it
    ours_total: float  # every block of ours, waits for checkpoints included
    waited: float  # of which: waiting for background checkpoints at block ends
    checkpoints: int
    prim_latencies: list[float]
    written: int | None  # bytes written by this process during our blocks
    entry_bytes: int
    snapshot_bytes: int

    @property
    def avg(self) -> float:
        return self.ours_total / self.commits

    @property
    def prim_avg(self) -> float:
        return sum(self.prim_latencies) / len(self.prim_latencies)


def commit_cycle(manifest: Manifest, prim_folder: Path, inputs: Iterator[Record]) -> Cycle:
    """Run half a checkpoint cycle untimed, then one full cycle timed (see module doc)."""
    n = len(manifest)
    cycle = longest_log(n, manifest.checkpoint_policy)
    for _ in range(cycle // 2):
        manifest.add_record(next(inputs))
    wait_for_checkpoints()
    data = b"x" * entry_size(manifest)
    prim_folder.mkdir(parents=True, exist_ok=True)

    latencies: list[float] = []
    prim: list[float] = []
    ours_total = waited = 0.0
    written = 0
    versions = {manifest.version}
    checkpoints = 0
    gc.collect()
    done = 0
    block = 0
    while done < cycle:
        count = min(BLOCK, cycle - done)
        sides = ["ours", "prim"] if block % 2 == 0 else ["prim", "ours"]
        for side in sides:
            if side == "prim":
                for _ in range(count):
                    start = time.perf_counter()
                    durable_create(prim_folder, data)
                    prim.append(time.perf_counter() - start)
                continue
            before = _written()
            began = time.perf_counter()
            for _ in range(count):
                record = next(inputs)
                start = time.perf_counter()
                manifest.add_record(record)
                latencies.append(time.perf_counter() - start)
            waited += wait_for_checkpoints()
            ours_total += time.perf_counter() - began
            after = _written()
            if before is not None and after is not None:
                written += after - before
            if manifest.version not in versions:
                versions.add(manifest.version)
                checkpoints += 1
        done += count
        block += 1
    snapshot = Path(str(manifest.path)).stat().st_size
    return Cycle(
        n,
        cycle,
        latencies,
        ours_total,
        waited,
        checkpoints,
        prim,
        written if _written() is not None else None,
        len(data),
        snapshot,
    )


def one_compact(manifest: Manifest) -> float:
    """Time of one whole-document checkpoint (``compact()``) of ``manifest``."""
    gc.collect()
    start = time.perf_counter()
    manifest.compact()
    return time.perf_counter() - start


def report_cycle(table: Table, c: Cycle, whole_save: float) -> None:
    sz = label(c.records)
    table.add(
        Row(
            f"add_record @{sz}: average of {c.commits:,} commits + {c.checkpoints} checkpoint",
            ms(c.avg),
            f"{ms(c.prim_avg)} create+fsync+folder fsync",
            c.avg / c.prim_avg,
            2.0,
            note=f"{c.commits:,} commits = one cycle of the default CheckpointPolicy at "
            f"{c.records:,} records; {ms(c.waited)} of the total was spent waiting for "
            "the background checkpoint at the end of the block that started it.",
        )
    )
    p50, p99 = percentile(c.latencies, 50), percentile(c.latencies, 99)
    b50, b99 = percentile(c.prim_latencies, 50), percentile(c.prim_latencies, 99)
    table.add(
        Row(
            f"add_record @{sz}: p50 / p99 / max",
            f"{ms(p50)} / {ms(p99)} / {ms(max(c.latencies))}",
            f"{ms(b50)} / {ms(b99)} primitive p50 / p99",
            p50 / b50,
        )
    )
    table.add(
        Row(
            f"add_record @{sz}: p99 vs one whole-document save",
            ms(p99),
            f"{ms(whole_save)} compact() of this manifest",
            p99 / whole_save,
            0.1,
            note="'a checkpoint must not make one caller's commit take as long as a "
            "whole-document save', judged at a tenth of one.",
        )
    )
    if c.written is not None:
        per = c.written / c.commits
        table.add(
            Row(
                f"add_record @{sz}: bytes written per commit (checkpoint included)",
                f"{per:,.0f} B",
                f"{c.entry_bytes:,} B one entry; snapshot {mib(c.snapshot_bytes)}",
                per / c.snapshot_bytes,
                0.01,
                note="bytes passed to write(2) by this process during our blocks "
                "(/proc/self/io wchar): entries, seals and the checkpoint's snapshot.",
            )
        )


def fig_commit(table: Table, work: Path, n: int, million: bool) -> None:
    sizes = [n] + ([1_000_000] if million and n < 1_000_000 else [])
    table.section(
        "6. ONE add_record outside a batch, local disk, default CheckpointPolicy "
        "(checkpoints included)"
    )
    cycles: list[Cycle] = []
    for tag, size in enumerate(sizes):
        began = time.perf_counter()
        manifest = local_manifest(work, size)
        built = time.perf_counter() - began
        inputs = iter(fresh_inputs(20_000, tag=10 + tag))
        c = commit_cycle(manifest, work / f"primitive-{size}", inputs)
        whole = one_compact(manifest)
        report_cycle(table, c, whole)
        cycles.append(c)
        if size >= 1_000_000:
            table.add(Row(f"  (building and loading the @{label(size)} manifest took)", ms(built)))
        del manifest
        gc.collect()
    if len(cycles) > 1:
        small, big = cycles[0], cycles[-1]
        table.add(
            Row(
                f"average @{label(big.records)} vs @{label(small.records)}",
                ms(big.avg),
                ms(small.avg),
                big.avg / small.avg,
                1.5,
                note="Both normalised by their own primitive: "
                f"{(big.avg / big.prim_avg) / (small.avg / small.prim_avg):.2f}.",
            )
        )
