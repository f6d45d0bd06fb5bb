"""Many OS processes commit to one manifest at once; not one record may be lost.

Each of ``PROCESSES`` worker processes opens its own ``ManifestManager`` (default
checkpoint policy) and adds ``RECORDS_EACH`` distinct records one ``add_record`` at a
time, all starting together. Every ``add_record`` is one commit, one small log entry, so
a fresh reader must hold every record and count exactly one commit per add; no writer may
exhaust its retry budget.

Checkpoints run while the writers commit, in two ways:

* a maintenance job (a thread of the test process) calls ``compact()`` over and over, so
  epochs are sealed under the writers' feet and commits that land in a closed epoch are
  committed again in the next one (orphans);
* on local disk, the log is first filled with ``SEEDED`` commits, so that each writer's
  own view crosses the default policy's threshold (1,000 commits) part-way through and
  all sixteen fold the log in their background threads at about the same time.

and, with neither, the writers' own policy alone: a writer counts the commits it has
seen and, every tenth of the threshold of its own commits, lists the log to count
everyone's, so sixteen writers of 200 commits each on an empty log still checkpoint.

On S3 (moto) and GCS (emulator) the emulator, in the test process, is the bottleneck on
2 cores: 16 x 200 takes about three minutes each, so by default each writer there makes
``OBJECT_STORE_RECORDS_EACH`` = 50 commits; ``TORTURE_FULL=1`` runs the full 16 x 200
(CI does, as a step of its own after the test suite).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import checksum, record
from etl_manifests import CheckpointPolicy
from etl_manifests.document import decode
from etl_manifests.testing import GcsServer, S3Server
from torture._support import FAST_RETRIES, KEY, Target, plain_json, start_worker

pytestmark = pytest.mark.torture

PROCESSES = 16
RECORDS_EACH = 200
OBJECT_STORE_RECORDS_EACH = RECORDS_EACH if os.environ.get("TORTURE_FULL") else 50
RETRY = [50, 0.01, 1.0]  # the default RetryPolicy: contention must never exhaust it
WORKER_TIMEOUT = 600.0
SEEDED = 900  # commits in the log before the race, for the writers' own checkpoints
SEED_BASE = 10_000_000  # checksums of the seeded records
COMPACT_EVERY = 0.25  # seconds between the maintenance job's compactions


def _seed_log(target: Target, commits: int) -> set[str]:
    """``commits`` single-record commits, by 8 writers at once, no checkpoints."""
    manual = CheckpointPolicy(every=None)
    writers = [target.manifest(checkpoint=manual) for _ in range(8)]

    def add(n: int) -> None:
        writers[n % len(writers)].add_record(record(SEED_BASE + n))

    with ThreadPoolExecutor(len(writers)) as pool:
        list(pool.map(add, range(commits)))
    return {checksum(SEED_BASE + n) for n in range(commits)}


class _Compactor(threading.Thread):
    """A maintenance job: ``compact()`` every ``COMPACT_EVERY`` seconds until stopped."""

    def __init__(self, target: Target) -> None:
        super().__init__(name="compactor", daemon=True)
        self.manifest = target.manifest()
        self.stop = threading.Event()
        self.compactions = 0
        self.folded = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.wait(COMPACT_EVERY):
                folded = self.manifest.compact()
                self.compactions += 1
                self.folded += folded
        except BaseException as exc:  # reported by the test
            self.error = exc


def _race(
    target: Target, *, each: int = RECORDS_EACH, seeded: int = 0, compactor: bool = True
) -> int:
    """Run the race and check it; returns the number of the writers' own checkpoints."""
    began = time.perf_counter()
    expected = _seed_log(target, seeded) if seeded else set()
    workers = [
        start_worker(
            {
                "root": target.root,
                "storage_options": target.storage_options,
                "start": i * 100_000,
                "count": each,
                "retry": RETRY,
                "wait_for_go": True,
            }
        )
        for i in range(PROCESSES)
    ]
    job = _Compactor(target) if compactor else None
    try:
        for proc in workers:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.communicate()[1][-3000:]
        started = time.perf_counter()
        for proc in workers:  # release them all at once
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        if job is not None:
            job.start()
        outputs = [proc.communicate(timeout=WORKER_TIMEOUT) for proc in workers]
        elapsed = time.perf_counter() - started
    finally:
        if job is not None:
            job.stop.set()
            job.join()
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if job is not None:
        assert job.error is None, f"compact() failed while writers committed: {job.error!r}"
    stats: list[dict[str, Any]] = []
    reported: set[str] = set()
    for proc, (out, err) in zip(workers, outputs, strict=True):
        assert proc.returncode == 0, f"worker failed:\n{err[-3000:]}"
        lines = out.splitlines()
        assert lines[-1].startswith("stats "), lines[-3:]
        stats.append(json.loads(lines[-1][len("stats ") :]))
        reported.update(lines[:-1])

    ours = {checksum(i * 100_000 + j) for i in range(PROCESSES) for j in range(each)}
    assert reported == ours
    expected |= ours
    total = len(expected)  # one commit per record

    # A fresh reader (snapshot + log) holds every record, one commit per add_record.
    manifest = target.manifest()
    assert set(manifest.records) == expected, f"lost: {len(expected - set(manifest.records))}"
    assert len(manifest) == total
    assert manifest.metadata.revision == total
    # The snapshot lags the log but is always a complete, valid manifest of a log
    # position: plain JSON, only records that were committed, one commit per record.
    raw = target.raw_read()
    assert raw is not None
    lagging = plain_json(raw)
    assert set(lagging["records"]) <= expected
    assert lagging["metadata"]["revision"] == len(lagging["records"])
    # After compact() the JSON file alone holds everything.
    manifest.compact()
    raw = target.raw_read()
    assert raw is not None
    doc = plain_json(raw)
    assert set(doc["records"]) == expected
    assert doc["metadata"]["revision"] == total
    assert doc["metadata"]["process"] == "extractor"
    assert set(decode(raw, KEY).records) == expected
    # No staged leftovers after successful commits and checkpoints.
    assert target.staged() == []

    def total_of(name: str) -> int:
        return sum(s[name] for s in stats)

    exhausted = total_of("retry_budgets_exhausted")
    assert exhausted == 0
    entries = total_of("entries_written")
    orphans = total_of("orphans_recommitted")
    # One commit (one commit id) per add; orphans were landed once more, in a later epoch.
    assert total_of("commits") == len(ours)
    assert entries == len(ours) + orphans
    warnings = [w for s in stats for w in s["warnings"]]
    assert warnings == [], warnings[:5]
    print(
        f"\n[concurrent-writers/{target.kind}] processes={PROCESSES} x {each} "
        f"single-record commits, default checkpoint policy"
        f"{f', log seeded with {seeded} commits' if seeded else ''}"
        f"{f', compact() every {COMPACT_EVERY}s by a maintenance job' if job else ''}: "
        f"seconds={elapsed:.1f} commits_per_s={len(ours) / elapsed:.0f} "
        f"(incl. start-up and seeding {time.perf_counter() - began:.1f}s) "
        f"entries_written={entries} orphans_recommitted={orphans} "
        f"snapshot_reads={total_of('snapshot_reads')} "
        f"writer_checkpoints={total_of('checkpoints')} "
        f"(lost races {total_of('checkpoint_conflicts')}) "
        f"seals_written={total_of('seal_writes')} "
        f"compactions={job.compactions if job else 0} "
        f"requests={total_of('requests')} "
        f"retry_budgets_exhausted={exhausted} "
        f"final_revision={manifest.metadata.revision} "
        f"records_lost={len(expected - set(manifest.records))}"
    )
    return total_of("checkpoints")


def test_local_disk(tmp_path: Path) -> None:
    _race(Target("local", str(tmp_path / "manifests")))


def test_local_disk_writers_own_policy_checkpoints(tmp_path: Path) -> None:
    # 3,200 commits, none seen by any one writer beyond its own 200: only counting
    # everyone's commits (the policy's look at the log) makes a checkpoint due.
    target = Target("local", str(tmp_path / "manifests"))
    assert _race(target, compactor=False) > 0


def test_local_disk_writers_checkpoint_at_once(tmp_path: Path) -> None:
    _race(Target("local", str(tmp_path / "manifests")), seeded=SEEDED, compactor=False)


@pytest.mark.s3
def test_s3(s3_server: S3Server, s3_bucket: str) -> None:
    options = {**s3_server.storage_options, **FAST_RETRIES}
    target = Target("s3", f"s3://{s3_bucket}/m-{uuid.uuid4().hex[:8]}", options)
    target.endpoint_url = s3_server.endpoint_url
    _race(target, each=OBJECT_STORE_RECORDS_EACH)


@pytest.mark.gcs
def test_gcs(gcs_server: GcsServer, gcs_bucket: str) -> None:
    options = {**gcs_server.storage_options, **FAST_RETRIES}
    target = Target("gcs", f"gs://{gcs_bucket}/m-{uuid.uuid4().hex[:8]}", options)
    target.endpoint_url = gcs_server.endpoint_url
    _race(target, each=OBJECT_STORE_RECORDS_EACH)
