"""etl-manifests: crash-safe, concurrency-safe manifests of downloaded files for ETL jobs.

Quick start::

    from etl_manifests import ETLConfig, ManifestManager

    config = ETLConfig()
    manager = ManifestManager(root_dir=config.get_manifests_dir(), etl_version=config.version)
    manager.extractor.add_record({"checksum": "...", "filename": "a.gz", "filepath": "/data/a.gz"})
"""

from __future__ import annotations

from .config import ETLConfig, setting_sources
from .errors import (
    AlreadyExistsError,
    BackendConfigurationError,
    BackendRegistrationError,
    ConfigurationError,
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
)
from .hookspecs import RegisterBackend, hookimpl
from .manager import ManifestManager
from .metadata import FORMAT_VERSION, ManifestMetadata
from .model import Manifest
from .process import ETLProcess, validate_process_name
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
    "ConfigurationError",
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
    "TransientStorageError",
    "UnknownProcessError",
    "UnknownSchemeError",
    "UnsupportedFormatError",
    "__version__",
    "hookimpl",
    "open_backend",
    "setting_sources",
    "validate_process_name",
]
