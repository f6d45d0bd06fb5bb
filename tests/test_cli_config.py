"""``etl-manifests config`` says where each setting came from; shell completion works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_support import cli, json_of


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no ETL_MANIFESTS_* settings."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ETL_MANIFESTS_") and name != "ETL_MANIFESTS_PLUGINS":
            monkeypatch.delenv(name)
    return tmp_path


def test_config_names_a_stray_dotenv_as_the_source(workdir: Path) -> None:
    (workdir / ".env").write_text("ETL_MANIFESTS_VERSION=3.0\n")
    settings = json_of(cli("config", "--json"))["settings"]
    assert settings["version"] == {
        "value": "3.0",
        "source": f"ETL_MANIFESTS_VERSION in {workdir / '.env'}",
    }
    assert settings["manifests_dir"]["source"] == "default"


def test_config_shows_storage_options_by_name_only(workdir: Path) -> None:
    options = json.dumps({"key": "AKIAEXAMPLE", "secret": "s3cr3t-value"})
    result = cli("config", env={"ETL_MANIFESTS_STORAGE_OPTIONS": options})
    assert result.exit_code == 0, result.stderr
    assert "AKIAEXAMPLE" not in result.stdout
    assert "s3cr3t-value" not in result.stdout
    assert "key, secret" in result.stdout
    assert "environment variable ETL_MANIFESTS_STORAGE_OPTIONS" in result.stdout


def test_config_redacts_credentials_in_the_root(workdir: Path) -> None:
    result = cli("config", "--json", env={"ETL_MANIFESTS_MANIFESTS_DIR": "s3://AK:SECRET@b/m"})
    assert "SECRET" not in result.stdout
    assert result.exit_code == 0


def _complete(words: str, cword: int, workdir: Path, **env: str) -> list[str]:
    environment = {
        **os.environ,
        "_ETL_MANIFESTS_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "etl_manifests"],
        env=environment,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


def test_shell_completion_completes_commands_and_processes(workdir: Path) -> None:
    assert _complete("etl-manifests sh", 1, workdir) == ["show"]
    processes = _complete(
        "etl-manifests show -p l", 3, workdir, ETL_MANIFESTS_PROCESSES="load_more"
    )
    assert processes == ["loader", "load_more"]


def test_the_completion_script_can_be_shown() -> None:
    result = cli("--show-completion", "bash")
    assert result.exit_code == 0
    assert "_ETL_MANIFESTS_COMPLETE" in result.stdout
