"""Copying manifests from one root to another: local disk to S3, one bucket to another.

:func:`copy_manifests` promises, for every manifest it copies:

* **Everything arrives**: every record the source holds now (snapshot plus the commits in
  its log; removed records stay removed), field for field, and the metadata that is data:
  ``process``, ``etl_version`` and, for a manifest the copy creates, ``created_at``.
  (``revision``, ``updated_at`` and the log position describe the destination's own
  commits.)
* **The source is only read.** Its backend is wrapped so that a write or delete raises
  instead (see :mod:`etl_manifests._readonly`).
* **All or nothing per manifest**: the records land in one commit (one log entry), so
  an interrupted copy leaves each destination manifest without any of them or with all.
* **Re-running is harmless**: records already there are not written again; a second run
  writes nothing and reports every manifest ``unchanged``.
* **Destination data is never dropped or overwritten by default**: if the destination
  holds a record the source lacks, or the same checksum with another record, the copy
  raises :class:`~etl_manifests.CopyConflictError` before writing anything to any
  manifest, unless ``on_conflict`` says to merge or replace.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ..catalog import ManifestRef, list_manifests
from ..errors import CopyConflictError, InvalidNameError
from ..model import Manifest
from ..registry import redact_root
from .compare import RecordDiff, diff_records, exists, open_manifest
from .roots import Root, Side, open_roots, select_manifests

__all__ = ["CopyReport", "CopyStatus", "ManifestCopy", "OnConflict", "copy_manifests"]

#: What a copy does when the destination holds records the source lacks or has otherwise:
#: ``"error"`` refuses (nothing written); ``"merge"`` adds the source's new records and
#: keeps every destination record as it is; ``"replace"`` makes the destination's records
#: equal to the source's (differing ones overwritten, extra ones removed, in one commit).
OnConflict = Literal["error", "merge", "replace"]


class CopyStatus(enum.StrEnum):
    """What a copy did (or, in a dry run, would do) to one destination manifest."""

    CREATED = "created"
    """The destination did not hold the manifest; now it holds the source's."""
    UPDATED = "updated"
    """The destination held the manifest; records were added (or replaced, removed)."""
    UNCHANGED = "unchanged"
    """Nothing to write: the destination already held every record."""


@dataclass(frozen=True)
class ManifestCopy:
    """The outcome for one manifest."""

    process: str
    etl_version: str
    source_url: str
    destination_url: str
    status: CopyStatus
    written: int
    """Records written (added, or overwritten under ``on_conflict="replace"``)."""
    removed: int
    """Destination records removed (only under ``on_conflict="replace"``)."""
    kept: int
    """Destination records kept although the source lacks them or has them otherwise
    (only under ``on_conflict="merge"``)."""
    already_there: int
    """Records the destination already held, identical."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "process": self.process,
            "etl_version": self.etl_version,
            "source": self.source_url,
            "destination": self.destination_url,
            "status": self.status.value,
            "written": self.written,
            "removed": self.removed,
            "kept": self.kept,
            "already_there": self.already_there,
        }


@dataclass(frozen=True)
class CopyReport:
    """Every manifest a copy looked at, sorted by process and ETL version."""

    manifests: tuple[ManifestCopy, ...]
    dry_run: bool
    """Whether nothing was written (the statuses say what a copy would do)."""

    def count(self, status: CopyStatus) -> int:
        """How many manifests ended with ``status``."""
        return sum(m.status is status for m in self.manifests)

    @property
    def records_written(self) -> int:
        """Records written to the destination, over all manifests."""
        return sum(m.written for m in self.manifests)

    @property
    def changed(self) -> bool:
        """Whether the copy wrote (a dry run: would write) anything."""
        return any(m.status is not CopyStatus.UNCHANGED for m in self.manifests)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "dry_run": self.dry_run,
            "changed": self.changed,
            "records_written": self.records_written,
            **{status.value: self.count(status) for status in CopyStatus},
            "manifests": [m.to_dict() for m in self.manifests],
        }


def copy_manifests(
    source: Root,
    destination: Root,
    *,
    processes: Iterable[str] | None = None,
    versions: Iterable[str] | None = None,
    on_conflict: OnConflict = "error",
    dry_run: bool = False,
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
) -> CopyReport:
    """Copy the manifests stored under ``source`` to ``destination``.

    ::

        copy_manifests("./manifests", "s3://bucket/manifests",
                       destination_options={"profile": "etl"})

    :param source: a folder or URL, or a :class:`~etl_manifests.ManifestStore` (which
        stands for its root and storage options; every ETL version under the root is
        copied, not only the store's). Only read, never written.
    :param destination: the same forms. Manifests it does not hold are created; its
        bucket (or container) must exist.
    :param processes: copy only manifests of these processes (default: every process,
        declared or not, that the source stores).
    :param versions: copy only manifests of these ETL versions (default: all).
    :param on_conflict: what to do when the destination holds records the source lacks
        or holds otherwise (see :data:`OnConflict`); the default refuses.
    :param dry_run: write nothing; the report says what a copy would do.
    :param source_options: storage options for a ``source`` given as a path or URL
        (s3fs/gcsfs options); default none.
    :param destination_options: the same for ``destination``.
    :returns: what happened to each manifest. ``report.changed`` is false on a re-run.
    :raises CopyConflictError: the destination holds other records and ``on_conflict``
        is ``"error"``; nothing was written to any manifest.
    :raises BackendConfigurationError: both name the same root, or a root is unusable.
    :raises InvalidNameError: a process name or ETL version is invalid, or
        ``on_conflict`` is none of the three.
    :raises UnknownProcessError, NotFoundError: the source stores no manifest of a
        named process or version.
    :raises CorruptManifestError: a manifest on either side cannot be read (nothing of
        it is written).
    :raises PermissionDeniedError: reading the source would need a write (see
        :mod:`etl_manifests._readonly`).
    """
    if on_conflict not in get_args(OnConflict):
        raise InvalidNameError(
            f"on_conflict must be one of {', '.join(get_args(OnConflict))}, not {on_conflict!r}"
        )
    with open_roots(source, destination, source_options, destination_options, write=True) as (
        src,
        dst,
    ):
        found = list_manifests(src.backend)
        refs = select_manifests(found, processes, versions, redact_root(src.root))
        # Read everything and check every manifest before writing any.
        plans = [_plan(src, dst, ref) for ref in refs]
        for plan in plans:
            if plan.diff.conflicts and on_conflict == "error":
                raise CopyConflictError(
                    plan.target.url, plan.diff.differing, plan.diff.only_in_destination
                )
        return CopyReport(tuple(_apply(plan, on_conflict, dry_run) for plan in plans), dry_run)


@dataclass(frozen=True)
class _Plan:
    source: Manifest
    target: Manifest
    existed: bool
    diff: RecordDiff


def _plan(src: Side, dst: Side, ref: ManifestRef) -> _Plan:
    source = open_manifest(src, ref)
    target = Manifest(
        ref.process,
        ref.etl_version,
        dst.backend,
        created_at=source.metadata.created_at,
        retry=dst.retry,
        checkpoint=dst.checkpoint,
    )
    return _Plan(source, target, exists(target), diff_records(source.records, target.records))


def _apply(plan: _Plan, on_conflict: OnConflict, dry_run: bool) -> ManifestCopy:
    diff = plan.diff
    replace = on_conflict == "replace"
    put = list(diff.only_in_source) + (list(diff.differing) if replace else [])
    drop = list(diff.only_in_destination) if replace else []
    kept = len(diff.only_in_destination) + len(diff.differing) if on_conflict == "merge" else 0
    if not plan.existed:
        status = CopyStatus.CREATED
    elif put or drop:
        status = CopyStatus.UPDATED
    else:
        status = CopyStatus.UNCHANGED
    if not dry_run:
        target, records = plan.target, plan.source.records
        if put or drop:
            with target.batch():  # one commit: all of this manifest's records, or none
                target.add_records(records[checksum] for checksum in put)
                target.remove_records(drop)
        elif not plan.existed:
            target.save()  # an empty source manifest: create it empty
    return ManifestCopy(
        str(plan.source.process),
        plan.source.etl_version,
        plan.source.url,
        plan.target.url,
        status,
        written=len(put),
        removed=len(drop),
        kept=kept,
        already_there=diff.identical,
    )
