"""In-memory backend for tests: ``memory://name/prefix``.

Stores are process-wide (like fsspec's memory filesystem): every backend opened on the
same ``memory://`` root sees the same objects, so two managers can race for one manifest
in a test. Nothing survives the process, and other processes never see it: a forked child
starts with a copy of its parent's objects, a spawned one with none.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .._forksafe import renewed
from .._redact import strip_userinfo
from ..errors import AlreadyExistsError, ConflictError, NotFoundError
from ..hookspecs import RegisterBackend, hookimpl
from ..storage import ABSENT, Blob, Expect, ObjectInfo, StorageBackend

__all__ = ["MemoryBackend"]

_objects: dict[str, tuple[bytes, str, datetime]] = {}
_lock = threading.Lock()
_versions = itertools.count(1)


def _renew_lock() -> None:
    global _lock
    _lock = renewed(_lock)


if hasattr(os, "register_at_fork"):
    # A forked child keeps a copy of the objects; a thread that did not survive the fork
    # may have held the lock guarding them.
    os.register_at_fork(after_in_child=_renew_lock)


class MemoryBackend(StorageBackend):
    """Objects in a process-wide dict, guarded by one lock."""

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        # User information means nothing here; dropped, it cannot reach a message.
        self.root = strip_userinfo(root).rstrip("/")

    def _full(self, key: str) -> str:
        return f"{self.root}/{key}"

    def read(self, key: str) -> Blob:
        with _lock:
            found = _objects.get(self._full(key))
        if found is None:
            raise NotFoundError(f"no manifest at {self.url(key)}")
        return Blob(found[0], found[1])

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        full = self._full(key)
        with _lock:
            current = _objects.get(full)
            if expect is ABSENT and current is not None:
                raise AlreadyExistsError(f"{self.url(key)} already exists")
            if isinstance(expect, str) and (current is None or current[1] != expect):
                raise ConflictError(f"{self.url(key)} changed since it was read")
            version = str(next(_versions))
            _objects[full] = (bytes(data), version, datetime.now(UTC))
            return version

    def delete(self, key: str) -> None:
        with _lock:
            _objects.pop(self._full(key), None)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        start = self._full(prefix)
        base = len(self.root) + 1
        with _lock:
            return [
                ObjectInfo(full[base:], len(data), modified)
                for full, (data, _v, modified) in sorted(_objects.items())
                if full.startswith(start)
            ]


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    """Register the in-memory backend for ``memory://`` URLs."""
    register("memory", MemoryBackend)
