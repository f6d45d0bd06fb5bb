"""Figure 7: a load with the longest log the default checkpoint policy lets build up.

The default :class:`~etl_manifests.CheckpointPolicy` checkpoints once the log holds
``max(every, size_ratio * records)`` commits (1,010 from 100k records), so a reader can
meet that many entries after the snapshot. The log is built by real single-record
commits (with automatic checkpoints off while building), then ``Manifest.load()`` of it
is timed against the load of the same records' snapshot with an empty log, in
alternated rounds. (The same on S3 and GCS is part of figure 9.)
"""

from __future__ import annotations

from pathlib import Path

from _common import Row, Table, alternated, ms
from _data import fresh_inputs, open_manifest, write_snapshot

from etl_manifests.backends.local import LocalBackend
from etl_manifests.policy import CheckpointPolicy
from etl_manifests.storage import StorageBackend


def longest_log(n: int, policy: CheckpointPolicy | None = None) -> int:
    """Single-record commits after a snapshot of ``n`` records when ``policy`` (default:
    the default policy) makes a checkpoint due: each commit adds a record, and the
    threshold grows with the records, so this is the least ``c`` with
    ``c >= threshold(n + c)``."""
    policy = policy or CheckpointPolicy()
    commits = policy.threshold(n)
    assert commits is not None, "automatic checkpoints are off"
    while commits < (policy.threshold(n + commits) or 0):
        commits += 1
    return commits


def fill_log(backend: StorageBackend, entries: int, tag: int) -> None:
    """Commit ``entries`` single-record commits to the manifest on ``backend``, with
    automatic checkpoints off (setup, untimed)."""
    manifest = open_manifest(backend, checkpoint=CheckpointPolicy(every=None))
    for params in fresh_inputs(entries, tag=tag):
        manifest.add_record(params)


def fig_log_load(table: Table, work: Path, n: int, rounds: int) -> None:
    entries = longest_log(n)
    table.section(f"7. load with {entries:,} log entries after a {n:,}-record snapshot")
    with_log = work / "log-load"
    alone = work / "log-load-snapshot"
    write_snapshot(with_log, n)
    write_snapshot(alone, n)
    fill_log(LocalBackend(str(with_log)), entries, tag=30)
    a, b = LocalBackend(str(with_log)), LocalBackend(str(alone))
    pair = alternated(rounds, lambda: open_manifest(a), lambda: open_manifest(b))
    table.add(
        Row(
            f"local disk: load, snapshot + {entries:,} entries",
            ms(pair.ours_median),
            f"{ms(pair.base_median)} load of the snapshot alone",
            pair.ratio,
            1.3,
            note=f"per-round ratios {pair.spread()}",
        )
    )
