"""record_params / record_file / record_files: a record from a file where it lies."""

from __future__ import annotations

import io
from pathlib import Path

import fsspec
import pytest
from fsspec.registry import known_implementations

from etl_manifests import (
    BackendConfigurationError,
    MissingDependencyError,
    NotFoundError,
    TransferError,
)
from etl_manifests.testing import FileServer, S3Server
from etl_manifests.tools import hash_stream, record_file, record_files, record_params
from tools_support import local_manifest, sha256


class _CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sizes: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.sizes.append(-1 if size is None else size)
        return super().read(size)


def test_hash_stream_reads_in_chunks_never_the_whole_file() -> None:
    data = bytes(range(256)) * 1000
    reader = _CountingReader(data)
    digest = hash_stream(reader, chunk_size=4096)
    assert digest == (sha256(data), len(data))
    assert set(reader.sizes) == {4096}
    assert len(reader.sizes) > len(data) // 4096


def test_hash_stream_passes_every_chunk_to_the_sink() -> None:
    data = b"x" * 10_000
    received = bytearray()
    hash_stream(io.BytesIO(data), sink=received.extend, chunk_size=3000)
    assert bytes(received) == data


def test_local_file_gives_absolute_path_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "day_1.csv").write_bytes(b"a,b\n1,2\n")
    monkeypatch.chdir(tmp_path)
    params = record_params("day_1.csv")
    assert params["checksum"] == sha256(b"a,b\n1,2\n")
    assert params["filepath"] == str(tmp_path / "day_1.csv")
    assert params["filename"] == "day_1.csv"
    assert params["content_length_bytes"] == 8
    assert params["last_modified_server"].endswith(" GMT")
    assert params["etag"] is None


def test_http_url_takes_the_servers_headers(file_server: FileServer) -> None:
    url = file_server.add("data set.bin", b"payload")
    params = record_params(url)
    assert params["filepath"] == url
    assert params["filename"] == "data set.bin"
    assert params["etag"].startswith('"')
    assert params["last_modified_server"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert params["content_type"] == "application/octet-stream"
    assert params["checksum"] == sha256(b"payload")


@pytest.mark.s3
def test_s3_object_takes_its_etag_type_and_modification_time(
    s3_server: S3Server, s3_bucket: str
) -> None:
    s3_server.client().put_object(
        Bucket=s3_bucket, Key="raw/a.json", Body=b"{}", ContentType="application/json"
    )
    url = f"s3://{s3_bucket}/raw/a.json"
    params = record_params(url, storage_options={"s3": s3_server.storage_options})
    assert params["filepath"] == url
    assert params["etag"] == '"99914b932bd37a50b983c5e7c90ae93b"'  # MD5 of the body
    assert params["content_type"] == "application/json"
    assert params["last_modified_server"].endswith(" GMT")
    assert params["content_length_bytes"] == 2


def test_record_file_adds_one_record_in_one_commit(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"a")
    manifest = local_manifest(tmp_path / "manifests")
    record = record_file(manifest, str(tmp_path / "a.csv"))
    stored = local_manifest(tmp_path / "manifests")
    assert stored.get(sha256(b"a")) == record
    assert stored.metadata.revision == 1


def test_record_files_commits_once(tmp_path: Path) -> None:
    paths = []
    for n in range(5):
        (tmp_path / f"{n}.csv").write_bytes(str(n).encode())
        paths.append(str(tmp_path / f"{n}.csv"))
    manifest = local_manifest(tmp_path / "manifests")
    hashed: list[str] = []
    records = record_files(
        manifest, paths, workers=3, on_hashed=lambda p: hashed.append(p["filename"])
    )
    assert [r.filepath for r in records] == paths
    assert sorted(hashed) == [f"{n}.csv" for n in range(5)]
    assert local_manifest(tmp_path / "manifests").metadata.revision == 1


def test_record_files_is_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"a")
    manifest = local_manifest(tmp_path / "manifests")
    with pytest.raises(NotFoundError, match=r"missing\.csv does not exist"):
        record_files(manifest, [str(tmp_path / "a.csv"), str(tmp_path / "missing.csv")])
    assert len(local_manifest(tmp_path / "manifests")) == 0


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="is a folder"):
        record_params(str(tmp_path))


def test_a_file_that_changes_size_while_read_is_refused(file_server: FileServer) -> None:
    url = file_server.add("a.bin", b"abc")
    file_server.head_lengths["a.bin"] = 5
    with pytest.raises(TransferError, match="announced 5 bytes but 3 arrived"):
        record_params(url)


def test_a_scheme_whose_package_is_missing_names_what_to_install() -> None:
    fsspec.register_implementation("etlfake", "etl_fake_missing_pkg.FS", clobber=True)
    try:
        with pytest.raises(MissingDependencyError, match="pip install etl_fake_missing_pkg"):
            record_params("etlfake://host/a.csv")
    finally:
        known_implementations.pop("etlfake", None)


def test_a_scheme_no_fsspec_implementation_knows_is_a_configuration_error() -> None:
    with pytest.raises(BackendConfigurationError, match="no fsspec implementation reads nosuch://"):
        record_params("nosuch://host/a.csv")
