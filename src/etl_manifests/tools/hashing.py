"""SHA-256 of a stream, computed chunk by chunk: a file of any size costs one chunk of memory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import NamedTuple, Protocol

__all__ = ["CHUNK_SIZE", "Digest", "Readable", "hash_stream"]

#: Bytes read per step; large enough that per-call overhead vanishes, small enough to stream.
CHUNK_SIZE = 1 << 20


class Readable(Protocol):
    """Anything with ``read(n) -> bytes``: a file, an fsspec file, an HTTP stream."""

    def read(self, size: int = -1, /) -> bytes: ...


class Digest(NamedTuple):
    """What streaming a file produced: its SHA-256 (lower-case hex) and its length."""

    checksum: str
    size: int


def hash_stream(
    source: Readable,
    *,
    sink: Callable[[bytes], object] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Digest:
    """Read ``source`` to its end and return its :class:`Digest`.

    :param sink: called with every chunk as it is hashed (a download writes it to its
        temporary file this way, so the bytes are read once).
    """
    sha = hashlib.sha256()
    size = 0
    while chunk := source.read(chunk_size):
        sha.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink(chunk)
    return Digest(sha.hexdigest(), size)
