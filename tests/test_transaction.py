"""Transactions: changes private to the thread that makes them until their entry lands."""

from __future__ import annotations

import threading
import uuid

import pytest

from conftest import checksum, record
from etl_manifests import Manifest, StorageError, TransactionClosedError
from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.storage import Expect


class FailingWrites(MemoryBackend):
    def __init__(self, root: str) -> None:
        super().__init__(root, {})
        self.fail = False

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        if self.fail:
            raise StorageError("injected failure")
        return super().write(key, data, expect=expect)


def fresh(root: str) -> Manifest:
    return Manifest("extractor", "1", MemoryBackend(root, {}))


def in_other_thread(call: object) -> object:
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(call()))  # type: ignore[operator]
    thread.start()
    thread.join(10)
    return out[0]


def test_a_transaction_commits_its_changes_as_one_entry() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    manifest = fresh(root)
    manifest.add_record(record(1))
    with manifest.transaction() as tx:
        tx.put(record(2))
        assert tx.remove(checksum(1))
        assert not tx.remove(checksum(9))
    assert tx.commit_info is not None
    assert (tx.commit_info.put, tx.commit_info.removed) == (1, 2)
    assert set(fresh(root).records) == {checksum(2)}
    assert fresh(root).metadata.revision == 2


def test_uncommitted_changes_are_seen_by_their_thread_only() -> None:
    manifest = fresh(f"memory://{uuid.uuid4().hex}")
    manifest.add_record(record(1))
    with manifest.batch():
        manifest.add_record(record(2))
        manifest.remove_record(checksum(1))
        assert checksum(2) in manifest
        assert checksum(1) not in manifest
        assert len(manifest) == 1
        assert [r.checksum for r in manifest] == [checksum(2)]
        assert manifest.find("file_2.gz")
        assert checksum(2) in manifest.records
        # Another thread sees the committed records only.
        assert in_other_thread(lambda: checksum(2) in manifest) is False
        assert in_other_thread(lambda: checksum(1) in manifest) is True
        assert in_other_thread(lambda: manifest.find("file_2.gz")) == []
    assert in_other_thread(lambda: checksum(2) in manifest) is True


def test_a_batch_does_not_hold_up_other_threads_commits() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    manifest = fresh(root)
    with manifest.batch():
        manifest.add_record(record(1))
        in_other_thread(lambda: manifest.add_record(record(2)))
        assert checksum(2) in fresh(root)  # landed while the batch was open
    assert set(fresh(root).records) == {checksum(1), checksum(2)}


def test_a_block_that_raises_leaves_nothing_behind() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    manifest = fresh(root)
    opened = []

    def block() -> None:
        with manifest.transaction() as tx:
            opened.append(tx)
            tx.put(record(1))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        block()
    [tx] = opened
    assert checksum(1) not in manifest
    manifest.add_record(record(2))
    assert set(fresh(root).records) == {checksum(2)}
    with pytest.raises(TransactionClosedError):
        tx.put(record(3))


def test_a_failed_commit_is_not_seen_nor_carried_by_another_threads_commit() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    backend = FailingWrites(root)
    manifest = Manifest("extractor", "1", backend)
    manifest.add_record(record(1))
    backend.fail = True
    with pytest.raises(StorageError), manifest.batch():
        manifest.add_record(record(2))
    assert checksum(2) not in manifest
    assert in_other_thread(lambda: checksum(2) in manifest) is False
    backend.fail = False
    manifest.save()  # settles the unsettled entry: it never landed, so it lands now
    assert not manifest.dirty
    in_other_thread(lambda: manifest.add_record(record(3)))
    stored = fresh(root)
    assert set(stored.records) == {checksum(1), checksum(2), checksum(3)}
    assert stored.metadata.revision == 3  # one commit each, none doubled


def test_a_discarded_failure_is_not_committed_by_anyone() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    backend = FailingWrites(root)
    manifest = Manifest("extractor", "1", backend)
    manifest.add_record(record(1))
    backend.fail = True
    with pytest.raises(StorageError):
        manifest.add_record(record(2))
    backend.fail = False
    manifest.load()  # forgets the unsettled commit (its entry never landed)
    assert not manifest.dirty
    in_other_thread(lambda: manifest.add_record(record(3)))
    assert set(fresh(root).records) == {checksum(1), checksum(3)}


def test_nested_transactions_commit_once_at_the_end_of_the_outermost() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    manifest = fresh(root)
    with manifest.batch():
        manifest.add_record(record(1))
        with manifest.transaction() as inner:
            inner.put(record(2))
        assert checksum(1) not in fresh(root)
    assert fresh(root).metadata.revision == 1
    assert set(fresh(root).records) == {checksum(1), checksum(2)}
