"""``Manifest``: one process's records in memory, loaded from and committed to a backend.

A save serializes the whole manifest once and hands the bytes to the backend with the
version token of what was last loaded. If another writer committed in between, the
backend raises :class:`ConflictError`; the manifest then reloads the stored document,
merges it with its own records and tries again (bounded, with jittered backoff). The
merge is the union of both record maps; for a checksum on both sides the record with the
later ``updated_at`` wins. Records are never removed by a merge, so nothing that any
writer committed is ever lost.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .document import decode, encode, format_validation_error
from .errors import (
    ConflictError,
    CorruptManifestError,
    InvalidNameError,
    InvalidRecordError,
    NotFoundError,
    SaveRetriesExhaustedError,
)
from .metadata import ManifestMetadata
from .process import ETLProcess, parse_process
from .record import ManifestRecord, Row
from .retry import RetryPolicy
from .storage import ABSENT, StorageBackend, is_staging_key

__all__ = ["Manifest", "manifest_key"]

# The model's own validator, without model_validate's per-call wrapper.
_validate_record: Any = ManifestRecord.__pydantic_validator__.validate_python

_SAFE_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
# File names are limited to 255 bytes; leave room for the process, the staging suffix and
# the lock file's dot and extension.
MAX_VERSION_LENGTH = 128


def manifest_key(process: ETLProcess | str, etl_version: str) -> str:
    """The storage key of a manifest: ``{process}_v{etl_version}.json``.

    :raises InvalidNameError: ``process`` breaks the naming rule of
        :func:`~etl_manifests.validate_process_name`, or ``etl_version`` could
        escape the manifests root (``/``, ``\\``, ``..``, NUL, ...).
    """
    proc = parse_process(process)
    if not _SAFE_VERSION.fullmatch(etl_version) or ".." in etl_version:
        raise InvalidNameError(
            f"ETL version {etl_version!r} cannot be part of a file name; use letters, "
            "digits, '.', '_', '+' and '-' only (for example '1.0.0')"
        )
    if len(etl_version) > MAX_VERSION_LENGTH:
        raise InvalidNameError(
            f"ETL version {etl_version[:20]!r}... is {len(etl_version)} characters long; "
            f"use at most {MAX_VERSION_LENGTH}"
        )
    return f"{proc}_v{etl_version}.json"


class Manifest:
    """The records of one ETL process, kept in step with one stored JSON document.

    Thread-safe: any number of threads may call :meth:`add_record` at once; each call
    returns only after its record is committed (or raises). Look-ups (``in``,
    :meth:`get`, :meth:`find`, ``len``) are O(1) and never touch storage.
    """

    def __init__(
        self,
        process: ETLProcess | str,
        etl_version: str,
        backend: StorageBackend,
        *,
        retry: RetryPolicy | None = None,
        load: bool = True,
    ) -> None:
        """Open the manifest of ``process`` at ``etl_version`` on ``backend``.

        :param load: read the stored document now (the default); a manifest that does
            not exist yet starts empty and is created by the first save.
        :raises CorruptManifestError: the stored document cannot be read.
        """
        self.process = parse_process(process)
        self.etl_version = etl_version
        self.key = manifest_key(self.process, etl_version)
        self.backend = backend
        self.retry = retry or RetryPolicy()
        self._lock = threading.RLock()
        self._metadata = self._fresh_metadata()
        # Validated field dicts ("rows"); ManifestRecord objects are built on access.
        self._records: dict[str, Row] = {}
        self._by_name: dict[str, list[str]] | None = None
        self._version: str | None = None
        self._dirty = False
        self._batch_depth = 0
        self._undo: dict[str, Row | None] = {}
        self._dirty_before_batch = False
        if load:
            self.load()

    # --- what the seed promised ------------------------------------------------------

    @property
    def metadata(self) -> ManifestMetadata:
        """The metadata block as of the last load or save."""
        return self._metadata

    @property
    def records(self) -> Mapping[str, ManifestRecord]:
        """Read-only live view of the records, keyed by checksum.

        Change records only through :meth:`add_record` (which validates and saves).
        To iterate while other threads add records, iterate the manifest itself, which
        takes a snapshot. Records are values: compare them with ``==``, not ``is``.
        """
        return _RecordsView(self)

    @property
    def url(self) -> str:
        """Where the manifest is stored, as a path or URL (without credentials)."""
        return self.backend.url(self.key)

    @property
    def path(self) -> Path | str:
        """The manifest's file: a :class:`~pathlib.Path` on local disk, else its URL."""
        url = self.url
        return Path(url) if "://" not in url else url

    def add_record(self, record_params: Mapping[str, Any] | ManifestRecord) -> ManifestRecord:
        """Validate, add (or replace by checksum) and commit one record.

        ``etl_version`` defaults to the manifest's. Returns the stored record.

        :raises InvalidRecordError: the input is not a valid record; nothing changed,
            in memory or in storage.
        :raises SaveRetriesExhaustedError, StorageError: the commit failed; the record
            stays in memory (``dirty`` is true) and the next :meth:`save` commits it.
        """
        record = self._validate(record_params)
        with self._lock:
            self._put(record)
            if self._batch_depth == 0:
                self._commit()
        return record

    def add_records(
        self, records: Iterable[Mapping[str, Any] | ManifestRecord]
    ) -> list[ManifestRecord]:
        """Validate every record first, then add them all and commit once.

        :raises InvalidRecordError: naming the first invalid record's position; then
            nothing was added.
        """
        validated = []
        for index, params in enumerate(records):
            try:
                validated.append(self._validate(params))
            except InvalidRecordError as exc:
                raise InvalidRecordError(f"record #{index}: {exc}", exc.errors) from None
        with self.batch():
            for record in validated:
                self._put(record)
        return validated

    @contextmanager
    def batch(self) -> Iterator[Manifest]:
        """Group many :meth:`add_record` calls into one commit at the end of the block.

        The block holds the manifest's lock, so other threads' adds wait for it. If the
        block raises, the records it added are removed from memory again (replaced
        records come back) and nothing is stored. If the final commit fails, the records
        stay in memory and ``dirty`` is true, as after a failed :meth:`add_record`.
        Nested batches commit once, at the end of the outermost.
        """
        with self._lock:
            if self._batch_depth == 0:
                self._dirty_before_batch = self._dirty
            self._batch_depth += 1
            try:
                yield self
            except BaseException:
                if self._batch_depth == 1:
                    self._rollback()
                raise
            finally:
                self._batch_depth -= 1
                if self._batch_depth == 0:
                    self._undo = {}
            if self._batch_depth == 0 and self._dirty:
                self._commit()

    def save(self) -> None:
        """Commit the manifest atomically, merging with concurrent writers if needed.

        :raises SaveRetriesExhaustedError: other writers kept committing first for the
            whole retry budget; nothing is lost from memory, call ``save()`` again.
        :raises CorruptManifestError: the stored document became unreadable; it is
            left untouched.
        :raises StorageError: the backend failed (after its own retries).
        """
        with self._lock:
            self._commit()

    def load(self) -> None:
        """Replace the in-memory state with the stored manifest (unsaved records are
        discarded). A manifest that does not exist yet loads as empty.

        :raises CorruptManifestError: the stored document cannot be read; memory is
            left as it was.
        """
        with self._lock:
            try:
                blob = self.backend.read(self.key)
            except NotFoundError:
                self._metadata = self._fresh_metadata()
                self._set_records({}, None)
                return
            doc = decode(blob.data, self.url)
            self._check_owner(doc.metadata)
            self._metadata = doc.metadata
            self._set_records(doc.records, blob.version)

    # --- look-ups that keep a downloader from fetching a file twice ----------------

    def __contains__(self, checksum: object) -> bool:
        return isinstance(checksum, str) and checksum.lower() in self._records

    def get(self, checksum: str, default: ManifestRecord | None = None) -> ManifestRecord | None:
        """The record with this checksum (any case), or ``default``."""
        row = self._records.get(checksum.lower())
        return default if row is None else ManifestRecord.from_row(row)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[ManifestRecord]:
        """Iterate over a snapshot of the records (safe while others add)."""
        with self._lock:
            rows = list(self._records.values())
        return map(ManifestRecord.from_row, rows)

    def find(
        self,
        filename: str,
        *,
        etag: str | None = None,
        last_modified_server: str | None = None,
        content_length_bytes: int | None = None,
    ) -> list[ManifestRecord]:
        """Records of files named ``filename`` whose given server headers all match.

        Answers "is this exact download already recorded?" before downloading it again,
        in O(records with that name). The filename index is built on first use and kept
        in step with every change after that.
        """
        with self._lock:
            index = self._name_index()
            found = [self._records[c] for c in index.get(filename, ())]
        return [
            ManifestRecord.from_row(row)
            for row in found
            if (etag is None or row["etag"] == etag)
            and (
                last_modified_server is None or row["last_modified_server"] == last_modified_server
            )
            and (
                content_length_bytes is None or row["content_length_bytes"] == content_length_bytes
            )
        ]

    # --- housekeeping ----------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """Whether memory holds records not yet committed (after a failed save)."""
        return self._dirty

    @property
    def version(self) -> str | None:
        """The backend's version token of the stored document this state is based on."""
        return self._version

    def cleanup_staged(self, min_age: timedelta = timedelta(hours=1)) -> int:
        """Delete staged leftovers of this manifest's killed saves; return how many.

        Only objects older than ``min_age`` go, so a save in flight elsewhere is safe.
        """
        cutoff = datetime.now(UTC) - min_age
        removed = 0
        for info in self.backend.list(self.key):
            if not is_staging_key(info.key, of=self.key):
                continue
            if min_age > timedelta(0) and (info.modified is None or info.modified > cutoff):
                continue
            self.backend.delete(info.key)
            removed += 1
        return removed

    def __repr__(self) -> str:
        name = f"{self.process} v{self.etl_version}"
        count = len(self)
        return f"<Manifest {name} at {self.url}: {count} record{'' if count == 1 else 's'}>"

    # --- internals -------------------------------------------------------------------

    def _fresh_metadata(self) -> ManifestMetadata:
        return ManifestMetadata(process=self.process, etl_version=self.etl_version)

    def _validate(self, params: Mapping[str, Any] | ManifestRecord) -> ManifestRecord:
        if isinstance(params, ManifestRecord):
            return params
        # The exact-type test first: isinstance() against an ABC is slow on a hot path.
        if type(params) is not dict and not isinstance(params, Mapping):
            raise InvalidRecordError(
                f"a record must be a mapping of field names to values, not {type(params).__name__}"
            )
        if "etl_version" not in params:
            params = {**params, "etl_version": self.etl_version}
        try:
            record: ManifestRecord = _validate_record(params)
        except ValidationError as exc:
            raise InvalidRecordError(
                f"invalid record: {format_validation_error(exc, root='record')}", exc.errors()
            ) from None
        return record

    def _check_owner(self, metadata: ManifestMetadata) -> None:
        if metadata.process != self.process or metadata.etl_version != self.etl_version:
            raise CorruptManifestError(
                self.url,
                f"it belongs to {metadata.process} v{metadata.etl_version}, "
                f"not {self.process} v{self.etl_version}",
            )

    def _put(self, record: ManifestRecord) -> None:
        checksum, filename = record.checksum, record.filename
        previous = self._records.get(checksum)
        if self._batch_depth and checksum not in self._undo:
            self._undo[checksum] = previous
        # A frozen record's __dict__ is its row; sharing it costs nothing.
        self._records[checksum] = record.__dict__
        if self._by_name is not None:
            if previous is not None and previous["filename"] != filename:
                self._by_name[previous["filename"]].remove(checksum)
            if previous is None or previous["filename"] != filename:
                self._by_name.setdefault(filename, []).append(checksum)
        self._dirty = True

    def _rollback(self) -> None:
        for checksum, previous in self._undo.items():
            if previous is None:
                del self._records[checksum]
            else:
                self._records[checksum] = previous
        self._undo = {}
        self._by_name = None
        self._dirty = self._dirty_before_batch

    def _set_records(self, records: dict[str, Row], version: str | None) -> None:
        self._records = records
        self._by_name = None
        self._version = version
        self._dirty = False

    def _name_index(self) -> dict[str, list[str]]:
        if self._by_name is None:
            index: dict[str, list[str]] = {}
            for checksum, row in self._records.items():
                index.setdefault(row["filename"], []).append(checksum)
            self._by_name = index
        return self._by_name

    def _commit(self) -> None:
        """Write memory to storage; on conflict merge with the stored state and retry."""
        for attempt in range(1, self.retry.max_attempts + 1):
            metadata = self._metadata.model_copy(
                update={"updated_at": datetime.now(UTC), "revision": self._metadata.revision + 1}
            )
            data = encode(metadata, self._records)
            expect = self._version if self._version is not None else ABSENT
            try:
                self._version = self.backend.write(self.key, data, expect=expect)
            except ConflictError:
                # Also the path taken when an earlier attempt landed but its response was
                # lost: the stored document then already holds our records, and the merge
                # (a union keyed by checksum, same record on both sides) adds nothing
                # twice, so the retry neither duplicates nor drops a record.
                if attempt < self.retry.max_attempts:
                    # Back off before reloading, not after: the version a reload finds is
                    # freshest right after it, and a writer that slept on it would lose
                    # again to whoever committed meanwhile.
                    time.sleep(self.retry.delay(attempt))
                self._merge_stored()
                continue
            self._metadata = metadata
            self._dirty = False
            return
        raise SaveRetriesExhaustedError(
            f"could not commit {self.url}: other writers committed first on each of "
            f"{self.retry.max_attempts} attempts; the records are still in memory, "
            "call save() again or raise RetryPolicy.max_attempts"
        )

    def _merge_stored(self) -> None:
        try:
            blob = self.backend.read(self.key)
        except NotFoundError:
            # Someone deleted the manifest; our state (all we know) becomes a new one.
            self._version = None
            return
        doc = decode(blob.data, self.url)
        self._check_owner(doc.metadata)
        merged = doc.records
        for checksum, row in self._records.items():
            theirs = merged.get(checksum)
            if theirs is None or row["updated_at"] >= theirs["updated_at"]:
                merged[checksum] = row
        stored = doc.metadata
        self._metadata = stored.model_copy(
            update={
                "created_at": min(stored.created_at, self._metadata.created_at),
                "updated_at": max(stored.updated_at, self._metadata.updated_at),
                "revision": max(stored.revision, self._metadata.revision),
            }
        )
        self._records = merged
        self._by_name = None
        self._version = blob.version


class _RecordsView(Mapping[str, ManifestRecord]):
    """Read-only live mapping checksum -> record over a manifest's rows."""

    __slots__ = ("_manifest",)

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest

    def __getitem__(self, checksum: str) -> ManifestRecord:
        return ManifestRecord.from_row(self._manifest._records[checksum])

    def __contains__(self, checksum: object) -> bool:
        return checksum in self._manifest._records

    def __iter__(self) -> Iterator[str]:
        return iter(self._manifest._records)

    def __len__(self) -> int:
        return len(self._manifest._records)

    def __repr__(self) -> str:
        return f"<records of {self._manifest!r}>"
