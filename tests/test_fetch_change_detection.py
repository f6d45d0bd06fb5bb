"""The change-detection policy of fetch, case by case (docs/helpers.md, "Change detection"),
and the explanation of every skip."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cli_support import cli
from etl_manifests.testing import FileServer
from etl_manifests.tools import FetchStatus, fetch
from tools_support import local_manifest


def _twice(tmp_path: Path, server: FileServer, first: bytes, second: bytes) -> FetchStatus:
    url = server.add("a.csv", first)
    manifest = local_manifest(tmp_path / "m")
    assert fetch(manifest, url, str(tmp_path / "dl")).status is FetchStatus.DOWNLOADED
    server.add("a.csv", second)
    return fetch(manifest, url, str(tmp_path / "dl")).status


def test_a_strong_etag_and_size_decide(tmp_path: Path, file_server: FileServer) -> None:
    url = file_server.add("a.csv", b"abc")
    manifest = local_manifest(tmp_path / "m")
    fetch(manifest, url, str(tmp_path / "dl"))
    result = fetch(manifest, url, str(tmp_path / "dl"))
    assert result.status is FetchStatus.SKIPPED
    assert "same strong ETag" in (result.reason or "")
    assert "size 3" in (result.reason or "")


def test_a_changed_strong_etag_downloads(tmp_path: Path, file_server: FileServer) -> None:
    assert _twice(tmp_path, file_server, b"abc", b"xyz") is FetchStatus.DOWNLOADED


def test_a_weak_etag_counts_only_with_the_same_last_modified(
    tmp_path: Path, file_server: FileServer
) -> None:
    file_server.weak_etag = True
    url = file_server.add("a.csv", b"abc")
    manifest = local_manifest(tmp_path / "m")
    fetch(manifest, url, str(tmp_path / "dl"))
    result = fetch(manifest, url, str(tmp_path / "dl"))
    assert result.status is FetchStatus.SKIPPED
    assert "same weak ETag" in (result.reason or "")
    assert "same Last-Modified" in (result.reason or "")


def test_a_weak_etag_alone_does_not_prove_the_same_bytes(
    tmp_path: Path, file_server: FileServer
) -> None:
    file_server.weak_etag = True
    file_server.last_modified = False
    url = file_server.add("a.csv", b"abc")
    manifest = local_manifest(tmp_path / "m")
    fetch(manifest, url, str(tmp_path / "dl"))
    assert fetch(manifest, url, str(tmp_path / "dl")).status is FetchStatus.DUPLICATE
    assert file_server.requests("GET", "a.csv") == 2


def test_without_an_etag_an_old_last_modified_and_the_size_decide(
    tmp_path: Path, file_server: FileServer
) -> None:
    file_server.etag = False
    url = file_server.add("a.csv", b"abc")
    manifest = local_manifest(tmp_path / "m")
    fetch(manifest, url, str(tmp_path / "dl"))
    result = fetch(manifest, url, str(tmp_path / "dl"))
    assert result.status is FetchStatus.SKIPPED
    assert "no ETag" in (result.reason or "")


def test_a_last_modified_in_the_second_of_recording_is_not_trusted(
    tmp_path: Path, file_server: FileServer
) -> None:
    # Rewritten within the same second, same size: the date cannot show it.
    file_server.etag = False
    file_server.modified_at = time.time()
    assert _twice(tmp_path, file_server, b"abc", b"xyz") is FetchStatus.DOWNLOADED
    assert (tmp_path / "dl" / "a.csv").read_bytes() == b"xyz"


def test_a_changed_size_downloads(tmp_path: Path, file_server: FileServer) -> None:
    file_server.etag = False
    assert _twice(tmp_path, file_server, b"abc", b"abcd") is FetchStatus.DOWNLOADED


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("ETL_MANIFESTS_MANIFESTS_DIR", "ETL_MANIFESTS_VERSION"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_cli_explains_each_skip_in_json_and_with_v(
    workdir: Path, file_server: FileServer
) -> None:
    url = file_server.add("a.csv", b"abc")
    assert cli("fetch", url, "--dest", "dl").exit_code == 0
    report = json.loads(cli("fetch", url, "--dest", "dl", "--json").stdout)
    [result] = report["results"]
    assert result["status"] == "skipped"
    assert "same strong ETag" in result["reason"]
    verbose = cli("fetch", url, "--dest", "dl", "-v")
    assert "same strong ETag" in verbose.stdout
    assert "same strong ETag" not in cli("fetch", url, "--dest", "dl").stdout
