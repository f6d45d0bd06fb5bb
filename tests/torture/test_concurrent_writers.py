"""Many OS processes add records to one manifest at once; not one record may be lost.

Each of ``PROCESSES`` worker processes opens its own ``ManifestManager`` and adds
``RECORDS_EACH`` distinct records one ``add_record`` at a time, all starting together.
Every ``add_record`` is one successful commit, so the final revision must equal the total
number of adds; every conflict a worker met was resolved by reload + merge + retry.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import checksum
from etl_manifests.document import decode
from harness.fixtures import GcsServer, S3Server
from torture._support import FAST_RETRIES, KEY, Target, plain_json, start_worker

pytestmark = pytest.mark.torture

PROCESSES = 8
RECORDS_EACH = 200
RETRY = [200, 0.005, 0.25]  # max_attempts, base_delay, max_delay
WORKER_TIMEOUT = 240.0


def _race(target: Target) -> None:
    began = time.perf_counter()
    workers = [
        start_worker(
            {
                "root": target.root,
                "storage_options": target.storage_options,
                "start": i * 100_000,
                "count": RECORDS_EACH,
                "retry": RETRY,
                "wait_for_go": True,
            }
        )
        for i in range(PROCESSES)
    ]
    try:
        for proc in workers:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
        started = time.perf_counter()
        for proc in workers:  # release them all at once
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=WORKER_TIMEOUT) for proc in workers]
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.perf_counter() - started
    stats: list[dict[str, Any]] = []
    reported: set[str] = set()
    for proc, (out, err) in zip(workers, outputs, strict=True):
        assert proc.returncode == 0, f"worker failed:\n{err[-3000:]}"
        lines = out.splitlines()
        assert lines[-1].startswith("stats "), lines[-3:]
        stats.append(json.loads(lines[-1][len("stats ") :]))
        reported.update(lines[:-1])

    expected = {checksum(i * 100_000 + j) for i in range(PROCESSES) for j in range(RECORDS_EACH)}
    total = PROCESSES * RECORDS_EACH
    assert reported == expected

    # Through the library...
    manifest = target.manifest()
    assert len(manifest) == total
    assert set(manifest.records) == expected
    assert manifest.metadata.revision == total  # one successful commit per add_record
    # ... and through plain JSON, bypassing the library.
    raw = target.raw_read()
    assert raw is not None
    doc = plain_json(raw)
    assert len(doc["records"]) == total
    assert set(doc["records"]) == expected
    assert doc["metadata"]["revision"] == total
    assert doc["metadata"]["process"] == "extractor"
    assert set(decode(raw, KEY).records) == expected
    # No staged leftovers after successful saves.
    assert target.staged() == []

    writes = sum(s["writes"] for s in stats)
    conflicts = sum(s["conflicts"] for s in stats)
    exhausted = sum(s["retry_budgets_exhausted"] for s in stats)
    streak = max(s["max_conflict_streak"] for s in stats)
    assert writes == total + conflicts
    print(
        f"\n[concurrent-writers/{target.kind}] processes={PROCESSES} "
        f"records={total} ({RECORDS_EACH} each) seconds={elapsed:.1f} "
        f"(incl. start-up {time.perf_counter() - began:.1f}) "
        f"writes={writes} conflicts_resolved_by_merge={conflicts} "
        f"longest_conflict_streak={streak} retry_budgets_exhausted={exhausted} "
        f"final_revision={manifest.metadata.revision} records_lost={len(expected) - len(manifest)}"
    )


def test_local_disk(tmp_path: Path) -> None:
    _race(Target("local", str(tmp_path / "manifests")))


@pytest.mark.s3
def test_s3(s3_server: S3Server, s3_bucket: str) -> None:
    options = {**s3_server.storage_options, **FAST_RETRIES}
    target = Target("s3", f"s3://{s3_bucket}/m-{uuid.uuid4().hex[:8]}", options)
    target.endpoint_url = s3_server.endpoint_url
    _race(target)


@pytest.mark.gcs
def test_gcs(gcs_server: GcsServer, gcs_bucket: str) -> None:
    options = {**gcs_server.storage_options, **FAST_RETRIES}
    target = Target("gcs", f"gs://{gcs_bucket}/m-{uuid.uuid4().hex[:8]}", options)
    target.endpoint_url = gcs_server.endpoint_url
    _race(target)
