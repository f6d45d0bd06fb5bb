"""verify: recorded files still there, same size, same bytes; is_verified in one commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_manifests.testing import S3Server
from etl_manifests.tools import ProblemKind, record_file, record_files, verify
from tools_support import local_manifest, sha256


def _recorded(tmp_path: Path, *contents: bytes) -> list[Path]:
    paths = []
    for n, data in enumerate(contents):
        path = tmp_path / "raw" / f"{n}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    record_files(local_manifest(tmp_path / "manifests"), [str(p) for p in paths])
    return paths


def test_files_that_pass_are_marked_verified_in_one_commit(tmp_path: Path) -> None:
    _recorded(tmp_path, b"a", b"b", b"c")
    manifest = local_manifest(tmp_path / "manifests")
    report = verify(manifest)
    assert report.ok
    assert (report.checked, len(report.passed), report.marked) == (3, 3, 3)
    stored = local_manifest(tmp_path / "manifests")
    assert all(r.is_verified for r in stored)
    assert stored.metadata.revision == 2  # the records' commit, then verify's one


def test_nothing_is_committed_when_no_flag_changes(tmp_path: Path) -> None:
    _recorded(tmp_path, b"a")
    verify(local_manifest(tmp_path / "manifests"))
    report = verify(local_manifest(tmp_path / "manifests"))
    assert report.ok
    assert report.marked == 0
    assert local_manifest(tmp_path / "manifests").metadata.revision == 2


def test_a_missing_file_is_reported_and_loses_its_flag(tmp_path: Path) -> None:
    paths = _recorded(tmp_path, b"a", b"b")
    verify(local_manifest(tmp_path / "manifests"))
    paths[1].unlink()
    report = verify(local_manifest(tmp_path / "manifests"))
    assert not report.ok
    assert [(p.filepath, p.kind) for p in report.missing] == [(str(paths[1]), ProblemKind.MISSING)]
    stored = local_manifest(tmp_path / "manifests")
    assert stored.get(sha256(b"b")).is_verified is False  # type: ignore[union-attr]
    assert stored.get(sha256(b"a")).is_verified is True  # type: ignore[union-attr]


def test_a_size_change_is_found_without_rehashing(tmp_path: Path) -> None:
    paths = _recorded(tmp_path, b"abc")
    paths[0].write_bytes(b"abcd")
    report = verify(local_manifest(tmp_path / "manifests"))
    assert [p.kind for p in report.changed] == [ProblemKind.SIZE]
    assert report.changed[0].detail == "4 bytes, recorded 3"


def test_same_size_new_bytes_are_found_only_by_rehashing(tmp_path: Path) -> None:
    paths = _recorded(tmp_path, b"abc")
    paths[0].write_bytes(b"xyz")
    assert verify(local_manifest(tmp_path / "manifests"), mark=False).ok
    report = verify(local_manifest(tmp_path / "manifests"), rehash=True)
    assert [p.kind for p in report.changed] == [ProblemKind.CHECKSUM]
    assert report.changed[0].detail == f"SHA-256 is now {sha256(b'xyz')}"


def test_only_the_selected_records_are_checked(tmp_path: Path) -> None:
    paths = _recorded(tmp_path, b"a", b"b")
    paths[1].unlink()
    manifest = local_manifest(tmp_path / "manifests")
    report = verify(manifest, [r for r in manifest if r.filename == "0.bin"])
    assert report.ok
    assert report.checked == 1


def test_mark_false_changes_nothing(tmp_path: Path) -> None:
    _recorded(tmp_path, b"a")
    report = verify(local_manifest(tmp_path / "manifests"), mark=False)
    assert report.ok
    assert report.marked == 0
    assert local_manifest(tmp_path / "manifests").metadata.revision == 1


def test_progress_is_reported_per_file(tmp_path: Path) -> None:
    paths = _recorded(tmp_path, b"a", b"b")
    paths[0].unlink()
    seen: list[tuple[str, object]] = []
    verify(
        local_manifest(tmp_path / "manifests"),
        on_checked=lambda record, problem: seen.append((record.filename, problem and problem.kind)),
    )
    assert sorted(seen) == [("0.bin", ProblemKind.MISSING), ("1.bin", None)]


@pytest.mark.s3
def test_files_in_a_bucket(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="raw/a.bin", Body=b"abc")
    options = {"s3": s3_server.storage_options}
    manifest = local_manifest(tmp_path)
    record_file(manifest, f"s3://{s3_bucket}/raw/a.bin", storage_options=options)
    assert verify(manifest, rehash=True, storage_options=options).ok
    client.delete_object(Bucket=s3_bucket, Key="raw/a.bin")
    report = verify(manifest, storage_options=options)
    assert [p.kind for p in report.problems] == [ProblemKind.MISSING]
