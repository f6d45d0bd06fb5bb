"""The copy and compare commands."""

from __future__ import annotations

from pathlib import Path

from cli_support import cli, json_of
from conftest import checksum, record
from etl_manifests import ManifestStore


def fill(root: Path) -> None:
    store = ManifestStore(root, "1.0.0", storage_options={})
    store.extractor.add_records([record(n) for n in range(3)])
    store.extractor.remove_record(checksum(2))


def test_copy_copies_and_a_rerun_writes_nothing(tmp_path: Path) -> None:
    fill(tmp_path / "src")
    first = json_of(cli("copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--json"))
    assert (first["created"], first["records_written"]) == (1, 2)
    again = cli("copy", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert again.exit_code == 0
    assert "1 unchanged; 0 records written" in again.stdout


def test_dry_run_says_what_would_be_written(tmp_path: Path) -> None:
    fill(tmp_path / "src")
    result = cli("copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--dry-run")
    assert result.exit_code == 0
    assert "would be created" in result.stdout
    assert not (tmp_path / "dst").exists()


def test_a_conflict_exits_1_and_names_the_record(tmp_path: Path) -> None:
    fill(tmp_path / "src")
    ManifestStore(tmp_path / "dst", "1.0.0", storage_options={}).extractor.add_record(record(9))
    result = cli("copy", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert result.exit_code == 1
    assert checksum(9)[:12] in result.stderr
    merged = cli("copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--on-conflict", "merge")
    assert merged.exit_code == 0


def test_same_root_and_unknown_process_are_usage_errors(tmp_path: Path) -> None:
    fill(tmp_path / "src")
    same = cli("copy", str(tmp_path / "src"), str(tmp_path / "src"))
    assert same.exit_code == 2
    assert "same root" in same.stderr
    unknown = cli("copy", str(tmp_path / "src"), str(tmp_path / "dst"), "-p", "loader")
    assert unknown.exit_code == 2
    bad = cli("copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--on-conflict", "x")
    assert bad.exit_code == 2


def test_compare_exits_1_when_the_roots_differ(tmp_path: Path) -> None:
    fill(tmp_path / "src")
    differ = cli("compare", str(tmp_path / "src"), str(tmp_path / "dst"), "--json")
    assert differ.exit_code == 1
    cli("copy", str(tmp_path / "src"), str(tmp_path / "dst"))
    same = cli("compare", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert same.exit_code == 0
    assert "same records" in same.stdout


def test_bad_storage_options_never_echo_their_value(tmp_path: Path) -> None:
    fill(tmp_path / "src")
    result = cli("copy", str(tmp_path / "src"), "memory://x", "--dest-options", "secret123")
    assert result.exit_code == 2
    assert "secret123" not in result.stderr
