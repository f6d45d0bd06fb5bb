"""Worker process of the torture tests: adds records one ``add_record`` at a time.

Run as ``python -m torture._writer '<json args>'``. Arguments:

``root``, ``storage_options``: where the manifest lives (opened via ``ManifestManager``).
``start``, ``count``: add ``record(start)`` .. ``record(start + count - 1)``
    (``count`` ``null``: keep going until killed).
``retry``: ``[max_attempts, base_delay, max_delay]`` for the manifest's RetryPolicy.
``wait_for_go``: print ``ready`` and wait for a line on stdin before adding.

Prints ``ready``, then each record's checksum right after its ``add_record`` returned
(flushed), and finally one ``stats {json}`` line with its counts and timing.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from etl_manifests import ManifestManager, RetryPolicy
from etl_manifests.errors import ConflictError, SaveRetriesExhaustedError
from etl_manifests.storage import Blob, Expect, ObjectInfo, StorageBackend


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
    """Delegates to a real backend and counts writes and the conflicts they met."""

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.root = inner.root
        self.writes = 0
        self.conflicts = 0
        self.reads = 0
        self.streak = 0  # conflicts since the last successful write
        self.max_streak = 0

    def read(self, key: str) -> Blob:
        self.reads += 1
        return self.inner.read(key)

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        self.writes += 1
        try:
            version = self.inner.write(key, data, expect=expect)
        except ConflictError:
            self.conflicts += 1
            self.streak += 1
            self.max_streak = max(self.max_streak, self.streak)
            raise
        self.streak = 0
        return version

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return self.inner.list(prefix)

    def url(self, key: str) -> str:
        return self.inner.url(key)

    def close(self) -> None:
        self.inner.close()


def main(raw: str) -> None:
    args: dict[str, Any] = json.loads(raw)
    max_attempts, base_delay, max_delay = args.get("retry", [200, 0.005, 0.25])
    manager = ManifestManager(
        args["root"],
        args.get("etl_version", "1.0.0"),
        storage_options=args.get("storage_options", {}),
        retry=RetryPolicy(max_attempts, base_delay, max_delay),
    )
    manifest = manager.extractor
    counting = CountingBackend(manifest.backend)
    manifest.backend = counting
    out = sys.stdout
    out.write("ready\n")
    out.flush()
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
        out.write(checksum(n) + "\n")
        out.flush()
        n += 1
    stats = {
        "adds": n - start,
        "writes": counting.writes,
        "conflicts": counting.conflicts,
        "reads": counting.reads,
        "max_conflict_streak": counting.max_streak,
        "retry_budgets_exhausted": exhausted,
        "seconds": time.perf_counter() - began,
    }
    out.write("stats " + json.dumps(stats) + "\n")
    out.flush()
    ManifestManager.reset()


if __name__ == "__main__":
    main(sys.argv[1])
