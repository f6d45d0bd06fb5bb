"""Several roots at once: ManifestStore objects side by side, listing a root, and
copy_manifests / compare_manifests between local disk, memory, S3 and GCS."""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import checksum, record
from etl_manifests import (
    BackendConfigurationError,
    CheckpointPolicy,
    CopyConflictError,
    CopyStatus,
    InvalidNameError,
    ManifestManager,
    ManifestRef,
    ManifestStore,
    NotFoundError,
    UnknownProcessError,
    compare_manifests,
    copy_manifests,
    open_backend,
)
from etl_manifests.testing.servers import GcsServer, S3Server

# Automatic checkpoints off: commits stay in the log unless a test compacts.
LOG_ONLY = CheckpointPolicy(every=None, size_ratio=0)


def store(root: str | Path, version: str = "1.0.0", **options: Any) -> ManifestStore:
    return ManifestStore(
        root, version, storage_options=options, checkpoint=LOG_ONLY, processes=["noaa_v2"]
    )


def contents(root: str | Path, options: dict[str, Any] | None = None) -> dict[str, bytes]:
    """Every object under ``root``, read back byte for byte."""
    backend = open_backend(str(root), options or {})
    return {info.key: backend.read(info.key).data for info in backend.list("")}


def fill(source: ManifestStore) -> None:
    """Two versions, a declared process, a checkpoint, then un-checkpointed commits
    including removals."""
    source.extractor.add_records([record(n) for n in range(6)])
    source.extractor.compact()
    source.extractor.add_record(record(6))
    source.extractor.remove_records([checksum(1), checksum(6)])
    source.noaa_v2.add_record(record(20))
    other = ManifestStore(
        source.root_dir, "2.0", storage_options=source.storage_options, checkpoint=LOG_ONLY
    )
    other.loader.add_records([record(30), record(31)])


def memory_root() -> str:
    return f"memory://roots-{uuid.uuid4().hex[:8]}"


# --- ManifestStore -----------------------------------------------------------------


def test_stores_are_independent_objects_on_any_roots(tmp_path: Path) -> None:
    a, b = store(tmp_path / "a"), store(tmp_path / "b")
    assert a is not b
    assert store(tmp_path / "a") is not a
    a.extractor.add_record(record(1))
    assert checksum(1) in a.extractor
    assert checksum(1) not in b.extractor
    assert a.get("extractor") is a.extractor  # cached per process, per store


def test_a_store_and_the_manager_coexist(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path / "m", "1.0.0", storage_options={})
    other = ManifestStore(tmp_path / "other", "2.0", storage_options={})
    assert isinstance(manager, ManifestStore)
    assert ManifestManager(tmp_path / "m", "1.0.0", storage_options={}) is manager
    assert other.root_dir != manager.root_dir


def test_store_has_the_managers_typo_protection(tmp_path: Path) -> None:
    with pytest.raises(UnknownProcessError, match="did you mean 'noaa_v2'"):
        _ = store(tmp_path).noaa_v3
    with pytest.raises(InvalidNameError, match="own attribute"):
        store(tmp_path).declare_processes("list_manifests")


def test_a_pickled_store_is_a_new_store_on_the_same_root(tmp_path: Path) -> None:
    original = store(tmp_path)
    original.extractor.add_record(record(1))
    copy = pickle.loads(pickle.dumps(original))
    assert copy is not original
    assert type(copy) is ManifestStore
    assert copy.processes == original.processes
    assert checksum(1) in copy.extractor


def test_from_config_makes_a_store_not_the_singleton(tmp_path: Path) -> None:
    from etl_manifests import ETLConfig

    config = ETLConfig(manifests_dir=str(tmp_path), version="3.0")
    assert ManifestStore.from_config(config) is not ManifestStore.from_config(config)
    assert ManifestManager.instance() is None


# --- listing a root ------------------------------------------------------------------


def test_list_manifests_finds_every_process_and_version(tmp_path: Path) -> None:
    source = store(tmp_path)
    fill(source)
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert source.list_manifests() == [
        ManifestRef("extractor", "1.0.0"),
        ManifestRef("loader", "2.0"),
        ManifestRef("noaa_v2", "1.0.0"),  # noaa_v2_v1.0.0.json: the snapshot decides
    ]


# --- copy --------------------------------------------------------------------------


def check_copied(source: ManifestStore, destination_root: str, **options: Any) -> None:
    copied = store(destination_root, **options)
    for version, processes in (("1.0.0", ("extractor", "noaa_v2")), ("2.0", ("loader",))):
        src = ManifestStore(
            source.root_dir, version, storage_options=source.storage_options, processes=["noaa_v2"]
        )
        dst = ManifestStore(
            destination_root, version, storage_options=options, processes=["noaa_v2"]
        )
        for process in processes:
            a, b = src.get(process), dst.get(process)
            assert dict(a.records) == dict(b.records)
            assert (b.metadata.process, b.metadata.etl_version) == (process, version)
            assert b.metadata.created_at == a.metadata.created_at
    assert checksum(1) not in copied.extractor
    assert checksum(6) not in copied.extractor


def test_local_to_local_copies_everything_and_leaves_the_source_alone(tmp_path: Path) -> None:
    source = store(tmp_path / "src")
    fill(source)
    assert source.extractor.history()  # commits not yet checkpointed are part of it
    before = contents(tmp_path / "src")
    report = copy_manifests(tmp_path / "src", tmp_path / "dst")
    assert contents(tmp_path / "src") == before
    assert report.count(CopyStatus.CREATED) == 3
    assert report.records_written == 5 + 1 + 2
    check_copied(source, str(tmp_path / "dst"))


def test_each_manifest_arrives_in_one_commit(tmp_path: Path) -> None:
    fill(store(tmp_path / "src"))
    copy_manifests(tmp_path / "src", tmp_path / "dst")
    commits = store(tmp_path / "dst").extractor.history()
    assert [(c.put, c.removed) for c in commits] == [(5, 0)]


def test_running_it_again_changes_nothing_and_says_so(tmp_path: Path) -> None:
    fill(store(tmp_path / "src"))
    copy_manifests(tmp_path / "src", tmp_path / "dst")
    after_first = contents(tmp_path / "dst")
    again = copy_manifests(tmp_path / "src", tmp_path / "dst")
    assert not again.changed
    assert again.count(CopyStatus.UNCHANGED) == 3
    assert again.records_written == 0
    assert contents(tmp_path / "dst") == after_first


def test_a_second_run_copies_only_what_is_new(tmp_path: Path) -> None:
    source = store(tmp_path / "src")
    fill(source)
    copy_manifests(tmp_path / "src", tmp_path / "dst")
    source.extractor.add_record(record(7))
    report = copy_manifests(tmp_path / "src", tmp_path / "dst", processes=["extractor"])
    [only] = report.manifests
    assert (only.status, only.written, only.already_there) == (CopyStatus.UPDATED, 1, 5)


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    fill(store(tmp_path / "src"))
    report = copy_manifests(tmp_path / "src", tmp_path / "dst", dry_run=True)
    assert report.dry_run
    assert report.count(CopyStatus.CREATED) == 3
    assert not (tmp_path / "dst").exists() or contents(tmp_path / "dst") == {}


def test_an_empty_source_manifest_arrives_empty(tmp_path: Path) -> None:
    store(tmp_path / "src").loader.save()
    report = copy_manifests(tmp_path / "src", tmp_path / "dst")
    assert [m.status for m in report.manifests] == [CopyStatus.CREATED]
    assert (tmp_path / "dst" / "loader_v1.0.0.json").exists()
    assert not copy_manifests(tmp_path / "src", tmp_path / "dst").changed


def test_filters_choose_processes_and_versions(tmp_path: Path) -> None:
    fill(store(tmp_path / "src"))
    report = copy_manifests(tmp_path / "src", tmp_path / "dst", versions=["2.0"])
    assert [(m.process, m.etl_version) for m in report.manifests] == [("loader", "2.0")]
    assert [ref.process for ref in store(tmp_path / "dst").list_manifests()] == ["loader"]


def test_memory_to_memory_from_store_objects() -> None:
    source, destination = store(memory_root()), store(memory_root())
    fill(source)
    report = copy_manifests(source, destination)
    assert report.count(CopyStatus.CREATED) == 3
    check_copied(source, destination.root_dir)


def test_local_to_s3(tmp_path: Path, s3_server: S3Server, s3_bucket: str) -> None:
    source = store(tmp_path / "src")
    fill(source)
    before = contents(tmp_path / "src")
    root = f"s3://{s3_bucket}/manifests"
    options = s3_server.storage_options
    report = copy_manifests(tmp_path / "src", root, destination_options=options)
    assert report.count(CopyStatus.CREATED) == 3
    assert contents(tmp_path / "src") == before
    check_copied(source, root, **options)
    assert not copy_manifests(tmp_path / "src", root, destination_options=options).changed


def test_s3_to_gcs_leaves_the_bucket_alone(
    s3_server: S3Server, s3_bucket: str, gcs_server: GcsServer, gcs_bucket: str
) -> None:
    s3_root, s3_options = f"s3://{s3_bucket}/m", s3_server.storage_options
    source = store(s3_root, **s3_options)
    fill(source)
    before = contents(s3_root, s3_options)
    gcs_root, gcs_options = f"gs://{gcs_bucket}/m", gcs_server.storage_options
    report = copy_manifests(
        s3_root, gcs_root, source_options=s3_options, destination_options=gcs_options
    )
    assert report.records_written == 8
    assert contents(s3_root, s3_options) == before
    check_copied(source, gcs_root, **gcs_options)
    assert compare_manifests(
        s3_root, gcs_root, source_options=s3_options, destination_options=gcs_options
    ).same


# --- conflicts and bad input ------------------------------------------------------------


@pytest.fixture
def conflicting(tmp_path: Path) -> tuple[Path, Path]:
    fill(store(tmp_path / "src"))
    destination = store(tmp_path / "dst")
    destination.extractor.add_record(record(0, filename="other.gz"))  # differs
    destination.extractor.add_record(record(99))  # only in the destination
    return tmp_path / "src", tmp_path / "dst"


def test_conflicting_destination_is_refused_and_untouched(conflicting: tuple[Path, Path]) -> None:
    src, dst = conflicting
    before = contents(dst)
    with pytest.raises(CopyConflictError) as caught:
        copy_manifests(src, dst)
    assert caught.value.differing == [checksum(0)]
    assert caught.value.only_in_destination == [checksum(99)]
    assert isinstance(caught.value, FileExistsError)
    assert contents(dst) == before  # not even the other manifests were written


def test_merge_keeps_the_destinations_records(conflicting: tuple[Path, Path]) -> None:
    src, dst = conflicting
    report = copy_manifests(src, dst, on_conflict="merge", processes=["extractor"])
    [m] = report.manifests
    assert (m.written, m.kept) == (4, 2)
    extractor = store(dst).extractor
    assert extractor.records[checksum(0)].filename == "other.gz"
    assert checksum(99) in extractor
    assert len(extractor) == 6


def test_replace_makes_the_destination_equal_to_the_source(
    conflicting: tuple[Path, Path],
) -> None:
    src, dst = conflicting
    copy_manifests(src, dst, on_conflict="replace")
    assert compare_manifests(src, dst).same


def test_compare_names_what_differs(conflicting: tuple[Path, Path]) -> None:
    src, dst = conflicting
    report = compare_manifests(src, dst)
    assert not report.same
    by_process = {m.process: m for m in report.manifests}
    diff = by_process["extractor"].records
    assert diff.differing == (checksum(0),)
    assert diff.only_in_destination == (checksum(99),)
    assert diff.only_in_source == (checksum(2), checksum(3), checksum(4), checksum(5))
    assert not by_process["loader"].in_destination


def test_the_same_root_twice_is_refused(tmp_path: Path) -> None:
    fill(store(tmp_path / "src"))
    with pytest.raises(BackendConfigurationError, match="same root"):
        copy_manifests(tmp_path / "src", f"file://{tmp_path / 'x' / '..' / 'src'}")


def test_an_unknown_process_or_version_is_refused(tmp_path: Path) -> None:
    fill(store(tmp_path / "src"))
    with pytest.raises(UnknownProcessError, match="did you mean 'extractor'"):
        copy_manifests(tmp_path / "src", tmp_path / "dst", processes=["extractr"])
    with pytest.raises(InvalidNameError):
        copy_manifests(tmp_path / "src", tmp_path / "dst", processes=["Bad-Name"])
    with pytest.raises(NotFoundError, match=r"9\.9"):
        copy_manifests(tmp_path / "src", tmp_path / "dst", versions=["9.9"])
    with pytest.raises(InvalidNameError, match="on_conflict"):
        copy_manifests(tmp_path / "src", tmp_path / "dst", on_conflict="ignore")  # type: ignore[arg-type]
    assert not (tmp_path / "dst").exists()


def test_an_unreadable_destination_manifest_is_never_overwritten(tmp_path: Path) -> None:
    fill(store(tmp_path / "src"))
    (tmp_path / "dst").mkdir()
    broken = tmp_path / "dst" / "extractor_v1.0.0.json"
    broken.write_bytes(b"{not json")
    from etl_manifests import CorruptManifestError

    with pytest.raises(CorruptManifestError):
        copy_manifests(tmp_path / "src", tmp_path / "dst")
    assert broken.read_bytes() == b"{not json"
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["extractor_v1.0.0.json"]
