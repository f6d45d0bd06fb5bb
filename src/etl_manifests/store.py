"""``ManifestStore``: every process's manifest under one root, as a plain object.

``store.extractor`` returns the extractor's :class:`Manifest`, created or loaded from
``{root_dir}/extractor_v{etl_version}.json`` on first access and the same object after
that. The storage backend is chosen from ``root_dir``'s URL scheme.

Construct as many stores as you like: each one is independent, with its own backend and
its own manifests, so one program can read one root and write another (see
:func:`~etl_manifests.copy_manifests`). :class:`~etl_manifests.ManifestManager` is the
same machinery as a per-process singleton.

The processes a store knows are the :class:`ETLProcess` members plus the names a
pipeline declares (``processes=[...]``, :meth:`ManifestStore.declare_processes`, or
``ETL_MANIFESTS_PROCESSES``). Any other name is an :class:`UnknownProcessError`, so a
misspelt ``store.extractr`` can never create a manifest.

In a child made by ``os.fork()`` a store, its manifests and its backend stay usable: its
lock and the backend's connections are renewed in the child (see
:mod:`etl_manifests._forksafe`). A store pickles as its settings and unpickles as a new
store on the same root.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from ._forksafe import register_after_fork, renewed
from .catalog import ManifestRef, list_manifests
from .config import ETLConfig
from .errors import BackendConfigurationError, InvalidNameError
from .model import Manifest, manifest_key
from .policy import CheckpointPolicy
from .process import ETLProcess, parse_process, validate_process_name
from .registry import normalise_root, open_backend
from .registry import redact_root as _redact
from .retry import RetryPolicy
from .storage import StorageBackend

__all__ = ["ManifestStore"]


@dataclass(frozen=True)
class StoreSettings:
    """A store's arguments once checked and completed from :class:`ETLConfig`."""

    root_dir: str
    etl_version: str
    storage_options: dict[str, Any]
    retry: RetryPolicy | None
    checkpoint: CheckpointPolicy
    processes: tuple[str, ...]

    @classmethod
    def resolve(
        cls,
        owner: type[ManifestStore],
        root_dir: str | os.PathLike[str],
        etl_version: str,
        *,
        storage_options: Mapping[str, Any] | None,
        retry: RetryPolicy | None,
        checkpoint: CheckpointPolicy | None,
        processes: Iterable[str] | None,
    ) -> StoreSettings:
        """Check the arguments of ``owner(...)``; ``None`` ones come from ``ETLConfig()``.

        Touches no storage.
        """
        if not isinstance(etl_version, str):
            raise InvalidNameError(
                f"etl_version must be a string such as '1.0.0', not {type(etl_version).__name__}"
            )
        root = normalise_root(root_dir)
        settings = (
            ETLConfig()
            if storage_options is None or checkpoint is None or processes is None
            else None
        )
        options = _options(
            settings.storage_options if settings and storage_options is None else storage_options
        )
        policy = checkpoint or (settings.checkpoint if settings else CheckpointPolicy())
        names = check_names(
            settings.processes if processes is None and settings else processes or (), owner
        )
        return cls(root, etl_version, options, retry, policy, tuple(names))


class ManifestStore:
    """Factory and registry of :class:`Manifest` objects, one per process, on one root.

    Every construction makes a new, independent store (for the one-per-program form,
    use :class:`~etl_manifests.ManifestManager`). A manifest handed out by ``get`` is the
    same object on every call on this store; two stores on the same root hold two
    objects, which stay in step through storage (:meth:`Manifest.refresh`) like any
    two writers.
    """

    root_dir: str
    etl_version: str
    storage_options: dict[str, Any]
    retry: RetryPolicy | None
    checkpoint: CheckpointPolicy
    _backend: StorageBackend
    _manifests: dict[str, Manifest]
    _processes: dict[str, None]
    _lock: threading.Lock

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        etl_version: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        checkpoint: CheckpointPolicy | None = None,
        processes: Iterable[str] | None = None,
    ) -> None:
        """Open the store; nothing is read or written until a manifest is asked for.

        :param root_dir: folder or URL holding the manifests (``/data/manifests``,
            ``s3://bucket/manifests``, ``gs://bucket/manifests``, ``memory://tests``).
        :param etl_version: the ETL version; part of every manifest's file name.
        :param storage_options: passed to the backend (s3fs/gcsfs options); ``None``
            takes them from :class:`ETLConfig` (``ETL_MANIFESTS_STORAGE_OPTIONS``).
        :param retry: how commits retry when the log closes under them.
        :param checkpoint: when the log is folded into the snapshot; ``None`` takes it
            from :class:`ETLConfig` (``ETL_MANIFESTS_CHECKPOINT``).
        :param processes: process names to declare besides the :class:`ETLProcess`
            members (see :meth:`declare_processes`); ``None`` takes them from
            :class:`ETLConfig` (``ETL_MANIFESTS_PROCESSES``).
        :raises InvalidNameError: ``etl_version`` is not a string, or is unsafe in a file
            name; a process name is invalid.
        :raises BackendConfigurationError: ``root_dir`` is empty, only a scheme
            (``s3://``), or otherwise unusable; ``storage_options`` is not a mapping.
        :raises UnknownSchemeError, MissingDependencyError: no usable backend for
            ``root_dir``'s scheme.
        """
        self._open(
            StoreSettings.resolve(
                type(self),
                root_dir,
                etl_version,
                storage_options=storage_options,
                retry=retry,
                checkpoint=checkpoint,
                processes=processes,
            )
        )

    def _open(self, settings: StoreSettings) -> None:
        """Set the store up on ``settings`` (the one place that opens a backend)."""
        # Validate the version before touching storage.
        manifest_key(ETLProcess.EXTRACTOR, settings.etl_version)
        self.root_dir = settings.root_dir
        self.etl_version = settings.etl_version
        self.storage_options = settings.storage_options
        self.retry = settings.retry
        self.checkpoint = settings.checkpoint
        self._backend = open_backend(settings.root_dir, settings.storage_options)
        self._manifests = {}
        self._processes = dict.fromkeys(ETLProcess)
        self._processes.update(dict.fromkeys(settings.processes))
        self._lock = threading.Lock()
        register_after_fork(self, ManifestStore._after_fork)

    def _after_fork(self) -> None:
        # A thread that did not survive the fork may have been creating a manifest.
        self._lock = renewed(self._lock)

    @classmethod
    def from_config(
        cls, config: ETLConfig | None = None, *, retry: RetryPolicy | None = None
    ) -> Self:
        """The store (or manager) for everything ``config`` holds: root, ETL version,
        storage options, checkpoint policy and declared processes.

        The one way to hand over a whole :class:`ETLConfig`, including one built or
        changed in code (``ETLConfig(storage_options={...})``): nothing is read from
        the environment again. ``None`` reads ``ETLConfig()`` from the environment.
        """
        if config is None:
            config = ETLConfig()
        elif not isinstance(config, ETLConfig):
            raise BackendConfigurationError(
                f"from_config() takes an ETLConfig, not {type(config).__name__}"
            )
        return cls(
            config.get_manifests_dir(),
            config.version,
            storage_options=config.storage_options,
            retry=retry,
            checkpoint=config.checkpoint,
            processes=config.processes,
        )

    @property
    def backend(self) -> StorageBackend:
        """The storage backend chosen from ``root_dir``'s scheme."""
        return self._backend

    @property
    def processes(self) -> tuple[str, ...]:
        """The declared process names: the :class:`ETLProcess` members first, then the
        pipeline's own in the order they were declared."""
        return tuple(self._processes)

    def declare_processes(self, *names: str) -> None:
        """Declare more process names, so that ``store.<name>`` and ``get(name)`` work.

        Declaring creates nothing in storage and is idempotent; a manifest is created by
        its first commit. All names are checked before any is declared.

        :raises InvalidNameError: a name breaks the rule of
            :func:`~etl_manifests.validate_process_name`, or is one of the
            store's own attributes (``get``, ``backend``, ...), which would hide it.
        """
        self._declare(check_names(names, type(self)))

    def get(self, process: ETLProcess | str) -> Manifest:
        """The manifest of ``process`` (the same object on every call).

        :raises UnknownProcessError: ``process`` is not declared; the message lists the
            declared names.
        :raises CorruptManifestError: the stored manifest cannot be read.
        """
        proc = parse_process(process, self._processes)
        with self._lock:
            manifest = self._manifests.get(proc)
            if manifest is None:
                manifest = Manifest(
                    proc,
                    self.etl_version,
                    self._backend,
                    retry=self.retry,
                    checkpoint=self.checkpoint,
                )
                self._manifests[proc] = manifest
            return manifest

    def list_manifests(self) -> list[ManifestRef]:
        """The manifests stored under this root, of every process and ETL version (not
        only the declared ones, nor only this store's version), sorted.

        Reads one listing of the root; see :func:`~etl_manifests.list_manifests`.
        """
        return list_manifests(self._backend)

    def close(self) -> None:
        """Release the backend's connections. The store stays usable (it reconnects)."""
        self._backend.close()

    def __getitem__(self, process: ETLProcess | str) -> Manifest:
        return self.get(process)

    def __getattr__(self, name: str) -> Manifest:
        # Only called when normal look-up fails. Private and dunder names are never
        # intercepted, so copy, pickle, hasattr and debuggers see ordinary behaviour.
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._processes})

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickling (e.g. in a worker process) opens a new store on the same root, with
        # the processes declared here declared there too. copy.copy and copy.deepcopy
        # go the same way: a copy is an independent store with the same settings.
        return (
            _restore,
            (
                type(self),
                self.root_dir,
                self.etl_version,
                self.storage_options,
                self.retry,
                self.checkpoint,
                self.processes,
            ),
        )

    def __repr__(self) -> str:
        root = _redact(self.root_dir)
        return f"{type(self).__name__}(root_dir={root!r}, etl_version={self.etl_version!r})"

    def _declare(self, names: Iterable[str]) -> None:
        with self._lock:
            self._processes.update(dict.fromkeys(names))


def _options(storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    if storage_options is None:
        return {}
    if not isinstance(storage_options, Mapping):
        raise BackendConfigurationError(
            "storage_options must be a mapping of option names to values, not "
            f"{type(storage_options).__name__}"
        )
    return dict(storage_options)


def _reserved(owner: type[ManifestStore]) -> frozenset[str]:
    # Names that store.<name> would resolve to the class's own attributes, not a manifest.
    return frozenset(
        name
        for klass in owner.__mro__
        for name in (*vars(klass), *getattr(klass, "__annotations__", {}))
        if not name.startswith("_")
    )


def check_names(names: Iterable[str], owner: type[ManifestStore]) -> list[str]:
    """Validate process names for ``owner``; a name that ``owner`` uses as an attribute
    is refused, since ``store.<name>`` would never reach the manifest."""
    if isinstance(names, str):
        # A lone string would otherwise be declared letter by letter.
        names = [names]
    checked = [validate_process_name(name) for name in names]
    reserved = _reserved(owner)
    for name in checked:
        if name in reserved:
            noun = owner.__name__
            raise InvalidNameError(
                f"{name!r} cannot name a process: {noun}.{name} is the {noun}'s own "
                "attribute and would hide the manifest; choose another name"
            )
    return checked


def _restore(
    cls: type[ManifestStore],
    root_dir: str,
    etl_version: str,
    storage_options: dict[str, Any],
    retry: RetryPolicy | None,
    checkpoint: CheckpointPolicy,
    processes: tuple[str, ...] = (),
) -> ManifestStore:
    return cls(
        root_dir,
        etl_version,
        storage_options=storage_options,
        retry=retry,
        checkpoint=checkpoint,
        processes=processes,
    )
