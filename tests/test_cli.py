"""The etl-manifests command line, in process: commands, output formats, errors, exit codes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_support import cli, json_of
from etl_manifests import __version__, hookimpl
from etl_manifests.cli.app import build_app
from etl_manifests.registry import get_plugin_manager
from etl_manifests.testing import FileServer
from tools_support import local_manifest, sha256


@pytest.fixture
def site(file_server: FileServer) -> list[str]:
    """Three files on the HTTP server."""
    return [file_server.add(f"day_{n}.csv", f"day {n}\n".encode()) for n in (1, 2, 3)]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no ETL_MANIFESTS_* settings: the defaults apply."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ETL_MANIFESTS_") and name != "ETL_MANIFESTS_PLUGINS":
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def fetched(workdir: Path, site: list[str]) -> list[str]:
    """``site`` fetched into ./downloads, recorded in ./manifests."""
    assert cli("fetch", *site, "--dest", "downloads").exit_code == 0
    return site


def test_fetch_downloads_records_and_reports(workdir: Path, site: list[str]) -> None:
    report = json_of(cli("fetch", *site, "--dest", "downloads", "--json"))
    assert report["counts"] == {"downloaded": 3, "skipped": 0, "duplicate": 0, "failed": 0}
    assert (workdir / "downloads" / "day_2.csv").read_bytes() == b"day 2\n"
    assert len(local_manifest(workdir / "manifests")) == 3


def test_fetch_again_downloads_nothing(fetched: list[str], file_server: FileServer) -> None:
    result = cli("fetch", *fetched, "--dest", "downloads")
    assert result.exit_code == 0
    assert "0 downloaded, 3 skipped" in result.stdout
    assert file_server.requests("GET") == 3


def test_fetch_reads_urls_from_a_file(workdir: Path, site: list[str]) -> None:
    (workdir / "urls.txt").write_text("# today's files\n" + "\n".join(site) + "\n")
    report = json_of(cli("fetch", "-i", "urls.txt", "--dest", "downloads", "--json"))
    assert report["counts"]["downloaded"] == 3


def test_a_failed_download_exits_1_after_fetching_the_rest(
    workdir: Path, site: list[str], file_server: FileServer
) -> None:
    result = cli("fetch", file_server.url("nope.csv"), *site, "--dest", "downloads")
    assert result.exit_code == 1
    assert "nope.csv does not exist" in result.stdout
    assert "3 downloaded" in result.stdout


def test_verify_passes_then_fails_when_a_file_goes_missing(
    workdir: Path, fetched: list[str]
) -> None:
    report = json_of(cli("verify", "--rehash", "--json"))
    assert (report["ok"], report["checked"], report["marked"]) == (True, 3, 3)
    (workdir / "downloads" / "day_2.csv").unlink()
    result = cli("verify", "--json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    assert [(p["kind"], Path(p["filepath"]).name) for p in problems] == [("missing", "day_2.csv")]


def test_verify_only_the_selected_records(workdir: Path, fetched: list[str]) -> None:
    (workdir / "downloads" / "day_2.csv").unlink()
    assert cli("verify", "day_1.csv", "day_3.csv").exit_code == 0


def test_show_selects_by_glob_name_and_checksum_prefix(fetched: list[str]) -> None:
    assert len(json_of(cli("show", "--json"))) == 3
    assert [r["filename"] for r in json_of(cli("show", "day_[12].csv", "--json"))] == [
        "day_1.csv",
        "day_2.csv",
    ]
    prefix = sha256(b"day 3\n")[:8]
    assert [r["filename"] for r in json_of(cli("show", prefix, "--json"))] == ["day_3.csv"]
    assert [r["filename"] for r in json_of(cli("show", "day_1.csv", "--json"))] == ["day_1.csv"]


def test_show_as_jsonl_and_csv(fetched: list[str]) -> None:
    lines = cli("show", "--jsonl").stdout.splitlines()
    assert [json.loads(line)["filename"] for line in lines] == [
        "day_1.csv",
        "day_2.csv",
        "day_3.csv",
    ]
    rows = cli("show", "--csv").stdout.splitlines()
    assert rows[0].startswith("checksum,filename,filepath,")
    assert len(rows) == 4


def test_show_table_names_every_file(fetched: list[str]) -> None:
    result = cli("show")
    assert result.exit_code == 0
    assert all(f"day_{n}.csv" in result.stdout for n in (1, 2, 3))
    assert "3 of 3 records" in result.stdout


def test_json_output_is_plain_even_when_colour_is_forced(fetched: list[str]) -> None:
    forced = {"FORCE_COLOR": "1", "TERM": "xterm-256color"}
    assert "\x1b[" in cli("show", env=forced).stdout  # the table is coloured...
    result = cli("show", "--json", env=forced)
    assert "\x1b" not in result.stdout  # ...the JSON is not
    assert len(json.loads(result.stdout)) == 3


def test_no_progress_on_stderr_when_it_is_not_a_terminal(workdir: Path, site: list[str]) -> None:
    result = cli("fetch", *site, "--dest", "downloads", "--json")
    assert result.exit_code == 0
    assert result.stderr == ""


def test_ls_lists_the_manifests_under_the_root(fetched: list[str]) -> None:
    rows = json_of(cli("ls", "--json"))
    assert [(r["process"], r["etl_version"], r["records"]) for r in rows] == [
        ("extractor", "1.0.0", 3)
    ]
    assert rows[0]["data_bytes"] == 18


def test_ls_finds_a_manifest_that_has_only_commit_log_keys(workdir: Path) -> None:
    log = workdir / "manifests" / "loader_v2.0.log" / "0000000001"
    log.mkdir(parents=True)
    (log / "0123456789abcdef-0000000001.json").write_text("{}")
    result = cli("ls", "--json")
    rows = json.loads(result.stdout)
    assert [(r["process"], r["etl_version"]) for r in rows] == [("loader", "2.0")]
    # Found, and unreadable (the entry is no log entry): that is a failure, not success.
    assert result.exit_code == 1
    assert "cannot be read" in result.stderr


def test_stats_counts_records_bytes_and_verified(fetched: list[str]) -> None:
    cli("verify", "day_1.csv")
    stats = json_of(cli("stats", "--json"))
    assert (stats["records"], stats["verified"], stats["data_bytes"]) == (3, 1, 18)


def test_record_adds_local_files(workdir: Path) -> None:
    (workdir / "a.csv").write_bytes(b"a")
    records = json_of(cli("record", "a.csv", "--json"))
    assert records[0]["filepath"] == str(workdir / "a.csv")
    assert sha256(b"a") in local_manifest(workdir / "manifests")


def test_root_and_version_come_from_the_environment(workdir: Path, site: list[str]) -> None:
    env = {
        "ETL_MANIFESTS_MANIFESTS_DIR": str(workdir / "elsewhere"),
        "ETL_MANIFESTS_VERSION": "2.0",
    }
    assert cli("fetch", site[0], "--dest", "downloads", env=env).exit_code == 0
    assert (workdir / "elsewhere" / "extractor_v2.0.json").exists()
    rows = json_of(cli("ls", "--json", "--root", str(workdir / "elsewhere")))
    assert rows[0]["etl_version"] == "2.0"


def test_cleanup_removes_old_staged_leftovers(workdir: Path, fetched: list[str]) -> None:
    leftover = workdir / "manifests" / f"extractor_v1.0.0.json.staged-{'0' * 32}"
    leftover.write_bytes(b"{}")
    os.utime(leftover, (1_000_000_000, 1_000_000_000))
    report = json_of(cli("cleanup", "--json"))
    assert report["removed"]["extractor_v1.0.0.json"] == 1
    assert not leftover.exists()


def test_plugins_lists_backends_and_their_schemes(workdir: Path) -> None:
    listing = json_of(cli("plugins", "--json"))
    schemes = {row["name"]: row["schemes"] for row in listing["plugins"]}
    assert schemes["etl_manifests.backends.s3"] == ["s3", "s3a"]
    assert schemes["sqlite"] == ["sqlite"]
    assert listing["errors"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "--jsn"], "No such option: --jsn"),
        (["fetch", "http://127.0.0.1:9/a"], "Missing option '--dest'"),
        (["show", "--process", "extractr"], "'extractr' is not a declared ETL process"),
        (["show", "--jsonl", "--csv"], "choose one of --json, --jsonl and --csv"),
        (["show", "--etl-version", "../x"], "cannot be part of a file name"),
        (["show", "--root", "ftp://host/x"], "no storage backend for ftp://"),
        (["cleanup", "--min-age", "soon"], "is not an age"),
    ],
)
def test_usage_errors_exit_2_with_one_line(workdir: Path, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("etl-manifests: error: ")
    assert message in result.stderr


def test_errors_show_a_traceback_only_with_debug(workdir: Path) -> None:
    (workdir / "manifests").mkdir()
    (workdir / "manifests" / "extractor_v1.0.0.json").write_text("not json")
    plain = cli("show")
    assert plain.exit_code == 1
    assert "cannot be read" in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = cli("--debug", "show")
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr


def test_every_command_has_help_with_an_example(workdir: Path) -> None:
    app = build_app()
    names = [c.name for c in app.registered_commands]
    assert {"ls", "show", "stats", "record", "fetch", "verify", "cleanup", "plugins"} <= set(names)
    for name in [*names, None]:
        result = cli(*([name] if name else []), "--help")
        assert result.exit_code == 0
        assert "Example: " in result.stdout, name


def test_version(workdir: Path) -> None:
    assert cli("--version").stdout.strip() == f"etl-manifests {__version__}"


class _HelloPlugin:
    @hookimpl
    def register_commands(self, cli: object) -> None:
        @cli.command()  # type: ignore[attr-defined, untyped-decorator]
        def hello(name: str) -> None:
            """Say hello. Example: `etl-manifests hello world`"""
            print(f"hello {name}")


class _BrokenPlugin:
    @hookimpl
    def register_commands(self, cli: object) -> None:
        raise RuntimeError("boom")


@pytest.fixture
def plugins() -> Iterator[None]:
    pm = get_plugin_manager()
    pm.register(_HelloPlugin(), name="hello")
    pm.register(_BrokenPlugin(), name="broken")
    yield
    pm.unregister(name="hello")
    pm.unregister(name="broken")


def test_plugins_add_commands_and_a_broken_one_only_warns(
    workdir: Path, plugins: None, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli("hello", "world")  # the application is built outside the runner's capture
    assert result.exit_code == 0
    assert result.stdout == "hello world\n"
    warning = capsys.readouterr().err
    assert "plugin 'broken' failed to add its commands: RuntimeError: boom" in warning


def test_no_command_prints_the_help(workdir: Path) -> None:
    result = cli()
    assert result.exit_code == 2
    assert "Usage: " in result.stdout
    assert "fetch" in result.stdout
    assert result.stderr == ""


def test_history_lists_commits_and_compact_folds_them(fetched: list[str], workdir: Path) -> None:
    commits = json_of(cli("history", "--json"))
    assert sum(c["put"] for c in commits) == 3
    assert not any(c["in_snapshot"] for c in commits)
    result = json_of(cli("compact", "--json"))
    assert result["commits_folded"] == len(commits)
    snapshot = json.loads((workdir / "manifests" / "extractor_v1.0.0.json").read_bytes())
    assert len(snapshot["records"]) == 3
    assert all(c["in_snapshot"] for c in json_of(cli("history", "--json")))
