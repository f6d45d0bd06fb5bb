"""``Manifest``: one process's records in memory, committed to a log beside a snapshot.

Each :meth:`Manifest.add_record` (or batch) commits one small log entry holding only what
it changed; now and then a checkpoint folds the log into the snapshot, the seed's
``{process}_v{version}.json``. The protocol lives in :mod:`etl_manifests.commitlog` and
is written down in ``docs/protocol.md``; this module is the API around it: validation,
batching, look-ups, locking and when to checkpoint.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._forksafe import register_after_fork
from .capability import denial_text, ensure_store_checked, reworded
from .commitlog import CommitInfo, CommitLog
from .document import format_validation_error
from .errors import (
    InvalidNameError,
    InvalidRecordError,
    PermissionDeniedError,
)
from .metadata import ManifestMetadata
from .policy import CheckpointPolicy
from .process import ETLProcess, parse_process
from .record import ManifestRecord, Row
from .retry import RetryPolicy
from .storage import StorageBackend, is_staging_key
from .transaction import Transaction

__all__ = ["Manifest", "manifest_key"]

logger = logging.getLogger(__name__)

# The model's own validator, without model_validate's per-call wrapper.
_validate_record: Any = ManifestRecord.__pydantic_validator__.validate_python
_CHECKSUM = re.compile(r"[0-9a-fA-F]{64}")

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
    if not isinstance(etl_version, str):
        raise InvalidNameError(
            f"etl_version must be a string such as '1.0.0', not {type(etl_version).__name__}"
        )
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
    """The records of one ETL process, kept in step with one stored manifest.

    Thread-safe: any number of threads may call :meth:`add_record` at once; each call
    returns only after its commit is in the log (or raises). Look-ups (``in``,
    :meth:`get`, :meth:`find`, ``len``) are O(1) and never touch storage; they see this
    object's own commits at once and other writers' after :meth:`refresh` (or
    :meth:`load`). Changes not committed yet (inside :meth:`transaction` or
    :meth:`batch`) are seen only by the thread that made them.
    """

    def __init__(
        self,
        process: ETLProcess | str,
        etl_version: str,
        backend: StorageBackend,
        *,
        retry: RetryPolicy | None = None,
        checkpoint: CheckpointPolicy | None = None,
        load: bool = True,
        created_at: datetime | None = None,
    ) -> None:
        """Open the manifest of ``process`` at ``etl_version`` on ``backend``.

        A ``Manifest`` never reads the environment or a ``.env`` file: it uses exactly
        its arguments, so ``ETL_MANIFESTS_CHECKPOINT`` has no effect on one built here.
        The manifests of a :class:`~etl_manifests.ManifestManager` (or
        :class:`~etl_manifests.ManifestStore`) do follow it, as they follow every
        ``ETL_MANIFESTS_*`` setting: that is the way to configure manifests from the
        environment (``ManifestManager.from_config()``, or ``ManifestManager(root,
        version)`` without ``checkpoint=``). To give one manifest the configured policy,
        pass ``checkpoint=ETLConfig().checkpoint``.

        :param retry: how often a commit tries again when its log epoch closes under it.
        :param checkpoint: when the log is folded into the snapshot, and the retention
            of folded entries (default :class:`CheckpointPolicy()`, whatever
            ``ETL_MANIFESTS_CHECKPOINT`` says).
        :param load: read the stored manifest now (the default); a manifest that does
            not exist yet starts empty and is created by the first commit.
        :param created_at: the ``created_at`` a manifest this object creates starts with
            (default: now); a stored manifest keeps its own.
        :raises CorruptManifestError: the stored manifest cannot be read.
        """
        self.process = parse_process(process)
        self.etl_version = etl_version
        self.key = manifest_key(self.process, etl_version)
        self.backend = backend
        self.retry = retry or RetryPolicy()
        self.checkpoint_policy = checkpoint or CheckpointPolicy()
        # The transaction each thread has open (batch() / transaction()), if any.
        self._local = threading.local()
        self._log = CommitLog(
            backend,
            self.key.removesuffix(".json"),
            process=self.process,
            etl_version=etl_version,
            retry=self.retry,
            policy=self.checkpoint_policy,
            created_at=created_at,
            before_first_write=self._check_store,
        )
        register_after_fork(self, Manifest._after_fork)
        if load:
            self.load()

    def _check_store(self, backend: StorageBackend) -> None:
        """The store capability check before the first write, with a refusal naming
        this manifest: that is what the caller was saving."""
        try:
            ensure_store_checked(backend)
        except PermissionDeniedError as exc:
            raise reworded(exc, f"cannot commit to {self.url}: {denial_text(exc)}") from exc

    # --- what the seed promised ------------------------------------------------------

    @property
    def metadata(self) -> ManifestMetadata:
        """The metadata block: the snapshot's, counting the log's commits read since.

        ``revision`` is the number of commits the manifest holds; ``updated_at`` the
        time of the newest of them.
        """
        with self._log.lock:
            meta = self._log.metadata
            entries = self._log.state.entries
            if not entries:
                return meta
            newest = max(e.time for e in entries.values())
            return meta.model_copy(
                update={
                    "revision": meta.revision + len(entries),
                    "updated_at": max(meta.updated_at, newest),
                }
            )

    @property
    def records(self) -> Mapping[str, ManifestRecord]:
        """Read-only live view of the records, keyed by checksum.

        Change records only through :meth:`add_record` and :meth:`remove_record`. To
        iterate while other threads add records, iterate the manifest itself, which
        takes a snapshot. Records are values: compare them with ``==``, not ``is``.
        """
        return _RecordsView(self)

    @property
    def url(self) -> str:
        """Where the manifest's snapshot is stored, as a path or URL (no credentials)."""
        return self.backend.url(self.key)

    @property
    def path(self) -> Path | str:
        """The snapshot's file: a :class:`~pathlib.Path` on local disk, else its URL."""
        url = self.url
        return Path(url) if "://" not in url else url

    def add_record(self, record_params: Mapping[str, Any] | ManifestRecord) -> ManifestRecord:
        """Validate, add (or replace by checksum) and commit one record.

        ``etl_version`` defaults to the manifest's. Returns the stored record. The
        commit writes one small log entry, whatever the manifest's size.

        Inside :meth:`batch` or :meth:`transaction` it joins that commit instead.

        :raises InvalidRecordError: the input is not a valid record; nothing changed,
            in memory or in storage.
        :raises StorageError: the commit failed; the record is not in memory. If the
            entry may have landed (a lost response), ``dirty`` is true and
            :meth:`save` finds out, landing that same entry at most once.
        """
        record = self._validate(record_params)
        tx = self._open_transaction()
        if tx is not None:
            tx.changes[record.checksum] = record.__dict__
        else:
            self._land({record.checksum: record.__dict__})
        return record

    def add_records(
        self, records: Iterable[Mapping[str, Any] | ManifestRecord]
    ) -> list[ManifestRecord]:
        """Validate every record first, then add them all in one commit.

        :raises InvalidRecordError: naming the first invalid record's position; then
            nothing was added.
        """
        validated = []
        for index, params in enumerate(records):
            try:
                validated.append(self._validate(params))
            except InvalidRecordError as exc:
                raise InvalidRecordError(f"record #{index}: {exc}", exc.errors) from None
        changes: dict[str, Row | None] = {r.checksum: r.__dict__ for r in validated}
        tx = self._open_transaction()
        if tx is not None:
            tx.changes.update(changes)
        else:
            self._land(changes)
        return validated

    def remove_record(self, checksum: str) -> bool:
        """Remove the record with this checksum (any case) and commit the removal.

        Returns whether the manifest held it. A removal is a commit like any other: a
        later put of the same checksum (by anyone who saw the removal) brings it back.
        Inside :meth:`batch` it joins the batch's commit.

        :raises InvalidRecordError: ``checksum`` is not a SHA-256 hex digest.
        """
        return self.remove_records([checksum]) == 1

    def remove_records(self, checksums: Iterable[str]) -> int:
        """Remove several records in one commit; returns how many were held.

        :raises InvalidRecordError: one of ``checksums`` is not a SHA-256 hex digest;
            then nothing was removed.
        """
        wanted = [_checksum(c) for c in checksums]
        tx = self._open_transaction()
        if tx is not None:
            return sum(tx.remove(c) for c in wanted)
        view = self._log.state.view
        held = sum(1 for c in set(wanted) if c in view)
        self._land(dict.fromkeys(wanted))
        return held

    @contextmanager
    def batch(self) -> Iterator[Manifest]:
        """Group many :meth:`add_record` / :meth:`remove_record` calls into one commit
        at the end of the block (a :meth:`transaction` that yields the manifest).

        Until the block ends, its changes are seen by this thread's look-ups only; other
        threads keep committing and do not wait for it. If the block raises, nothing is
        stored and nothing of it stays in memory. If the final commit fails, the changes
        are not in memory either (see :meth:`add_record` for ``dirty``). Nested batches
        commit once, at the end of the outermost.
        """
        with self.transaction():
            yield self

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Open a :class:`~etl_manifests.transaction.Transaction` for this thread:
        ``tx.put(record)``, ``tx.remove(checksum)``, committed as one log entry when the
        block ends; ``tx.commit_info`` is the commit it made afterwards.

        Inside the block, ``add_record`` / ``remove_record`` of this thread join it, and
        this thread's look-ups see its changes; no other thread does until it lands. A
        block that raises stores nothing. A transaction opened inside another joins it.
        """
        outer = self._open_transaction()
        if outer is not None:
            yield outer
            return
        tx = Transaction(self._validate, _checksum, self._committed_rows, self._land)
        self._local.tx = tx
        try:
            yield tx
        except BaseException:
            tx.discard()
            raise
        finally:
            self._local.tx = None
        if not tx.closed:
            tx.commit()

    def save(self) -> None:
        """Settle a commit that failed without knowing whether its entry landed
        (``dirty``): land that same entry, at most once, and apply it; and make sure
        the manifest exists in storage.

        :raises CorruptManifestError: the stored manifest became unreadable; it is
            left untouched.
        :raises StorageError: the backend failed (after its own retries); ``dirty``
            stays true.
        """
        self._land({})

    def load(self) -> None:
        """Replace the in-memory state with the stored manifest: its snapshot and every
        log entry after it (a commit whose outcome was unknown, ``dirty``, is forgotten:
        if its entry landed, the load finds it). A manifest that does not exist yet
        loads as empty.

        :raises CorruptManifestError: the stored manifest cannot be read; memory is
            left as it was.
        :raises NotFoundError: the bucket (or container) does not exist.
        """
        with self._log.lock:
            self._log.load()

    def refresh(self) -> int:
        """Read the commits other writers made since this object last looked.

        Cheap: it reads only new log entries (on an object store, one request for the
        epoch's seal, one listing, one request per new commit), never the snapshot,
        unless this object fell behind the checkpoint retention. Uncommitted changes
        are kept. Returns the number of new commits applied.
        """
        with self._log.lock:
            return self._log.catch_up()

    def compact(self) -> int:
        """Fold the log into a new snapshot now, then delete folded entries whose
        retention has passed. Returns how many commits the new snapshot folded in.

        Safe while other writers commit and checkpoint: see ``docs/protocol.md``.
        """
        self._land({})
        return self._log.checkpoints.run()

    def history(self) -> list[CommitInfo]:
        """The commits still kept in the log (not yet removed by retention), in order:
        position, time, writer id, number of records put and removed."""
        with self._log.lock:
            return self._log.history()

    # --- look-ups that keep a downloader from fetching a file twice ----------------

    def __contains__(self, checksum: object) -> bool:
        tx = self._open_transaction()
        if tx is not None:
            return checksum in tx
        return isinstance(checksum, str) and checksum.lower() in self._log.state.view

    def get(self, checksum: str, default: ManifestRecord | None = None) -> ManifestRecord | None:
        """The record with this checksum (any case), or ``default``."""
        row = self._row(checksum.lower())
        return default if row is None else ManifestRecord.from_row(row)

    def __len__(self) -> int:
        tx = self._open_transaction()
        return len(self._log.state.view) if tx is None else tx.count()

    def __iter__(self) -> Iterator[ManifestRecord]:
        """Iterate over a snapshot of the records (safe while others add)."""
        tx = self._open_transaction()
        with self._log.lock:
            rows = list(self._log.state.view.values()) if tx is None else list(tx.rows())
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
        tx = self._open_transaction()
        with self._log.lock:
            state = self._log.state
            found = [state.view[c] for c in state.by_name().get(filename, ())]
        if tx is not None:
            found = [r for r in found if r["checksum"] not in tx.changes]
            found += [r for r in tx.changes.values() if r is not None and r["filename"] == filename]
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
        """Whether a commit failed without knowing whether its entry landed (its
        response was lost, say); :meth:`save` settles it. Its changes are not in the
        records until then."""
        return self._log.unsettled

    @property
    def log(self) -> CommitLog:
        """The commit log behind this manifest (the protocol engine, for tools and tests
        that step through the protocol; see ``docs/protocol.md``)."""
        return self._log

    def wait_for_checkpoint(self, timeout: float | None = None) -> bool:
        """Wait for a background checkpoint this object started, if one is running;
        ``False`` if it was still running after ``timeout`` seconds."""
        return self._log.checkpoints.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Start no more background checkpoints and wait for a running one (as
        :meth:`wait_for_checkpoint`). Commits still work; they just never checkpoint in
        the background again (``compact()`` still does)."""
        return self._log.checkpoints.stop(timeout)

    @property
    def version(self) -> str | None:
        """The backend's version token of the snapshot this state is based on."""
        return self._log.version

    def cleanup_staged(self, min_age: timedelta = timedelta(hours=1)) -> int:
        """Delete staged leftovers of this manifest's killed writes; return how many.

        Covers the snapshot and its log. Only objects older than ``min_age`` go, so a
        write in flight elsewhere is safe. It sees current objects only: on a versioned
        S3 bucket the staged objects' noncurrent versions and delete markers stay
        (expire them with a lifecycle rule; see docs/backends.md).
        """
        cutoff = datetime.now(UTC) - min_age
        removed = 0
        stem = self.key.removesuffix(".json")
        for info in self.backend.list(stem):
            if not is_staging_key(info.key):
                continue
            if not info.key.startswith((self.key, f"{stem}.log/")):
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

    def _open_transaction(self) -> Transaction | None:
        tx: Transaction | None = getattr(self._local, "tx", None)
        return tx

    def _committed_rows(self) -> Mapping[str, Row]:
        return self._log.state.view

    def _row(self, checksum: str) -> Row | None:
        tx = self._open_transaction()
        return self._log.state.view.get(checksum) if tx is None else tx.get_row(checksum)

    def _land(self, changes: dict[str, Row | None]) -> CommitInfo | None:
        entry = self._log.transact(changes)
        return None if entry is None else CommitInfo.of(entry, folded=False)

    def _after_fork(self) -> None:
        # Lost threads' transactions are theirs (their process commits them) and were
        # never in the shared records; the log renews its own locks.
        self._log.after_fork()


def _checksum(value: str) -> str:
    if not isinstance(value, str) or not _CHECKSUM.fullmatch(value):
        raise InvalidRecordError(
            f"{value!r} is not a checksum; give the SHA-256 hex digest (64 characters 0-9, a-f)"
        )
    return value.lower()


class _RecordsView(Mapping[str, ManifestRecord]):
    """Read-only live mapping checksum -> record over a manifest's rows."""

    __slots__ = ("_manifest",)

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest

    def __getitem__(self, checksum: str) -> ManifestRecord:
        row = self._manifest._row(checksum)
        if row is None:
            raise KeyError(checksum)
        return ManifestRecord.from_row(row)

    def __contains__(self, checksum: object) -> bool:
        return isinstance(checksum, str) and self._manifest._row(checksum) is not None

    def __iter__(self) -> Iterator[str]:
        tx = self._manifest._open_transaction()
        if tx is None:
            return iter(self._manifest._log.state.view)
        return iter([row["checksum"] for row in tx.rows()])

    def __len__(self) -> int:
        return len(self._manifest)

    def __repr__(self) -> str:
        return f"<records of {self._manifest!r}>"
