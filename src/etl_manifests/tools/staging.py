"""Writing a download under a temporary name beside its destination, then moving it in place.

Until :meth:`StagedFile.commit`, nothing exists under the destination's name, so a
killed download never leaves a partial file where a reader (or ``verify``) would find
it. The temporary name is hidden and marked: ``.{name}.part-{random}``.

On local disk the bytes are fsynced before an atomic ``os.replace`` and the folder is
fsynced after it, so a recorded file survives a power cut. Elsewhere the store's own
move is used (on object stores a server-side copy and a delete; their uploads are atomic).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import IO, Any

from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from ..errors import TransferError
from .files import redact

__all__ = ["PART_MARKER", "StagedFile"]

#: Marks temporary names of downloads in progress.
PART_MARKER = ".part-"


class StagedFile:
    """A file being written to ``path`` on ``fs``; a context manager that discards it
    on error unless :meth:`commit` was called."""

    def __init__(self, fs: AbstractFileSystem, path: str, url: str) -> None:
        """:param url: ``path`` as the user knows it, for messages."""
        self.fs = fs
        self.path = path
        self.url = url
        folder, _, name = path.rpartition("/")
        self.folder = folder
        self.temp = f"{folder}/.{name}{PART_MARKER}{uuid.uuid4().hex[:12]}"
        self._local = isinstance(fs, LocalFileSystem)
        self._handle: IO[bytes] | Any = None
        self._done = False

    def __enter__(self) -> StagedFile:
        with self._translated("create"):
            if self._local:
                os.makedirs(self.folder, exist_ok=True)
                self._handle = open(self.temp, "wb")
            else:
                self._handle = self.fs.open(self.temp, "wb")
        return self

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``."""
        with self._translated("write"):
            self._handle.write(chunk)

    def commit(self) -> None:
        """Make the bytes durable and move them to the destination's name."""
        with self._translated("move into place"):
            if self._local:
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
                os.replace(self.temp, self.path)
                _fsync_folder(self.folder)
            else:
                self._handle.close()
                self.fs.mv(self.temp, self.path)
        self._done = True

    def discard(self) -> None:
        """Remove the temporary file (best effort: a leftover is only a hidden .part file)."""
        self._done = True
        with contextlib.suppress(Exception):
            self._handle.close()
        with contextlib.suppress(Exception):
            if self._local:
                os.unlink(self.temp)
            else:
                self.fs.rm(self.temp)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not self._done:
            self.discard()

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except TransferError:
            raise
        except Exception as exc:
            self.discard()
            raise TransferError(
                f"cannot {doing} the download of {redact(self.url)}: "
                f"{type(exc).__name__}: {exc}; check the destination's space and permissions"
            ) from exc


def _fsync_folder(folder: str) -> None:
    # Makes the rename itself durable; not possible (nor needed) on some platforms.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
