"""How often a fetch pass reads other writers' commits, and what that still promises."""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from etl_manifests import Manifest, NotFoundError, StorageError
from etl_manifests.testing import FileServer
from etl_manifests.tools import FetchStatus, fetch, fetch_many
from tools_support import local_manifest

fetch_module = importlib.import_module("etl_manifests.tools.fetch")


def _counting_refreshes(manifest: Manifest) -> list[int]:
    """Count ``manifest.refresh()`` calls; each still does the real refresh."""
    calls: list[int] = []
    real = manifest.refresh

    def refresh() -> int:
        calls.append(1)
        return real()

    manifest.refresh = refresh  # type: ignore[method-assign]
    return calls


@pytest.fixture
def long_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole pass inside one window, however slow the machine.
    monkeypatch.setattr(fetch_module, "_SKIP_REFRESH_SECONDS", 3600.0, raising=False)


@pytest.mark.usefixtures("long_window")
def test_a_pass_over_recorded_files_reads_the_log_once(
    tmp_path: Path, file_server: FileServer
) -> None:
    urls = [file_server.add(f"f{i}.csv", f"{i}".encode()) for i in range(40)]
    fetch_many(local_manifest(tmp_path / "m"), urls, str(tmp_path / "raw"), workers=8)
    again = local_manifest(tmp_path / "m")
    calls = _counting_refreshes(again)
    report = fetch_many(again, urls, str(tmp_path / "raw"), workers=8)
    assert report.count(FetchStatus.SKIPPED) == 40
    assert len(calls) == 1  # one look for the pass, not one per URL
    assert file_server.requests("GET") == 40  # the first pass only


@pytest.mark.usefixtures("long_window")
def test_a_file_recorded_inside_the_window_is_a_duplicate_never_recorded_twice(
    tmp_path: Path, file_server: FileServer
) -> None:
    first, second = file_server.add("a.csv", b"a"), file_server.add("b.csv", b"b")
    mine = local_manifest(tmp_path / "m")
    fetch_many(mine, [first], str(tmp_path / "raw"))  # the pass's look is now recent
    fetch(local_manifest(tmp_path / "m"), second, str(tmp_path / "raw"))  # another writer
    result = fetch_many(mine, [second], str(tmp_path / "raw")).results[0]
    assert result.status is FetchStatus.DUPLICATE
    assert file_server.requests("GET", "b.csv") == 2
    assert len(local_manifest(tmp_path / "m")) == 2


def test_a_file_another_writer_recorded_before_the_pass_is_skipped(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.add("a.csv", b"a")
    mine = local_manifest(tmp_path / "m")  # loaded before the other writer's commit
    fetch(local_manifest(tmp_path / "m"), url, str(tmp_path / "raw"))
    assert fetch_many(mine, [url], str(tmp_path / "raw")).results[0].status is FetchStatus.SKIPPED
    assert file_server.requests("GET", "a.csv") == 1


@pytest.mark.usefixtures("long_window")
def test_a_first_pass_looks_once_to_skip_and_at_most_once_per_landing(
    tmp_path: Path, file_server: FileServer
) -> None:
    file_server.get_delay = 0.2  # the downloads overlap, so their landings do too
    urls = [file_server.add(f"f{i}.csv", f"{i}".encode()) for i in range(16)]
    manifest = local_manifest(tmp_path / "m")
    calls = _counting_refreshes(manifest)
    report = fetch_many(manifest, urls, str(tmp_path / "raw"), workers=8)
    assert report.count(FetchStatus.DOWNLOADED) == 16
    # Before: one look to skip and one to land per URL (32); landings at the same time
    # may share one look.
    assert len(calls) <= 1 + 16


def _slow_first_commit(manifest: Manifest, seconds: float) -> None:
    """The first commit of ``manifest`` (one record or many) takes ``seconds`` longer, so
    files landing meanwhile queue up behind it."""
    first = threading.Event()
    for name in ("add_record", "add_records"):
        real = getattr(manifest, name)

        def slow(arg: Any, real: Any = real) -> Any:
            if not first.is_set():
                first.set()
                time.sleep(seconds)
            return real(arg)

        setattr(manifest, name, slow)


def test_files_landing_together_share_one_commit(tmp_path: Path, file_server: FileServer) -> None:
    urls = [file_server.add(f"f{i}.csv", f"{i}".encode()) for i in range(16)]
    manifest = local_manifest(tmp_path / "m")
    _slow_first_commit(manifest, 0.5)
    report = fetch_many(manifest, urls, str(tmp_path / "raw"), workers=8)
    assert report.count(FetchStatus.DOWNLOADED) == 16
    assert len(local_manifest(tmp_path / "m")) == 16
    assert len(manifest.history()) <= 8  # before: one commit per file (16)


def test_a_file_is_reported_downloaded_only_once_its_commit_landed(
    tmp_path: Path, file_server: FileServer
) -> None:
    urls = [file_server.add(f"f{i}.csv", f"{i}".encode()) for i in range(16)]
    manifest = local_manifest(tmp_path / "m")
    real = manifest.add_records
    failed: list[int] = []

    def failing(records: Any) -> Any:
        if not failed:  # the first group commit fails
            failed.append(len(list(records)))
            raise StorageError("the store refused the commit; try again")
        return real(records)

    manifest.add_records = failing  # type: ignore[method-assign]
    report = fetch_many(manifest, urls, str(tmp_path / "raw"), workers=8)
    assert failed  # a group commit failed
    assert report.count(FetchStatus.FAILED) == failed[0]
    recorded = {r.checksum for r in local_manifest(tmp_path / "m")}
    downloaded = {r.checksum for r in report.results if r.status is FetchStatus.DOWNLOADED}
    assert downloaded == recorded
    assert len(recorded) == 16 - failed[0]


def test_a_file_nothing_of_its_name_is_recorded_is_one_get_and_no_head(
    tmp_path: Path, file_server: FileServer
) -> None:
    urls = [file_server.add(f"f{i}.csv", f"{i}".encode()) for i in range(10)]
    manifest = local_manifest(tmp_path / "m")
    fetch_many(manifest, urls, str(tmp_path / "raw"), workers=4)
    assert (file_server.requests("HEAD"), file_server.requests("GET")) == (0, 10)
    record = next(iter(local_manifest(tmp_path / "m").find("f3.csv")))
    assert record.etag is not None  # the GET's headers are recorded
    assert record.last_modified_server is not None
    assert record.content_length_bytes == 1
    # A second pass asks for the headers (a record could make each a skip) and skips.
    report = fetch_many(local_manifest(tmp_path / "m"), urls, str(tmp_path / "raw"))
    assert report.count(FetchStatus.SKIPPED) == 10
    assert (file_server.requests("HEAD"), file_server.requests("GET")) == (10, 10)


def test_a_missing_file_fetched_without_a_head_says_404_and_carries_no_credential(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.url("missing.csv").replace("http://", "http://user:secret@")
    with pytest.raises(NotFoundError, match="answered 404") as caught:
        fetch(local_manifest(tmp_path / "m"), url, str(tmp_path / "raw"))
    assert "secret" not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert (file_server.requests("HEAD"), file_server.requests("GET")) == (0, 1)
