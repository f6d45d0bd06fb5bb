"""A view of a backend that can read and list but never writes: what a copy reads from.

Reading a manifest normally never writes, with one exception in the commit protocol: a
reader that meets an epoch sealed by a checkpointer but not yet listed lists it itself
(the first list written wins; see ``docs/protocol.md``). Through this view that write
is refused with :class:`PermissionDeniedError` instead, so a source is provably left as
it was.
"""

from __future__ import annotations

from .errors import PermissionDeniedError
from .storage import Blob, Expect, ObjectInfo, StorageBackend

__all__ = ["ReadOnlyBackend"]


class ReadOnlyBackend(StorageBackend):
    """``backend`` for reading only; ``write`` and ``delete`` raise."""

    def __init__(self, backend: StorageBackend, role: str = "source") -> None:
        self.inner = backend
        self.root = backend.root
        self.role = role

    def read(self, key: str) -> Blob:
        return self.inner.read(key)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return self.inner.list(prefix)

    def url(self, key: str) -> str:
        return self.inner.url(key)

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        raise self._refused(key)

    def delete(self, key: str) -> None:
        raise self._refused(key)

    def _refused(self, key: str) -> PermissionDeniedError:
        return PermissionDeniedError(
            f"{self.url(key)}: the {self.role} is only read, never written, but reading it "
            "needs to finish another writer's checkpoint (an epoch of its log is sealed and "
            "not yet listed); run 'etl-manifests compact' on it, or retry once its writers "
            "are done. Nothing was written"
        )
