"""Every error etl-manifests raises, in one hierarchy.

Catch :class:`ManifestError` to handle anything this library raises. Each class also
inherits the builtin exception it resembles, so code written against the standard library
keeps working: a missing object is a :class:`FileNotFoundError`, a bad record a
:class:`ValueError`, an unknown process an :class:`AttributeError` (and a
:class:`KeyError`), a missing optional dependency an :class:`ImportError`.

Every message says what went wrong *and* what to do next. None of them ever contains a
credential: storage options are never formatted into a message, and an error raised by a
library underneath (s3fs, gcsfs, botocore, google-auth, requests, pydantic) is neither
chained nor quoted unfiltered; its type and a scrubbed summary of its text are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .capability import StoreReport

__all__ = [
    "AlreadyExistsError",
    "BackendConfigurationError",
    "BackendRegistrationError",
    "BucketNotFoundError",
    "ConfigurationError",
    "ConflictError",
    "CopyConflictError",
    "CorruptManifestError",
    "DestinationConflictError",
    "InvalidNameError",
    "InvalidRecordError",
    "ManagerConfigurationError",
    "ManifestError",
    "MissingDependencyError",
    "NotAFileError",
    "NotFoundError",
    "NothingFoundError",
    "PermissionDeniedError",
    "RevisionLimitError",
    "SaveRetriesExhaustedError",
    "SettingWarning",
    "StorageError",
    "TransactionClosedError",
    "TransferError",
    "TransientStorageError",
    "UnknownFieldError",
    "UnknownProcessError",
    "UnknownSchemeError",
    "UnsupportedFormatError",
    "UnsupportedStoreError",
]


class ManifestError(Exception):
    """Base class of every error raised by etl-manifests."""


# --- bad input from the caller -------------------------------------------------------


class InvalidRecordError(ManifestError, ValueError):
    """A record (or a batch of them) failed validation; nothing was changed.

    ``errors`` holds pydantic's structured error list when validation came from a model.
    """

    def __init__(self, message: str, errors: Iterable[object] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


class InvalidNameError(ManifestError, ValueError):
    """A process name, ETL version or key would be unsafe as part of a storage path."""


class UnknownProcessError(ManifestError, AttributeError, KeyError):
    """The name is not one of the manager's processes (the :class:`~etl_manifests.ETLProcess`
    members and the names declared with ``processes=`` or ``ETL_MANIFESTS_PROCESSES``).

    It is an :class:`AttributeError` because ``manager.extractr`` must behave like any
    other missing attribute (``hasattr``, ``getattr`` with a default), and a
    :class:`KeyError` because ``manager["extractr"]`` is a failed look-up. ``valid`` holds
    the declared names.
    """

    def __init__(self, name: str, valid: Iterable[str], suggestion: str | None = None) -> None:
        self.valid = sorted(str(v) for v in valid)
        hint = f"did you mean {suggestion!r}? " if suggestion else ""
        super().__init__(
            f"{name!r} is not a declared ETL process; {hint}use one of: {', '.join(self.valid)} "
            "(manager.extractor or manager.get('extractor')), or declare it with "
            "ManifestManager(..., processes=[...]), manager.declare_processes(...) or "
            "ETL_MANIFESTS_PROCESSES"
        )
        self.process_name = name
        self.suggestion = suggestion

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the message in quotes; keep it readable.
        return str(self.args[0])


class ManagerConfigurationError(ManifestError, ValueError):
    """``ManifestManager`` was constructed again with different arguments."""


# --- plugins and the backend registry --------------------------------------------------


class NothingFoundError(ManifestError, LookupError):
    """There was nothing to act on: the manifest named does not exist (no snapshot, no
    commit) under the root, or no record matched the selectors given. The command line
    exits with code 3 for it, so a script can tell it from success and from failure."""


class SettingWarning(UserWarning):
    """A setting that has no effect: an ``ETL_MANIFESTS_*`` variable (or ``.env`` entry)
    that no part of etl-manifests reads, or a plugin named in ``ETL_MANIFESTS_PLUGINS``
    that is not installed. Never an error: the work goes on without it. Each is issued
    once per process; filter it with the ``warnings`` module like any other."""


class UnknownSchemeError(ManifestError, ValueError):
    """No storage backend is registered for the URL scheme of a manifests root."""


class BackendRegistrationError(ManifestError, ValueError):
    """Two plugins claimed the same URL scheme, or a registration was malformed."""


class ConfigurationError(ManifestError, ValueError):
    """A setting (environment variable, ``.env`` entry or ``ETLConfig`` argument) is invalid.

    The message names the setting, where it was found and what is wrong with it, never
    its value, since settings may hold credentials; only a process name that breaks the
    naming rule is quoted. The command line treats it as a usage error (exit code 2).
    """


class BackendConfigurationError(ConfigurationError):
    """A root URL or storage options that the backend cannot use."""


class MissingDependencyError(ManifestError, ImportError):
    """An optional dependency needed by a storage backend is not installed.

    ``package`` is what to install (the backend's own requirement, such as s3fs);
    ``missing`` the module that failed to import, which may be one of its dependencies
    (aiohttp, botocore, ...); ``install_command`` installs everything the backend needs.
    """

    def __init__(
        self, scheme: str, package: str, extra: str | None, missing: str | None = None
    ) -> None:
        install = f"pip install 'etl-manifests[{extra}]'" if extra else f"pip install {package}"
        if missing is None or missing == package:
            what = f"the {package!r} package, which is not installed"
        else:
            what = (
                f"the {package!r} package and its dependencies, but {missing!r} cannot be "
                "imported (not installed, or an incompatible version)"
            )
        super().__init__(
            f"the {scheme}:// backend needs {what}; install it with: {install}",
            name=missing or package,
        )
        self.scheme = scheme
        self.package = package
        self.missing = missing or package
        self.install_command = install


# --- storage ---------------------------------------------------------------------------


class StorageError(ManifestError, OSError):
    """The storage backend failed in a way that is not a conflict."""


class NotFoundError(StorageError, FileNotFoundError):
    """The object (or its bucket) does not exist."""


class NotAFileError(NotFoundError):
    """The path names something that is not a regular file: a folder, a device such as
    ``/dev/null``, a FIFO or a socket. Nothing was read or recorded.

    A :class:`NotFoundError` because there is no file to record at that path (folders
    always raised that); only regular files have contents that hash the same twice.
    """


class BucketNotFoundError(NotFoundError):
    """The bucket (or container) named by the manifests root does not exist.

    Unlike a missing object, this is never "no manifest yet": a mistyped or deleted
    bucket must stop the job instead of making every file look new.
    """

    def __init__(self, message: str, bucket: str = "") -> None:
        super().__init__(message)
        self.bucket = bucket


class PermissionDeniedError(StorageError, PermissionError):
    """The store refused access; check credentials and the bucket's policy."""


class TransientStorageError(StorageError):
    """The store kept failing with retryable errors (throttling, 5xx, resets)."""


class TransferError(ManifestError, OSError):
    """Reading a source file or writing the downloaded copy failed: the server or store
    refused, the connection broke, or fewer bytes arrived than announced.

    Raised by the download and record helpers (:mod:`etl_manifests.tools`); nothing was
    recorded and no partial file was left under the destination's name.

    ``retryable`` says whether the failure was transient (HTTP 408, 425, 429, 5xx, a
    connection reset or cut short, a timeout), ``status`` is the HTTP status the server
    answered (if any), ``retry_after`` the seconds its ``Retry-After`` asked for (if any).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


class DestinationConflictError(ManifestError, FileExistsError):
    """Two different sources would be downloaded to one destination path.

    Raised by the download helpers before anything is written: nothing on disk or in
    the manifest changed. ``path`` is the destination, ``sources`` the two URLs (without
    credentials).
    """

    def __init__(self, message: str, path: str = "", sources: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.sources = list(sources)


class UnsupportedStoreError(StorageError, NotImplementedError):
    """The store does not enforce the conditional writes that saves depend on.

    Raised by the store capability check (:func:`etl_manifests.check_store` found a
    create over an existing key or a replace with a stale version accepted) and for a
    store that answers ``501 NotImplemented``. Nothing was written to any manifest.
    ``report`` holds the check's findings when the check raised it.
    """

    def __init__(self, message: str, report: StoreReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class ConflictError(ManifestError):
    """A conditional write failed: the stored version is no longer the one expected.

    Backends raise this; :meth:`Manifest.save` catches it, merges and retries.
    """


class AlreadyExistsError(ConflictError, FileExistsError):
    """A create-only write found an object already stored at the key."""


class SaveRetriesExhaustedError(ConflictError):
    """Other writers kept winning the race for longer than the retry budget.

    The caller's records are still in memory; calling ``save()`` again may succeed.
    """


class CopyConflictError(ManifestError, FileExistsError):
    """A copy's destination already holds the manifest with other content; nothing was
    written to it.

    ``differing`` lists the checksums stored on both sides with different records,
    ``only_in_destination`` those the destination holds and the source does not.
    """

    def __init__(
        self, location: str, differing: Iterable[str], only_in_destination: Iterable[str]
    ) -> None:
        self.location = location
        self.differing = sorted(differing)
        self.only_in_destination = sorted(only_in_destination)
        parts = []
        if self.differing:
            parts.append(f"{len(self.differing)} differing ({_some(self.differing)})")
        if self.only_in_destination:
            parts.append(
                f"{len(self.only_in_destination)} only in the destination "
                f"({_some(self.only_in_destination)})"
            )
        super().__init__(
            f"{location} holds records that a copy would overwrite or keep apart from the "
            f"source's: {' and '.join(parts)}. Nothing was written; see them with "
            "'etl-manifests compare', then copy with on_conflict='merge' (--on-conflict merge) "
            "to add the source's records and keep the destination's, or 'replace' to make "
            "the destination equal to the source"
        )


def _some(checksums: list[str], shown: int = 3) -> str:
    text = ", ".join(c[:12] for c in checksums[:shown])
    return text + (f" and {len(checksums) - shown} more" if len(checksums) > shown else "")


# --- stored manifests we cannot use ---------------------------------------------------


#: What to do about a damaged log entry or seal (the advice of their errors).
REPAIR_ADVICE = (
    "run `etl-manifests repair` on this manifest to see what is damaged and what "
    "setting it aside would lose, then `etl-manifests repair --apply`"
)


class CorruptManifestError(ManifestError, ValueError):
    """A stored manifest cannot be parsed or validated.

    It is never overwritten by this library. ``advice`` says what to do: by default,
    restore it from a backup or move it aside; for a damaged log entry or seal, run
    ``etl-manifests repair``, which says what setting it aside would lose.
    """

    def __init__(self, location: str, reason: str, *, advice: str | None = None) -> None:
        advice = advice or "restore it from a backup or move it aside, then load again"
        super().__init__(
            f"stored manifest {location} cannot be read: {reason}. It was left untouched; {advice}."
        )
        self.location = location
        self.reason = reason


class TransactionClosedError(ManifestError, RuntimeError):
    """A committed or discarded transaction was used again: open a new one."""


class RevisionLimitError(ManifestError, OverflowError):
    """A commit would raise ``metadata.revision`` past the largest a manifest may store.

    Only a stored revision set by hand (or by another program) gets there; nothing was
    written and the caller's records are still in memory.
    """


class UnknownFieldError(CorruptManifestError):
    """A stored manifest of a format version this release reads has fields it does not know.

    ``fields`` lists them (as ``metadata.shards``, ``records.<checksum>.colour``);
    ``newer_release`` says whether they look like fields a newer release of etl-manifests
    added (well-formed names that are no misspelling of a known field), rather than edits.
    """

    def __init__(self, location: str, format_version: int, fields: dict[str, str | None]) -> None:
        names = list(fields)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        typos = {name: known for name, known in fields.items() if known}
        if typos:
            advice = "; ".join(
                f"{name} looks like a misspelling of {known!r}"
                for name, known in list(typos.items())[:3]
            )
            advice += " (the file was edited by hand or by another program): fix the field names"
            newer = False
        elif all(_looks_like_a_field(name.rpartition(".")[2]) for name in names):
            advice = (
                "they look like fields that a newer release of etl-manifests added without "
                "changing the format version: upgrade etl-manifests, or, if no newer release "
                "writes this manifest, remove the fields"
            )
            newer = True
        else:
            advice = (
                "they are not names etl-manifests writes (edited by hand or by another "
                "program?): remove or rename them"
            )
            newer = False
        ManifestError.__init__(
            self,
            f"stored manifest {location} has fields that format version {format_version} "
            f"does not define: {shown}; {advice}. The file was left untouched.",
        )
        self.location = location
        self.reason = f"unknown fields: {shown}"
        self.fields = names
        self.newer_release = newer


def _looks_like_a_field(name: str) -> bool:
    return bool(name) and name.isascii() and name.isidentifier() and name == name.lower()


class UnsupportedFormatError(CorruptManifestError):
    """A stored manifest was written by a newer release in a format this one cannot read."""

    def __init__(self, location: str, found: int, supported: int) -> None:
        ManifestError.__init__(
            self,
            f"stored manifest {location} has format version {found}, but this release of "
            f"etl-manifests reads up to version {supported}; upgrade etl-manifests. "
            "The file was left untouched.",
        )
        self.location = location
        self.reason = f"format version {found} > {supported}"
        self.found = found
        self.supported = supported
