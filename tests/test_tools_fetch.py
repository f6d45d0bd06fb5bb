"""fetch / fetch_many / Fetcher: download-if-new, recorded as each file lands."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from etl_manifests import (
    InvalidNameError,
    ManifestManager,
    NotFoundError,
    TransferError,
)
from etl_manifests.testing import FileServer, S3Server
from etl_manifests.tools import Fetcher, FetchStatus, fetch, fetch_many
from tools_support import local_manifest, part_files, sha256


def test_downloads_and_records_with_the_servers_headers(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.add("day_1.csv", b"a,b\n")
    manifest = local_manifest(tmp_path / "manifests")
    result = fetch(manifest, url, str(tmp_path / "raw"))
    assert result.status is FetchStatus.DOWNLOADED
    assert (tmp_path / "raw" / "day_1.csv").read_bytes() == b"a,b\n"
    record = local_manifest(tmp_path / "manifests").get(sha256(b"a,b\n"))
    assert record is not None
    assert record.filepath == str(tmp_path / "raw" / "day_1.csv")
    assert record.filename == "day_1.csv"
    assert record.content_length_bytes == 4
    assert record.etag is not None
    assert record.last_modified_server is not None
    assert record.content_type == "application/octet-stream"
    assert part_files(tmp_path / "raw") == []


def test_a_recorded_file_is_not_downloaded_again(tmp_path: Path, file_server: FileServer) -> None:
    url = file_server.add("day_1.csv", b"a,b\n")
    manifest = local_manifest(tmp_path / "manifests")
    fetch(manifest, url, str(tmp_path / "raw"))
    result = fetch(manifest, url, str(tmp_path / "raw"))
    assert result.status is FetchStatus.SKIPPED
    assert result.checksum == sha256(b"a,b\n")
    assert file_server.requests("GET", "day_1.csv") == 1
    assert local_manifest(tmp_path / "manifests").metadata.revision == 1


def test_a_changed_file_is_downloaded_and_recorded_again(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.add("day_1.csv", b"old")
    manifest = local_manifest(tmp_path / "manifests")
    fetch(manifest, url, str(tmp_path / "raw"))
    file_server.add("day_1.csv", b"new")
    assert fetch(manifest, url, str(tmp_path / "raw")).status is FetchStatus.DOWNLOADED
    assert (tmp_path / "raw" / "day_1.csv").read_bytes() == b"new"
    assert {r.checksum for r in local_manifest(tmp_path / "manifests")} == {
        sha256(b"old"),
        sha256(b"new"),
    }


def test_the_same_bytes_fetched_into_another_folder_are_kept_once(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.add("a.csv", b"a")
    manifest = local_manifest(tmp_path / "manifests")
    fetch(manifest, url, str(tmp_path / "one"))
    result = fetch(manifest, url, str(tmp_path / "two"))
    # Same bytes, so the manifest (keyed by checksum) already has them: kept once.
    assert result.status is FetchStatus.DUPLICATE
    assert result.filepath == str(tmp_path / "one" / "a.csv")
    assert not (tmp_path / "two" / "a.csv").exists()
    assert part_files(tmp_path / "two") == []


def test_without_headers_the_checksum_decides(tmp_path: Path, file_server: FileServer) -> None:
    file_server.etag = file_server.last_modified = False
    url = file_server.add("a.csv", b"a")
    manifest = local_manifest(tmp_path / "manifests")
    assert fetch(manifest, url, str(tmp_path / "raw")).status is FetchStatus.DOWNLOADED
    second = fetch(manifest, url, str(tmp_path / "raw"))
    assert second.status is FetchStatus.DUPLICATE
    assert file_server.requests("GET", "a.csv") == 2  # only the bytes could tell
    assert len(local_manifest(tmp_path / "manifests")) == 1
    assert part_files(tmp_path / "raw") == []


def test_a_file_another_writer_recorded_is_not_downloaded(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.add("a.csv", b"a")
    mine = local_manifest(tmp_path / "manifests")  # loaded before the other writer's commit
    fetch(local_manifest(tmp_path / "manifests"), url, str(tmp_path / "raw"))
    assert fetch(mine, url, str(tmp_path / "raw")).status is FetchStatus.SKIPPED
    assert file_server.requests("GET", "a.csv") == 1


def test_a_missing_url_records_nothing_and_leaves_nothing(
    tmp_path: Path, file_server: FileServer
) -> None:
    manifest = local_manifest(tmp_path / "manifests")
    with pytest.raises(NotFoundError, match="does not exist"):
        fetch(manifest, file_server.url("nope.csv"), str(tmp_path / "raw"))
    assert len(local_manifest(tmp_path / "manifests")) == 0
    assert not (tmp_path / "raw").exists() or list((tmp_path / "raw").iterdir()) == []


def test_a_truncated_download_records_nothing_and_leaves_no_file(
    tmp_path: Path, file_server: FileServer
) -> None:
    # A record of this name makes fetch ask for the headers first (a HEAD), which then
    # announce more than the GET brings (as if the file changed in between).
    url = file_server.add("a.csv", b"ab")
    manifest = local_manifest(tmp_path / "manifests")
    fetch(manifest, url, str(tmp_path / "raw"))
    file_server.add("a.csv", b"abc")
    file_server.head_lengths["a.csv"] = 10
    with pytest.raises(TransferError, match="announced 10 bytes but 3 arrived"):
        fetch(manifest, url, str(tmp_path / "raw"))
    assert len(local_manifest(tmp_path / "manifests")) == 1  # the first file only
    assert (tmp_path / "raw" / "a.csv").read_bytes() == b"ab"
    assert part_files(tmp_path / "raw") == []


def test_an_unsafe_file_name_is_refused(tmp_path: Path, file_server: FileServer) -> None:
    url = file_server.add("a.csv", b"a")
    with pytest.raises(InvalidNameError, match="plain file name"):
        fetch(local_manifest(tmp_path), url, str(tmp_path / "raw"), filename="../a.csv")


def test_fetch_many_reports_each_url_and_goes_on_after_a_failure(
    tmp_path: Path, file_server: FileServer
) -> None:
    urls = [file_server.add(f"{n}.csv", str(n).encode()) for n in range(3)]
    urls.insert(1, file_server.url("missing.csv"))
    manifest = local_manifest(tmp_path / "manifests")
    seen: list[str] = []
    report = fetch_many(
        manifest, urls, str(tmp_path / "raw"), on_result=lambda r: seen.append(r.url)
    )
    assert [r.url for r in report.results] == urls
    assert sorted(seen) == sorted(urls)
    assert report.count(FetchStatus.DOWNLOADED) == 3
    assert [r.url for r in report.failed] == [urls[1]]
    assert not report.ok
    with pytest.raises(TransferError, match="1 of 4 downloads failed"):
        report.raise_for_failures()
    assert len(local_manifest(tmp_path / "manifests")) == 3


def test_fetch_many_fetches_a_url_listed_twice_once(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.add("a.csv", b"a")
    report = fetch_many(local_manifest(tmp_path), [url, url], str(tmp_path / "raw"))
    assert len(report.results) == 1
    assert file_server.requests("GET", "a.csv") == 1


def test_fetch_many_keeps_to_its_worker_bound(tmp_path: Path, file_server: FileServer) -> None:
    urls = [file_server.add(f"{n}.csv", str(n).encode()) for n in range(8)]
    file_server.get_delay = 0.2  # downloads would overlap if nothing bounded them
    report = fetch_many(local_manifest(tmp_path), urls, str(tmp_path / "raw"), workers=2)
    assert report.count(FetchStatus.DOWNLOADED) == 8
    assert file_server.max_in_flight == 2


@pytest.mark.s3
def test_fetch_into_a_bucket(s3_server: S3Server, s3_bucket: str, file_server: FileServer) -> None:
    url = file_server.add("a.csv", b"abc")
    manager = ManifestManager(
        f"s3://{s3_bucket}/manifests", "1.0.0", storage_options=s3_server.storage_options
    )
    manifest = manager.extractor
    options = {"s3": s3_server.storage_options}
    result = fetch(manifest, url, f"s3://{s3_bucket}/raw/", storage_options=options)
    assert result.filepath == f"s3://{s3_bucket}/raw/a.csv"
    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix="raw/")["Contents"]]
    assert keys == ["raw/a.csv"]  # no temporary object left
    assert client.get_object(Bucket=s3_bucket, Key="raw/a.csv")["Body"].read() == b"abc"
    assert fetch(manifest, url, f"s3://{s3_bucket}/raw", storage_options=options).status is (
        FetchStatus.SKIPPED
    )


def test_fetcher_pickles_with_its_manager(tmp_path: Path, file_server: FileServer) -> None:
    url = file_server.add("a.csv", b"a")
    manager = ManifestManager(tmp_path / "manifests", "1.0.0")
    fetcher = pickle.loads(pickle.dumps(Fetcher(manager, str(tmp_path / "raw"))))
    assert fetcher.manager is manager  # the singleton of the receiving process
    assert fetcher(url).status is FetchStatus.DOWNLOADED
    assert sha256(b"a") in manager.extractor
