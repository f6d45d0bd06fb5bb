"""The commit protocol: a snapshot, a log of small entries beside it, and checkpoints.

Every step named in ``docs/protocol.md`` is a method of :class:`CommitLog`; nothing else
in the library writes a manifest. Everything is built from the backend contract
(:mod:`etl_manifests.storage`), so every backend, built-in or plugin, gets it unchanged.

Layout below the root, for the manifest ``extractor_v1.0.0``::

    extractor_v1.0.0.json                          snapshot (the seed's document, format 2)
    extractor_v1.0.0.log/0000000007.seal           seal of epoch 7 (once it is closed)
    extractor_v1.0.0.log/0000000007/<writer>-<seq>.json   one entry per commit

Commit (:meth:`CommitLog.land`)
    1. Create the entry under a name only this writer uses, in the newest epoch ``E`` it
       knows, with ``write(expect=ABSENT)``. Its logical clock is above every clock the
       writer has seen. (Lost response: the retry finds the key taken, reads it, and
       recognises its own commit id.)
    2. Read the seal of ``E``. No seal: the entry is in the log; done. Any later lister
       of ``E`` lists after the seal exists, hence after the entry.
    3. A seal: ``E`` is closed, and its member list decides. (If the seal has no list
       yet, make it: step *List*.) Listed: done. Not listed (an "orphan", created after
       the listing): delete it and commit the same changes again in ``E + 1`` with a
       higher clock. Readers ignore non-members of sealed epochs, so the orphan never
       counts, and the commit is acknowledged only once it is a member.

List (:meth:`CommitLog._list_members`)
    Anyone who finds a seal without a member list lists the epoch's folder and writes
    the list into the seal, conditionally on the seal's version: the first list wins and
    every reader then uses that one.

Checkpoint (:meth:`CommitLog.prepare_checkpoint`, ...)
    Seal the newest epoch (``write(expect=ABSENT)``; an existing seal is fine), bring the
    member lists of every sealed epoch up to date, fold snapshot + members into a new
    snapshot recording ``log_epoch``, and write it conditionally on the old snapshot's
    version. A lost race means another checkpoint landed: adopt it.

Retention (:meth:`CommitLog.cleanup`)
    Once an epoch is folded into the snapshot and its list is older than the retention
    period, mark its seal folded (dropping the list), then delete its folder.

Read (:meth:`CommitLog.load`, :meth:`CommitLog.catch_up`)
    Read the snapshot, then for each epoch after its ``log_epoch``: sealed -> apply the
    listed members (taking back any non-member seen earlier); not sealed -> apply every
    entry listed. Entries merge per checksum by stamp (:mod:`etl_manifests.state`), so
    the order they are read in does not matter. A seal marked folded, or a listed member
    that is gone, means the reader's snapshot is older than the retention: re-read it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from ._forksafe import renewed
from .checkpoints import Checkpoints
from .document import decode, encode
from .entry import LogEntry, decode_entry, encode_entry
from .errors import (
    REPAIR_ADVICE,
    AlreadyExistsError,
    BucketNotFoundError,
    ConflictError,
    CorruptManifestError,
    NotFoundError,
    SaveRetriesExhaustedError,
    StorageError,
)
from .layout import ENTRY_NAME, FOLDED, LISTED, SEALED, LogLayout, Seal
from .metadata import FORMAT_VERSION, ManifestMetadata
from .policy import CheckpointPolicy
from .record import Row
from .retry import RetryPolicy
from .state import RecordState
from .storage import ABSENT, StorageBackend

__all__ = ["CommitInfo", "CommitLog", "new_writer_id"]

logger = logging.getLogger(__name__)

# Entries read at once when catching up on an object store.
_READ_CONCURRENCY = 16
# Entries are read one after another while each read is this fast (a local disk or the
# page cache: threads would cost more than they save under the GIL); once the probe
# reads show a round trip (an object store), the rest are read concurrently.
_PROBE_READS = 4
_FAST_READ_SECONDS = 0.0005


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """One retained commit, as :meth:`Manifest.history` lists it."""

    epoch: int
    clock: int
    writer: str
    seq: int
    commit: str
    time: datetime
    put: int
    removed: int
    folded: bool
    """Whether a snapshot holds it already."""

    @property
    def position(self) -> tuple[int, int, str, int]:
        """The commit's place in the log's order: ``(epoch, clock, writer, seq)``."""
        return (self.epoch, self.clock, self.writer, self.seq)

    @classmethod
    def of(cls, entry: LogEntry, *, folded: bool) -> CommitInfo:
        """The commit ``entry`` holds."""
        return cls(
            entry.epoch,
            entry.clock,
            entry.writer,
            entry.seq,
            entry.commit,
            entry.time,
            entry.puts,
            entry.removals,
            folded=folded,
        )


@dataclass(slots=True)
class _Fold:
    """A checkpoint prepared under the manifest's lock, written outside it."""

    epoch: int
    metadata: ManifestMetadata
    records: dict[str, Row]
    expect: str | None
    generation: int
    commits: int


class _StaleView(Exception):
    """The snapshot this view started from is older than the log's retention: epoch
    ``epoch`` was folded and its entries (``missing``, one of them) deleted."""

    def __init__(self, epoch: int, missing: str | None = None) -> None:
        super().__init__(epoch, missing)
        self.epoch = epoch
        self.missing = missing


def new_writer_id() -> str:
    """A fresh 16-hex-digit writer id."""
    return uuid.uuid4().hex[:16]


class CommitLog:
    """The protocol engine of one manifest: its records, its lock, its transactions and
    its checkpoints.

    ``state`` holds the committed records; ``metadata`` is the snapshot's metadata
    block. :meth:`transact` is the one way changes get in; every other method expects
    the caller to hold :attr:`lock` (the manifest does), except the checkpoint's
    snapshot write, which runs outside it.
    """

    def __init__(
        self,
        backend: StorageBackend,
        stem: str,
        *,
        process: str,
        etl_version: str,
        retry: RetryPolicy,
        policy: CheckpointPolicy,
        created_at: datetime | None = None,
        before_first_write: Callable[[StorageBackend], None] | None = None,
    ) -> None:
        self.backend = backend
        self.layout = LogLayout(stem)
        self.process = process
        self.etl_version = etl_version
        self.retry = retry
        self.policy = policy
        self._created_at = created_at
        self._before_first_write = before_first_write
        #: Serialises commits, loads and the checkpoint's bookkeeping.
        self.lock = threading.RLock()
        #: When to fold the log into the snapshot, and the thread that does it.
        self.checkpoints = Checkpoints(self)
        self.writer = new_writer_id()
        self._seq = 0
        #: Set once a read found the log damaged: commits are refused until a load
        #: succeeds, since no reader could load what they would add to.
        self.damaged: CorruptManifestError | None = None
        # A commit that raised without knowing whether its entry landed: it lands again
        # (same key, same commit id) before the next one. Kept across snapshot re-reads.
        self._inflight: LogEntry | None = None
        self._reset(self._fresh_metadata(), {}, None, stored_format=None)

    def _reset(
        self,
        metadata: ManifestMetadata,
        records: dict[str, Row],
        version: str | None,
        *,
        stored_format: int | None,
    ) -> None:
        self.metadata = metadata
        self.state = RecordState(records, metadata.log_epoch)
        #: Token of the snapshot the state is based on (None: no snapshot stored).
        self.version = version
        self._stored_format = stored_format
        self.clock = metadata.log_clock
        #: The epoch new entries go into: the newest one known not to be sealed.
        self.epoch = metadata.log_epoch + 1
        # Epochs up to this one are listed and all their members applied.
        self._complete = metadata.log_epoch
        self._log_start = metadata.log_start
        self._snapshot_ready = False
        #: Bumped whenever the state object is replaced (a prepared fold is then void).
        self.generation = getattr(self, "generation", 0) + 1

    # --- keys and small helpers ----------------------------------------------------

    def url(self, key: str) -> str:
        return self.backend.url(key)

    def after_fork(self) -> None:
        """In a forked child: write under a writer id of its own, with locks no lost
        thread holds (one the forking thread holds is kept)."""
        self.writer = new_writer_id()
        self._seq = 0
        self.lock = renewed(self.lock)
        self.checkpoints.after_fork()

    def _fresh_metadata(self) -> ManifestMetadata:
        if self._created_at is None:
            return ManifestMetadata(process=self.process, etl_version=self.etl_version)
        return ManifestMetadata(
            process=self.process, etl_version=self.etl_version, created_at=self._created_at
        )

    def _check_owner(self, metadata: ManifestMetadata, location: str) -> None:
        if metadata.process != self.process or metadata.etl_version != self.etl_version:
            raise CorruptManifestError(
                location,
                f"it belongs to {metadata.process} v{metadata.etl_version}, "
                f"not {self.process} v{self.etl_version}",
            )

    def transact(self, changes: dict[str, Row | None]) -> LogEntry | None:
        """Commit ``changes`` as one entry (an unsettled earlier one lands first), then
        checkpoint if the policy says so; returns the entry (``None``: no changes)."""
        with self.lock:
            entry = self.commit(changes)
            self.checkpoints.after_commit()
        return entry

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _next_clock(self) -> int:
        self.clock += 1
        return self.clock

    # --- read ----------------------------------------------------------------------

    def load(self) -> None:
        """Replace everything in memory by the stored snapshot plus its log.

        :raises CorruptManifestError: the snapshot or an entry cannot be read; memory
            is left as it was.
        """
        old = (self.metadata, self.state, self.version, self._stored_format)
        saved_epoch = (self.clock, self.epoch, self._complete, self._log_start)
        try:
            self._read_snapshot()
            self._catch_up_or_reload()
        except BaseException:
            self.metadata, self.state, self.version, self._stored_format = old
            self.clock, self.epoch, self._complete, self._log_start = saved_epoch
            raise
        self.damaged = None
        self._inflight = None

    def _read_snapshot(self, keep: RecordState | None = None) -> None:
        """Read the snapshot into a new state; re-apply ``keep``'s later entries on top."""
        try:
            blob = self.backend.read(self.layout.snapshot)
        except NotFoundError as exc:
            if _is_missing_bucket(exc):
                raise
            self._reset(self._fresh_metadata(), {}, None, stored_format=None)
        else:
            doc = decode(blob.data, self.url(self.layout.snapshot))
            self._check_owner(doc.metadata, self.url(self.layout.snapshot))
            self._reset(
                doc.metadata, doc.records, blob.version, stored_format=doc.metadata.format_version
            )
        if keep is not None:
            for key, entry in keep.later_entries():
                if entry.epoch > self.state.base_epoch:
                    self.state.apply(key, entry)
                    self.clock = max(self.clock, entry.clock)

    def catch_up(self) -> int:
        """Apply the commits other writers made since this view last looked.

        Reads only seals and entries after the position held (never the snapshot,
        unless the view fell behind the retention period). Returns how many commits
        were applied (minus any taken back).
        """
        return self._catch_up_or_reload()

    def _catch_up_or_reload(self) -> int:
        try:
            return self._catch_up_with_reloads()
        except CorruptManifestError as exc:
            self.damaged = exc
            raise

    def _catch_up_with_reloads(self) -> int:
        for _ in range(self.retry.max_attempts):
            try:
                return self._catch_up()
            except _StaleView as stale:
                logger.info(
                    "%s: view older than the retention; re-reading the snapshot",
                    self.url(self.layout.snapshot),
                )
                self._read_snapshot(keep=self.state)
                if stale.epoch > self.state.base_epoch:
                    # Retention deletes only epochs a stored snapshot holds, and this is
                    # the newest snapshot: the epoch's entries were not folded, so they
                    # were lost (deleted or moved by hand), not cleaned up.
                    raise self._lost(stale) from None
        raise StorageError(
            f"{self.url(self.layout.snapshot)}: the log kept being folded and deleted while "
            "being read; retry later, or raise the checkpoint retention"
        )

    def _lost(self, stale: _StaleView) -> CorruptManifestError:
        if stale.missing is not None:
            return CorruptManifestError(
                self.url(stale.missing),
                f"this commit is a listed member of log epoch {stale.epoch}, which no "
                "snapshot holds yet, and it is missing (deleted or moved by hand?): its "
                "records would be lost",
                advice=REPAIR_ADVICE,
            )
        return CorruptManifestError(
            self.url(self.layout.seal(stale.epoch)),
            f"the seal says log epoch {stale.epoch} is folded, but the newest snapshot "
            f"holds epochs up to {self.state.base_epoch} only",
            advice=REPAIR_ADVICE,
        )

    def _catch_up(self) -> int:
        applied = 0
        epoch = self._complete + 1
        while True:
            seal = self._read_seal(epoch)
            if seal is None:
                names = self._list_epoch(epoch)
                if self._vanished(epoch, names) and self._read_seal(epoch) is None:
                    raise self._deleted_from_open_epoch(epoch, names)
                applied += self._apply_names(epoch, names, members=False)
                self.epoch = max(self.epoch, epoch)
                if self._vanished(epoch, names):
                    continue  # sealed meanwhile: its member list decides
                return applied
            if seal.state == SEALED:
                seal = self._list_members(seal)
            if seal.state == FOLDED:
                raise _StaleView(epoch)
            for key in [k for k, e in self.state.entries.items() if e.epoch == epoch]:
                if key.rpartition("/")[2] not in seal.members:
                    self.state.unapply(key)
                    applied -= 1
            applied += self._apply_names(epoch, seal.members, members=True)
            self._complete = epoch
            self.epoch = max(self.epoch, epoch + 1)
            epoch += 1

    def _apply_names(self, epoch: int, names: Iterable[str], *, members: bool) -> int:
        prefix = self.layout.epoch_prefix(epoch)
        keys = [prefix + name for name in names if prefix + name not in self.state.entries]
        applied = 0
        for key, data in self._read_many(keys):
            if data is None:
                if members:
                    raise _StaleView(epoch, key)  # a member is gone: deleted after the retention
                continue  # an orphan its writer deleted; the seal will say so
            entry = decode_entry(data, self.url(key), self.layout.stem)
            if self.layout.entry(entry.epoch, entry.writer, entry.seq) != key:
                raise CorruptManifestError(
                    self.url(key),
                    "the log entry is stored under a name that does not match its contents",
                )
            self.state.apply(key, entry)
            self.clock = max(self.clock, entry.clock)
            applied += 1
        return applied

    def _vanished(self, epoch: int, names: list[str]) -> bool:
        """Whether an entry this view applied from ``epoch`` is missing from ``names``.

        Writers delete only their orphans (after the epoch was sealed), and retention
        only folded epochs: an entry gone from an epoch that is still open was lost.
        """
        prefix = self.layout.epoch_prefix(epoch)
        listed = {prefix + name for name in names}
        return any(e.epoch == epoch and key not in listed for key, e in self.state.entries.items())

    def _deleted_from_open_epoch(self, epoch: int, names: list[str]) -> CorruptManifestError:
        prefix = self.layout.epoch_prefix(epoch)
        listed = {prefix + name for name in names}
        gone = sorted(
            k for k, e in self.state.entries.items() if e.epoch == epoch and k not in listed
        )
        return CorruptManifestError(
            self.url(gone[0]),
            f"this commit of the open log epoch {epoch} was read before and is gone now "
            f"({len(gone)} such), though only a closed epoch's entries are ever deleted "
            "(deleted or moved by hand?): its records would be lost",
            advice=REPAIR_ADVICE,
        )

    def _read_many(self, keys: list[str]) -> Iterable[tuple[str, bytes | None]]:
        def one(key: str) -> tuple[str, bytes | None]:
            try:
                return key, self.backend.read(key).data
            except NotFoundError as exc:
                if _is_missing_bucket(exc):
                    raise
                return key, None

        out: list[tuple[str, bytes | None]] = []
        started = time.perf_counter()
        for key in keys[:_PROBE_READS]:
            out.append(one(key))
        rest = keys[_PROBE_READS:]
        if not rest:
            return out
        if time.perf_counter() - started <= _FAST_READ_SECONDS * len(out):
            out.extend(one(key) for key in rest)
            return out
        with ThreadPoolExecutor(min(_READ_CONCURRENCY, len(rest))) as pool:
            out.extend(pool.map(one, rest))
        return out

    def _list_epoch(self, epoch: int) -> list[str]:
        prefix = self.layout.epoch_prefix(epoch)
        names = []
        for info in self.backend.list(prefix):
            name = info.key[len(prefix) :]
            if ENTRY_NAME.fullmatch(name):
                names.append(name)
        return names

    def _read_seal(self, epoch: int) -> Seal | None:
        key = self.layout.seal(epoch)
        try:
            blob = self.backend.read(key)
        except NotFoundError as exc:
            if _is_missing_bucket(exc):
                raise
            return None
        return Seal.decode(blob.data, blob.version, self.url(key), epoch)

    def _list_members(self, seal: Seal) -> Seal:
        """Step *List*: fix the members of a sealed epoch (the first list written wins)."""
        listed = Seal(
            seal.epoch,
            LISTED,
            frozenset(self._list_epoch(seal.epoch)),
            seal.sealed_at,
            datetime.now(UTC),
        )
        key = self.layout.seal(seal.epoch)
        try:
            version = self.backend.write(key, listed.encode(), expect=seal.version)
        except ConflictError:
            found = self._read_seal(seal.epoch)
            if found is None or found.state == SEALED:
                raise StorageError(
                    f"{self.url(key)} changed while its epoch was being listed and is not "
                    "listed now; retry"
                ) from None
            return found
        return Seal(
            listed.epoch, LISTED, listed.members, listed.sealed_at, listed.listed_at, version
        )

    # --- write ---------------------------------------------------------------------

    def ensure_snapshot(self) -> None:
        """Make sure a format-2 snapshot is stored before the first entry is written.

        A missing snapshot is created empty; one written by an older release (format
        1, no log) is rewritten as format 2, so that release refuses it from now on
        instead of overwriting it without the log.
        """
        if self._snapshot_ready:
            return
        if self._before_first_write is not None:
            self._before_first_write(self.backend)
        for _ in range(self.retry.max_attempts):
            if self.version is not None and self._stored_format == FORMAT_VERSION:
                self._snapshot_ready = True
                return
            records, _ = self.state.fold(self.state.base_epoch)
            metadata = self.metadata.model_copy(
                update={"format_version": FORMAT_VERSION, "updated_at": datetime.now(UTC)}
            )
            expect = ABSENT if self.version is None else self.version
            try:
                self.version = self.backend.write(
                    self.layout.snapshot, encode(metadata, records), expect=expect
                )
            except ConflictError:
                self._read_snapshot(keep=self.state)
                continue
            self.metadata = metadata
            self._stored_format = FORMAT_VERSION
        raise SaveRetriesExhaustedError(
            f"could not create {self.url(self.layout.snapshot)}: others kept changing it"
        )

    @property
    def unsettled(self) -> bool:
        """Whether a commit failed without knowing if its entry landed (its response was
        lost, say); the next :meth:`commit` lands that entry first, once."""
        return self._inflight is not None

    def discard_unsettled(self) -> None:
        """Forget a commit whose outcome is unknown (a load replaces memory anyway)."""
        self._inflight = None

    def commit(self, changes: dict[str, Row | None]) -> LogEntry | None:
        """Commit ``changes`` (checksum -> row, or ``None`` for a removal) as one entry,
        and apply it; returns the entry (``None``: nothing to commit).

        An entry whose landing failed earlier lands first, under its own name and commit
        id, so a commit whose response was lost is never doubled.
        """
        self.ensure_snapshot()
        if self._inflight is not None:
            self.land(self._inflight)
        if not changes:
            return None
        entry = LogEntry(
            self.layout.stem,
            uuid.uuid4().hex,
            self.epoch,
            self._next_clock(),
            self.writer,
            self._next_seq(),
            datetime.now(UTC),
            dict(changes),
        )
        return self.land(entry)

    def land(self, entry: LogEntry) -> LogEntry:
        """Steps 1-3 of a commit: create the entry and make sure it is a member; returns
        it as it landed (an orphan's commit lands again at a later position)."""
        if self.damaged is not None:
            raise CorruptManifestError(
                self.damaged.location,
                f"{self.damaged.reason}; no reader can load this manifest, so commits to "
                "it are refused until it is repaired and loaded again",
                advice=REPAIR_ADVICE,
            )
        self._inflight = entry
        for _ in range(self.retry.max_attempts):
            key = self.layout.entry(entry.epoch, entry.writer, entry.seq)
            self._create_entry(key, entry)
            seal = self._read_seal(entry.epoch)
            if seal is not None and seal.state == SEALED:
                seal = self._list_members(seal)
            # A folded seal keeps its members: a writer paused since it created its
            # entry learns that it was folded, even after the entry was deleted, and
            # must not commit the same changes again over newer commits that saw them.
            # (Only a folded seal of format 1 cannot tell; it is taken for an orphan,
            # as that release did.)
            member = seal is None or bool(seal.is_member(key.rpartition("/")[2]))
            if member:
                self._inflight = None
                self.state.apply(key, entry)
                self.clock = max(self.clock, entry.clock)
                if seal is not None:
                    self.epoch = max(self.epoch, entry.epoch + 1)
                return entry
            # An orphan: created after its epoch was listed. Nobody counts it; commit
            # the same changes again in the open epoch, however far ahead that is.
            self._delete_quietly(key)
            self.epoch = self._first_open_epoch(max(self.epoch, entry.epoch + 1))
            entry = entry.at(self.epoch, self._next_clock(), self._next_seq())
            self._inflight = entry
        raise SaveRetriesExhaustedError(
            f"could not commit to {self.url(self.layout.snapshot)}: its log was closed "
            f"under the commit {self.retry.max_attempts} times; the records are still in "
            "memory, call save() again"
        )

    def _first_open_epoch(self, start: int) -> int:
        """The first epoch from ``start`` on that has no seal, in a logarithmic number
        of reads: seals are made in order (a checkpointer seals only the first epoch it
        knows open), so the sealed epochs are a prefix of all epochs."""
        if not self._sealed(start):
            return start
        low, step = start, 1  # low is sealed
        while self._sealed(start + step):
            low, step = start + step, step * 2
        high = start + step  # not sealed
        while high - low > 1:
            middle = (low + high) // 2
            if self._sealed(middle):
                low = middle
            else:
                high = middle
        return high

    def _sealed(self, epoch: int) -> bool:
        try:
            self.backend.read(self.layout.seal(epoch))
        except NotFoundError as exc:
            if _is_missing_bucket(exc):
                raise
            return False
        return True

    def _create_entry(self, key: str, entry: LogEntry) -> None:
        try:
            self.backend.write(key, encode_entry(entry), expect=ABSENT)
        except AlreadyExistsError:
            # Our own earlier attempt landed (its response was lost): recognise it.
            stored = decode_entry(self.backend.read(key).data, self.url(key), self.layout.stem)
            if stored.commit != entry.commit:
                raise StorageError(
                    f"{self.url(key)} holds another commit; two writers share the writer "
                    f"id {entry.writer!r} (a copied process?); reload and save again"
                ) from None

    def _delete_quietly(self, key: str) -> None:
        try:
            self.backend.delete(key)
        except StorageError as exc:  # an orphan left behind is harmless
            logger.warning("could not delete orphan log entry %s: %s", self.url(key), exc)

    # --- checkpoint ----------------------------------------------------------------

    def open_epoch_known(self) -> int:
        """Commits this view holds in the open epoch and later: the ones no checkpoint has
        claimed yet (a sealed epoch is its sealer's to fold, or the next checkpoint's)."""
        return self.state.commits_from(self.epoch)

    def unfolded(self) -> int:
        """Commits this view holds that its snapshot does not."""
        return self.state.commits_from(self.state.base_epoch + 1)

    def behind(self) -> bool:
        """Whether epochs were sealed since the snapshot this view holds: another writer
        has checkpointed (or is checkpointing), so the stored snapshot is newer."""
        return self.epoch > self.state.base_epoch + 1

    def open_epoch_commits(self) -> int:
        """Commits every writer has made in the open epoch (one listing; none read)."""
        return len(self._list_epoch(self.epoch))

    def prepare_checkpoint(self, *, yield_to_others: bool = False) -> _Fold | None:
        """Seal the newest epoch, bring every sealed epoch up to date, and fold.

        Returns ``None`` when there is nothing to fold, or, with ``yield_to_others``,
        when another checkpointer sealed the epoch first: many writers whose policy
        finds a checkpoint due at about the same moment then leave it to the one whose
        seal landed, instead of each reading the whole log and racing to write the
        snapshot. (If that one dies, the sealed epoch is folded by the next checkpoint.)
        """
        self.ensure_snapshot()
        if not yield_to_others:
            # The caller waits for every commit acknowledged before it to be in the
            # snapshot. Each lies in the first epoch a read finds open, or before it
            # (a writer moves on only past a seal it read): find that epoch first.
            self._catch_up_or_reload()
        epoch = self.epoch
        sealed_at = datetime.now(UTC)
        seal = Seal(epoch, SEALED, frozenset(), sealed_at, None)
        try:
            self.backend.write(self.layout.seal(epoch), seal.encode(), expect=ABSENT)
        except AlreadyExistsError:
            if yield_to_others:
                self.epoch = max(self.epoch, epoch + 1)  # commit where readers look next
                return None
            # Sealed by another: fold all the same.
        self._catch_up_or_reload()
        if epoch <= self.state.base_epoch:
            return None
        records, folded = self.state.fold(epoch)
        metadata = self.metadata.model_copy(
            update={
                "format_version": FORMAT_VERSION,
                "log_epoch": epoch,
                "log_clock": max([self.metadata.log_clock, *(e.clock for e in folded)]),
                "log_start": self._log_start,
                "revision": self.metadata.revision + len(folded),
                "updated_at": max([self.metadata.updated_at, *(e.time for e in folded)]),
            }
        )
        return _Fold(epoch, metadata, records, self.version, self.generation, len(folded))

    def write_checkpoint(self, fold: _Fold) -> str | None:
        """Write the folded snapshot; ``None`` if another checkpoint got there first."""
        expect = ABSENT if fold.expect is None else fold.expect
        try:
            return self.backend.write(
                self.layout.snapshot, encode(fold.metadata, fold.records), expect=expect
            )
        except ConflictError:
            return None

    def finish_checkpoint(self, fold: _Fold, version: str | None) -> None:
        """Rebase memory on the snapshot just written (or on the one that won)."""
        if fold.generation != self.generation:
            return  # memory was reloaded meanwhile; it finds the new snapshot by itself
        if version is None:
            self._read_snapshot(keep=self.state)
            self._catch_up_or_reload()
            return
        self.state.rebase(fold.epoch)
        self.version = version
        self.metadata = fold.metadata
        self._stored_format = FORMAT_VERSION

    def cleanup(self, now: datetime | None = None) -> int:
        """Retention: delete the entries of folded epochs listed long enough ago.

        ``now`` is the store's current time (default: the modification time of the
        snapshot a checkpoint just wrote). Housekeeping only: a damaged seal of an
        epoch the snapshot already holds is logged and left (``etl-manifests repair``
        reports it), never a failure of the checkpoint that just landed. Returns how
        many objects were deleted.
        """
        try:
            return self._cleanup(now or self._store_now())
        except CorruptManifestError as exc:
            logger.warning("%s: log cleanup stopped: %s", self.url(self.layout.snapshot), exc)
            return 0

    def _cleanup(self, now: datetime | None) -> int:
        epoch = self._log_start
        deleted = 0
        while epoch <= self.state.base_epoch:
            seal = self._read_seal(epoch)
            if seal is None:
                break
            if seal.state == SEALED:
                seal = self._list_members(seal)
            if seal.state == LISTED:
                if not self._retention_passed(seal, now):
                    break
                folded = Seal(epoch, FOLDED, seal.members, seal.sealed_at, seal.listed_at)
                try:
                    self.backend.write(
                        self.layout.seal(epoch), folded.encode(), expect=seal.version
                    )
                except ConflictError:
                    continue  # someone else changed it; look again
            prefix = self.layout.epoch_prefix(epoch)
            for info in self.backend.list(prefix):
                # Entries only: a staged file here is another writer's create in flight
                # (an orphan-to-be); cleanup_staged() removes killed writers' leftovers.
                if ENTRY_NAME.fullmatch(info.key[len(prefix) :]):
                    self.backend.delete(info.key)
                    deleted += 1
            epoch += 1
        self._log_start = epoch
        return deleted

    def _store_now(self) -> datetime | None:
        """The store's clock, read from the snapshot a checkpoint just wrote (``None``
        where the backend reports no modification times)."""
        return self._modified(self.layout.snapshot)

    def _modified(self, key: str) -> datetime | None:
        """The store's modification time of ``key`` (a listing of exactly that key)."""
        found = [info.modified for info in self.backend.list(key) if info.key == key]
        return found[0] if found else None

    def _retention_passed(self, seal: Seal, now: datetime | None) -> bool:
        """Whether ``seal`` was listed at least the retention ago, by one clock.

        The store's own modification times of the seal (last written when it was
        listed) and of the snapshot just written are compared, so no two machines'
        clocks meet. A backend without modification times falls back to this
        machine's clock against the lister's ``listed_at``.
        """
        if now is not None:
            listed = self._modified(self.layout.seal(seal.epoch))
            if listed is not None:
                return now - listed >= self.policy.retention
        if seal.listed_at is None:
            return False
        return datetime.now(UTC) - seal.listed_at >= self.policy.retention

    # --- history -------------------------------------------------------------------

    def history(self) -> list[CommitInfo]:
        """Every commit still stored in the log, in log order."""
        found: list[CommitInfo] = []
        epoch = self._log_start
        while True:
            seal = self._read_seal(epoch)
            if seal is not None and seal.state == FOLDED:
                epoch += 1
                continue
            listed = seal is not None and seal.state == LISTED
            names = seal.members if seal is not None and listed else self._list_epoch(epoch)
            prefix = self.layout.epoch_prefix(epoch)
            for key, data in self._read_many([prefix + n for n in names]):
                if data is None:
                    continue
                entry = decode_entry(data, self.url(key), self.layout.stem)
                found.append(CommitInfo.of(entry, folded=entry.epoch <= self.state.base_epoch))
            if seal is None:
                break
            epoch += 1
        return sorted(found, key=lambda info: info.position)


def _is_missing_bucket(exc: NotFoundError) -> bool:
    # A missing bucket is not a missing manifest: loading must not pretend it is empty.
    return isinstance(exc, BucketNotFoundError)
