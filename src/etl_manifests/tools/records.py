"""A record from a file that is already stored somewhere: hash it where it lies, add it.

::

    from etl_manifests.tools import record_file

    record_file(manager.extractor, "s3://bucket/raw/2026-11-25.csv.gz",
                storage_options={"s3": {"profile": "etl"}})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..errors import TransferError
from ..model import Manifest
from ..record import ManifestRecord
from .files import FileInfo, StorageOptions, no_secrets, open_stream, redact, stat
from .hashing import Digest, hash_stream
from .parallel import run_parallel

__all__ = ["forget", "record_file", "record_files", "record_params"]


@no_secrets
def record_params(urlpath: str, *, storage_options: StorageOptions | None = None) -> dict[str, Any]:
    """The fields of a record for the file at ``urlpath``, ready for ``add_record``.

    The SHA-256 is computed while streaming the file once (one chunk in memory at a
    time); ``filepath`` is the absolute local path or the URL; ``etag``,
    ``last_modified_server`` and ``content_type`` are filled where the store reports
    them (see :mod:`etl_manifests.tools.files`); ``content_length_bytes`` is the number
    of bytes hashed.

    :raises NotFoundError: no file at ``urlpath``.
    :raises TransferError: the store failed, or the file changed size while being read.
    :raises MissingDependencyError: the URL's scheme needs an optional package.
    """
    info = stat(urlpath, storage_options)
    with open_stream(urlpath, info.size, storage_options) as stream:
        digest = hash_stream(stream)
    check_size(urlpath, info, digest)
    return params_of(info, digest)


def params_of(info: FileInfo, digest: Digest, *, location: str | None = None) -> dict[str, Any]:
    """Record fields for a file described by ``info`` whose bytes hashed to ``digest``."""
    return {
        "checksum": digest.checksum,
        "filename": info.filename,
        "filepath": location or info.location,
        "etag": info.etag,
        "content_type": info.content_type,
        "last_modified_server": info.last_modified,
        "content_length_bytes": digest.size,
    }


def check_size(urlpath: str, info: FileInfo, digest: Digest) -> None:
    """Refuse a read that did not return as many bytes as the store announced."""
    if info.size is not None and digest.size != info.size:
        raise TransferError(
            f"{redact(urlpath)}: the store announced {info.size} bytes but {digest.size} "
            "arrived (the file changed or the connection broke); try again"
        )


def record_file(
    manifest: Manifest, urlpath: str, *, storage_options: StorageOptions | None = None
) -> ManifestRecord:
    """Hash the file at ``urlpath`` and add its record to ``manifest`` (one commit).

    Returns the stored record. A file the manifest already has, unchanged (same checksum,
    place, name and store metadata), is not recorded again: its record is returned as it
    is, with its flags (``is_verified``), and nothing is committed. Raises as
    :func:`record_params` and ``add_record`` do.
    """
    params = record_params(urlpath, storage_options=storage_options)
    known = _unchanged(manifest, params)
    return known if known is not None else manifest.add_record(params)


def _unchanged(manifest: Manifest, params: dict[str, Any]) -> ManifestRecord | None:
    """The record of exactly this file (the fields ``params`` holds), if the manifest has it."""
    known = manifest.get(params["checksum"])
    if known is None:
        return None
    held = known.__dict__
    same = all(held.get(name) == value for name, value in params.items())
    return known if same else None


def record_files(
    manifest: Manifest,
    urlpaths: Iterable[str],
    *,
    workers: int = 4,
    storage_options: StorageOptions | None = None,
    on_hashed: Callable[[dict[str, Any]], None] | None = None,
) -> list[ManifestRecord]:
    """Hash many files, ``workers`` at a time, then add all their records in one commit.

    All or nothing: if any file cannot be read, the first such error (in input order)
    is raised and nothing is added; interrupted (``KeyboardInterrupt``), it stops
    starting reads and adds nothing.

    :param on_hashed: called in the caller's thread with each file's record fields as
        soon as it is hashed (for progress display).

    Files the manifest already has, unchanged, keep their records (and flags) as they
    are; when all are unchanged nothing is committed.
    """
    paths = list(urlpaths)
    hashed: dict[int, dict[str, Any]] = {}
    errors: dict[int, BaseException] = {}
    outcomes = run_parallel(
        lambda p: record_params(p, storage_options=storage_options), paths, workers
    )
    for done in outcomes:
        if done.error is not None:
            errors[done.index] = done.error
        else:
            assert done.result is not None
            hashed[done.index] = done.result
            if on_hashed is not None:
                on_hashed(done.result)
        if errors and all(i in hashed for i in range(min(errors))):
            break  # the first failure in input order is known: no point hashing the rest
    outcomes.close()
    if errors:
        raise errors[min(errors)]
    params = [hashed[i] for i in range(len(paths))]
    known = [_unchanged(manifest, p) for p in params]
    added = iter(manifest.add_records([p for p, k in zip(params, known, strict=True) if k is None]))
    return [k if k is not None else next(added) for k in known]


def forget(manifest: Manifest, records: Iterable[ManifestRecord | str]) -> list[ManifestRecord]:
    """Remove the records (given as records or checksums) from ``manifest`` in one commit.

    The files stay where they are; the next ``fetch`` of their URLs downloads them again.
    Returns the records that were removed (checksums the manifest did not hold are
    ignored); nothing is committed when there are none.

    :raises InvalidRecordError: a checksum is not a SHA-256 hex digest; nothing removed.
    """
    checksums = [r.checksum if isinstance(r, ManifestRecord) else r for r in records]
    held = [known for c in checksums if (known := manifest.get(c)) is not None]
    if held:
        manifest.remove_records(r.checksum for r in held)
    return held
