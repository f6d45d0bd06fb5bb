"""A writer is SIGKILLed at random moments; what it reported as saved must survive.

The writer (``python -m torture._writer``) adds records one at a time and prints each
checksum right after ``add_record`` returned. The parent kills it with SIGKILL after a
random delay, then checks the stored manifest: it parses (library and plain JSON),
validates, holds every checksum the writer reported, and holds exactly the records
``0..n-1`` (one writer, sequential adds: a gap would be a committed record that got
lost). The writer is restarted after each kill and continues the sequence. At the end,
staged leftovers of killed saves are removed by ``cleanup_staged`` and a clean save leaves
none behind.
"""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import checksum
from etl_manifests.document import decode
from etl_manifests.storage import is_staging_key, staging_key
from harness.fixtures import S3Server
from torture._support import KEY, Target, plain_json, start_worker

pytestmark = pytest.mark.torture

SEED = int(os.environ.get("TORTURE_SEED", "20240611"))


def _kill_loop(target: Target, kills: int, max_delay: float) -> None:
    rng = random.Random(SEED)
    began = time.perf_counter()
    next_n = 0
    reported_total: set[str] = set()
    kills_with_new_records = 0
    max_staged_seen = 0
    for kill in range(kills):
        proc = start_worker(
            {
                "root": target.root,
                "storage_options": target.storage_options,
                "start": next_n,
                "count": None,
                "retry": [50, 0.001, 0.05],
            }
        )
        try:
            assert proc.stdout is not None
            ready = proc.stdout.readline().strip()
            assert ready == "ready", proc.communicate(timeout=10)[1][-3000:]
            time.sleep(rng.uniform(0, max_delay))
            os.kill(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"writer died on its own:\n{err[-3000:]}"
        reported = set(out.split())
        reported_total |= reported

        raw = target.raw_read()
        if raw is None:  # killed before the very first commit landed
            assert not reported_total, f"kill #{kill}: manifest gone after reported adds"
            continue
        # One snapshot, checked with plain JSON and with the library's own decoder. (On an
        # object store a request the killed writer had already sent may still land a
        # moment later, so a second read can legitimately be newer than this one.)
        doc = plain_json(raw)
        stored = set(decode(raw, KEY).records)
        assert set(doc["records"]) == stored
        missing = reported_total - stored
        assert not missing, f"kill #{kill}: {len(missing)} reported records lost"
        count = len(stored)
        assert stored == {checksum(i) for i in range(count)}, f"kill #{kill}: gap"
        revision = doc["metadata"]["revision"]
        if target.kind == "local":
            assert revision == count  # one commit per record, none lost
        else:  # a late-landing commit can make the restarted writer re-add one record
            assert revision >= count
        assert stored <= set(target.manifest().records)  # loads and validates
        if count > next_n:
            kills_with_new_records += 1
        next_n = count
        max_staged_seen = max(max_staged_seen, len(_staged_objects(target)))

    # Housekeeping: staged leftovers of killed saves go, and only they.
    manifest = target.manifest()
    leftovers = _staged_objects(target)
    removed = manifest.cleanup_staged(min_age=timedelta(0))
    assert removed == len(leftovers)
    assert _staged_objects(target) == []
    assert len(target.manifest()) == next_n  # cleanup never touches the manifest
    # A successful save leaves nothing staged behind.
    manifest.add_record(_record(next_n))
    manifest.add_record(_record(next_n + 1))
    assert _staged_objects(target) == []
    assert len(target.manifest()) == next_n + 2
    print(
        f"\n[crash-safety/{target.kind}] kills={kills} (seed {SEED}) "
        f"kills_after_new_commits={kills_with_new_records} records_committed={next_n} "
        f"records_reported_before_kills={len(reported_total)} records_lost=0 "
        f"staged_leftovers_removed={removed} (max seen at once {max_staged_seen}) "
        f"seconds={time.perf_counter() - began:.1f}"
    )


def _staged_objects(target: Target) -> list[str]:
    """Staged objects of the manifest, as the backend lists them."""
    return [i.key for i in target.backend().list("") if is_staging_key(i.key, of=KEY)]


def _record(n: int) -> dict[str, object]:
    from conftest import record

    return record(n)


def test_local_disk_100_kills(tmp_path: Path) -> None:
    _kill_loop(Target("local", str(tmp_path / "manifests")), kills=100, max_delay=0.08)


@pytest.mark.s3
def test_s3_20_kills(s3_server: S3Server, s3_bucket: str) -> None:
    options = {**s3_server.storage_options, "etl_manifests_retry_base": 0.01}
    target = Target("s3", f"s3://{s3_bucket}/c-{uuid.uuid4().hex[:8]}", options)
    target.endpoint_url = s3_server.endpoint_url
    _kill_loop(target, kills=20, max_delay=0.4)


def test_local_cleanup_leaves_no_files_named_after_staged_leftovers(tmp_path: Path) -> None:
    target = Target("local", str(tmp_path / "manifests"))
    manifest = target.manifest()
    manifest.add_record(_record(1))
    # What a writer killed between writing its staged file and renaming it leaves behind.
    for _ in range(3):
        Path(target.root, staging_key(KEY)).write_bytes(b'{"metadata": {"proc')
    assert len(target.staged()) == 3
    assert manifest.cleanup_staged(min_age=timedelta(0)) == 3
    assert _staged_objects(target) == []
    # Nothing in the folder may still be named after a removed staged file.
    assert target.staged() == [], target.listing()
