"""Comparing two roots: which records only one side holds, and which differ.

:func:`diff_records` is the one comparison: :func:`compare_manifests` reports it, and
:func:`~etl_manifests.copy_manifests` uses it to decide what to write and whether the
destination holds something a copy would hide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..catalog import ManifestRef, list_manifests
from ..model import Manifest
from ..record import ManifestRecord
from ..registry import redact_root
from .roots import Root, Side, open_roots, select_manifests

__all__ = ["CompareReport", "ManifestDiff", "RecordDiff", "compare_manifests", "diff_records"]


@dataclass(frozen=True)
class RecordDiff:
    """How two sets of records differ, by checksum (each tuple sorted)."""

    only_in_source: tuple[str, ...]
    only_in_destination: tuple[str, ...]
    differing: tuple[str, ...]
    identical: int

    @property
    def same(self) -> bool:
        """Whether both sides hold exactly the same records."""
        return not (self.only_in_source or self.only_in_destination or self.differing)

    @property
    def conflicts(self) -> bool:
        """Whether the destination holds records the source would replace or lacks."""
        return bool(self.only_in_destination or self.differing)


def diff_records(
    source: Mapping[str, ManifestRecord], destination: Mapping[str, ManifestRecord]
) -> RecordDiff:
    """Compare two manifests' records (``manifest.records``); records are equal when
    every field is, ``updated_at`` included."""
    only_src, differing, identical = [], [], 0
    for checksum, record in source.items():
        other = destination.get(checksum)
        if other is None:
            only_src.append(checksum)
        elif other == record:
            identical += 1
        else:
            differing.append(checksum)
    only_dst = [c for c in destination if c not in source]
    return RecordDiff(
        tuple(sorted(only_src)), tuple(sorted(only_dst)), tuple(sorted(differing)), identical
    )


@dataclass(frozen=True)
class ManifestDiff:
    """One manifest compared across two roots."""

    process: str
    etl_version: str
    source_url: str
    destination_url: str
    in_source: bool
    """Whether the source stores this manifest."""
    in_destination: bool
    """Whether the destination stores this manifest."""
    records: RecordDiff

    @property
    def same(self) -> bool:
        """Whether both roots store the manifest with the same records."""
        return self.in_source and self.in_destination and self.records.same

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "process": self.process,
            "etl_version": self.etl_version,
            "source": self.source_url,
            "destination": self.destination_url,
            "in_source": self.in_source,
            "in_destination": self.in_destination,
            "same": self.same,
            "identical": self.records.identical,
            "only_in_source": list(self.records.only_in_source),
            "only_in_destination": list(self.records.only_in_destination),
            "differing": list(self.records.differing),
        }


@dataclass(frozen=True)
class CompareReport:
    """Every manifest compared, sorted by process and ETL version."""

    manifests: tuple[ManifestDiff, ...]

    @property
    def same(self) -> bool:
        """Whether the two roots hold the same manifests with the same records."""
        return all(m.same for m in self.manifests)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {"same": self.same, "manifests": [m.to_dict() for m in self.manifests]}


def compare_manifests(
    source: Root,
    destination: Root,
    *,
    processes: Iterable[str] | None = None,
    versions: Iterable[str] | None = None,
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
) -> CompareReport:
    """Compare the manifests of two roots record by record; neither root is written.

    Covers every manifest either root stores (of the given processes and ETL
    versions, if any are given; see :func:`~etl_manifests.copy_manifests` for the
    arguments).

    :raises BackendConfigurationError: both name the same root.
    :raises UnknownProcessError, NotFoundError: a named process or version is stored
        under neither root.
    :raises CorruptManifestError: a stored manifest cannot be read.
    """
    with open_roots(source, destination, source_options, destination_options, write=False) as (
        src,
        dst,
    ):
        refs = _both(src, dst, processes, versions)
        return CompareReport(tuple(_compare(src, dst, ref) for ref in refs))


def _both(
    src: Side, dst: Side, processes: Iterable[str] | None, versions: Iterable[str] | None
) -> list[ManifestRef]:
    found = {*list_manifests(src.backend), *list_manifests(dst.backend)}
    where = f"{redact_root(src.root)} or {redact_root(dst.root)}"
    return select_manifests(found, processes, versions, where)


def _compare(src: Side, dst: Side, ref: ManifestRef) -> ManifestDiff:
    left = open_manifest(src, ref)
    right = open_manifest(dst, ref)
    return ManifestDiff(
        ref.process,
        ref.etl_version,
        left.url,
        right.url,
        exists(left),
        exists(right),
        diff_records(left.records, right.records),
    )


def open_manifest(side: Side, ref: ManifestRef) -> Manifest:
    """Load ``ref`` from ``side`` (empty if it is not stored)."""
    return Manifest(
        ref.process, ref.etl_version, side.backend, retry=side.retry, checkpoint=side.checkpoint
    )


def exists(manifest: Manifest) -> bool:
    """Whether the manifest is stored (a snapshot, or commits in its log)."""
    return manifest.version is not None or manifest.metadata.revision > 0
