"""Local-disk backend: staged file, fsync, ``os.replace``, fsync of the folder.

Atomicity: a save writes a staged file beside the manifest, flushes and fsyncs it, then
``os.replace``s it over the manifest and fsyncs the folder. ``rename(2)`` within one
folder is atomic, so a reader opens either the old file or the new one, never a partial.

Conflict detection: the version token is the file's identity ``inode:mtime_ns:size``,
taken with ``fstat`` on the descriptor the bytes were read from. A conditional write holds
an advisory lock (``flock`` on a hidden ``.<name>.lock`` beside the manifest) while it
compares the stored identity with the expected one and renames. Every commit stamps the
new file with an mtime strictly greater than the one it replaces, so a recycled inode
number can never make an old token match again.

Writers in different processes on one machine are serialized by the lock. On network
filesystems the guarantees hold only where ``flock`` and ``rename`` are honoured across
clients (see docs/guarantees.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..errors import (
    AlreadyExistsError,
    ConflictError,
    ManifestError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)
from ..hookspecs import RegisterBackend, hookimpl
from ..storage import ABSENT, Blob, Expect, ObjectInfo, StorageBackend, is_staging_key, staging_key

__all__ = ["LocalBackend"]

#: Seconds a writer waits for another writer's lock before giving up.
LOCK_TIMEOUT = 60.0


def _token(st: os.stat_result) -> str:
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def _storage_error(exc: OSError, where: str, doing: str) -> StorageError:
    """Our error for an OS error on ``where``, keeping the errno and naming the file."""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, PermissionError):
        return PermissionDeniedError(
            exc.errno, f"cannot {doing} {where}: {reason}; check the file's permissions"
        )
    return StorageError(exc.errno, f"cannot {doing} {where}: {reason}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackend(StorageBackend):
    """Stores each key as a file below a folder; the folder is created on first write."""

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        path = root[len("file://") :] if root.startswith("file://") else root
        self._dir = Path(path).expanduser().absolute()
        self.root = str(self._dir)
        self.lock_timeout = float((storage_options or {}).get("lock_timeout", LOCK_TIMEOUT))

    def _path(self, key: str) -> Path:
        return self._dir / key

    def _lock(self, path: Path) -> FileLock:
        # thread_local=False: the lock guards a file, not a thread's critical section.
        return FileLock(path.with_name(f".{path.name}.lock"), thread_local=False)

    def read(self, key: str) -> Blob:
        try:
            with open(self._path(key), "rb") as f:
                # Files are only ever replaced, never changed in place, so the identity
                # of the open descriptor is the identity of exactly these bytes.
                token = _token(os.fstat(f.fileno()))
                return Blob(f.read(), token)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"no manifest at {self.url(key)}") from None
        except OSError as exc:
            raise _storage_error(exc, self.url(key), "read") from exc

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        path = self._path(key)
        try:
            return self._write(key, path, data, expect)
        except OSError as exc:
            # Some of our own errors are OSErrors too (AlreadyExistsError, ...).
            if isinstance(exc, ManifestError):
                raise
            raise _storage_error(exc, self.url(key), "write") from exc

    def _write(self, key: str, path: Path, data: bytes, expect: Expect) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(staging_key(str(path)))
        try:
            # The slow part (writing and syncing the bytes) happens outside the lock.
            with open(staged, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                with self._lock(path).acquire(timeout=self.lock_timeout):
                    return self._commit(key, path, staged, expect)
            except Timeout:
                raise TransientStorageError(
                    f"timed out after {self.lock_timeout:.0f}s waiting for the lock on "
                    f"{path}; another writer may be stuck: retry, or raise lock_timeout"
                ) from None
        finally:
            staged.unlink(missing_ok=True)

    def _commit(self, key: str, path: Path, staged: Path, expect: Expect) -> str:
        try:
            current: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            current = None
        if expect is ABSENT and current is not None:
            raise AlreadyExistsError(f"{self.url(key)} already exists")
        if isinstance(expect, str) and (current is None or _token(current) != expect):
            raise ConflictError(f"{self.url(key)} changed since it was read")
        # Strictly increasing mtimes make every committed identity unique (see module doc).
        mtime = time.time_ns()
        if current is not None and mtime <= current.st_mtime_ns:
            mtime = current.st_mtime_ns + 1
        os.utime(staged, ns=(mtime, mtime))
        os.replace(staged, path)
        _fsync_dir(path.parent)
        return _token(os.stat(path))

    def delete(self, key: str) -> None:
        path = self._path(key)
        if not path.parent.exists():
            return
        if is_staging_key(key):
            # Only its own writer ever wrote a staged file; no lock (and no lock file).
            path.unlink(missing_ok=True)
            return
        with self._lock(path).acquire(timeout=self.lock_timeout):
            path.unlink(missing_ok=True)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        # Walk only below the folder the prefix names (one log epoch, say), and at its
        # top only into folders the rest of the prefix can match: a listing costs what
        # it returns, not every file kept beside it (other epochs, other manifests).
        head, _, rest = prefix.rpartition("/")
        top = self._dir / head if head else self._dir
        if not top.is_dir():
            return []
        found = []
        for dirpath, dirs, files in os.walk(top):
            if dirpath == str(top):
                dirs[:] = [d for d in dirs if d.startswith(rest)]
            folder = os.path.relpath(dirpath, self._dir)
            base = "" if folder == os.curdir else folder.replace(os.sep, "/") + "/"
            for name in files:
                if name.startswith(".") and name.endswith(".lock"):
                    continue
                key = base + name
                if not key.startswith(prefix):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                modified = datetime.fromtimestamp(st.st_mtime, UTC)
                found.append(ObjectInfo(key, st.st_size, modified))
        return sorted(found, key=lambda info: info.key)


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    """Register the local backend for plain paths and ``file://`` URLs."""
    register(("file", "local"), LocalBackend)
