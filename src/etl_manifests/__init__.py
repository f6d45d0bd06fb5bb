"""etl-manifests: crash-safe, concurrency-safe manifests of downloaded files for ETL jobs.

Quick start::

    from etl_manifests import ETLConfig, ManifestManager

    config = ETLConfig()  # from ETL_MANIFESTS_* variables, or set fields in code
    manager = ManifestManager.from_config(config)
    manager.extractor.add_record({"checksum": "...", "filename": "a.gz", "filepath": "/data/a.gz"})
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_names

if TYPE_CHECKING:
    from ._forksafe import register_after_fork
    from .capability import StoreReport, check_store, ensure_store_checked
    from .catalog import ManifestRef, list_manifests
    from .commitlog import CommitInfo
    from .config import ETLConfig, setting_sources
    from .errors import (
        AlreadyExistsError,
        BackendConfigurationError,
        BackendRegistrationError,
        BucketNotFoundError,
        ConfigurationError,
        ConflictError,
        CopyConflictError,
        CorruptManifestError,
        DestinationConflictError,
        InvalidNameError,
        InvalidRecordError,
        ManagerConfigurationError,
        ManifestError,
        MissingDependencyError,
        NotAFileError,
        NotFoundError,
        NothingFoundError,
        PermissionDeniedError,
        RevisionLimitError,
        SaveRetriesExhaustedError,
        SettingWarning,
        StorageError,
        TransactionClosedError,
        TransferError,
        TransientStorageError,
        UnknownFieldError,
        UnknownProcessError,
        UnknownSchemeError,
        UnsupportedFormatError,
        UnsupportedStoreError,
    )
    from .hookspecs import RegisterBackend, hookimpl
    from .manager import ManifestManager
    from .metadata import FORMAT_VERSION, MAX_REVISION, ManifestMetadata
    from .model import Manifest
    from .policy import CheckpointPolicy
    from .process import ETLProcess, validate_process_name
    from .record import ManifestRecord
    from .registry import open_backend
    from .repair import Damage, RepairReport, repair_manifest
    from .retry import RetryPolicy
    from .storage import ABSENT, Blob, ObjectInfo, StorageBackend
    from .store import ManifestStore
    from .tools import (
        CompareReport,
        CopyReport,
        CopyStatus,
        Fetcher,
        FetchReport,
        FetchResult,
        FetchStatus,
        TransferRetry,
        VerifyReport,
        compare_manifests,
        copy_manifests,
        fetch_many,
        forget,
        record_file,
        record_files,
    )
    from .tools.fetch import fetch
    from .tools.verify import verify
    from .transaction import Transaction

# Every public name and the module that defines it, imported on first use: importing the
# package costs what a command-line call or a pytest plugin can afford; the names pull in
# pydantic, fsspec and the rest only when a caller touches them.
_LAZY: dict[str, str] = {
    "ABSENT": ".storage",
    "AlreadyExistsError": ".errors",
    "BackendConfigurationError": ".errors",
    "BackendRegistrationError": ".errors",
    "Blob": ".storage",
    "BucketNotFoundError": ".errors",
    "CheckpointPolicy": ".policy",
    "CommitInfo": ".commitlog",
    "CompareReport": ".tools",
    "ConfigurationError": ".errors",
    "ConflictError": ".errors",
    "CopyConflictError": ".errors",
    "CopyReport": ".tools",
    "CopyStatus": ".tools",
    "CorruptManifestError": ".errors",
    "Damage": ".repair",
    "DestinationConflictError": ".errors",
    "ETLConfig": ".config",
    "ETLProcess": ".process",
    "FORMAT_VERSION": ".metadata",
    "FetchReport": ".tools",
    "FetchResult": ".tools",
    "FetchStatus": ".tools",
    "Fetcher": ".tools",
    "InvalidNameError": ".errors",
    "InvalidRecordError": ".errors",
    "MAX_REVISION": ".metadata",
    "ManagerConfigurationError": ".errors",
    "Manifest": ".model",
    "ManifestError": ".errors",
    "ManifestManager": ".manager",
    "ManifestMetadata": ".metadata",
    "ManifestRecord": ".record",
    "ManifestRef": ".catalog",
    "ManifestStore": ".store",
    "MissingDependencyError": ".errors",
    "NotAFileError": ".errors",
    "NotFoundError": ".errors",
    "NothingFoundError": ".errors",
    "ObjectInfo": ".storage",
    "PermissionDeniedError": ".errors",
    "RegisterBackend": ".hookspecs",
    "RepairReport": ".repair",
    "RetryPolicy": ".retry",
    "RevisionLimitError": ".errors",
    "SaveRetriesExhaustedError": ".errors",
    "SettingWarning": ".errors",
    "StorageBackend": ".storage",
    "StorageError": ".errors",
    "StoreReport": ".capability",
    "Transaction": ".transaction",
    "TransactionClosedError": ".errors",
    "TransferError": ".errors",
    "TransferRetry": ".tools",
    "TransientStorageError": ".errors",
    "UnknownFieldError": ".errors",
    "UnknownProcessError": ".errors",
    "UnknownSchemeError": ".errors",
    "UnsupportedFormatError": ".errors",
    "UnsupportedStoreError": ".errors",
    "VerifyReport": ".tools",
    "check_store": ".capability",
    "compare_manifests": ".tools",
    "copy_manifests": ".tools",
    "ensure_store_checked": ".capability",
    "fetch": ".tools.fetch",
    "fetch_many": ".tools",
    "forget": ".tools",
    "hookimpl": ".hookspecs",
    "list_manifests": ".catalog",
    "open_backend": ".registry",
    "record_file": ".tools",
    "record_files": ".tools",
    "register_after_fork": "._forksafe",
    "repair_manifest": ".repair",
    "setting_sources": ".config",
    "validate_process_name": ".process",
    "verify": ".tools.verify",
}

__version__ = "0.1.0"

__all__ = [
    "ABSENT",
    "FORMAT_VERSION",
    "MAX_REVISION",
    "AlreadyExistsError",
    "BackendConfigurationError",
    "BackendRegistrationError",
    "Blob",
    "BucketNotFoundError",
    "CheckpointPolicy",
    "CommitInfo",
    "CompareReport",
    "ConfigurationError",
    "ConflictError",
    "CopyConflictError",
    "CopyReport",
    "CopyStatus",
    "CorruptManifestError",
    "Damage",
    "DestinationConflictError",
    "ETLConfig",
    "ETLProcess",
    "FetchReport",
    "FetchResult",
    "FetchStatus",
    "Fetcher",
    "InvalidNameError",
    "InvalidRecordError",
    "ManagerConfigurationError",
    "Manifest",
    "ManifestError",
    "ManifestManager",
    "ManifestMetadata",
    "ManifestRecord",
    "ManifestRef",
    "ManifestStore",
    "MissingDependencyError",
    "NotAFileError",
    "NotFoundError",
    "NothingFoundError",
    "ObjectInfo",
    "PermissionDeniedError",
    "RegisterBackend",
    "RepairReport",
    "RetryPolicy",
    "RevisionLimitError",
    "SaveRetriesExhaustedError",
    "SettingWarning",
    "StorageBackend",
    "StorageError",
    "StoreReport",
    "Transaction",
    "TransactionClosedError",
    "TransferError",
    "TransferRetry",
    "TransientStorageError",
    "UnknownFieldError",
    "UnknownProcessError",
    "UnknownSchemeError",
    "UnsupportedFormatError",
    "UnsupportedStoreError",
    "VerifyReport",
    "__version__",
    "check_store",
    "compare_manifests",
    "copy_manifests",
    "ensure_store_checked",
    "fetch",
    "fetch_many",
    "forget",
    "hookimpl",
    "list_manifests",
    "open_backend",
    "record_file",
    "record_files",
    "register_after_fork",
    "repair_manifest",
    "setting_sources",
    "validate_process_name",
    "verify",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
