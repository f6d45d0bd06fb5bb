"""The backend contract: the one seam between manifests and the stores that hold them.

A backend stores opaque byte strings under string keys below one root (a folder, a
bucket prefix, ...). It knows nothing about manifests. Everything above it (merging
concurrent writers, batching) is built from these primitives:

* ``read(key)``: bytes and an opaque version token; else :class:`NotFoundError`.
* ``write(key, data, expect=ABSENT)``: create only if nothing is stored; else
  :class:`AlreadyExistsError`.
* ``write(key, data, expect=token)``: replace only if the stored version is still
  ``token``; else :class:`ConflictError`.
* ``write(key, data)``: unconditional replace, still atomic.
* ``delete(key)``, ``list(prefix)``: housekeeping.

What every backend guarantees (and :mod:`etl_manifests.testing` checks):

* A reader never sees a partial object: ``read`` returns either the old bytes or the new.
* ``read`` returns bytes and the token of *those* bytes, never a newer token.
* A token changes whenever the stored bytes change. (Object stores derive ETags from
  content, so rewriting identical bytes may keep the token; the manifest layer never
  commits identical bytes twice, since every commit carries a new revision number.)
* A conditional write either lands whole or raises; it never overwrites silently.

Staged objects: backends that write in two steps put the first step under a key made by
:func:`staging_key`, so leftovers of a killed writer are recognisable, ignored by readers
(nobody reads them) and removable with :meth:`etl_manifests.Manifest.cleanup_staged`.
"""

from __future__ import annotations

import enum
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TypeAlias

__all__ = [
    "ABSENT",
    "STAGING_MARKER",
    "Blob",
    "Expect",
    "ObjectInfo",
    "StorageBackend",
    "is_staging_key",
    "staging_key",
]


class _Absent(enum.Enum):
    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


#: Pass as ``expect`` to create an object only if none is stored under the key.
ABSENT: Final = _Absent.ABSENT

#: What a write expects to find: ``None`` (anything), ``ABSENT`` or a version token.
Expect: TypeAlias = str | Literal[_Absent.ABSENT] | None

#: Marks keys of staged (not yet committed) objects.
STAGING_MARKER: Final = ".staged-"


def staging_key(key: str) -> str:
    """Return a fresh key, unique per call, for staging a write to ``key``."""
    return f"{key}{STAGING_MARKER}{uuid.uuid4().hex}"


def is_staging_key(key: str, of: str | None = None) -> bool:
    """Whether ``key`` was made by :func:`staging_key` (for the key ``of``, if given)."""
    base, marker, suffix = key.rpartition(STAGING_MARKER)
    if not marker or len(suffix) != 32:
        return False
    return of is None or base == of


@dataclass(frozen=True, slots=True)
class Blob:
    """Bytes read from a backend and the version token of exactly those bytes."""

    data: bytes
    version: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One entry of :meth:`StorageBackend.list`; ``modified`` is timezone-aware or None."""

    key: str
    size: int | None = None
    modified: datetime | None = None


class StorageBackend(ABC):
    """A store of byte strings under keys relative to one root.

    Implementations must be safe to call from several threads at once. Keys are
    ``/``-separated relative names; they never start with ``/`` or contain ``..``
    (the manifest layer guarantees it).
    """

    #: The root this backend was opened on, as a URL or path (for messages and docs).
    root: str

    @abstractmethod
    def read(self, key: str) -> Blob:
        """Return the bytes stored under ``key`` and their version token.

        :raises NotFoundError: nothing is stored under ``key``.
        """

    @abstractmethod
    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        """Atomically store ``data`` under ``key`` and return the new version token.

        :param expect: ``None`` to replace whatever is there; :data:`ABSENT` to create
            only if nothing is stored; a token from :meth:`read` or :meth:`write` to
            replace only if the stored version is still that one.
        :raises AlreadyExistsError: ``expect`` was :data:`ABSENT` and an object exists.
        :raises ConflictError: ``expect`` was a token and the stored version differs
            (or the object is gone).
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Return the objects whose key starts with ``prefix``, staged ones included."""

    def url(self, key: str) -> str:
        """A human-readable location of ``key`` for messages (never with credentials).

        Override it when ``root`` is not a prefix that ``/key`` can follow (a query string).
        """
        return f"{self.root.rstrip('/')}/{key}"

    def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release connections; the default does nothing.

        A backend must stay usable after ``close()`` (reopening what it needs), because
        manifests handed out earlier may still hold it.
        """


#: What a plugin registers: called with the root URL (or path) and storage options.
BackendFactory: TypeAlias = Callable[[str, Mapping[str, Any]], StorageBackend]
