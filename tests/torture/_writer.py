"""Worker process of the torture tests: adds records one ``add_record`` at a time.

Run as ``python -m torture._writer '<json args>'``. Arguments:

``root``, ``storage_options``: where the manifest lives (opened via ``ManifestManager``).
``start``, ``count``: add ``record(start)`` .. ``record(start + count - 1)``
    (``count`` ``null``: keep going until killed).
``retry``: ``[max_attempts, base_delay, max_delay]`` for the manifest's RetryPolicy.
``wait_for_go``: print ``ready`` and wait for a line on stdin before adding.
``announce_checkpoints``: print ``checkpoint`` just before a checkpoint seals an epoch
    (its first write), so the parent can kill the writer inside a checkpoint.

The checkpoint policy is the manager's: ``ETL_MANIFESTS_CHECKPOINT`` (JSON) if the parent
sets it, else the default one, with checkpoints in a background thread.

Prints ``ready``, then each record's checksum right after its ``add_record`` returned
(flushed), and finally (once the background checkpoints it started are done) one
``stats {json}`` line with what the commit protocol did and the timing.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import Any

from etl_manifests import ManifestManager, RetryPolicy
from etl_manifests.errors import ConflictError, SaveRetriesExhaustedError
from etl_manifests.storage import ABSENT, Blob, Expect, ObjectInfo, StorageBackend

SNAPSHOT = "extractor_v{version}.json"
# A log entry: <stem>.log/<epoch>/<writer>-<seq>.json (staged copies do not end in .json).
_ENTRY = re.compile(r"\.log/[0-9]{10}/[0-9a-f]{16}-[0-9]+\.json$")
_SEAL = re.compile(r"\.log/[0-9]{10}\.seal$")


_print_lock = threading.Lock()


def say(line: str) -> None:
    """Print one whole line now (the checkpoint thread prints too)."""
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def checksum(n: int) -> str:
    # Same as conftest.checksum; not imported from there to keep worker start-up fast
    # (conftest imports pytest), which matters when the writer is restarted 100 times.
    return f"{n:064x}"


def record(n: int) -> dict[str, Any]:
    return {
        "checksum": checksum(n),
        "filename": f"file_{n}.gz",
        "filepath": f"/data/downloads/file_{n}.gz",
        "etag": f"etag-{n}",
        "content_length_bytes": n,
    }


class CountingBackend(StorageBackend):
    """Delegates to a real backend and counts what the commit protocol asked of it.

    ``orphans`` counts entries written again under a commit id this process had
    already written: an entry created after its epoch was listed is an orphan, which
    ``CommitLog.land`` deletes and commits again (same id, same changes) in the next
    epoch. ``commits`` counts the distinct commit ids written.
    """

    def __init__(self, inner: StorageBackend, snapshot_key: str, announce: bool = False) -> None:
        self.inner = inner
        self.announce = announce
        self.root = inner.root
        self.snapshot_key = snapshot_key
        self._lock = threading.Lock()  # background checkpoints count from another thread
        self.requests = 0
        self.entries_written = 0
        self.orphans = 0
        self.snapshot_reads = 0
        self.checkpoints = 0  # snapshot replaced: a checkpoint of this writer landed
        self.checkpoint_conflicts = 0  # ... or lost to another one (or to the creation)
        self.seal_writes = 0
        self.lists = 0
        self._commit_ids: set[str] = set()

    def _count(self, **what: int) -> None:
        with self._lock:
            self.requests += 1
            for name, n in what.items():
                setattr(self, name, getattr(self, name) + n)

    def read(self, key: str) -> Blob:
        self._count(snapshot_reads=key == self.snapshot_key)
        return self.inner.read(key)

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        if self.announce and expect is ABSENT and _SEAL.search(key):
            say("checkpoint")
        self._count()
        try:
            version = self.inner.write(key, data, expect=expect)
        except ConflictError:
            self._count(checkpoint_conflicts=key == self.snapshot_key and expect is not ABSENT)
            raise
        if _ENTRY.search(key):
            commit = json.loads(data)["commit"]
            with self._lock:
                again = commit in self._commit_ids
                self._commit_ids.add(commit)
            self._count(entries_written=1, orphans=again)
        elif _SEAL.search(key):
            self._count(seal_writes=1)
        elif key == self.snapshot_key and expect is not ABSENT:
            self._count(checkpoints=1)
        return version

    @property
    def commits(self) -> int:
        return len(self._commit_ids)

    def delete(self, key: str) -> None:
        self._count()
        self.inner.delete(key)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        self._count(lists=1)
        return self.inner.list(prefix)

    def url(self, key: str) -> str:
        return self.inner.url(key)

    def close(self) -> None:
        self.inner.close()


class _Warnings(logging.Handler):
    """Counts warnings, e.g. a background checkpoint that failed (it is retried later)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main(raw: str) -> None:
    args: dict[str, Any] = json.loads(raw)
    max_attempts, base_delay, max_delay = args.get("retry", [200, 0.005, 0.25])
    version = args.get("etl_version", "1.0.0")
    warnings = _Warnings()
    logging.getLogger("etl_manifests").addHandler(warnings)
    manager = ManifestManager(
        args["root"],
        version,
        storage_options=args.get("storage_options", {}),
        retry=RetryPolicy(max_attempts, base_delay, max_delay),
    )
    # Count every request the manifest makes, its first load included.
    counting = CountingBackend(
        manager.backend,
        SNAPSHOT.format(version=version),
        announce=bool(args.get("announce_checkpoints")),
    )
    manager._backend = counting
    manifest = manager.extractor
    say("ready")
    if args.get("wait_for_go"):
        sys.stdin.readline()
    began = time.perf_counter()
    start: int = args["start"]
    count: int | None = args.get("count")
    n = start
    exhausted = 0
    while count is None or n < start + count:
        try:
            manifest.add_record(record(n))
        except SaveRetriesExhaustedError:
            # The documented remedy: the record is still in memory; save() again.
            exhausted += 1
            if exhausted > 20:
                raise
            assert manifest.dirty
            while True:
                try:
                    manifest.save()
                    break
                except SaveRetriesExhaustedError:
                    exhausted += 1
                    if exhausted > 20:
                        raise
        say(checksum(n))
        n += 1
    committed = time.perf_counter() - began
    # Let a background checkpoint this writer started finish, so its requests count.
    for thread in threading.enumerate():
        if thread.name.startswith("checkpoint "):
            thread.join()
    stats = {
        "adds": n - start,
        "requests": counting.requests,
        "commits": counting.commits,
        "entries_written": counting.entries_written,
        "orphans_recommitted": counting.orphans,
        "snapshot_reads": counting.snapshot_reads,
        "checkpoints": counting.checkpoints,
        "checkpoint_conflicts": counting.checkpoint_conflicts,
        "seal_writes": counting.seal_writes,
        "lists": counting.lists,
        "retry_budgets_exhausted": exhausted,
        "warnings": warnings.messages,
        "seconds": committed,
    }
    say("stats " + json.dumps(stats))
    ManifestManager.reset()


if __name__ == "__main__":
    main(sys.argv[1])
