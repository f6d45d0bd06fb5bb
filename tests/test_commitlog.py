"""The commit log: removal, refresh, checkpoints, retention, history, compatibility, and
the protocol's hazards, each shown on the memory or local backend."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from conftest import checksum, record
from etl_manifests import (
    CheckpointPolicy,
    CorruptManifestError,
    InvalidRecordError,
    Manifest,
    TransientStorageError,
    UnsupportedFormatError,
    open_backend,
)
from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.layout import LogLayout
from etl_manifests.storage import Blob, Expect, ObjectInfo, StorageBackend

STEM = "extractor_v1"
LAYOUT = LogLayout(STEM)
MANUAL = CheckpointPolicy(every=None)


def memory_root() -> str:
    return f"memory://{uuid.uuid4().hex}"


def open_manifest(root: str, **kwargs: object) -> Manifest:
    return Manifest("extractor", "1", open_backend(root), **kwargs)  # type: ignore[arg-type]


def stored_checksums(root: str) -> set[str]:
    return {r.checksum for r in open_manifest(root)}


# --- removal ---------------------------------------------------------------------------


def test_remove_record_removes_it_for_every_reader() -> None:
    root = memory_root()
    manifest = open_manifest(root)
    manifest.add_records([record(1), record(2)])
    assert manifest.remove_record(checksum(1)) is True
    assert checksum(1) not in manifest
    assert stored_checksums(root) == {checksum(2)}


def test_removing_an_absent_record_says_so() -> None:
    assert open_manifest(memory_root()).remove_record(checksum(9)) is False


def test_remove_records_in_a_batch_is_one_commit_with_the_puts() -> None:
    root = memory_root()
    manifest = open_manifest(root)
    manifest.add_records([record(1), record(2)])
    with manifest.batch():
        manifest.remove_records([checksum(1), checksum(2)])
        manifest.add_record(record(3))
    history = manifest.history()
    assert [(c.put, c.removed) for c in history] == [(2, 0), (1, 2)]
    assert stored_checksums(root) == {checksum(3)}


def test_a_put_after_a_removal_brings_the_record_back() -> None:
    root = memory_root()
    first, second = open_manifest(root), open_manifest(root)
    first.add_record(record(1, etag="old"))
    second.refresh()
    second.remove_record(checksum(1))
    first.refresh()
    assert checksum(1) not in first
    first.add_record(record(1, etag="back"))
    assert open_manifest(root).get(checksum(1)).etag == "back"  # type: ignore[union-attr]


def test_a_removal_after_a_put_removes_it() -> None:
    root = memory_root()
    first, second = open_manifest(root), open_manifest(root)
    first.add_record(record(1))
    second.refresh()
    second.remove_record(checksum(1))
    assert stored_checksums(root) == set()


def test_removing_a_malformed_checksum_is_refused() -> None:
    manifest = open_manifest(memory_root())
    with pytest.raises(InvalidRecordError, match="not a checksum"):
        manifest.remove_record("nothex")


def test_checkpoints_drop_tombstones() -> None:
    root = memory_root()
    manifest = open_manifest(root, checkpoint=MANUAL)
    manifest.add_record(record(1))
    manifest.remove_record(checksum(1))
    manifest.compact()
    document = orjson.loads(open_backend(root).read(f"{STEM}.json").data)
    assert document["records"] == {}


# --- concurrent commits to one checksum ---------------------------------------------


def test_concurrent_commits_to_one_checksum_resolve_alike_everywhere() -> None:
    root = memory_root()
    first, second = open_manifest(root, checkpoint=MANUAL), open_manifest(root)
    first.add_record(record(1, etag="from-first"))
    second.add_record(record(1, etag="from-second"))  # had not seen first's commit
    readers = [open_manifest(root) for _ in range(3)]
    first.refresh()
    second.refresh()
    verdicts = {m.get(checksum(1)).etag for m in [first, second, *readers]}  # type: ignore[union-attr]
    assert len(verdicts) == 1
    first.compact()
    after = open_manifest(root).get(checksum(1)).etag  # type: ignore[union-attr]
    assert {after} == verdicts


# --- refresh ---------------------------------------------------------------------------


class CountingBackend(StorageBackend):
    """Counts the requests a manifest makes, by kind and key."""

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.root = inner.root
        self.reads: list[str] = []
        self.writes: list[str] = []
        self.lists: list[str] = []

    def read(self, key: str) -> Blob:
        self.reads.append(key)
        return self.inner.read(key)

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        self.writes.append(key)
        return self.inner.write(key, data, expect=expect)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        self.lists.append(prefix)
        return self.inner.list(prefix)


def test_refresh_reads_only_new_entries_never_the_snapshot() -> None:
    root = memory_root()
    writer = open_manifest(root)
    writer.add_records([record(n) for n in range(50)])
    counting = CountingBackend(open_backend(root))
    reader = Manifest("extractor", "1", counting)
    writer.add_record(record(100))
    writer.add_record(record(101))
    counting.reads.clear()
    assert reader.refresh() == 2
    assert f"{STEM}.json" not in counting.reads
    assert len([k for k in counting.reads if k.endswith(".json")]) == 2
    counting.reads.clear()
    assert reader.refresh() == 0
    assert all(not k.endswith(".json") for k in counting.reads)  # only the seal look-up


def test_commit_never_reads_the_snapshot() -> None:
    root = memory_root()
    open_manifest(root).add_records([record(n) for n in range(10)])
    counting = CountingBackend(open_backend(root))
    manifest = Manifest("extractor", "1", counting, checkpoint=MANUAL)
    counting.reads.clear()
    for n in range(20, 30):
        manifest.add_record(record(n))
    assert f"{STEM}.json" not in counting.reads
    entries = [key for key in counting.writes if key.startswith(LAYOUT.log_prefix)]
    assert entries == [LAYOUT.entry(1, manifest.log.writer, s) for s in range(1, 11)]


class SlowReads(CountingBackend):
    """Reads that take a round trip, like an object store's; records each reader thread."""

    def __init__(self, inner: StorageBackend) -> None:
        super().__init__(inner)
        self.threads: set[int] = set()

    def read(self, key: str) -> Blob:
        self.threads.add(threading.get_ident())
        time.sleep(0.002)
        return super().read(key)


@pytest.mark.parametrize(("slow", "concurrent"), [(False, False), (True, True)])
def test_catch_up_reads_entries_concurrently_only_when_reads_are_slow(
    slow: bool, concurrent: bool
) -> None:
    root = memory_root()
    writer = open_manifest(root, checkpoint=MANUAL)
    for n in range(40):
        writer.add_record(record(n))
    backend = SlowReads(open_backend(root)) if slow else CountingBackend(open_backend(root))
    threads: set[int] = set()
    if not slow:
        # Count threads on the fast path too, without slowing it.
        inner_read = backend.read

        def read(key: str) -> Blob:
            threads.add(threading.get_ident())
            return inner_read(key)

        backend.read = read  # type: ignore[method-assign]
    reader = Manifest("extractor", "1", backend, checkpoint=MANUAL)
    assert {r.checksum for r in reader} == {checksum(n) for n in range(40)}
    used = backend.threads if isinstance(backend, SlowReads) else threads
    assert (len(used) > 1) is concurrent


def test_refresh_keeps_uncommitted_changes() -> None:
    root = memory_root()
    writer, reader = open_manifest(root), open_manifest(root)
    with reader.batch():
        reader.add_record(record(1))
        writer.add_record(record(2))
        reader.refresh()
        assert {checksum(1), checksum(2)} <= {r.checksum for r in reader}
    assert stored_checksums(root) == {checksum(1), checksum(2)}


# --- checkpoints -------------------------------------------------------------------


def test_compact_folds_the_log_into_a_complete_snapshot() -> None:
    root = memory_root()
    manifest = open_manifest(root, checkpoint=MANUAL)
    for n in range(5):
        manifest.add_record(record(n))
    assert manifest.compact() == 5
    document = orjson.loads(open_backend(root).read(f"{STEM}.json").data)
    assert sorted(document["records"]) == [checksum(n) for n in range(5)]
    assert document["metadata"]["log_epoch"] == 1
    assert document["metadata"]["revision"] == 5
    assert open_manifest(root).metadata.revision == 5


def test_default_policy_checkpoints_in_the_background() -> None:
    root = memory_root()
    policy = CheckpointPolicy(every=10, size_ratio=0)
    manifest = open_manifest(root, checkpoint=policy)
    for n in range(25):
        manifest.add_record(record(n))
    assert manifest.wait_for_checkpoint(30)  # a checkpoint still running
    document = orjson.loads(open_backend(root).read(f"{STEM}.json").data)
    assert len(document["records"]) >= 10
    assert stored_checksums(root) == {checksum(n) for n in range(25)}


def test_many_writers_each_below_the_threshold_still_make_checkpoints() -> None:
    # Eight writers of 10 commits each, a threshold of 20: no writer alone ever reaches
    # it, but together they do, and the log must not grow without bound.
    root = memory_root()
    policy = CheckpointPolicy(every=20, size_ratio=0, inline=True)
    writers = [open_manifest(root, checkpoint=policy) for _ in range(8)]
    for n in range(10):
        for w, writer in enumerate(writers):
            writer.add_record(record(100 * w + n))
    document = orjson.loads(open_backend(root).read(f"{STEM}.json").data)
    assert len(document["records"]) >= 40
    assert stored_checksums(root) == {checksum(100 * w + n) for w in range(8) for n in range(10)}


def test_a_single_writer_probes_the_log_only_now_and_then() -> None:
    root = memory_root()
    counting = CountingBackend(open_backend(root))
    manifest = Manifest("extractor", "1", counting, checkpoint=CheckpointPolicy(every=1000))
    counting.lists.clear()
    for n in range(250):
        manifest.add_record(record(n))
    assert len([p for p in counting.lists if p.startswith(LAYOUT.log_prefix)]) == 2


def test_two_checkpointers_at_once_agree() -> None:
    root = memory_root()
    first = open_manifest(root, checkpoint=MANUAL)
    second = open_manifest(root, checkpoint=MANUAL)
    first.add_records([record(1), record(2)])
    second.add_record(record(3))
    fold_a = first.log.prepare_checkpoint()
    fold_b = second.log.prepare_checkpoint()
    assert fold_a is not None
    assert fold_b is not None
    assert fold_a.records == fold_b.records  # the same member lists, the same fold
    version_a = first.log.write_checkpoint(fold_a)
    assert second.log.write_checkpoint(fold_b) is None  # lost: adopts the winner
    first.log.finish_checkpoint(fold_a, version_a)
    second.log.finish_checkpoint(fold_b, None)
    second.add_record(record(4))
    assert stored_checksums(root) == {checksum(n) for n in (1, 2, 3, 4)}


def test_a_background_checkpoint_yields_to_one_already_sealing() -> None:
    root = memory_root()
    first = open_manifest(root, checkpoint=MANUAL)
    second = open_manifest(root, checkpoint=MANUAL)
    first.add_records([record(1), record(2)])
    second.add_record(record(3))
    fold = first.log.prepare_checkpoint()  # sealed, not written yet
    assert fold is not None
    counting = CountingBackend(second.backend)
    second.log.backend = counting
    assert second.log.prepare_checkpoint(yield_to_others=True) is None
    assert counting.reads == []  # it read nothing: no catch-up, no snapshot
    assert second.log.epoch == fold.epoch + 1
    second.add_record(record(4))  # lands where readers look, not as an orphan
    assert [k for k in counting.writes if k.endswith(".json")] == [
        LAYOUT.entry(fold.epoch + 1, second.log.writer, 2)
    ]
    first.log.finish_checkpoint(fold, first.log.write_checkpoint(fold))
    assert stored_checksums(root) == {checksum(n) for n in (1, 2, 3, 4)}


def test_commits_another_checkpointer_sealed_do_not_make_a_checkpoint_due() -> None:
    root = memory_root()
    policy = CheckpointPolicy(every=5, size_ratio=0)
    writer = open_manifest(root, checkpoint=policy)
    other = open_manifest(root, checkpoint=MANUAL)
    for n in range(4):
        writer.add_record(record(n))
    other.add_record(record(10))
    fold = other.log.prepare_checkpoint()  # seals the epoch of the writer's 4 commits
    assert fold is not None
    counting = CountingBackend(writer.backend)
    writer.log.backend = counting
    writer.add_record(record(4))  # 5 commits, but 4 of them are the sealer's to fold
    _join_checkpoints()
    assert f"{STEM}.json" not in counting.writes
    assert other.log.write_checkpoint(fold) is not None  # nobody raced it
    assert stored_checksums(root) == {checksum(n) for n in (0, 1, 2, 3, 4, 10)}


def test_an_inline_checkpoint_folds_commits_in_epochs_another_sealed() -> None:
    # The caller of an inline checkpoint waits for its commits to be in the snapshot,
    # whoever sealed their epoch (after_every_commit() promises the JSON is complete).
    root = memory_root()
    writer = open_manifest(root, checkpoint=CheckpointPolicy(every=5, size_ratio=0, inline=True))
    other = open_manifest(root, checkpoint=MANUAL)
    for n in range(4):
        writer.add_record(record(n))
    assert other.log.prepare_checkpoint() is not None  # seals; never writes its fold
    writer.add_record(record(4))
    doc = json.loads(MemoryBackend(root, {}).read(f"{STEM}.json").data)
    assert {checksum(n) for n in range(5)} <= set(doc["records"])


def _join_checkpoints() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("checkpoint "):
            thread.join()


def test_a_writer_behind_the_stored_snapshot_waits_for_twice_the_commits() -> None:
    root = memory_root()
    ahead = open_manifest(root, checkpoint=MANUAL)
    ahead.add_record(record(100))
    ahead.compact()
    counting = CountingBackend(open_backend(root))
    behind = Manifest("extractor", "1", counting, checkpoint=CheckpointPolicy(every=4))
    assert not behind.log.behind()
    ahead.add_record(record(0))
    ahead.compact()  # the stored snapshot is now newer than the one `behind` holds
    counting.reads.clear()
    behind.add_record(record(1))  # learns that epoch 2 was sealed
    assert behind.log.behind()
    for n in range(2, 5):
        behind.add_record(record(n))
    _join_checkpoints()
    # Four commits in its open epoch make a checkpoint due, but not for a writer that
    # would fold from an old snapshot, lose the race to write it, and read it again.
    assert f"{STEM}.json" not in counting.reads
    assert f"{STEM}.json" not in counting.writes
    for n in range(5, 9):
        behind.add_record(record(n))  # eight: now it tries (and reads the newer one)
    _join_checkpoints()
    assert f"{STEM}.json" in counting.reads
    assert stored_checksums(root) == {checksum(n) for n in [*range(9), 100]}


def test_a_commit_while_another_checkpoints_is_not_lost() -> None:
    root = memory_root()
    checkpointer = open_manifest(root, checkpoint=MANUAL)
    writer = open_manifest(root, checkpoint=MANUAL)
    checkpointer.add_record(record(1))
    fold = checkpointer.log.prepare_checkpoint()  # epoch 1 sealed and listed
    assert fold is not None
    writer.add_record(record(2))  # lands in epoch 1 after the listing: an orphan, moved
    checkpointer.log.finish_checkpoint(fold, checkpointer.log.write_checkpoint(fold))
    assert stored_checksums(root) == {checksum(1), checksum(2)}
    assert [c.epoch for c in writer.history() if c.writer == writer.log.writer] == [2]


# --- retention -----------------------------------------------------------------------


def test_folded_entries_stay_until_the_retention_has_passed() -> None:
    root = memory_root()
    manifest = open_manifest(root, checkpoint=MANUAL)
    manifest.add_records([record(1)])
    manifest.compact()
    backend = open_backend(root)
    assert backend.list(LAYOUT.epoch_prefix(1))  # kept: within the retention
    assert manifest.log.cleanup(now=None) == 0
    later = manifest.log.history()[0].time + timedelta(hours=2)
    assert manifest.log.cleanup(now=later) == 1
    assert backend.list(LAYOUT.epoch_prefix(1)) == []
    assert stored_checksums(root) == {checksum(1)}
    assert manifest.history() == []


def test_a_writer_older_than_the_retention_still_lands_where_readers_look() -> None:
    root = memory_root()
    policy = CheckpointPolicy(every=None, retention=timedelta(0))
    stale = open_manifest(root, checkpoint=policy)  # sees epoch 1
    busy = open_manifest(root, checkpoint=policy)
    for round_ in range(3):
        busy.add_record(record(round_))
        busy.compact()  # seals, folds and (retention 0) deletes each epoch
    stale.add_record(record(99))  # into epoch 1: sealed, folded and deleted long ago
    assert stored_checksums(root) == {checksum(n) for n in (0, 1, 2, 99)}
    busy.compact()
    assert stored_checksums(root) == {checksum(n) for n in (0, 1, 2, 99)}


def test_a_reader_far_behind_the_retention_reloads_the_snapshot() -> None:
    root = memory_root()
    policy = CheckpointPolicy(every=None, retention=timedelta(0))
    reader = open_manifest(root, checkpoint=policy)
    writer = open_manifest(root, checkpoint=policy)
    for n in range(3):
        writer.add_record(record(n))
        writer.compact()
    reader.refresh()
    assert {r.checksum for r in reader} == {checksum(n) for n in range(3)}


# --- lost responses and crashes ----------------------------------------------------


class LosesResponses(MemoryBackend):
    """Stores a create, then answers as if the connection had dropped, once per key."""

    def __init__(self, root: str) -> None:
        super().__init__(root, {})
        self.lost: set[str] = set()

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        version = super().write(key, data, expect=expect)
        if key.endswith(".json") and ".log/" in key and key not in self.lost:
            self.lost.add(key)
            raise TransientStorageError(f"response to the write of {key} lost")
        return version


def test_a_lost_response_is_neither_doubled_nor_lost() -> None:
    root = memory_root()
    backend = LosesResponses(root)
    manifest = Manifest("extractor", "1", backend, checkpoint=MANUAL)
    with pytest.raises(TransientStorageError):
        manifest.add_record(record(1))
    assert manifest.dirty
    manifest.save()  # lands the same entry again: finds it stored, recognises it
    assert not manifest.dirty
    assert [c.put for c in open_manifest(root).history()] == [1]
    assert stored_checksums(root) == {checksum(1)}


# --- bad stored entries --------------------------------------------------------------


def entry_key(root: str) -> str:
    (info,) = [i for i in open_backend(root).list(LAYOUT.log_prefix) if i.key.endswith(".json")]
    return info.key


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: b"",
        lambda data: b"[]",
        lambda data: data.replace(b'"extractor_v1"', b'"loader_v1"'),
        lambda data: data.replace(b'"put":{', b'"put":{"x":1,'),
        lambda data: data[:-1] + b',"remove":[]}',
    ],
    ids=["truncated", "empty", "not-an-object", "foreign", "bad-record", "duplicate-key"],
)
def test_a_corrupt_entry_is_a_typed_error_and_never_overwritten(damage: object) -> None:
    root = memory_root()
    open_manifest(root).add_record(record(1))
    key = entry_key(root)
    backend = open_backend(root)
    bad = damage(backend.read(key).data)  # type: ignore[operator]
    backend.write(key, bad)
    with pytest.raises(CorruptManifestError, match=r"extractor_v1\.log"):
        open_manifest(root)
    assert backend.read(key).data == bad


def test_an_entry_holding_a_record_twice_is_refused() -> None:
    # Valid JSON and a valid entry once parsed (the second copy silently wins), but
    # not what any writer committed: the duplicate-key check must see it.
    root = memory_root()
    open_manifest(root).add_record(record(1))
    key = entry_key(root)
    backend = open_backend(root)
    data = backend.read(key).data
    ((cs, row),) = orjson.loads(data)["put"].items()
    again = orjson.dumps({cs: {**row, "etag": "another"}})[1:-1]
    backend.write(key, data.replace(b'"put":{', b'"put":{' + again + b",", 1))
    with pytest.raises(CorruptManifestError, match="more than once"):
        open_manifest(root)


# --- compatibility -----------------------------------------------------------------


def test_a_manifest_written_by_0_1_0_opens_and_upgrades_on_the_first_commit(
    tmp_path: Path,
) -> None:
    old = {
        "metadata": {
            "format_version": 1,
            "process": "extractor",
            "etl_version": "1",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-02T00:00:00Z",
            "revision": 7,
        },
        "records": {
            checksum(1): {
                **record(1),
                "etl_version": "1",
                "is_verified": False,
                "content_type": None,
                "last_modified_server": None,
                "updated_at": "2026-01-02T00:00:00Z",
            }
        },
    }
    (tmp_path / f"{STEM}.json").write_text(json.dumps(old))
    manifest = open_manifest(str(tmp_path))
    assert checksum(1) in manifest
    assert manifest.metadata.revision == 7
    manifest.add_record(record(2))
    upgraded = json.loads((tmp_path / f"{STEM}.json").read_bytes())
    assert upgraded["metadata"]["format_version"] == 2
    assert list(upgraded["records"]) == [checksum(1)]
    assert stored_checksums(str(tmp_path)) == {checksum(1), checksum(2)}
    assert open_manifest(str(tmp_path)).metadata.revision == 8


def test_a_newer_format_is_refused_and_kept(tmp_path: Path) -> None:
    manifest = open_manifest(str(tmp_path))
    manifest.add_record(record(1))
    path = tmp_path / f"{STEM}.json"
    document = json.loads(path.read_bytes())
    document["metadata"]["format_version"] = 3
    path.write_text(json.dumps(document))
    with pytest.raises(UnsupportedFormatError):
        open_manifest(str(tmp_path))
    assert json.loads(path.read_bytes())["metadata"]["format_version"] == 3
