"""``Transaction``: changes to one manifest that nobody else sees until they land.

A transaction collects records put and checksums removed; :meth:`Transaction.commit`
lands them as one log entry (:meth:`CommitLog.commit`) and only then are they part of
the manifest's records, for every thread. Until then they are visible only through the
transaction itself (and, for the thread that opened it with
:meth:`Manifest.transaction` or :meth:`Manifest.batch`, through the manifest's look-ups).
A transaction that raises, is discarded, or whose commit fails leaves nothing behind in
the manifest's records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .errors import TransactionClosedError
from .record import ManifestRecord, Row

if TYPE_CHECKING:
    from .commitlog import CommitInfo

__all__ = ["Transaction"]


class Transaction:
    """Puts and removals of one manifest, committed together as one log entry.

    Get one from :meth:`Manifest.transaction`; it commits when the ``with`` block ends
    without an exception. Not shared between threads: each thread opens its own.
    """

    def __init__(
        self,
        validate: Callable[[Mapping[str, Any] | ManifestRecord], ManifestRecord],
        normalise: Callable[[str], str],
        committed: Callable[[], Mapping[str, Row]],
        land: Callable[[dict[str, Row | None]], CommitInfo | None],
    ) -> None:
        self._validate = validate
        self._normalise = normalise
        self._committed = committed
        self._land = land
        #: checksum -> the row to put, or ``None`` to remove it.
        self.changes: dict[str, Row | None] = {}
        #: The commit this transaction made, once it landed (``None`` before, or when it
        #: had nothing to commit).
        self.commit_info: CommitInfo | None = None
        self._closed = False

    # --- changing -----------------------------------------------------------------------

    def put(self, record_params: Mapping[str, Any] | ManifestRecord) -> ManifestRecord:
        """Validate and add (or replace by checksum) one record; returns it.

        :raises InvalidRecordError: the input is not a valid record; the transaction
            is unchanged.
        """
        self._check_open()
        record = self._validate(record_params)
        self.changes[record.checksum] = record.__dict__
        return record

    def remove(self, checksum: str) -> bool:
        """Remove the record with this checksum (any case); returns whether the manifest
        (as this transaction sees it) held it.

        :raises InvalidRecordError: ``checksum`` is not a SHA-256 hex digest.
        """
        self._check_open()
        key = self._normalise(checksum)
        held = self.get_row(key) is not None
        self.changes[key] = None
        return held

    # --- reading ------------------------------------------------------------------------

    def get_row(self, checksum: str) -> Row | None:
        """The row as this transaction sees it: its own change, else the committed one."""
        if checksum in self.changes:
            return self.changes[checksum]
        return self._committed().get(checksum)

    def __contains__(self, checksum: object) -> bool:
        return isinstance(checksum, str) and self.get_row(checksum.lower()) is not None

    def rows(self) -> Iterator[Row]:
        """Every row as this transaction sees it (committed ones first)."""
        changes = self.changes
        for checksum, row in list(self._committed().items()):
            if checksum not in changes:
                yield row
        for change in list(changes.values()):
            if change is not None:
                yield change

    def count(self) -> int:
        """How many records the manifest holds as this transaction sees it."""
        committed = self._committed()
        added = sum(1 for c, row in self.changes.items() if row is not None and c not in committed)
        removed = sum(1 for c, row in self.changes.items() if row is None and c in committed)
        return len(committed) + added - removed

    # --- ending -------------------------------------------------------------------------

    def commit(self) -> CommitInfo | None:
        """Land the changes as one log entry; returns the commit (``None``: no changes).

        Once it returned, every thread sees the changes. If it raises, the changes are
        not in the manifest's records; whether the entry landed may be unknown (a lost
        response), and then ``Manifest.dirty`` is true and :meth:`Manifest.save` finds
        out, landing that same entry at most once.
        """
        self._check_open()
        self._closed = True
        self.commit_info = self._land(self.changes)
        return self.commit_info

    def discard(self) -> None:
        """Drop the changes; nothing is stored."""
        self._closed = True
        self.changes = {}

    @property
    def closed(self) -> bool:
        """Whether :meth:`commit` or :meth:`discard` ended it."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise TransactionClosedError(
                "this transaction was committed or discarded already; open a new one"
            )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Transaction ({state}): {len(self.changes)} change(s)>"
