"""Every error etl-manifests raises, in one hierarchy.

Catch :class:`ManifestError` to handle anything this library raises. Each class also
inherits the builtin exception it resembles, so code written against the standard library
keeps working: a missing object is a :class:`FileNotFoundError`, a bad record a
:class:`ValueError`, an unknown process an :class:`AttributeError` (and a
:class:`KeyError`), a missing optional dependency an :class:`ImportError`.

Every message says what went wrong *and* what to do next. None of them ever contains a
credential: storage options are never formatted into a message.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "AlreadyExistsError",
    "BackendConfigurationError",
    "BackendRegistrationError",
    "ConfigurationError",
    "ConflictError",
    "CorruptManifestError",
    "InvalidNameError",
    "InvalidRecordError",
    "ManagerConfigurationError",
    "ManifestError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "SaveRetriesExhaustedError",
    "StorageError",
    "TransientStorageError",
    "UnknownProcessError",
    "UnknownSchemeError",
    "UnsupportedFormatError",
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


class ConfigurationError(ManifestError, ValueError):
    """A setting read by :class:`~etl_manifests.ETLConfig` (an ``ETL_MANIFESTS_*``
    environment variable or a line of the ``.env`` file) cannot be used. The message names
    the variable and where it was found, never its value (it may hold credentials)."""


# --- plugins and the backend registry --------------------------------------------------


class UnknownSchemeError(ManifestError, ValueError):
    """No storage backend is registered for the URL scheme of a manifests root."""


class BackendRegistrationError(ManifestError, ValueError):
    """Two plugins claimed the same URL scheme, or a registration was malformed."""


class BackendConfigurationError(ManifestError, ValueError):
    """A root URL or storage options that the backend cannot use."""


class MissingDependencyError(ManifestError, ImportError):
    """An optional dependency needed by a storage backend is not installed."""

    def __init__(self, scheme: str, package: str, extra: str | None) -> None:
        install = f"pip install 'etl-manifests[{extra}]'" if extra else f"pip install {package}"
        super().__init__(
            f"the {scheme}:// backend needs the {package!r} package, which is not installed; "
            f"install it with: {install}",
            name=package,
        )
        self.scheme = scheme
        self.package = package
        self.install_command = install


# --- storage ---------------------------------------------------------------------------


class StorageError(ManifestError, OSError):
    """The storage backend failed in a way that is not a conflict."""


class NotFoundError(StorageError, FileNotFoundError):
    """The object (or its bucket) does not exist."""


class PermissionDeniedError(StorageError, PermissionError):
    """The store refused access; check credentials and the bucket's policy."""


class TransientStorageError(StorageError):
    """The store kept failing with retryable errors (throttling, 5xx, resets)."""


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


# --- stored manifests we cannot use ---------------------------------------------------


class CorruptManifestError(ManifestError, ValueError):
    """A stored manifest cannot be parsed or validated.

    It is never overwritten by this library: repair or move it, then load again.
    """

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(
            f"stored manifest {location} cannot be read: {reason}. It was left untouched; "
            "restore it from a backup or move it aside, then load again."
        )
        self.location = location
        self.reason = reason


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
