"""``ManifestManager``: the one entry point to every process's manifest.

``manager.extractor`` returns the extractor's :class:`Manifest`, created or loaded from
``{root_dir}/extractor_v{etl_version}.json`` on first access and the same object after
that. The storage backend is chosen from ``root_dir``'s URL scheme.

The processes a manager knows are the :class:`ETLProcess` members plus the names a
pipeline declares (``processes=[...]``, :meth:`ManifestManager.declare_processes`, or
``ETL_MANIFESTS_PROCESSES``). Any other name is an :class:`UnknownProcessError`, so a
misspelt ``manager.extractr`` can never create a manifest.

In a child made by ``os.fork()`` the manager, its manifests and its backend stay usable:
``ManifestManager(...)`` with the same arguments returns the inherited manager, whose
locks and connections are renewed in the child (see :mod:`etl_manifests._forksafe`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from ._forksafe import register_after_fork, renewed
from .config import ETLConfig
from .errors import BackendConfigurationError, InvalidNameError, ManagerConfigurationError
from .model import Manifest, manifest_key
from .policy import CheckpointPolicy
from .process import ETLProcess, parse_process, validate_process_name
from .registry import normalise_root, open_backend
from .registry import redact_root as _redact
from .retry import RetryPolicy
from .storage import StorageBackend

__all__ = ["ManifestManager"]


def _options(storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    if storage_options is None:
        return {}
    if not isinstance(storage_options, Mapping):
        raise BackendConfigurationError(
            "storage_options must be a mapping of option names to values, not "
            f"{type(storage_options).__name__}"
        )
    return dict(storage_options)


class ManifestManager:
    """Singleton factory and registry of :class:`Manifest` objects, one per process.

    Constructing it again with the same arguments returns the same object; with
    different ones it raises :class:`ManagerConfigurationError` (call
    :meth:`ManifestManager.reset` first, e.g. between tests).
    """

    _instance: ClassVar[ManifestManager | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    root_dir: str
    etl_version: str
    storage_options: dict[str, Any]
    retry: RetryPolicy | None
    checkpoint: CheckpointPolicy
    _backend: StorageBackend
    _manifests: dict[str, Manifest]
    _processes: dict[str, None]
    _lock: threading.Lock

    def __new__(
        cls,
        root_dir: str | os.PathLike[str],
        etl_version: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        checkpoint: CheckpointPolicy | None = None,
        processes: Iterable[str] | None = None,
    ) -> ManifestManager:
        """Return the manager, creating it on first call.

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
            :class:`ETLConfig` (``ETL_MANIFESTS_PROCESSES``). Names given when the manager
            already exists are declared on it; declaring never creates a manifest.
        :raises ManagerConfigurationError: a manager with other arguments exists.
        :raises InvalidNameError: ``etl_version`` is not a string, or is unsafe in a file
            name.
        :raises BackendConfigurationError: ``root_dir`` is empty, only a scheme
            (``s3://``), or otherwise unusable; ``storage_options`` is not a mapping.
        :raises UnknownSchemeError, MissingDependencyError: no usable backend for
            ``root_dir``'s scheme.
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
        names = _check_names(
            settings.processes if processes is None and settings else processes or ()
        )
        with cls._instance_lock:
            existing = cls._instance
            if existing is not None:
                if (
                    (existing.root_dir, existing.etl_version, existing.storage_options)
                    != (
                        root,
                        etl_version,
                        options,
                    )
                    or (retry is not None and retry != existing.retry)
                    or policy != existing.checkpoint
                ):
                    raise ManagerConfigurationError(
                        f"a ManifestManager for {_redact(existing.root_dir)} "
                        f"(ETL v{existing.etl_version}) already exists and cannot be "
                        f"re-created for {_redact(root)} (ETL v{etl_version}) or with other "
                        "options; reuse it, or call ManifestManager.reset() first"
                    )
                if processes is not None:
                    existing._declare(names)
                return existing
            # Validate the version and the names before touching storage.
            manifest_key(ETLProcess.EXTRACTOR, etl_version)
            self = super().__new__(cls)
            self.root_dir = root
            self.etl_version = etl_version
            self.storage_options = options
            self.retry = retry
            self.checkpoint = policy
            self._backend = open_backend(root, options)
            self._manifests = {}
            self._processes = dict.fromkeys(ETLProcess)
            self._processes.update(dict.fromkeys(names))
            self._lock = threading.Lock()
            register_after_fork(self, ManifestManager._after_fork)
            cls._instance = self
            return self

    def _after_fork(self) -> None:
        # A thread that did not survive the fork may have been creating a manifest.
        self._lock = renewed(self._lock)

    @classmethod
    def from_config(
        cls, config: ETLConfig | None = None, *, retry: RetryPolicy | None = None
    ) -> ManifestManager:
        """The manager for everything ``config`` holds: root, ETL version, storage options
        and checkpoint policy.

        The one way to hand the manager a whole :class:`ETLConfig`, including one built
        or changed in code (``ETLConfig(storage_options={...})``): nothing is read from
        the environment again. ``None`` reads ``ETLConfig()`` from the environment.
        Same singleton rules as the constructor.
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

    @classmethod
    def reset(cls) -> None:
        """Forget the singleton and its manifests (for tests, or to switch roots).

        Manifest objects handed out before stay usable but are no longer shared.
        """
        with cls._instance_lock:
            if cls._instance is not None:
                cls._instance._backend.close()
            cls._instance = None

    @classmethod
    def instance(cls) -> ManifestManager | None:
        """The current manager, if one was created."""
        return cls._instance

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
        """Declare more process names, so that ``manager.<name>`` and ``get(name)`` work.

        Declaring creates nothing in storage and is idempotent; a manifest is created by
        its first commit. All names are checked before any is declared.

        :raises InvalidNameError: a name breaks the rule of
            :func:`~etl_manifests.validate_process_name`, or is one of the
            manager's own attributes (``get``, ``backend``, ...), which would hide it.
        """
        self._declare(_check_names(names))

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
        # Unpickling (e.g. in a worker process) yields that process's singleton, with the
        # processes declared here declared there too.
        return (
            _restore,
            (
                self.root_dir,
                self.etl_version,
                self.storage_options,
                self.retry,
                self.checkpoint,
                self.processes,
            ),
        )

    def __copy__(self) -> ManifestManager:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ManifestManager:
        return self

    def __repr__(self) -> str:
        root = _redact(self.root_dir)
        return f"ManifestManager(root_dir={root!r}, etl_version={self.etl_version!r})"

    def _declare(self, names: Iterable[str]) -> None:
        with self._lock:
            self._processes.update(dict.fromkeys(names))


def _renew_instance_lock(cls: type[ManifestManager]) -> None:
    # A thread that did not survive the fork may have been constructing the manager.
    cls._instance_lock = renewed(cls._instance_lock)


register_after_fork(ManifestManager, _renew_instance_lock)


# Names that manager.<name> would resolve to the manager's own attributes, not a manifest.
_RESERVED = frozenset(
    name
    for name in (*dir(ManifestManager), *ManifestManager.__annotations__)
    if not name.startswith("_")
)


def _check_names(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):
        # A lone string would otherwise be declared letter by letter.
        names = [names]
    checked = [validate_process_name(name) for name in names]
    for name in checked:
        if name in _RESERVED:
            raise InvalidNameError(
                f"{name!r} cannot name a process: manager.{name} is the manager's own "
                "attribute and would hide the manifest; choose another name"
            )
    return checked


def _restore(
    root_dir: str,
    etl_version: str,
    storage_options: dict[str, Any],
    retry: RetryPolicy | None,
    checkpoint: CheckpointPolicy,
    processes: tuple[str, ...] = (),
) -> ManifestManager:
    return ManifestManager(
        root_dir,
        etl_version,
        storage_options=storage_options,
        retry=retry,
        checkpoint=checkpoint,
        processes=processes,
    )
