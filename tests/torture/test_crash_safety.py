"""A writer is SIGKILLed at random moments, in commits and in checkpoints; what it
reported as committed must survive.

The writer (``python -m torture._writer``) adds records one at a time and prints each
checksum right after ``add_record`` returned. Its checkpoint policy, set the way users
set it (``ETL_MANIFESTS_CHECKPOINT``), folds the log every 5 commits in a background
thread and deletes folded entries at once (retention 0), so a kill lands in a commit, in
a checkpoint (sealing, listing, folding, writing the snapshot) or in the deletion of
folded entries. The parent kills it with SIGKILL after a random delay: on even kills from
the writer's start, on odd ones from the moment the writer announces that a checkpoint
begins (so that kills land inside checkpoints on slow stores too). Then it checks:

* a fresh reader (snapshot + log) holds every checksum the writer reported, and exactly
  the records ``0..n-1`` (one writer, sequential adds: a gap would be a committed record
  that got lost), one commit per record;
* the snapshot alone parses with ``json.load``, is a complete manifest of a log
  position (again ``0..k-1``, ``k <= n``);
* ``compact()`` then works and the JSON file alone holds all ``n`` records. (On local
  disk it runs on a copy, so that the restarted writer meets the interrupted checkpoint
  itself; on S3 it runs in place after every other kill, for the same reason.)

The writer is restarted after each kill and continues the sequence. At the end, staged
leftovers of killed writes are removed by ``cleanup_staged`` and a clean commit leaves
none behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import checksum
from etl_manifests import CheckpointPolicy
from etl_manifests.document import decode
from etl_manifests.storage import is_staging_key, staging_key
from etl_manifests.testing import S3Server
from torture._support import KEY, LOG_PREFIX, Target, plain_json, start_worker

pytestmark = pytest.mark.torture

SEED = int(os.environ.get("TORTURE_SEED", "20240611"))
#: Checkpoint every 5 commits, delete folded entries at once: kills hit every step.
OFTEN: dict[str, Any] = {"every": 5, "size_ratio": 0, "retention": 0}


def _sequence(count: int) -> set[str]:
    return {checksum(i) for i in range(count)}


def _interrupted_checkpoint(target: Target, snapshot_epoch: int) -> bool:
    """Whether storage shows a checkpoint cut short: an epoch sealed but not folded into
    the snapshot, or a folded epoch not yet marked folded and emptied."""
    listing = [info.key for info in target.backend().list(LOG_PREFIX)]
    for name in listing:
        if not (name.startswith(LOG_PREFIX) and name.endswith(".seal")):
            continue
        epoch = int(name[len(LOG_PREFIX) : -len(".seal")])
        if epoch > snapshot_epoch:
            return True
        raw = target.raw_read(name)
        if raw is not None and json.loads(raw)["state"] != "folded":
            return True
        folder = f"{LOG_PREFIX}{epoch:010d}/"
        if any(n.startswith(folder) and n.endswith(".json") for n in listing):
            return True
    return False


def _compact_and_check(target: Target, count: int, kill: int) -> None:
    """``compact()`` works after the kill and leaves the whole sequence in the JSON file."""
    if target.kind != "local" and kill % 2:
        return
    if target.kind == "local":
        copy = Target("local", f"{target.root}-copy")
        shutil.rmtree(copy.root, ignore_errors=True)
        # Lock files hold no state (and one is left per entry ever written: thousands).
        shutil.copytree(target.root, copy.root, ignore=shutil.ignore_patterns(".*.lock"))
    else:
        copy = target
    doc = copy.compacted_json(checkpoint=CheckpointPolicy(**OFTEN))
    stored = set(doc["records"])
    # (On S3 a request the killed writer had already sent may land a moment later.)
    assert stored == _sequence(len(stored)), f"kill #{kill}: gap after compact()"
    assert len(stored) >= count, f"kill #{kill}: compact() lost records"
    if target.kind == "local":
        assert stored == _sequence(count), f"kill #{kill}: compact() lost or added records"
        assert doc["metadata"]["revision"] == count
        shutil.rmtree(copy.root)


def _kill_loop(target: Target, kills: int, max_delay: float) -> None:
    rng = random.Random(SEED)
    began = time.perf_counter()
    next_n = 0
    reported_total: set[str] = set()
    kills_with_new_records = 0
    kills_in_checkpoints = 0
    max_staged_seen = 0
    for kill in range(kills):
        proc = start_worker(
            {
                "root": target.root,
                "storage_options": target.storage_options,
                "start": next_n,
                "count": None,
                "retry": [50, 0.001, 0.05],
                "announce_checkpoints": True,
            },
            checkpoint=OFTEN,
        )
        watchdog = threading.Timer(120, proc.kill)  # a writer that never checkpoints
        watchdog.start()
        try:
            assert proc.stdout is not None
            ready = proc.stdout.readline().strip()
            assert ready == "ready", proc.communicate(timeout=10)[1][-3000:]
            seen: list[str] = []
            if kill % 2:  # wait for a checkpoint to begin, then kill inside it
                while (line := proc.stdout.readline()) and line.strip() != "checkpoint":
                    seen.append(line)
                time.sleep(rng.uniform(0, max_delay / 4))
            else:
                time.sleep(rng.uniform(0, max_delay))
            os.kill(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
            out = "".join(seen) + out
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"writer died on its own:\n{err[-3000:]}"
        reported = set(out.split()) - {"checkpoint"}
        reported_total |= reported

        raw = target.raw_read()
        if raw is None:  # killed before the very first commit created the snapshot
            assert not reported_total, f"kill #{kill}: manifest gone after reported adds"
            continue
        # The snapshot alone: plain JSON, the library's decoder, a prefix of the sequence.
        doc = plain_json(raw)
        in_snapshot = set(decode(raw, KEY).records)
        assert set(doc["records"]) == in_snapshot
        assert in_snapshot == _sequence(len(in_snapshot)), f"kill #{kill}: gap in snapshot"
        if target.kind == "local":
            assert doc["metadata"]["revision"] == len(in_snapshot)
        if _interrupted_checkpoint(target, doc["metadata"]["log_epoch"]):
            kills_in_checkpoints += 1
        # A fresh reader: snapshot + log.
        fresh = target.manifest()
        stored = set(fresh.records)
        assert in_snapshot <= stored
        missing = reported_total - stored
        assert not missing, f"kill #{kill}: {len(missing)} reported records lost"
        count = len(stored)
        assert stored == _sequence(count), f"kill #{kill}: gap"
        revision = fresh.metadata.revision
        if target.kind == "local":
            assert revision == count  # one commit per record, none lost, none doubled
        else:  # a late-landing commit can make the restarted writer re-add one record
            assert revision >= count
        _compact_and_check(target, count, kill)
        if count > next_n:
            kills_with_new_records += 1
        next_n = count
        max_staged_seen = max(max_staged_seen, len(_staged_objects(target)))

    # The kills did land in checkpoints, not only in commits.
    assert kills_in_checkpoints > 0
    # Housekeeping: staged leftovers of killed writes go, and only they.
    manifest = target.manifest()
    leftovers = _staged_objects(target)
    removed = manifest.cleanup_staged(min_age=timedelta(0))
    assert removed == len(leftovers)
    assert _staged_objects(target) == []
    assert len(target.manifest()) == next_n  # cleanup never touches the manifest
    # A successful commit leaves nothing staged behind.
    manifest.add_record(_record(next_n))
    manifest.add_record(_record(next_n + 1))
    assert _staged_objects(target) == []
    assert target.stored() == _sequence(next_n + 2)
    assert set(target.compacted_json()["records"]) == _sequence(next_n + 2)
    print(
        f"\n[crash-safety/{target.kind}] kills={kills} (seed {SEED}) "
        f"checkpoint policy {json.dumps(OFTEN)}: "
        f"kills_after_new_commits={kills_with_new_records} "
        f"kills_leaving_a_checkpoint_unfinished={kills_in_checkpoints} "
        f"records_committed={next_n} records_reported_before_kills={len(reported_total)} "
        f"records_lost=0 compact_after_every_kill=ok "
        f"staged_leftovers_removed={removed} (max seen at once {max_staged_seen}) "
        f"seconds={time.perf_counter() - began:.1f}"
    )


def _staged_objects(target: Target) -> list[str]:
    """Staged objects of the manifest (snapshot and log), as the backend lists them."""
    return [
        i.key
        for i in target.backend().list("")
        if is_staging_key(i.key) and i.key.startswith((KEY, LOG_PREFIX))
    ]


def _record(n: int) -> dict[str, object]:
    from conftest import record

    return record(n)


def test_local_disk_100_kills(tmp_path: Path) -> None:
    _kill_loop(Target("local", str(tmp_path / "manifests")), kills=100, max_delay=0.15)


@pytest.mark.s3
def test_s3_20_kills(s3_server: S3Server, s3_bucket: str) -> None:
    options = {**s3_server.storage_options, "etl_manifests_retry_base": 0.01}
    target = Target("s3", f"s3://{s3_bucket}/c-{uuid.uuid4().hex[:8]}", options)
    target.endpoint_url = s3_server.endpoint_url
    _kill_loop(target, kills=20, max_delay=0.6)


def test_local_cleanup_leaves_no_files_named_after_staged_leftovers(tmp_path: Path) -> None:
    target = Target("local", str(tmp_path / "manifests"))
    manifest = target.manifest()
    manifest.add_record(_record(1))
    # What a writer killed between writing its staged file and renaming it leaves
    # behind: beside the snapshot, and beside a log entry.
    (entry,) = target.entries()
    for _ in range(3):
        Path(target.root, staging_key(KEY)).write_bytes(b'{"metadata": {"proc')
        Path(target.root, staging_key(entry)).write_bytes(b'{"format": 1, "man')
    assert len(target.staged()) == 6
    assert manifest.cleanup_staged(min_age=timedelta(0)) == 6
    assert _staged_objects(target) == []
    # Nothing in the folder may still be named after a removed staged file.
    assert target.staged() == [], target.listing()
    assert target.stored() == {checksum(1)}
