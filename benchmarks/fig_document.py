"""Figures 1-4: the whole-manifest operations, against plain ``orjson`` on the same data.

1. load: ``Manifest.load()`` of a snapshot with an empty log (read, parse, validate every
   record) vs reading the file + ``orjson.loads``.
2. compact: ``Manifest.compact()`` (a checkpoint: fold the log into a new snapshot, the
   one operation that still writes the whole document) vs ``orjson.dumps`` + write +
   fsync + ``os.replace``.
3. memory: extra memory while loading and after, vs the JSON file's size.
4. batch: N ``add_record`` in one ``batch()`` (one commit: one log entry holding the N
   records) vs validating the N inputs + one plain save; and what that entry costs the
   next reader until a checkpoint folds it.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path

from _common import Row, Table, alternated, mib, ms
from _data import (
    ETL_VERSION,
    PROCESS,
    Record,
    fresh_inputs,
    open_manifest,
    plain_document,
    plain_load,
    plain_save,
    write_snapshot,
)

from etl_manifests.backends.local import LocalBackend
from etl_manifests.model import Manifest
from etl_manifests.record import ManifestRecord


def fig_load_compact(table: Table, work: Path, n: int, rounds: int) -> Manifest:
    """Figures 1 and 2; returns the loaded manifest for the figures after them."""
    folder = work / "document"
    path = write_snapshot(folder, n)
    backend = LocalBackend(str(folder))
    size = path.stat().st_size

    table.section(f"1. load, {n:,} records, {mib(size)} JSON snapshot, empty log (local disk)")
    # A fresh Manifest per run: reloading a loaded one would also time freeing the old
    # records, which the baseline (result dropped after timing) does not pay.
    holder: list[Manifest] = []

    def setup() -> None:
        holder.clear()
        holder.append(open_manifest(backend, load=False))

    pair = alternated(rounds, lambda: holder[0].load(), lambda: plain_load(path), setup)
    holder.clear()
    table.add(
        Row(
            "Manifest.load()",
            ms(pair.ours_median),
            f"{ms(pair.base_median)} read+orjson.loads",
            pair.ratio,
            2.0,
            note=f"per-round ratios {pair.spread()}",
        )
    )

    manifest = open_manifest(backend)
    plain = plain_load(path)
    other = path.with_name("baseline.json")
    extra = iter(fresh_inputs(rounds, tag=0))

    table.section("2. compact (checkpoint: fold the log into a new snapshot), same manifest")
    pair = alternated(
        rounds,
        manifest.compact,
        lambda: plain_save(other, plain),
        # One commit to fold, untimed: a checkpoint with something to do.
        setup=lambda: manifest.add_record(next(extra)),
        base_setup=lambda: None,
    )
    table.add(
        Row(
            "Manifest.compact() (1 commit in the log)",
            ms(pair.ours_median),
            f"{ms(pair.base_median)} orjson.dumps+write+fsync+replace",
            pair.ratio,
            2.0,
            note=f"per-round ratios {pair.spread()}. compact() seals the log's epoch, "
            "lists it, folds it and writes the whole snapshot; the automatic checkpoints "
            "of figures 6-7 do the same in a background thread.",
        )
    )
    other.unlink(missing_ok=True)
    return manifest


def _traced(run: Callable[[], object]) -> tuple[int, int, object]:
    """(peak, retained) bytes allocated by ``run`` as seen by tracemalloc; and its result."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = run()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before, current - before, result


_RSS_SCRIPT = """
import gc, sys
from etl_manifests.backends.local import LocalBackend
from etl_manifests.model import Manifest

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no " + key)

def run(mode):
    if mode == "ours":
        return Manifest(sys.argv[2], sys.argv[3], LocalBackend(sys.argv[1]))
    import orjson
    with open(sys.argv[1] + "/" + sys.argv[5], "rb") as f:
        return orjson.loads(f.read())

gc.collect()
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM (the peak) to the current RSS
kept = run(sys.argv[4])
gc.collect()
print(status("VmHWM") - before, status("VmRSS") - before)
"""


def _rss(folder: Path, mode: str, key: str) -> tuple[int, int] | None:
    """(peak, retained) RSS growth of a load in a fresh interpreter (Linux only)."""
    if not Path("/proc/self/clear_refs").exists():
        return None
    args = [str(folder), PROCESS, ETL_VERSION, mode, key]
    try:
        out = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout.split()
    except (subprocess.SubprocessError, OSError):
        return None
    return int(out[0]), int(out[1])


def fig_memory(table: Table, work: Path, n: int) -> None:
    # A snapshot of its own: figure 2's compactions left a log (and seals) beside the other.
    folder = work / "memory"
    path = write_snapshot(folder, n)
    size = path.stat().st_size
    backend = LocalBackend(str(folder))
    table.section(f"3. extra memory of a load vs the JSON snapshot ({mib(size)})")
    peak, kept, loaded = _traced(lambda: open_manifest(backend))
    assert isinstance(loaded, Manifest)
    assert len(loaded) == n
    del loaded
    base_peak, base_kept, plain = _traced(lambda: plain_load(path))
    del plain
    gc.collect()
    table.add(
        Row(
            "peak during Manifest(...) (tracemalloc)",
            mib(peak),
            f"{mib(size)} file; orjson dicts {mib(base_peak)}",
            peak / size,
            3.0,
            note="orjson's tracemalloc peak includes the parse buffer it reserves up front "
            "(several times the input; mostly never touched, so RSS stays far lower).",
        )
    )
    table.add(
        Row(
            "retained after load (tracemalloc)",
            mib(kept),
            f"{mib(size)} file; orjson dicts {mib(base_kept)}",
            kept / size,
            3.0,
        )
    )
    ours_rss = _rss(path.parent, "ours", path.name)
    base_rss = _rss(path.parent, "plain", path.name)
    if ours_rss is not None and base_rss is not None:
        table.add(
            Row(
                "peak RSS growth, fresh process",
                mib(ours_rss[0]),
                f"{mib(size)} file; orjson dicts {mib(base_rss[0])}",
                ours_rss[0] / size,
                3.0,
                note="RSS also sees allocations made outside Python's allocator (the Rust "
                "side of pydantic-core and orjson), which tracemalloc does not.",
            )
        )
        table.add(
            Row(
                "retained RSS growth, fresh process",
                mib(ours_rss[1]),
                f"{mib(size)} file; orjson dicts {mib(base_rss[1])}",
                ours_rss[1] / size,
                3.0,
            )
        )


def fig_batch(table: Table, work: Path, inputs: list[Record], rounds: int) -> None:
    n = len(inputs)
    table.section(f"4. {n:,} records in one commit (one log entry, local disk)")
    holder: list[Manifest] = []
    plain_path = work / "batch-baseline.json"

    def setup() -> None:
        if holder:  # the previous run's folder: 2 x the data, no longer needed
            shutil.rmtree(holder[0].backend.root, ignore_errors=True)
        holder.clear()
        folder = work / f"batch-{uuid.uuid4().hex[:12]}"
        holder.append(open_manifest(LocalBackend(str(folder)), load=False))

    def batch() -> None:
        manifest = holder[0]
        with manifest.batch():
            for params in inputs:
                manifest.add_record(params)

    def baseline() -> None:
        for params in inputs:
            ManifestRecord.model_validate(params)
        plain_save(plain_path, plain_document(inputs))

    pair = alternated(rounds, batch, baseline, setup, base_setup=lambda: None)
    table.add(
        Row(
            "with manifest.batch(): add_record x N",
            ms(pair.ours_median),
            f"{ms(pair.base_median)} model_validate x N + plain save",
            pair.ratio,
            1.5,
            note=f"per-round ratios {pair.spread()}",
        )
    )
    pair = alternated(rounds, lambda: holder[0].add_records(inputs), baseline, setup, lambda: None)
    table.add(
        Row(
            "add_records(all N)",
            ms(pair.ours_median),
            f"{ms(pair.base_median)} model_validate x N + plain save",
            pair.ratio,
            1.5,
            note=f"per-round ratios {pair.spread()}",
        )
    )
    # The batch's folder now holds an empty snapshot and one entry of N records: what a
    # reader pays for that entry until a checkpoint folds it (informational).
    batch_backend = holder[0].backend
    holder.clear()
    snap_folder = work / "batch-snapshot"
    write_snapshot(snap_folder, n)
    snap_backend = LocalBackend(str(snap_folder))
    pair = alternated(
        rounds, lambda: open_manifest(batch_backend), lambda: open_manifest(snap_backend)
    )
    table.add(
        Row(
            "load: N records in one log entry",
            ms(pair.ours_median),
            f"{ms(pair.base_median)} load of the same N in a snapshot",
            pair.ratio,
            note="informational: an entry is validated like a snapshot and then merged "
            "record by record; a checkpoint (after `every` commits, or compact()) turns "
            "it into a snapshot load.",
        )
    )
    plain_path.unlink(missing_ok=True)
