"""Download-if-new: the extract step of an ETL job in one call.

::

    from etl_manifests.tools import fetch_many

    report = fetch_many(manager.extractor, urls, "/data/raw", workers=8)
    report.raise_for_failures()

For each URL: ask the server for its headers (one HEAD); if the manifest already has
this exact file at this destination (same name, same ``ETag`` / ``Last-Modified`` /
size), skip it. Otherwise stream it to a temporary name beside the destination while
hashing it, and unless its SHA-256 is already recorded, move it into place and record
it (one commit). When the server sends neither ``ETag`` nor ``Last-Modified``, only the
checksum can tell, so the file is downloaded and a copy whose checksum is recorded is
discarded.

Many workers (threads here, processes or machines with :class:`Fetcher`) may fetch from
one list into one manifest: records are keyed by checksum, so a file is recorded once
however many fetch it, and each worker reads what the others recorded before each
download, so a file is not downloaded again once it is recorded.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from ..errors import InvalidNameError, ManifestError, TransferError
from ..model import Manifest
from ..process import ETLProcess
from ..record import ManifestRecord
from ..store import ManifestStore
from .files import FileInfo, StorageOptions, filesystem, open_stream, redact, stat
from .hashing import hash_stream
from .records import check_size, params_of
from .staging import StagedFile

__all__ = ["FetchReport", "FetchResult", "FetchStatus", "Fetcher", "fetch", "fetch_many"]


class FetchStatus(enum.StrEnum):
    """What :func:`fetch` did with one URL."""

    DOWNLOADED = "downloaded"
    """Downloaded, moved into place and recorded."""
    SKIPPED = "skipped"
    """The manifest has this exact file at this destination: nothing was downloaded."""
    DUPLICATE = "duplicate"
    """Downloaded, but a file with its checksum was already recorded; the copy was
    discarded and nothing was recorded."""
    FAILED = "failed"
    """Only in :func:`fetch_many` reports: the error is in ``FetchResult.error``."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome for one URL. Plain data: it pickles and converts to JSON."""

    url: str
    status: FetchStatus
    checksum: str | None = None
    """The file's SHA-256 (the recorded one when skipped)."""
    filepath: str | None = None
    """Where the file is (or was recorded)."""
    size: int | None = None
    """Bytes downloaded (0 when skipped)."""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; the URL without credentials."""
        return {**asdict(self), "url": redact(self.url), "status": self.status.value}


@dataclass(frozen=True)
class FetchReport:
    """The outcome of :func:`fetch_many`: one result per distinct URL, in input order."""

    results: list[FetchResult] = field(default_factory=list)

    def count(self, status: FetchStatus) -> int:
        """How many URLs ended with ``status``."""
        return sum(r.status is status for r in self.results)

    @property
    def failed(self) -> list[FetchResult]:
        """The results of URLs that could not be fetched."""
        return [r for r in self.results if r.status is FetchStatus.FAILED]

    @property
    def ok(self) -> bool:
        """Whether every URL was downloaded, skipped or found to be a duplicate."""
        return not self.failed

    def raise_for_failures(self) -> None:
        """:raises TransferError: naming how many URLs failed and the first error."""
        if self.failed:
            first = self.failed[0]
            raise TransferError(
                f"{len(self.failed)} of {len(self.results)} downloads failed; the first: "
                f"{first.error} (the others are in report.failed); fetch again to retry them"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the counts per status and every result."""
        return {
            "counts": {s.value: self.count(s) for s in FetchStatus},
            "results": [r.to_dict() for r in self.results],
        }


def fetch(
    manifest: Manifest,
    url: str,
    dest: str,
    *,
    filename: str | None = None,
    storage_options: StorageOptions | None = None,
) -> FetchResult:
    """Download ``url`` into the folder ``dest`` and record it, unless it is recorded.

    :param dest: a local folder (created if missing) or a URL prefix such as
        ``s3://bucket/raw``; the file lands at ``{dest}/{filename}``.
    :param filename: the name to store it under; default the URL's last path component.
    :param storage_options: fsspec options per URL scheme, for the source and the
        destination (``{"s3": {"endpoint_url": ...}}``).
    :raises NotFoundError: nothing at ``url``.
    :raises TransferError: the download failed; nothing was recorded and no partial file
        is left under the destination's name.
    :raises InvalidNameError: ``filename`` is not a plain file name.
    """
    info = stat(url, storage_options)
    name = filename if filename is not None else info.filename
    _check_name(name)
    fs, folder = filesystem(dest, storage_options)
    path = f"{folder.rstrip('/')}/{name}"
    target = path if isinstance(fs, LocalFileSystem) else f"{dest.rstrip('/')}/{name}"

    # Other workers' new commits (only the new log entries are read), so a file one of
    # them recorded meanwhile is neither downloaded nor recorded again.
    manifest.refresh()
    recorded = _recorded(manifest, info, name, target)
    if recorded is not None:
        return FetchResult(url, FetchStatus.SKIPPED, recorded.checksum, recorded.filepath, 0)

    with (
        open_stream(url, info.size, storage_options) as stream,
        StagedFile(fs, path, target) as staged,
    ):
        digest = hash_stream(stream, sink=staged.write)
        check_size(url, info, digest)
        manifest.refresh()  # someone may have recorded these bytes while we downloaded
        if digest.checksum in manifest:
            staged.discard()
            known = manifest.get(digest.checksum)
            where = known.filepath if known is not None else None
            return FetchResult(url, FetchStatus.DUPLICATE, digest.checksum, where, digest.size)
        staged.commit()
    record = manifest.add_record({**params_of(info, digest, location=target), "filename": name})
    return FetchResult(url, FetchStatus.DOWNLOADED, record.checksum, record.filepath, digest.size)


def fetch_many(
    manifest: Manifest,
    urls: Iterable[str],
    dest: str,
    *,
    workers: int = 4,
    storage_options: StorageOptions | None = None,
    on_result: Callable[[FetchResult], None] | None = None,
) -> FetchReport:
    """:func:`fetch` every URL, at most ``workers`` at a time; failures do not stop the rest.

    A URL listed twice is fetched once. Each file is recorded as it lands (one commit
    each), so a run killed halfway keeps what it downloaded.

    :param on_result: called in the caller's thread with each result as it completes.
    :returns: a :class:`FetchReport`; call ``raise_for_failures()`` to turn failures into
        an exception.
    """
    unique = list(dict.fromkeys(urls))
    results: dict[str, FetchResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {
            pool.submit(fetch, manifest, url, dest, storage_options=storage_options): url
            for url in unique
        }
        for future in as_completed(futures):
            url = futures[future]
            try:
                result = future.result()
            except (ManifestError, OSError) as exc:
                result = FetchResult(url, FetchStatus.FAILED, error=str(exc))
            results[url] = result
            if on_result is not None:
                on_result(result)
    return FetchReport([results[url] for url in unique])


@dataclass(frozen=True)
class Fetcher:
    """:func:`fetch` as a picklable callable, for the workers of a cluster::

        futures = client.map(Fetcher(manager, "s3://bucket/raw"), urls)

    It carries the manager (which pickles as its settings and becomes the singleton of
    the worker's process) or a plain :class:`~etl_manifests.ManifestStore` (which
    pickles as its settings too), never an open manifest. Raises as :func:`fetch` does.
    """

    manager: ManifestStore
    dest: str
    process: ETLProcess | str = ETLProcess.EXTRACTOR
    storage_options: Mapping[str, Mapping[str, Any]] | None = None

    def __call__(self, url: str) -> FetchResult:
        manifest = self.manager.get(self.process)
        return fetch(manifest, url, self.dest, storage_options=self.storage_options)


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise InvalidNameError(f"{name!r} is not a plain file name; pass filename= without folders")


def _recorded(manifest: Manifest, info: FileInfo, name: str, target: str) -> ManifestRecord | None:
    """The record of this exact file at ``target``, judged by the server's headers."""
    if info.etag is None and info.last_modified is None:
        return None  # only the checksum can tell; the caller downloads
    for record in manifest.find(
        name,
        etag=info.etag,
        last_modified_server=info.last_modified,
        content_length_bytes=info.size,
    ):
        if record.filepath == target:
            return record
    return None
