"""The command line never reports success for a mistake: an absent manifest, a selection
that matches nothing, an unreadable manifest in ``ls``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli_support import cli, json_of
from etl_manifests.testing import FileServer

NOTHING_FOUND = 3


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no ETL_MANIFESTS_* settings: the defaults apply."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ETL_MANIFESTS_") and name != "ETL_MANIFESTS_PLUGINS":
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def fetched(workdir: Path, file_server: FileServer) -> list[str]:
    """Two files fetched into ./dl, recorded in ./manifests."""
    site = [file_server.add(f"day_{n}.csv", f"day {n}\n".encode()) for n in (1, 2)]
    assert cli("fetch", *site, "--dest", "dl").exit_code == 0
    return site


@pytest.mark.parametrize(
    "args",
    [
        ("show", "--root", "/nonexistent/path"),
        ("show", "-e", "9.9.9"),
        ("show", "--json"),
        ("stats", "--json"),
        ("stats", "-e", "9.9.9"),
        ("verify", "--json"),
    ],
)
def test_an_absent_manifest_is_said_and_exits_3(workdir: Path, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.exit_code == NOTHING_FOUND, result.stdout
    assert result.stdout == ""
    assert "no manifest of process extractor" in result.stderr
    assert "etl-manifests ls" in result.stderr


def test_an_absent_manifest_is_neither_created_nor_its_root(workdir: Path) -> None:
    assert cli("show", "--root", str(workdir / "nowhere")).exit_code == NOTHING_FOUND
    assert not (workdir / "nowhere").exists()


def test_stats_makes_up_no_times_for_an_absent_manifest(workdir: Path) -> None:
    result = cli("stats", "--json")
    assert "created_at" not in result.stdout
    assert result.exit_code == NOTHING_FOUND


@pytest.mark.parametrize("command", ["show", "verify"])
def test_selectors_matching_nothing_exit_3(fetched: list[str], command: str) -> None:
    result = cli(command, "day_9.csv", "--json")
    assert result.exit_code == NOTHING_FOUND
    assert '"ok": true' not in result.stdout
    assert "matches 'day_9.csv'" in result.stderr


def test_an_existing_empty_selection_without_selectors_is_success(fetched: list[str]) -> None:
    assert cli("show", "-p", "extractor").exit_code == 0


@pytest.mark.parametrize("path", ["dl/day_1.csv", "./dl/day_1.csv", "dl/*_1.csv"])
def test_show_selects_by_file_path(fetched: list[str], path: str) -> None:
    rows = json_of(cli("show", path, "--json"))
    assert [r["filename"] for r in rows] == ["day_1.csv"]


def test_ls_of_an_empty_root_exits_3(workdir: Path) -> None:
    result = cli("ls")
    assert result.exit_code == NOTHING_FOUND
    assert "no manifests under" in result.stderr


def test_ls_with_an_unreadable_manifest_fails_and_says_why(
    fetched: list[str], workdir: Path
) -> None:
    bad = workdir / "manifests" / "loader_v1.0.0.json"
    bad.write_text("not json")
    result = cli("ls")
    assert result.exit_code == 1
    assert "unreadable" in result.stdout
    assert str(bad) not in result.stdout  # the path is not in the size column
    assert str(bad) in result.stderr.replace("\n", "")
    rows = cli("ls", "--json")
    assert rows.exit_code == 1


def _timestamps(value: object) -> list[str]:
    """Every string in ``value`` that looks like an ISO 8601 time."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _timestamps(v)]
    if isinstance(value, list):
        return [t for v in value for t in _timestamps(v)]
    if isinstance(value, str) and len(value) > 18 and value[10:11] == "T":
        return [value]
    return []


def test_json_timestamps_end_in_z_in_every_command(fetched: list[str]) -> None:
    stamps = [
        *_timestamps(json_of(cli("show", "--json"))),
        *_timestamps(json_of(cli("stats", "--json"))),
        *_timestamps(json_of(cli("ls", "--json"))),
        *_timestamps(json_of(cli("history", "--json"))),
    ]
    assert len(stamps) > 4
    assert all(s.endswith("Z") for s in stamps), stamps


def test_csv_booleans_are_written_as_json_writes_them(fetched: list[str]) -> None:
    result = cli("show", "--csv")
    assert result.exit_code == 0
    column = result.stdout.splitlines()[0].split(",").index("is_verified")
    values = {line.split(",")[column] for line in result.stdout.splitlines()[1:]}
    assert values == {"false"}


def test_record_json_says_what_happened_to_each_file(workdir: Path) -> None:
    (workdir / "a.csv").write_bytes(b"a")
    assert [r["status"] for r in json_of(cli("record", "a.csv", "--json"))] == ["recorded"]
    assert [r["status"] for r in json_of(cli("record", "a.csv", "--json"))] == ["unchanged"]


@pytest.mark.parametrize(
    ("args", "kind", "code"),
    [
        (("show", "--json"), "nothing_found", 3),
        (("show", "--json", "--root", "memroy://x"), "unknown_scheme", 2),
        (("show", "--json", "--bogus"), "usage", 2),
        (("show", "--json", "-p", "extractr"), "usage", 2),
    ],
)
def test_errors_under_json_are_a_json_object_with_a_kind(
    workdir: Path, args: tuple[str, ...], kind: str, code: int
) -> None:
    result = cli(*args)
    assert result.exit_code == code
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    error = json.loads(line)["error"]
    assert (error["kind"], error["exit_code"]) == (kind, code)
    assert error["message"]


def test_a_store_failure_under_json_is_kind_corrupt_manifest(fetched: list[str]) -> None:
    (Path("manifests") / "extractor_v1.0.0.json").write_text("not json")
    result = cli("show", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stderr)["error"]["kind"] == "corrupt_manifest"


def test_without_json_an_error_stays_one_line_for_people(workdir: Path) -> None:
    result = cli("show")
    assert result.stderr.startswith("etl-manifests: error: no manifest")
