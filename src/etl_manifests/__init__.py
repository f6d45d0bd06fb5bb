"""etl-manifests: crash-safe, concurrency-safe manifests of downloaded files for ETL jobs.

Quick start::

    from etl_manifests import ETLConfig, ManifestManager

    config = ETLConfig()
    manager = ManifestManager(root_dir=config.get_manifests_dir(), etl_version=config.version)
    manager.extractor.add_record({"checksum": "...", "filename": "a.gz", "filepath": "/data/a.gz"})
"""

from __future__ import annotations

from .capability import StoreReport, check_store, ensure_store_checked
from .commitlog import CommitInfo
from .config import ETLConfig
from .errors import (
    AlreadyExistsError,
    BackendConfigurationError,
    BackendRegistrationError,
    BucketNotFoundError,
    ConflictError,
    CorruptManifestError,
    InvalidNameError,
    InvalidRecordError,
    ManagerConfigurationError,
    ManifestError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    SaveRetriesExhaustedError,
    StorageError,
    TransientStorageError,
    UnknownProcessError,
    UnknownSchemeError,
    UnsupportedFormatError,
    UnsupportedStoreError,
)
from .hookspecs import RegisterBackend, hookimpl
from .manager import ManifestManager
from .metadata import FORMAT_VERSION, ManifestMetadata
from .model import Manifest
from .policy import CheckpointPolicy
from .process import ETLProcess
from .record import ManifestRecord
from .registry import open_backend
from .retry import RetryPolicy
from .storage import ABSENT, Blob, ObjectInfo, StorageBackend

__version__ = "0.1.0"

__all__ = [
    "ABSENT",
    "FORMAT_VERSION",
    "AlreadyExistsError",
    "BackendConfigurationError",
    "BackendRegistrationError",
    "Blob",
    "BucketNotFoundError",
    "CheckpointPolicy",
    "CommitInfo",
    "ConflictError",
    "CorruptManifestError",
    "ETLConfig",
    "ETLProcess",
    "InvalidNameError",
    "InvalidRecordError",
    "ManagerConfigurationError",
    "Manifest",
    "ManifestError",
    "ManifestManager",
    "ManifestMetadata",
    "ManifestRecord",
    "MissingDependencyError",
    "NotFoundError",
    "ObjectInfo",
    "PermissionDeniedError",
    "RegisterBackend",
    "RetryPolicy",
    "SaveRetriesExhaustedError",
    "StorageBackend",
    "StorageError",
    "StoreReport",
    "TransientStorageError",
    "UnknownProcessError",
    "UnknownSchemeError",
    "UnsupportedFormatError",
    "UnsupportedStoreError",
    "__version__",
    "check_store",
    "ensure_store_checked",
    "hookimpl",
    "open_backend",
]
