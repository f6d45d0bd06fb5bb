"""The records of a manifest in memory: a snapshot plus log entries, merged per checksum.

The value of a checksum is decided by the entry with the highest :data:`Stamp` that
touched it (a put sets it, a removal deletes it); with no such entry, by the snapshot.
That rule is commutative: applying the same set of entries in any order, in any
number of steps, gives the same records, so every reader and every checkpoint agrees.
Entries can also be taken back out (:meth:`RecordState.unapply`), which a reader needs
when an entry it saw turns out not to belong to the log (see ``commitlog.py``).

Only committed entries are here: changes not committed yet live in their transaction
(:mod:`etl_manifests.transaction`) until its entry lands, so no other thread sees them
and a failed commit leaves nothing behind.

Not thread-safe: the manifest serialises access.
"""

from __future__ import annotations

from collections.abc import Iterator

from .entry import LogEntry, Stamp
from .record import Row

__all__ = ["RecordState"]

_MISSING = object()


class RecordState:
    """Checksum -> row, kept equal to ``snapshot`` merged with the applied entries.

    ``view`` is the live dict callers read; it is only ever changed through this class.
    """

    def __init__(self, snapshot: dict[str, Row], epoch: int) -> None:
        #: The current records: snapshot + applied entries.
        self.view = snapshot
        #: Epochs up to this one are folded into the snapshot the state started from.
        self.base_epoch = epoch
        # Applied entries not folded into the base yet, by key.
        self.entries: dict[str, LogEntry] = {}
        # How many of them each epoch holds (for the checkpoint policy).
        self._per_epoch: dict[int, int] = {}
        # For every checksum an entry touched: its base value (None = absent) and the
        # keys of the applied entries that touched it.
        self._base: dict[str, Row | None] = {}
        self._touched_by: dict[str, list[str]] = {}
        self._by_name: dict[str, list[str]] | None = None

    # --- reading -------------------------------------------------------------------

    def by_name(self) -> dict[str, list[str]]:
        """filename -> checksums, built on first use and kept in step after that."""
        if self._by_name is None:
            index: dict[str, list[str]] = {}
            for checksum, row in self.view.items():
                index.setdefault(row["filename"], []).append(checksum)
            self._by_name = index
        return self._by_name

    def commits_from(self, epoch: int) -> int:
        """Applied entries of ``epoch`` and later epochs."""
        return sum(n for e, n in self._per_epoch.items() if e >= epoch)

    def max_clock(self) -> int:
        """The highest logical clock among the applied entries (0 if none)."""
        return max((e.clock for e in self.entries.values()), default=0)

    # --- log entries ---------------------------------------------------------------

    def apply(self, key: str, entry: LogEntry) -> None:
        """Merge a committed entry."""
        if key in self.entries:
            return
        self.entries[key] = entry
        self._per_epoch[entry.epoch] = self._per_epoch.get(entry.epoch, 0) + 1
        touched_by = self._touched_by
        for checksum, row in entry.changes.items():
            self._remember_base(checksum)
            keys = touched_by.setdefault(checksum, [])
            keys.append(key)
            if len(keys) == 1:
                # This entry alone decides it: show its row, no stamps to compare. (A
                # batch of 100k new records commits twice as fast for it.)
                self._show(checksum, row)
                continue
            self._recompute(checksum)

    def unapply(self, key: str) -> None:
        """Take an entry back out, as if it had never been applied."""
        entry = self.entries.pop(key, None)
        if entry is None:
            return
        self._per_epoch[entry.epoch] -= 1
        for checksum in entry.changes:
            keys = self._touched_by.get(checksum, [])
            if key in keys:
                keys.remove(key)
            self._recompute(checksum)

    def fold(self, epoch: int) -> tuple[dict[str, Row], list[LogEntry]]:
        """The records as of all applied entries of epochs up to ``epoch``, and those entries.

        Pending changes and entries of later epochs are left out. Returns a new dict
        (rows are shared: they are never mutated).
        """
        folded = [e for e in self.entries.values() if e.epoch <= epoch]
        if not folded:
            # No entry decides anything: every tracked checksum has its base value (the
            # usual case when a new manifest's empty snapshot is written before a batch).
            base = self._base
            records = {c: row for c, row in self.view.items() if c not in base}
            records.update((c, row) for c, row in base.items() if row is not None)
            return records, folded
        records = dict(self.view)
        for checksum in self._base:
            row = self._value(checksum, through=epoch)
            if row is None:
                records.pop(checksum, None)
            else:
                records[checksum] = row
        return records, folded

    def rebase(self, epoch: int) -> None:
        """Forget entries of epochs up to ``epoch``: a snapshot now holds their effect."""
        if epoch <= self.base_epoch:
            return
        new_base = {c: self._value(c, through=epoch) for c in self._base}
        self.entries = {k: e for k, e in self.entries.items() if e.epoch > epoch}
        self._per_epoch = {e: n for e, n in self._per_epoch.items() if e > epoch}
        self._touched_by = {
            c: kept
            for c, keys in self._touched_by.items()
            if (kept := [k for k in keys if k in self.entries])
        }
        self._base = {c: row for c, row in new_base.items() if c in self._touched_by}
        self.base_epoch = epoch

    def later_entries(self) -> Iterator[tuple[str, LogEntry]]:
        """Applied entries not folded into the base, in stamp order."""
        return iter(sorted(self.entries.items(), key=lambda item: item[1].stamp))

    # --- internals -----------------------------------------------------------------

    def _remember_base(self, checksum: str) -> None:
        # Untracked means nothing but the base decides it, so the view shows the base.
        if checksum not in self._base:
            self._base[checksum] = self.view.get(checksum)

    def _touches(self, checksum: str) -> bool:
        return bool(self._touched_by.get(checksum))

    def _value(self, checksum: str, *, through: int | None) -> Row | None:
        best: tuple[Stamp, Row | None] | None = None
        for key in self._touched_by.get(checksum, ()):
            entry = self.entries[key]
            if through is not None and entry.epoch > through:
                continue
            if best is None or entry.stamp > best[0]:
                best = (entry.stamp, entry.changes[checksum])
        if best is not None:
            return best[1]
        return self._base.get(checksum)

    def _recompute(self, checksum: str) -> None:
        self._show(checksum, self._value(checksum, through=None))
        if not self._touches(checksum) and checksum in self._base:
            # Nothing but the base decides it again; stop tracking it.
            del self._base[checksum]
            self._touched_by.pop(checksum, None)

    def _show(self, checksum: str, row: Row | None) -> None:
        previous = self.view.get(checksum, _MISSING)
        if row is None:
            if previous is _MISSING:
                return
            del self.view[checksum]
        else:
            if previous is row:
                return
            self.view[checksum] = row
        if self._by_name is not None:
            _reindex(self._by_name, checksum, previous, row)


def _reindex(index: dict[str, list[str]], checksum: str, old: object, new: Row | None) -> None:
    old_name = old["filename"] if isinstance(old, dict) else None
    new_name = new["filename"] if new is not None else None
    if old_name == new_name:
        return
    if old_name is not None:
        names = index.get(old_name, [])
        if checksum in names:
            names.remove(checksum)
        if not names:
            index.pop(old_name, None)
    if new_name is not None:
        index.setdefault(new_name, []).append(checksum)
