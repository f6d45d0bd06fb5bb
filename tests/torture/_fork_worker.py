"""What the fork tests run in their child processes (importable, so ``spawn`` finds it)."""

from __future__ import annotations

import os
import pickle
from typing import Any

from etl_manifests import ManifestManager


def checksum(n: int) -> str:
    return f"{n:064x}"


def record(n: int) -> dict[str, Any]:
    return {
        "checksum": checksum(n),
        "filename": f"file_{n}.gz",
        "filepath": f"/data/downloads/file_{n}.gz",
        "content_length_bytes": n,
    }


def add_records(manager: ManifestManager, first: int, count: int) -> dict[str, Any]:
    """Add ``count`` records through ``manager`` (handed over by pickling) and report.

    Returns this process's id, whether the manager is this process's singleton, and the
    checksums its manifest holds after a fresh ``load()``.
    """
    manifest = manager.extractor
    for n in range(first, first + count):
        manifest.add_record(record(n))
    manifest.load()
    return {
        "pid": os.getpid(),
        "singleton": ManifestManager.instance() is manager,
        "seen": sorted(r.checksum for r in manifest),
    }


def add_records_fresh(pickled: bytes, first: int, count: int) -> dict[str, Any]:
    """:func:`add_records` in a long-lived worker that serves managers of many roots.

    The worker's previous singleton is forgotten first; then the manager is unpickled,
    exactly as ``Pool`` would have unpickled it as an argument.
    """
    ManifestManager.reset()
    manager: ManifestManager = pickle.loads(pickled)
    return add_records(manager, first, count)


def set_environment(env: dict[str, str]) -> None:
    """Pool initializer: set environment variables before the worker imports anything."""
    os.environ.update(env)
