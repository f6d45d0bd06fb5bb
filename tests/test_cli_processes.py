"""The command line works with declared process names, in every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import cli, json_of
from etl_manifests import Manifest, open_backend
from etl_manifests.testing import FileServer


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("ETL_MANIFESTS_MANIFESTS_DIR", "ETL_MANIFESTS_VERSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ETL_MANIFESTS_PROCESSES", "noaa_download")
    return tmp_path


def _manifest(workdir: Path, process: str) -> Manifest:
    return Manifest(process, "1.0.0", open_backend(str(workdir / "manifests")))


def test_a_declared_process_works_in_fetch_show_verify_stats_and_history(
    workdir: Path, file_server: FileServer
) -> None:
    url = file_server.add("a.csv", b"abc")
    fetched = cli("fetch", url, "--dest", "dl", "-p", "noaa_download", "--json")
    assert fetched.exit_code == 0, fetched.stderr
    assert [r.filename for r in _manifest(workdir, "noaa_download")] == ["a.csv"]
    assert len(_manifest(workdir, "extractor")) == 0
    shown = json_of(cli("show", "-p", "noaa_download", "--json"))
    assert [r["filename"] for r in shown] == ["a.csv"]
    for command in ("verify", "stats", "history"):
        result = cli(command, "-p", "noaa_download")
        assert result.exit_code == 0, (command, result.stderr)
    assert cli("forget", "a.csv", "-p", "noaa_download").exit_code == 0
    assert len(_manifest(workdir, "noaa_download")) == 0


def test_an_undeclared_process_is_a_usage_error_naming_the_declared_ones(workdir: Path) -> None:
    result = cli("show", "-p", "noaa_downlaod")
    assert result.exit_code == 2
    assert "noaa_download" in result.stderr
    assert not (workdir / "manifests").exists()


def test_seed_names_still_work_in_any_case(workdir: Path) -> None:
    # The names are accepted (no usage error); there is no manifest of either yet.
    for name in ("EXTRACTOR", "loader"):
        result = cli("show", "-p", name)
        assert result.exit_code == 3, result.stderr
        assert f"no manifest of process {name.lower()}" in result.stderr


def test_cleanup_covers_declared_processes(workdir: Path) -> None:
    result = cli("cleanup", "--json")
    assert result.exit_code == 0, result.stderr
    removed = json.loads(result.stdout)["removed"]
    assert any("noaa_download" in key for key in removed)
    assert len(removed) == 4
