"""``ManifestManager``: the one entry point to every process's manifest.

``manager.extractor`` returns the extractor's :class:`Manifest`, created or loaded from
``{root_dir}/extractor_v{etl_version}.json`` on first access and the same object after
that. The storage backend is chosen from ``root_dir``'s URL scheme.

The processes a manager knows are the :class:`ETLProcess` members plus the names a
pipeline declares (``processes=[...]``, :meth:`ManifestManager.declare_processes`, or
``ETL_MANIFESTS_PROCESSES``). Any other name is an :class:`UnknownProcessError`, so a
misspelt ``manager.extractr`` can never create a manifest.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from .config import ETLConfig
from .errors import InvalidNameError, ManagerConfigurationError
from .model import Manifest, manifest_key
from .process import ETLProcess, parse_process, validate_process_name
from .registry import open_backend
from .retry import RetryPolicy
from .storage import StorageBackend

__all__ = ["ManifestManager"]

_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")


def _normalise_root(root_dir: str | os.PathLike[str]) -> str:
    root = os.fspath(root_dir)
    if "://" in root:
        return root.rstrip("/")
    return os.path.abspath(os.path.expanduser(root))


def _redact(root: str) -> str:
    return _USERINFO.sub(r"\1***@", root)


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
        processes: Iterable[str] | None = None,
    ) -> ManifestManager:
        """Return the manager, creating it on first call.

        :param root_dir: folder or URL holding the manifests (``/data/manifests``,
            ``s3://bucket/manifests``, ``gs://bucket/manifests``, ``memory://tests``).
        :param etl_version: the ETL version; part of every manifest's file name.
        :param storage_options: passed to the backend (s3fs/gcsfs options); ``None``
            takes them from :class:`ETLConfig` (``ETL_MANIFESTS_STORAGE_OPTIONS``).
        :param retry: how saves retry after conflicting with other writers.
        :param processes: process names to declare besides the :class:`ETLProcess`
            members (see :meth:`declare_processes`); ``None`` takes them from
            :class:`ETLConfig` (``ETL_MANIFESTS_PROCESSES``). Names given when the manager
            already exists are declared on it; declaring never creates a manifest.
        :raises ManagerConfigurationError: a manager with other arguments exists.
        :raises InvalidNameError: ``etl_version`` or a process name is unsafe in a file
            name, or a process name is one of the manager's own attributes.
        :raises UnknownSchemeError, MissingDependencyError: no usable backend for
            ``root_dir``'s scheme.
        """
        root = _normalise_root(root_dir)
        config = ETLConfig() if storage_options is None else None
        options = dict(config.storage_options if config is not None else storage_options or {})
        names = [] if processes is None else _check_names(processes)
        with cls._instance_lock:
            existing = cls._instance
            if existing is not None:
                if (existing.root_dir, existing.etl_version, existing.storage_options) != (
                    root,
                    etl_version,
                    options,
                ) or (retry is not None and retry != existing.retry):
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
            if processes is None:
                names = _check_names((config or ETLConfig()).processes)
            self = super().__new__(cls)
            self.root_dir = root
            self.etl_version = etl_version
            self.storage_options = options
            self.retry = retry
            self._backend = open_backend(root, options)
            self._manifests = {}
            self._processes = dict.fromkeys(ETLProcess)
            self._processes.update(dict.fromkeys(names))
            self._lock = threading.Lock()
            cls._instance = self
            return self

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
        its first save. All names are checked before any is declared.

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
                manifest = Manifest(proc, self.etl_version, self._backend, retry=self.retry)
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
            (self.root_dir, self.etl_version, self.storage_options, self.retry, self.processes),
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
    processes: tuple[str, ...] = (),
) -> ManifestManager:
    return ManifestManager(
        root_dir, etl_version, storage_options=storage_options, retry=retry, processes=processes
    )
