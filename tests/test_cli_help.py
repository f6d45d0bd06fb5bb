"""Help and usage errors speak the command line's language, not Python's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from cli_support import cli
from etl_manifests.cli.app import build_app

COMMANDS = sorted(c.name or "" for c in build_app().registered_commands)


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


@pytest.mark.parametrize("command", [[], *[[name] for name in COMMANDS]])
def test_help_shows_no_python_type_names(command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.exit_code == 0, result.stderr
    for python in ("<bool>", "<str>", "<int", "<list[", "{paths}", "{selectors}", "{urls}"):
        assert python not in result.stdout, (command, python)


def test_help_names_what_an_option_takes() -> None:
    out = cli("record", "--help").stdout
    assert re.search(r"--root\s+-r\s+ROOT", out)
    assert "Usage: etl-manifests record [OPTIONS] PATH..." in out


def test_on_conflict_lists_its_choices_and_a_bad_one_is_refused_plainly() -> None:
    assert "<error|merge|replace>" in cli("copy", "--help").stdout
    result = cli("copy", "a", "b", "--on-conflict", "foo")
    assert result.exit_code == 2
    assert "'foo' is not one of 'error', 'merge', 'replace'" in result.stderr
    assert "Value error" not in result.stderr


def test_a_did_you_mean_ends_its_sentence() -> None:
    result = cli("shw")
    assert result.exit_code == 2
    assert "Did you mean 'show'? Run 'etl-manifests --help' for usage" in result.stderr
    assert "?;" not in result.stderr


def test_a_bad_min_age_names_the_option() -> None:
    result = cli("cleanup", "--min-age", "banana")
    assert result.exit_code == 2
    assert "--min-age" in result.stderr


def test_workers_has_one_default_everywhere() -> None:
    group = typer.main.get_command(build_app())
    defaults = {
        param.default
        for name in ("fetch", "record", "verify", "forget")
        for param in group.commands[name].params  # type: ignore[attr-defined]
        if param.name == "workers"
    }
    assert len(defaults) == 1


def test_an_unknown_scheme_points_to_what_a_pip_user_has() -> None:
    result = cli("show", "--root", "memroy://m")
    assert result.exit_code == 2
    assert (
        "no storage backend for memroy:// (did you mean 'memory'?); known schemes" in result.stderr
    )
    assert "docs/plugins.md" not in result.stderr
    assert " ; " not in result.stderr
    assert "https://etl-manifests.github.io/etl-manifests/plugins/" in result.stderr


@pytest.mark.parametrize("path", ["s3://", "gs://"])
def test_record_of_a_bare_scheme_says_only_a_scheme(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("record", path)
    assert result.exit_code == 2
    assert "is only a scheme" in result.stderr
    assert "folder" not in result.stderr
    assert not (tmp_path / "manifests").exists()
