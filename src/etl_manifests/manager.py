"""``ManifestManager``: the one entry point to every process's manifest, per program.

``manager.extractor`` returns the extractor's :class:`Manifest`, created or loaded from
``{root_dir}/extractor_v{etl_version}.json`` on first access and the same object after
that. The storage backend is chosen from ``root_dir``'s URL scheme.

The manager is a :class:`~etl_manifests.ManifestStore` that exists once per Python
process: constructing it again with the same arguments returns it, with other ones
raises :class:`ManagerConfigurationError`. Everything else (declared processes, typo
protection, ``from_config``) is the store's. To hold two roots at once, use two
``ManifestStore`` objects.

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
from .errors import ManagerConfigurationError
from .policy import CheckpointPolicy
from .registry import redact_root as _redact
from .retry import RetryPolicy
from .store import ManifestStore, StoreSettings

__all__ = ["ManifestManager"]


class ManifestManager(ManifestStore):
    """Singleton factory and registry of :class:`Manifest` objects, one per process.

    Constructing it again with the same arguments returns the same object; with
    different ones it raises :class:`ManagerConfigurationError` (call
    :meth:`ManifestManager.reset` first, e.g. between tests).
    """

    _instance: ClassVar[ManifestManager | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

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

        The arguments are :class:`~etl_manifests.ManifestStore`'s. Process names given
        when the manager already exists are declared on it; declaring never creates a
        manifest.

        :raises ManagerConfigurationError: a manager with other arguments exists.
        :raises InvalidNameError: ``etl_version`` is not a string, or is unsafe in a file
            name.
        :raises BackendConfigurationError: ``root_dir`` is empty, only a scheme
            (``s3://``), or otherwise unusable; ``storage_options`` is not a mapping.
        :raises UnknownSchemeError, MissingDependencyError: no usable backend for
            ``root_dir``'s scheme.
        """
        settings = StoreSettings.resolve(
            cls,
            root_dir,
            etl_version,
            storage_options=storage_options,
            retry=retry,
            checkpoint=checkpoint,
            processes=processes,
        )
        with cls._instance_lock:
            existing = cls._instance
            if existing is not None:
                if (
                    (existing.root_dir, existing.etl_version, existing.storage_options)
                    != (settings.root_dir, settings.etl_version, settings.storage_options)
                    or (retry is not None and retry != existing.retry)
                    or settings.checkpoint != existing.checkpoint
                ):
                    raise ManagerConfigurationError(
                        f"a ManifestManager for {_redact(existing.root_dir)} "
                        f"(ETL v{existing.etl_version}) already exists and cannot be "
                        f"re-created for {_redact(settings.root_dir)} (ETL v{etl_version}) "
                        "or with other options; reuse it, or call ManifestManager.reset() "
                        "first"
                    )
                if processes is not None:
                    existing._declare(settings.processes)
                return existing
            self = super().__new__(cls)
            self._open(settings)
            cls._instance = self
            return self

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
        # Everything happened in __new__, which may have returned the existing manager:
        # setting it up again here would drop its manifests.
        pass

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

    def __copy__(self) -> ManifestManager:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ManifestManager:
        return self


def _renew_instance_lock(cls: type[ManifestManager]) -> None:
    # A thread that did not survive the fork may have been constructing the manager.
    cls._instance_lock = renewed(cls._instance_lock)


register_after_fork(ManifestManager, _renew_instance_lock)
