"""Local-disk backend: staged file, fsync, ``os.replace`` (or ``os.link``), fsync of the folder.

Atomicity: a save writes a staged file beside the manifest, flushes and fsyncs it, then
``os.replace``s it over the manifest and fsyncs the folder. ``rename(2)`` within one
folder is atomic, so a reader opens either the old file or the new one, never a partial.

Create-only writes (``expect=ABSENT``) take no lock and create no lock file: the staged
file is published with ``os.link(staged, path)``, which the kernel performs atomically
and refuses with ``EEXIST`` when anything is already at ``path`` (then
:class:`AlreadyExistsError`). That makes a create one ``link`` and one folder fsync on top
of writing the bytes, cheap enough for one small file per commit. On filesystems without
hard links the create falls back to the locked path below.

Conflict detection for replaces: a conditional or unconditional replace holds an advisory
lock (``flock`` on a hidden ``.<name>.lock`` beside the manifest) while it compares the
stored identity with the expected one and renames.

Version tokens: ``inode:mtime_ns:size`` of the file, taken with ``fstat`` on the
descriptor the bytes were read from. A filesystem may reuse a freed inode number at once
and may keep modification times only to the second (ext4 with 128-byte inodes, HFS+) or
two (FAT), so neither the inode nor "now" is unique by itself. What makes every committed
identity unique is the mtime: each replace stamps the staged file with an mtime strictly
greater than the one of the file it replaces, *as the filesystem stores it*. The stamp is
read back with ``stat``; when the filesystem rounded it down to (or below) the old one,
the stamp is raised in steps (1 ns, 100 ns, 1 µs, 1 ms, 10 ms, 1 s, 2 s) until the stored
value is greater, and the step that worked is remembered for the next commit. So successive
versions of one file never share a token, whatever the timestamp granularity, inode reuse
or size; on a coarse filesystem that commits faster than its granularity, mtimes run ahead
of the clock by up to one step per commit. A filesystem that does not keep the mtimes it
is given at all is refused with :class:`StorageError` rather than trusted. One case stays
outside this: a key deleted and created again within one timestamp step may get back the
identity it had before the delete (the library never re-creates a key it deleted).

Symbolic links: a replace of a key that is a symbolic link (a snapshot kept elsewhere and
linked into the root) writes through it. The staged file goes beside the file the link
names, through any chain of links, and is renamed over that file, so the link stays a link
and the rename stays within one folder. The lock is taken beside the link, so every writer
must reach the file through the same key. A create (``expect=ABSENT``) follows the link
too: a link that names no file yet is a key not stored yet (reads raise
:class:`NotFoundError`), and the create makes the file it names.

Writers in different processes on one machine are serialized by the lock. On network
filesystems the guarantees hold only where ``flock``, ``link`` and ``rename`` are honoured
across clients (see docs/guarantees.md).
"""

from __future__ import annotations

import errno
import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..errors import (
    AlreadyExistsError,
    BackendConfigurationError,
    ConflictError,
    ManifestError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)
from ..hookspecs import RegisterBackend, hookimpl
from ..storage import (
    ABSENT,
    STAGING_MARKER,
    Blob,
    Expect,
    ObjectInfo,
    StorageBackend,
    is_probe_key,
    is_staging_key,
    staging_key,
)

__all__ = ["LOCK_TIMEOUT", "MTIME_STEPS", "LocalBackend"]

#: Seconds a writer waits for another writer's lock before giving up.
LOCK_TIMEOUT = 60.0

#: How far (ns) a commit may raise its mtime above the replaced file's, smallest first:
#: nanosecond filesystems, NTFS (100 ns), microseconds, milliseconds, exFAT (10 ms),
#: ext4 with 128-byte inodes / ext3 / HFS+ (1 s), FAT (2 s).
MTIME_STEPS = (1, 100, 1_000, 1_000_000, 10_000_000, 1_000_000_000, 2_000_000_000)

# Errors of os.link that mean "this filesystem has no hard links", not "the key exists".
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}
)


def _token(st: os.stat_result) -> str:
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


def _storage_error(exc: OSError, where: str, doing: str, whose: str = "the file's") -> StorageError:
    """Our error for an OS error on ``where``, keeping the errno and naming the file."""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, PermissionError):
        return PermissionDeniedError(
            exc.errno, f"cannot {doing} {where}: {reason}; check {whose} permissions"
        )
    return StorageError(exc.errno, f"cannot {doing} {where}: {reason}")


def _lock_error(exc: OSError, lock_path: Path) -> StorageError:
    """Our error for a lock file we cannot open: it names the lock file, not the manifest."""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, PermissionError):
        return PermissionDeniedError(
            exc.errno,
            f"cannot open the lock file {lock_path}: {reason}. Every writer needs read-write "
            "access to it: fix its owner or permissions (or remove it while no writer runs); "
            "the manifest itself was not touched",
        )
    if exc.errno == errno.ELOOP:
        return StorageError(
            exc.errno,
            f"the lock file {lock_path} is a symbolic link, which is refused (a link could "
            "make a writer truncate another file); remove the link. The manifest itself was "
            "not touched",
        )
    if exc.errno == errno.EISDIR:
        return StorageError(
            exc.errno,
            f"the lock file {lock_path} is a directory; remove it. The manifest itself was "
            "not touched",
        )
    return StorageError(
        exc.errno,
        f"cannot open the lock file {lock_path}: {reason}; the manifest itself was not touched",
    )


def _through_link(path: Path) -> Path:
    """Where a replace of ``path`` lands: the file that a symbolic link at ``path``
    names, through any chain of links, so that the link stays a link; else ``path``."""
    if not path.is_symlink():
        return path
    return Path(os.path.realpath(path))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_timeout(options: Mapping[str, Any]) -> float:
    raw = options.get("lock_timeout", LOCK_TIMEOUT)
    value = math.nan
    if isinstance(raw, int | float | str) and not isinstance(raw, bool):
        with suppress(ValueError):
            value = float(raw)
    if not (math.isfinite(value) and value >= 0):
        shown = repr(raw) if isinstance(raw, int | float | str) else type(raw).__name__
        raise BackendConfigurationError(
            f"the lock_timeout storage option must be a number of seconds >= 0 (default "
            f"{LOCK_TIMEOUT:.0f}), not {shown[:40]}"
        )
    return value


class LocalBackend(StorageBackend):
    """Stores each key as a file below a folder; the folder is created on first write."""

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        # Only file:// and local:// roots (or plain paths) are routed here.
        path = root.split("://", 1)[1] if "://" in root else root
        self._dir = Path(path).expanduser().absolute()
        self.root = str(self._dir)
        self.lock_timeout = _lock_timeout(storage_options or {})
        # Index into MTIME_STEPS of the smallest step this folder's filesystem keeps.
        self._step = 0

    def _path(self, key: str) -> Path:
        return self._dir / key

    def _error(self, exc: OSError, key: str, doing: str) -> StorageError:
        """Our error for ``exc``, naming the key's file, or the root for the store
        check's probe: the probe's hidden name means nothing to whoever reads it."""
        if is_probe_key(key):
            return _storage_error(exc, f"files in {self.root}", doing, "the folder's")
        return _storage_error(exc, self.url(key), doing)

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        lock_path = path.with_name(f".{path.name}.lock")
        # thread_local=False: the lock guards a file, not a thread's critical section.
        lock = FileLock(lock_path, thread_local=False)
        try:
            lock.acquire(timeout=self.lock_timeout)
        except Timeout:
            raise TransientStorageError(
                f"timed out after {self.lock_timeout:.0f}s waiting for the lock file "
                f"{lock_path}; another writer may be stuck: retry, or raise lock_timeout"
            ) from None
        except OSError as exc:
            raise _lock_error(exc, lock_path) from None
        try:
            yield
        finally:
            lock.release()

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
            raise self._error(exc, key, "read") from None

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        path = self._path(key)
        try:
            return self._write(key, path, data, expect)
        except OSError as exc:
            # Some of our own errors are OSErrors too (AlreadyExistsError, ...).
            if isinstance(exc, ManifestError):
                raise
            raise self._error(exc, key, "write") from None

    def _write(self, key: str, path: Path, data: bytes, expect: Expect) -> str:
        dest = _through_link(path)
        staged = Path(staging_key(str(dest)))
        published = False
        try:
            # The slow part (writing and syncing the bytes) happens outside the lock.
            create = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            try:
                fd = os.open(staged, create, 0o666)
            except FileNotFoundError:  # a new folder (each log epoch is one)
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(staged, create, 0o666)
            with open(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                # Links keep the inode, size and mtime: this is the published file's
                # identity, even if another writer replaces ``path`` right after.
                written = os.fstat(f.fileno())
            if expect is ABSENT:
                published = self._create(key, dest, staged)
                if published:
                    return _token(written)
            # Locked by the key's own path, which every writer of this key uses.
            with self._locked(path):
                return self._commit(key, path, staged, expect)
        finally:
            if not published:
                staged.unlink(missing_ok=True)

    def _create(self, key: str, path: Path, staged: Path) -> bool:
        """Publish ``staged`` at ``path`` only if nothing is there (and remove ``staged``);
        ``False``: the filesystem has no hard links, nothing was done."""
        try:
            os.link(staged, path)
        except FileExistsError:
            raise AlreadyExistsError(f"{self.url(key)} already exists") from None
        except OSError as exc:
            if exc.errno in _NO_HARD_LINKS:
                return False
            raise
        staged.unlink()
        _fsync_dir(path.parent)
        return True

    def _commit(self, key: str, path: Path, staged: Path, expect: Expect) -> str:
        """Replace the file ``staged`` was staged for with it, if the stored identity of
        ``path`` is ``expect``. That file is ``path``, or the one a link at ``path``
        names: ``staged`` sits beside it and is named after it."""
        dest = staged.with_name(staged.name.rpartition(STAGING_MARKER)[0])
        try:
            current: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            current = None
        if expect is ABSENT and current is not None:
            raise AlreadyExistsError(f"{self.url(key)} already exists")
        if isinstance(expect, str) and (current is None or _token(current) != expect):
            raise ConflictError(f"{self.url(key)} changed since it was read")
        st = os.stat(staged) if current is None else self._stamp(staged, current.st_mtime_ns)
        os.replace(staged, dest)
        _fsync_dir(dest.parent)
        return _token(st)

    def _stamp(self, staged: Path, floor: int) -> os.stat_result:
        """Give ``staged`` a stored mtime above ``floor``; see "Version tokens" above."""
        now = time.time_ns()
        for index in range(self._step, len(MTIME_STEPS)):
            mtime = max(now, floor + MTIME_STEPS[index])
            os.utime(staged, ns=(mtime, mtime))
            st = os.stat(staged)
            if st.st_mtime_ns > floor:
                self._step = index
                return st
        raise StorageError(
            f"the filesystem of {self.root} does not keep the modification times it is "
            f"given (set {mtime} ns, read back {st.st_mtime_ns} ns), so versions of a file "
            "cannot be told apart and concurrent writers could overwrite each other; "
            "keep manifests on another filesystem"
        )

    def delete(self, key: str) -> None:
        path = self._path(key)
        if not path.parent.exists():
            return
        if is_staging_key(key) or not path.with_name(f".{path.name}.lock").exists():
            # A staged file has one writer only. A key without a lock file was only ever
            # created (creates take no lock), never replaced: nothing to exclude, and
            # taking the lock would leave a lock file behind for every deleted log entry.
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise self._error(exc, key, "delete") from None
            return
        with self._locked(path):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise self._error(exc, key, "delete") from None
            if is_probe_key(key):
                # The store check's key is used by one caller only (storage.probe_key):
                # nobody can be waiting on its lock, so the lock file can go too.
                path.with_name(f".{path.name}.lock").unlink(missing_ok=True)

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
    """Register the local backend for plain paths, ``file://`` and ``local://`` URLs."""
    register(("file", "local"), LocalBackend)
