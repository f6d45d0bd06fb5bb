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

The store capability check (:mod:`etl_manifests.capability`) proves, before a backend's
first conditional write, that the store really refuses a create over an existing key and
a replace with a stale token. It uses only the primitives above, on keys made by
:func:`probe_key`; each such key is used by exactly one caller and deleted afterwards, so
a backend may drop any per-key bookkeeping (a lock file) when one is deleted.

A backend that can commit in more than one way overrides two optional hooks, and the
check picks the way the store honours: :meth:`StorageBackend.commit_modes` names the
candidates in order of preference, :meth:`StorageBackend.use_commit_mode` switches to
one. The defaults (no modes) mean "one way, checked as it is".
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
    "PROBE_MARKER",
    "STAGING_MARKER",
    "Blob",
    "Expect",
    "ObjectInfo",
    "StorageBackend",
    "is_probe_key",
    "is_staging_key",
    "probe_key",
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


#: Starts the keys the store capability check writes (and deletes again).
PROBE_MARKER: Final = ".etl-manifests-probe-"


def probe_key() -> str:
    """Return a fresh key, unique per call, for one run of the store capability check."""
    return f"{PROBE_MARKER}{uuid.uuid4().hex}"


def is_probe_key(key: str) -> bool:
    """Whether ``key`` was made by :func:`probe_key`."""
    name = key.rpartition("/")[2]
    return name.startswith(PROBE_MARKER) and len(name) == len(PROBE_MARKER) + 32


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

    def commit_modes(self) -> tuple[str, ...]:
        """Optional hook: the ways this backend can commit a write, best first.

        The store capability check tries them in this order (switching with
        :meth:`use_commit_mode`) and keeps the first one whose conditions the store
        enforces; if none is, it raises
        :class:`~etl_manifests.errors.UnsupportedStoreError`. Return only the mode the
        user configured, if they did, so that it is verified rather than replaced. The
        default, ``()``, means the backend has one way to commit and the check probes it
        as it is.
        """
        return ()

    def use_commit_mode(self, mode: str) -> None:
        """Optional hook: commit later writes with ``mode``, one of :meth:`commit_modes`.

        Called only by the capability check, while no other write of this backend runs.
        The default refuses, since the default :meth:`commit_modes` names none.
        """
        raise ValueError(f"{type(self).__name__} has no commit mode {mode!r}")

    def close(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Release connections; the default does nothing.

        A backend must stay usable after ``close()`` (reopening what it needs), because
        manifests handed out earlier may still hold it.
        """


#: What a plugin registers: called with the root URL (or path) and storage options.
BackendFactory: TypeAlias = Callable[[str, Mapping[str, Any]], StorageBackend]
