"""Find damage in a manifest's commit log and set it aside: ``etl-manifests repair``.

A log entry or seal damaged by hand (truncated, edited, deleted) makes every load fail
with :class:`~etl_manifests.errors.CorruptManifestError`, and writers that notice it
refuse to commit. :func:`repair_manifest` reads the whole stored manifest the way a
reader does, reports each damaged object with what setting it aside loses, and only
with ``apply=True`` changes anything:

* an unreadable entry is moved to ``{stem}.log/damaged/`` (its bytes are kept there)
  and dropped from its epoch's member list;
* a listed member that is gone is dropped from the member list;
* an unreadable seal of an epoch no snapshot holds is written again as ``sealed``, so
  the next reader lists the epoch afresh;
* an unreadable seal of an epoch the snapshot already holds (harmless to readers, but
  it stops the cleanup) is written again as ``folded``.

Anything written by a newer release is reported and never touched: upgrade instead. An
unreadable snapshot is reported too; restore it from a backup (nothing here can tell
what it held).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .document import decode
from .entry import decode_entry
from .errors import ConflictError, CorruptManifestError, NotFoundError, UnsupportedFormatError
from .layout import ENTRY_NAME, FOLDED, LISTED, SEALED, LogLayout, Seal
from .model import Manifest, manifest_key
from .process import ETLProcess
from .storage import StorageBackend

__all__ = ["Damage", "RepairReport", "repair_manifest"]

_CHECKSUM = re.compile(rb"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Damage:
    """One damaged object of a stored manifest."""

    location: str
    """Where it is (a path or URL, without credentials)."""
    problem: str
    """What is wrong with it."""
    loses: str
    """What setting it aside loses."""
    fix: str | None
    """What ``apply=True`` does about it; ``None``: nothing can be done here."""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for ``--json``)."""
        return {
            "location": self.location,
            "problem": self.problem,
            "loses": self.loses,
            "fix": self.fix,
        }


@dataclass(slots=True)
class RepairReport:
    """What :func:`repair_manifest` found and, with ``apply=True``, did."""

    manifest: str
    damage: list[Damage] = field(default_factory=list)
    applied: bool = False
    """Whether the fixes were made."""
    loads: bool = False
    """Whether the manifest loads now (checked after the fixes, or as found)."""
    error: str | None = None
    """Why it still does not load, if it does not."""

    @property
    def ok(self) -> bool:
        """Nothing damaged, and the manifest loads."""
        return not self.damage and self.loads

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for ``--json``)."""
        return {
            "manifest": self.manifest,
            "damage": [d.to_dict() for d in self.damage],
            "applied": self.applied,
            "loads": self.loads,
            "error": self.error,
        }


def repair_manifest(
    backend: StorageBackend,
    process: ETLProcess | str,
    etl_version: str,
    *,
    apply: bool = False,
) -> RepairReport:
    """Check the stored manifest of ``process`` at ``etl_version``; with ``apply``, set
    its damaged log objects aside (see the module's description). Nothing is changed
    without ``apply``. Safe to run while writers commit: every rewrite of a seal is
    conditional on the version that was checked.
    """
    key = manifest_key(process, etl_version)
    layout = LogLayout(key.removesuffix(".json"))
    scan = _Scan(backend, layout)
    report = RepairReport(backend.url(key))
    report.damage = scan.run()
    if apply and any(d.fix for d in report.damage):
        scan.apply()
        report.applied = True
    try:
        Manifest(process, etl_version, backend)
    except CorruptManifestError as exc:
        report.error = str(exc)
    else:
        report.loads = True
    return report


class _Scan:
    """One pass over the stored objects, remembering the fixes it would make."""

    def __init__(self, backend: StorageBackend, layout: LogLayout) -> None:
        self.backend = backend
        self.layout = layout
        self.damage: list[Damage] = []
        # Fixes, in the order they are made: entries moved aside first, then seals.
        self._move: list[tuple[str, bytes]] = []
        self._seals: list[tuple[str, bytes, str]] = []

    def url(self, key: str) -> str:
        return self.backend.url(key)

    def run(self) -> list[Damage]:
        try:
            blob = self.backend.read(self.layout.snapshot)
        except NotFoundError:
            base, start = 0, 1
        else:
            try:
                doc = decode(blob.data, self.url(self.layout.snapshot))
            except CorruptManifestError as exc:
                self.damage.append(
                    Damage(
                        self.url(self.layout.snapshot),
                        exc.reason,
                        "every record: the snapshot holds the manifest up to its log position",
                        None,
                    )
                )
                return self.damage
            base, start = doc.metadata.log_epoch, doc.metadata.log_start
        for epoch in range(start, base + 1):
            self._check_folded_seal(epoch)
        epoch = base + 1
        while self._check_open_epoch(epoch):
            epoch += 1
        return self.damage

    def apply(self) -> None:
        for key, data in self._move:
            self.backend.write(self._aside(key), data)
            self.backend.delete(key)
        for key, data, version in self._seals:
            try:
                self.backend.write(key, data, expect=version)
            except ConflictError:
                continue  # changed meanwhile: the next run looks at the new one

    # --- epochs ----------------------------------------------------------------------

    def _read_seal(self, epoch: int) -> tuple[Seal | None, str | None, str | None]:
        """(seal, its version, what is wrong with it)."""
        key = self.layout.seal(epoch)
        try:
            blob = self.backend.read(key)
        except NotFoundError:
            return None, None, None
        try:
            return Seal.decode(blob.data, blob.version, self.url(key), epoch), blob.version, None
        except UnsupportedFormatError:
            raise
        except CorruptManifestError as exc:
            return None, blob.version, exc.reason

    def _names(self, epoch: int) -> set[str]:
        prefix = self.layout.epoch_prefix(epoch)
        return {
            info.key[len(prefix) :]
            for info in self.backend.list(prefix)
            if ENTRY_NAME.fullmatch(info.key[len(prefix) :])
        }

    def _check_folded_seal(self, epoch: int) -> None:
        key = self.layout.seal(epoch)
        try:
            _seal, version, problem = self._read_seal(epoch)
        except UnsupportedFormatError as exc:
            self._newer(key, exc)
            return
        if problem is None or version is None:
            return
        now = datetime.now(UTC)
        # The snapshot holds this epoch already; only a writer paused since it committed
        # here reads this seal, and the entries still stored are the members it needs.
        folded = Seal(epoch, FOLDED, frozenset(self._names(epoch)), now, now)
        self._seals.append((key, folded.encode(), version))
        self.damage.append(
            Damage(
                self.url(key),
                problem,
                "nothing: the snapshot holds this epoch (the damage only stops the cleanup)",
                "write the seal again as folded, naming the entries still stored",
            )
        )

    def _check_open_epoch(self, epoch: int) -> bool:
        """Check an epoch no snapshot holds; return whether a later epoch may follow."""
        key = self.layout.seal(epoch)
        try:
            seal, version, problem = self._read_seal(epoch)
        except UnsupportedFormatError as exc:
            self._newer(key, exc)
            return False
        stored = self._names(epoch)
        if problem is not None and version is not None:
            now = datetime.now(UTC)
            resealed = Seal(epoch, SEALED, frozenset(), now, None)
            self._seals.append((key, resealed.encode(), version))
            self.damage.append(
                Damage(
                    self.url(key),
                    problem,
                    "nothing stored; an entry created after the epoch was first listed "
                    "(an orphan its writer committed again) could count twice",
                    "write the seal again as sealed, so the next reader lists the epoch afresh",
                )
            )
            members, listed = stored, None
        elif seal is None or seal.state == SEALED:
            members, listed = stored, None
        else:
            members, listed = set(seal.members), seal
            if seal.state == FOLDED:
                self.damage.append(
                    Damage(
                        self.url(key),
                        f"the seal says epoch {epoch} is folded, but no snapshot holds it",
                        "the records of its commits that are no longer stored",
                        None,
                    )
                )
                return True
        dropped = set()
        for name in sorted(members - stored):
            dropped.add(name)
            self.damage.append(
                Damage(
                    self.url(self.layout.epoch_prefix(epoch) + name),
                    f"a listed member of epoch {epoch} is missing (deleted or moved by hand?)",
                    "the records that commit put or removed (the entry is gone: which is unknown)",
                    "drop it from the epoch's member list",
                )
            )
        for name in sorted(members & stored):
            if self._check_entry(epoch, name):
                dropped.add(name)
        if listed is not None and dropped and version is not None:
            kept = Seal(epoch, LISTED, listed.members - dropped, listed.sealed_at, listed.listed_at)
            self._seals.append((key, kept.encode(), version))
        return seal is not None or problem is not None

    def _check_entry(self, epoch: int, name: str) -> bool:
        """Check one entry; return whether it is set aside."""
        key = self.layout.epoch_prefix(epoch) + name
        try:
            data = self.backend.read(key).data
        except NotFoundError:
            return False  # an orphan its writer just deleted
        try:
            decode_entry(data, self.url(key), self.layout.stem)
        except UnsupportedFormatError as exc:
            self._newer(key, exc)
            return False
        except CorruptManifestError as exc:
            found = sorted({m.decode() for m in _CHECKSUM.findall(data)})
            loses = (
                f"the commit's changes to {len(found)} record(s), as far as its bytes show "
                f"(first: {found[0]})"
                if found
                else "the commit's changes (its bytes name no checksum)"
            )
            self._move.append((key, data))
            self.damage.append(
                Damage(
                    self.url(key),
                    exc.reason,
                    loses,
                    f"move it to {self.url(self._aside(key))} and drop it from the member list",
                )
            )
            return True
        return False

    def _newer(self, key: str, exc: UnsupportedFormatError) -> None:
        self.damage.append(
            Damage(
                self.url(key),
                f"written by a newer release (format {exc.found}; this one reads {exc.supported})",
                "a newer release's commit: never set it aside; upgrade etl-manifests",
                None,
            )
        )

    def _aside(self, key: str) -> str:
        epoch, _, name = key[len(self.layout.log_prefix) :].partition("/")
        return f"{self.layout.log_prefix}damaged/{epoch}-{name}"
