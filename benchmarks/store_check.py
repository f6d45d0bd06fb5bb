"""Requests the store capability check and one commit cost, per store behaviour (exact).

Usage::

    python benchmarks/store_check.py

Runs moto and gcp-storage-emulator behind the conditional-write proxy of
``etl_manifests.testing``, subclassed (as in
``bench.py``) to count every request. The proxy plays each store behaviour: enforcing
every write condition (AWS S3 since 2025, GCS), ignoring them on CopyObject (plain moto,
stores that need their own headers for a conditional copy), or ignoring them everywhere.
For each it prints the commit mode the check chose, the requests of the check (run once
per backend object, before its first conditional write) and the requests of one commit
afterwards: a create (``expect=ABSENT``, how the commit log adds an entry) and a replace
(``expect=<token>``, how a snapshot is replaced).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

# Before gcsfs can be imported (see bench.py).
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _cloud import _counting_proxy_class  # noqa: E402

from etl_manifests import ABSENT, check_store  # noqa: E402
from etl_manifests.backends.gcs._backend import GCSBackend  # noqa: E402
from etl_manifests.backends.s3._backend import S3Backend  # noqa: E402
from etl_manifests.storage import StorageBackend  # noqa: E402
from etl_manifests.testing.servers import running_gcs, running_s3  # noqa: E402

# (label, store, operations the store ignores conditions on, configured commit mode)
CASES: list[tuple[str, str, frozenset[str], str | None]] = [
    ("S3, conditions enforced on PUT and COPY", "s3", frozenset(), None),
    ("S3, conditions ignored on COPY (plain moto)", "s3", frozenset({"CopyObject"}), None),
    ("S3, conditions ignored on PUT and COPY", "s3", frozenset({"CopyObject", "PutObject"}), None),
    ("S3, etl_manifests_commit='put' configured", "s3", frozenset(), "put"),
    ("GCS, ifGenerationMatch enforced", "gcs", frozenset(), None),
    ("GCS, ifGenerationMatch ignored", "gcs", frozenset({"insert"}), None),
]


def _count(counter: Any, call: Callable[[], object]) -> int:
    before = len(counter.requests)
    call()
    return len(counter.requests) - before


def _run(
    running: Callable[[Any], AbstractContextManager[Any]],
    make: Callable[[str, dict[str, Any]], StorageBackend],
    scheme: str,
    ignored: frozenset[str],
    mode: str | None,
) -> tuple[str, int, str, str]:
    with running(_counting_proxy_class()) as server:
        bucket = f"check-{uuid.uuid4().hex[:16]}"
        server.create_bucket(bucket)
        server.proxy.ignore_conditions = ignored
        options = dict(server.storage_options)
        if mode:
            options["etl_manifests_commit"] = mode
        backend = make(f"{scheme}://{bucket}/m", options)
        counter = server.proxy.counter
        backend.list()  # opens the connection: not part of the figures
        before = len(counter.requests)
        report = check_store(backend)
        check = len(counter.requests) - before
        if not report.ok:
            backend.close()
            return "refused (UnsupportedStoreError)", check, "-", "-"
        try:
            create = _count(counter, lambda: backend.write("e.json", b"{}", expect=ABSENT))
            token = backend.read("e.json").version
            replace = _count(counter, lambda: backend.write("e.json", b"[]", expect=token))
        finally:
            backend.close()
        return str(report.mode or "(one way)"), check, str(create), str(replace)


def rows() -> Iterator[tuple[str, str, int, str, str]]:
    for label, store, ignored, mode in CASES:
        if store == "s3":
            result = _run(running_s3, S3Backend, "s3", ignored, mode)
        else:
            result = _run(running_gcs, GCSBackend, "gs", ignored, mode)
        yield (label, *result)


def main() -> int:
    header = ("store", "commit mode chosen", "check", "create", "replace")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for label, chosen, check, create, replace in rows():
        print(f"{label} | {chosen} | {check} | {create} | {replace}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
