"""Manifest: records in memory, kept in step with the stored document."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import CHECKSUM, checksum, record
from etl_manifests import (
    CheckpointPolicy,
    CorruptManifestError,
    InvalidRecordError,
    Manifest,
    ManifestRecord,
    StorageError,
    open_backend,
)
from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.storage import Expect


def local_manifest(root: Path, process: str = "extractor", version: str = "1.0.0") -> Manifest:
    return Manifest(process, version, open_backend(str(root)))


def test_new_manifest_is_empty_and_not_yet_stored(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    assert len(manifest) == 0
    assert not (tmp_path / "extractor_v1.0.0.json").exists()


def test_path_is_process_and_version_under_root(tmp_path: Path) -> None:
    assert local_manifest(tmp_path).path == tmp_path / "extractor_v1.0.0.json"


def test_add_record_commits_immediately(tmp_path: Path) -> None:
    local_manifest(tmp_path).add_record(record(1))
    assert list(local_manifest(tmp_path).records) == [checksum(1)]
    stored = json.loads((tmp_path / "extractor_v1.0.0.json").read_bytes())
    assert stored["metadata"]["process"] == "extractor"


def test_add_record_writes_one_small_log_entry_not_the_document(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    manifest.add_records([record(n) for n in range(200)])
    snapshot = (tmp_path / "extractor_v1.0.0.json").read_bytes()
    manifest.add_record(record(1000))
    assert (tmp_path / "extractor_v1.0.0.json").read_bytes() == snapshot
    entries = sorted((tmp_path / "extractor_v1.0.0.log").rglob("*.json"))
    assert len(entries) == 2
    assert entries[-1].stat().st_size < 1000


def test_every_commit_policy_keeps_the_json_file_complete(tmp_path: Path) -> None:
    policy = CheckpointPolicy.after_every_commit()
    manifest = Manifest("extractor", "1.0.0", open_backend(str(tmp_path)), checkpoint=policy)
    for n in range(3):
        manifest.add_record(record(n))
        stored = json.loads((tmp_path / "extractor_v1.0.0.json").read_bytes())
        assert sorted(stored["records"]) == [checksum(i) for i in range(n + 1)]
    manifest.remove_record(checksum(0))
    stored = json.loads((tmp_path / "extractor_v1.0.0.json").read_bytes())
    assert sorted(stored["records"]) == [checksum(1), checksum(2)]


def test_add_record_returns_the_validated_record(tmp_path: Path) -> None:
    result = local_manifest(tmp_path).add_record(record(1, checksum=checksum(1).upper()))
    assert isinstance(result, ManifestRecord)
    assert result.checksum == checksum(1)


def test_etl_version_defaults_to_the_manifests(tmp_path: Path) -> None:
    assert local_manifest(tmp_path, version="2.3.4").add_record(record(1)).etl_version == "2.3.4"


def test_explicit_etl_version_is_kept(tmp_path: Path) -> None:
    assert local_manifest(tmp_path).add_record(record(1, etl_version="0.9")).etl_version == "0.9"


def test_records_survive_a_reload(tmp_path: Path) -> None:
    local_manifest(tmp_path).add_record(record(1))
    reloaded = local_manifest(tmp_path)
    assert reloaded.get(checksum(1)) == local_manifest(tmp_path).records[checksum(1)]
    assert len(reloaded) == 1


def test_adding_same_checksum_replaces(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    manifest.add_record(record(1))
    manifest.add_record(record(1, is_verified=True))
    assert len(manifest) == 1
    assert manifest.get(checksum(1)).is_verified  # type: ignore[union-attr]


def test_membership_and_get_ignore_checksum_case(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    manifest.add_record(record(1))
    assert checksum(1).upper() in manifest
    assert manifest.get(checksum(1).upper()) is not None
    assert checksum(2) not in manifest
    assert 42 not in manifest
    assert manifest.get(checksum(2)) is None


def test_iteration_yields_records(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    manifest.add_records([record(1), record(2)])
    assert sorted(r.checksum for r in manifest) == [checksum(1), checksum(2)]


def test_records_view_is_read_only(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    with pytest.raises(TypeError):
        manifest.records[CHECKSUM] = None  # type: ignore[index]


def test_find_by_filename_and_server_headers(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    manifest.add_record(record(1, filename="daily.gz", etag="v1", content_length_bytes=10))
    assert [r.checksum for r in manifest.find("daily.gz", etag="v1")] == [checksum(1)]
    assert manifest.find("daily.gz", etag="v2") == []
    assert manifest.find("daily.gz", content_length_bytes=11) == []
    manifest.add_record(record(2, filename="daily.gz", etag="v2"))
    assert [r.checksum for r in manifest.find("daily.gz", etag="v2")] == [checksum(2)]
    assert len(manifest.find("daily.gz")) == 2


def test_find_index_follows_a_renamed_record(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    manifest.add_record(record(1, filename="old.gz"))
    assert manifest.find("old.gz")
    manifest.add_record(record(1, filename="new.gz"))
    assert manifest.find("old.gz") == []
    assert len(manifest.find("new.gz")) == 1


def test_invalid_record_changes_nothing(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    manifest.add_record(record(1))
    before = (tmp_path / "extractor_v1.0.0.json").read_bytes()
    with pytest.raises(InvalidRecordError, match="checksum"):
        manifest.add_record(record(2, checksum="nothex"))
    assert len(manifest) == 1
    assert (tmp_path / "extractor_v1.0.0.json").read_bytes() == before


def test_invalid_record_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="filname: unknown field"):
        local_manifest(tmp_path).add_record({**record(1), "filname": "x"})


def test_non_mapping_input_is_an_invalid_record(tmp_path: Path) -> None:
    with pytest.raises(InvalidRecordError, match="mapping"):
        local_manifest(tmp_path).add_record(["not", "a", "dict"])  # type: ignore[arg-type]


def test_add_records_with_one_invalid_adds_none(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    with pytest.raises(InvalidRecordError, match="record #1"):
        manifest.add_records([record(1), record(2, content_length_bytes=-5), record(3)])
    assert len(manifest) == 0
    assert not (tmp_path / "extractor_v1.0.0.json").exists()


def test_batch_commits_once_at_the_end(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    with manifest.batch():
        for n in range(5):
            manifest.add_record(record(n))
        assert not (tmp_path / "extractor_v1.0.0.json").exists()
    assert len(local_manifest(tmp_path)) == 5
    assert manifest.metadata.revision == 1


def test_exception_in_batch_stores_nothing_and_rolls_back_memory(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    manifest.add_record(record(1, etag="original"))
    before = (tmp_path / "extractor_v1.0.0.json").read_bytes()

    def failing_job() -> None:
        with manifest.batch():
            manifest.add_record(record(1, etag="changed"))
            manifest.add_record(record(2))
            raise RuntimeError("job failed")

    with pytest.raises(RuntimeError):
        failing_job()
    assert (tmp_path / "extractor_v1.0.0.json").read_bytes() == before
    assert len(manifest) == 1
    assert manifest.get(checksum(1)).etag == "original"  # type: ignore[union-attr]
    assert not manifest.dirty


def test_threads_adding_records_lose_nothing(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)

    def add(start: int) -> None:
        for n in range(start, start + 25):
            manifest.add_record(record(n))

    threads = [threading.Thread(target=add, args=(i * 100,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(local_manifest(tmp_path)) == 200


def test_concurrent_writers_lose_nothing() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    first = Manifest("extractor", "1", MemoryBackend(root, {}))
    second = Manifest("extractor", "1", MemoryBackend(root, {}))
    first.add_record(record(1))
    second.add_record(record(2))  # loaded before `first` committed: no conflict at all
    assert second.refresh() == 1
    assert {r.checksum for r in second} == {checksum(1), checksum(2)}
    assert len(Manifest("extractor", "1", MemoryBackend(root, {}))) == 2


def test_a_commit_made_after_seeing_another_wins_whatever_updated_at_says() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    first = Manifest("extractor", "1", MemoryBackend(root, {}))
    second = Manifest("extractor", "1", MemoryBackend(root, {}))
    newer = ManifestRecord.model_validate({**record(1, etag="new"), "etl_version": "1"})
    backfill = newer.model_copy(
        update={"etag": "backfilled", "updated_at": newer.updated_at - timedelta(days=30)}
    )
    first.add_record(newer)
    second.refresh()
    second.add_record(backfill)  # saw `first`'s record, so it replaces it
    fresh = Manifest("extractor", "1", MemoryBackend(root, {}))
    assert fresh.get(checksum(1)).etag == "backfilled"  # type: ignore[union-attr]


def test_a_writer_that_never_touched_a_record_cannot_revert_it() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    writer_a = Manifest("extractor", "1", MemoryBackend(root, {}))
    writer_a.add_record(record(1, etag="v1"))
    writer_c = Manifest("extractor", "1", MemoryBackend(root, {}))  # holds X at v1
    writer_a.add_record(record(1, etag="v2"))
    writer_c.add_record(record(2))  # unrelated record
    fresh = Manifest("extractor", "1", MemoryBackend(root, {}))
    assert fresh.get(checksum(1)).etag == "v2"  # type: ignore[union-attr]
    assert writer_c.refresh() == 1
    assert writer_c.get(checksum(1)).etag == "v2"  # type: ignore[union-attr]


def test_revision_counts_commits_of_every_writer() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    first = Manifest("extractor", "1", MemoryBackend(root, {}))
    second = Manifest("extractor", "1", MemoryBackend(root, {}))
    first.add_record(record(1))
    second.add_record(record(2))
    second.refresh()
    assert second.metadata.revision == 2
    assert second.metadata.created_at == first.metadata.created_at


def test_load_discards_unsaved_and_reads_stored(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    manifest.add_record(record(1))
    local_manifest(tmp_path).add_record(record(2))
    manifest.load()
    assert len(manifest) == 2


def test_unreadable_stored_manifest_raises_and_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "extractor_v1.0.0.json"
    target.write_bytes(b'{"metadata": {"format_version": 1,')
    with pytest.raises(CorruptManifestError, match=r"extractor_v1\.0\.0\.json"):
        local_manifest(tmp_path)
    assert target.read_bytes() == b'{"metadata": {"format_version": 1,'


def test_manifest_of_another_process_is_refused(tmp_path: Path) -> None:
    local_manifest(tmp_path, process="loader").add_record(record(1))
    (tmp_path / "loader_v1.0.0.json").rename(tmp_path / "extractor_v1.0.0.json")
    with pytest.raises(CorruptManifestError, match=r"belongs to loader"):
        local_manifest(tmp_path)


def test_cleanup_staged_removes_leftovers_only(tmp_path: Path) -> None:
    manifest = local_manifest(tmp_path)
    manifest.add_record(record(1))
    leftover = tmp_path / "extractor_v1.0.0.json.staged-0123456789abcdef0123456789abcdef"
    leftover.write_bytes(b"partial")
    assert manifest.cleanup_staged(min_age=timedelta(0)) == 1
    assert not leftover.exists()
    assert len(local_manifest(tmp_path)) == 1


def test_a_failed_commit_is_settled_by_the_next_save() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    backend = FailingWrites(MemoryBackend(root, {}))
    manifest = Manifest("extractor", "1", backend)
    manifest.add_record(record(1))
    backend.fail = True
    with pytest.raises(StorageError, match="injected"):
        manifest.add_record(record(2))
    assert manifest.dirty
    assert checksum(2) not in manifest  # not durable, so not shown
    assert checksum(2) not in Manifest("extractor", "1", MemoryBackend(root, {}))
    backend.fail = False
    manifest.save()
    stored = Manifest("extractor", "1", MemoryBackend(root, {}))
    assert {r.checksum for r in stored} == {checksum(1), checksum(2)}
    assert not manifest.dirty


class FailingWrites(MemoryBackend):
    """A memory backend whose writes fail on demand (before storing anything)."""

    def __init__(self, inner: MemoryBackend) -> None:
        super().__init__(inner.root, {})
        self.fail = False

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        if self.fail:
            raise StorageError("injected failure")
        return super().write(key, data, expect=expect)
