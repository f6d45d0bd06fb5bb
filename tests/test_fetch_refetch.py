"""What users of fetch tools expect: forget records, fetch again what verify finds missing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from cli_support import cli
from etl_manifests.testing import FileServer
from etl_manifests.tools import FetchStatus, fetch, fetch_many, forget, verify
from tools_support import local_manifest, sha256


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("ETL_MANIFESTS_MANIFESTS_DIR", "ETL_MANIFESTS_VERSION"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_refetch_missing_puts_a_deleted_file_back(tmp_path: Path, file_server: FileServer) -> None:
    url = file_server.add("a.csv", b"abc")
    manifest = local_manifest(tmp_path / "m")
    fetch(manifest, url, str(tmp_path / "dl"))
    (tmp_path / "dl" / "a.csv").unlink()
    assert fetch(manifest, url, str(tmp_path / "dl")).status is FetchStatus.SKIPPED
    result = fetch(manifest, url, str(tmp_path / "dl"), refetch_missing=True)
    assert result.status is FetchStatus.DOWNLOADED
    assert (tmp_path / "dl" / "a.csv").read_bytes() == b"abc"
    assert verify(local_manifest(tmp_path / "m")).ok
    # Present now: skipped again, without a GET.
    again = fetch(manifest, url, str(tmp_path / "dl"), refetch_missing=True)
    assert again.status is FetchStatus.SKIPPED
    assert file_server.requests("GET", "a.csv") == 2


def test_force_downloads_a_recorded_file_and_records_it_once(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.add("a.csv", b"abc")
    manifest = local_manifest(tmp_path / "m")
    fetch(manifest, url, str(tmp_path / "dl"))
    (tmp_path / "dl" / "a.csv").write_bytes(b"xyz")  # damaged locally, same size
    result = fetch(manifest, url, str(tmp_path / "dl"), force=True)
    assert result.status is FetchStatus.DOWNLOADED
    assert (tmp_path / "dl" / "a.csv").read_bytes() == b"abc"
    assert [r.checksum for r in local_manifest(tmp_path / "m")] == [sha256(b"abc")]


def test_forget_removes_records_in_one_commit(tmp_path: Path, file_server: FileServer) -> None:
    manifest = local_manifest(tmp_path / "m")
    for n in range(3):
        fetch(manifest, file_server.add(f"{n}.csv", f"{n}".encode()), str(tmp_path / "dl"))
    commits = len(manifest.history())
    removed = forget(manifest, [sha256(b"0"), manifest.get(sha256(b"1"))])  # type: ignore[list-item]
    assert sorted(r.filename for r in removed) == ["0.csv", "1.csv"]
    assert [r.filename for r in local_manifest(tmp_path / "m")] == ["2.csv"]
    assert len(local_manifest(tmp_path / "m").history()) == commits + 1
    assert forget(manifest, [sha256(b"0")]) == []
    assert (tmp_path / "dl" / "0.csv").exists()  # files are left alone


def test_cli_forget_missing_then_fetch_downloads_again(
    workdir: Path, file_server: FileServer
) -> None:
    urls = [file_server.add(f"{n}.csv", f"{n}".encode()) for n in range(3)]
    assert cli("fetch", *urls, "--dest", "dl").exit_code == 0
    (workdir / "dl" / "1.csv").unlink()
    dry = cli("forget", "--missing", "*", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "1 would be forgotten" in dry.stdout
    done = cli("forget", "--missing", "*", "--json")
    assert done.exit_code == 0, done.stderr
    assert [r["filename"] for r in json.loads(done.stdout)["forgotten"]] == ["1.csv"]
    again = cli("fetch", *urls, "--dest", "dl", "--json")
    assert json.loads(again.stdout)["counts"]["downloaded"] == 1
    assert (workdir / "dl" / "1.csv").read_bytes() == b"1"


def test_cli_fetch_refetch_missing(workdir: Path, file_server: FileServer) -> None:
    url = file_server.add("a.csv", b"abc")
    assert cli("fetch", url, "--dest", "dl").exit_code == 0
    (workdir / "dl" / "a.csv").unlink()
    result = cli("fetch", url, "--dest", "dl", "--refetch-missing")
    assert result.exit_code == 0, result.stderr
    assert "1 downloaded" in result.stdout
    assert (workdir / "dl" / "a.csv").read_bytes() == b"abc"


def test_per_host_bounds_the_requests_to_one_host(tmp_path: Path, file_server: FileServer) -> None:
    urls = [file_server.add(f"{n}.csv", f"{n}".encode()) for n in range(6)]
    file_server.get_delay = 0.2
    report = fetch_many(
        local_manifest(tmp_path / "m"), urls, str(tmp_path / "dl"), workers=4, per_host=2
    )
    assert report.count(FetchStatus.DOWNLOADED) == 6
    assert file_server.max_in_flight == 2


def test_cli_per_host(workdir: Path, file_server: FileServer) -> None:
    urls = [file_server.add(f"{n}.csv", f"{n}".encode()) for n in range(4)]
    file_server.get_delay = 0.2
    result = cli("fetch", *urls, "--dest", "dl", "--workers", "4", "--per-host", "1")
    assert result.exit_code == 0, result.stderr
    assert file_server.max_in_flight == 1


def test_fetch_many_reports_bytes_as_they_arrive(tmp_path: Path, file_server: FileServer) -> None:
    sizes = [3 << 20, 100, 5000]
    urls = [file_server.add(f"{n}.bin", b"b" * size) for n, size in enumerate(sizes)]
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def on_bytes(received: int, announced: int) -> None:
        with lock:
            seen.append((received, announced))

    fetch_many(local_manifest(tmp_path / "m"), urls, str(tmp_path / "dl"), on_bytes=on_bytes)
    assert sum(a for _, a in seen) == sum(sizes)
    assert sum(r for r, _ in seen) == sum(sizes)
    assert sum(1 for r, _ in seen if r) >= 3 + 2  # the large file came in several chunks


def test_cli_fetch_draws_no_progress_when_not_a_terminal(
    workdir: Path, file_server: FileServer
) -> None:
    url = file_server.add("a.bin", b"b" * (2 << 20))
    result = cli("fetch", url, "--dest", "dl")
    assert result.exit_code == 0
    assert result.stderr == ""
