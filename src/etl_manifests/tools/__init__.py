"""Helpers that turn files and downloads into records, and check recorded files later.

All of them use only the public :class:`~etl_manifests.Manifest` API, so they behave the
same on every backend. Files are reached through fsspec: local paths, ``s3://``,
``gs://``, ``http(s)://`` (``pip install 'etl-manifests[http]'``) or any installed
fsspec protocol; options per scheme go in ``storage_options={"s3": {...}}``.

* :func:`record_file`, :func:`record_files`, :func:`record_params`: a record from a file
  where it lies (SHA-256 while streaming, size and the store's headers).
* :func:`fetch`, :func:`fetch_many`, :class:`Fetcher`: download-if-new into a folder or
  bucket prefix, recorded as each file lands.
* :func:`verify`: do the recorded files still exist with their size and checksum?
* :func:`copy_manifests`, :func:`compare_manifests`: manifests from one root to another
  (local disk to S3, ...), and what differs between two roots.
"""

from __future__ import annotations

from .compare import CompareReport, ManifestDiff, RecordDiff, compare_manifests, diff_records
from .copy import CopyReport, CopyStatus, ManifestCopy, OnConflict, copy_manifests
from .fetch import Fetcher, FetchReport, FetchResult, FetchStatus, fetch, fetch_many
from .files import FileInfo, StorageOptions, TransferRetry, stat
from .hashing import Digest, hash_stream
from .records import forget, record_file, record_files, record_params
from .verify import Problem, ProblemKind, VerifyReport, verify

__all__ = [
    "CompareReport",
    "CopyReport",
    "CopyStatus",
    "Digest",
    "FetchReport",
    "FetchResult",
    "FetchStatus",
    "Fetcher",
    "FileInfo",
    "ManifestCopy",
    "ManifestDiff",
    "OnConflict",
    "Problem",
    "ProblemKind",
    "RecordDiff",
    "StorageOptions",
    "TransferRetry",
    "VerifyReport",
    "compare_manifests",
    "copy_manifests",
    "diff_records",
    "fetch",
    "fetch_many",
    "forget",
    "hash_stream",
    "record_file",
    "record_files",
    "record_params",
    "stat",
    "verify",
]
