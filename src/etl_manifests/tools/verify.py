"""Verify: are the recorded files still there, still the recorded size, still the same bytes?

::

    from etl_manifests.tools import verify

    report = verify(manager.extractor, rehash=True)
    if not report.ok:
        for problem in report.problems:
            print(problem.kind, problem.filepath, problem.detail)

Each record's file is looked up at its ``filepath`` (anywhere fsspec reaches); without
re-hashing its size is compared with ``content_length_bytes``, with re-hashing its bytes
are streamed and their SHA-256 compared with the checksum. Then, in one commit, records
that passed get ``is_verified=True`` and records that failed lose it, so the flag always
says what the last check found.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import ManifestError, NotFoundError
from ..model import Manifest
from ..record import ManifestRecord
from .files import StorageOptions, open_stream, stat
from .hashing import hash_stream
from .parallel import run_parallel

__all__ = ["Problem", "ProblemKind", "VerifyReport", "verify"]


class ProblemKind(enum.StrEnum):
    """What is wrong with a recorded file."""

    MISSING = "missing"
    """Nothing is at its ``filepath``."""
    SIZE = "size"
    """Its size is not the recorded ``content_length_bytes``."""
    CHECKSUM = "checksum"
    """Its SHA-256 is not the recorded checksum (only found when re-hashing)."""
    UNREADABLE = "unreadable"
    """The store could not be asked (permissions, network); the file may be fine."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One record that failed verification."""

    checksum: str
    filepath: str
    kind: ProblemKind
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "checksum": self.checksum,
            "filepath": self.filepath,
            "kind": self.kind.value,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found."""

    checked: int
    """How many records were checked."""
    rehashed: bool
    """Whether files were re-hashed (else only existence and size were checked)."""
    passed: list[str] = field(default_factory=list)
    """Checksums of the records whose files passed."""
    problems: list[Problem] = field(default_factory=list)
    """Every record that failed, in the manifest's order."""
    marked: int = 0
    """How many records had ``is_verified`` changed (in one commit)."""

    @property
    def ok(self) -> bool:
        """Whether every checked file passed."""
        return not self.problems

    @property
    def missing(self) -> list[Problem]:
        """Problems of kind :attr:`ProblemKind.MISSING`."""
        return [p for p in self.problems if p.kind is ProblemKind.MISSING]

    @property
    def changed(self) -> list[Problem]:
        """Problems of kind :attr:`ProblemKind.SIZE` or :attr:`ProblemKind.CHECKSUM`."""
        return [p for p in self.problems if p.kind in (ProblemKind.SIZE, ProblemKind.CHECKSUM)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "rehashed": self.rehashed,
            "passed": len(self.passed),
            "missing": len(self.missing),
            "changed": len(self.changed),
            "unreadable": len(self.problems) - len(self.missing) - len(self.changed),
            "marked": self.marked,
            "problems": [p.to_dict() for p in self.problems],
        }


def verify(
    manifest: Manifest,
    records: Iterable[ManifestRecord] | None = None,
    *,
    rehash: bool = False,
    mark: bool = True,
    workers: int = 8,
    storage_options: StorageOptions | None = None,
    on_checked: Callable[[ManifestRecord, Problem | None], None] | None = None,
) -> VerifyReport:
    """Check the files of ``records`` (default: every record), ``workers`` at a time.

    :param rehash: stream every file and compare its SHA-256 (reads every byte);
        otherwise check existence and size only (one metadata request per file).
    :param mark: set ``is_verified`` on records that passed and clear it on records
        that failed, in one commit; records whose flag is already right are not
        rewritten. ``UNREADABLE`` records are left as they are.
    :param storage_options: fsspec options per URL scheme for reading the files.
    :param on_checked: called in the caller's thread after each file, with its problem
        or ``None`` (for progress display).

    Interrupted (``KeyboardInterrupt``), it stops starting checks and marks nothing.
    """
    selected = list(manifest if records is None else records)
    outcome: dict[str, Problem | None] = {}
    for done in run_parallel(lambda r: _check(r, rehash, storage_options), selected, workers):
        if done.error is not None:
            raise done.error
        record = selected[done.index]
        outcome[record.checksum] = done.result
        if on_checked is not None:
            on_checked(record, done.result)
    passed = [r.checksum for r in selected if outcome[r.checksum] is None]
    problems = [p for r in selected if (p := outcome[r.checksum]) is not None]
    marked = _mark(manifest, selected, outcome) if mark else 0
    return VerifyReport(len(selected), rehash, passed, problems, marked)


def _check(
    record: ManifestRecord, rehash: bool, storage_options: StorageOptions | None
) -> Problem | None:
    def problem(kind: ProblemKind, detail: str) -> Problem:
        return Problem(record.checksum, record.filepath, kind, detail)

    expected = record.content_length_bytes
    try:
        info = stat(record.filepath, storage_options)
        if expected is not None and info.size is not None and info.size != expected:
            return problem(ProblemKind.SIZE, f"{info.size} bytes, recorded {expected}")
        if not rehash:
            return None
        with open_stream(record.filepath, info.size, storage_options) as stream:
            digest = hash_stream(stream)
    except NotFoundError:
        return problem(ProblemKind.MISSING, "no file at the recorded filepath")
    except (ManifestError, OSError) as exc:
        return problem(ProblemKind.UNREADABLE, str(exc))
    if expected is not None and digest.size != expected:
        return problem(ProblemKind.SIZE, f"{digest.size} bytes, recorded {expected}")
    if digest.checksum != record.checksum:
        return problem(ProblemKind.CHECKSUM, f"SHA-256 is now {digest.checksum}")
    return None


def _mark(
    manifest: Manifest, selected: list[ManifestRecord], outcome: dict[str, Problem | None]
) -> int:
    now = datetime.now(UTC)
    changed = []
    for record in selected:
        problem = outcome[record.checksum]
        if problem is not None and problem.kind is ProblemKind.UNREADABLE:
            continue
        verified = problem is None
        if record.is_verified != verified:
            # A later updated_at makes this copy win a merge with the one it replaces.
            changed.append(record.model_copy(update={"is_verified": verified, "updated_at": now}))
    if changed:
        manifest.add_records(changed)
    return len(changed)
