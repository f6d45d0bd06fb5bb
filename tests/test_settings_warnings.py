"""A setting that has no effect is said (a SettingWarning, once per process), never a
failure: a misspelt ETL_MANIFESTS_* variable, a stray .env entry, an unknown plugin name."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cli_support import cli
from etl_manifests import ETLConfig, SettingWarning
from etl_manifests import registry as registry_module
from etl_manifests._warn import forget_warnings


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ETL_MANIFESTS_* settings, an empty working directory, no warning said yet."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ETL_MANIFESTS_"):
            monkeypatch.delenv(name)
    forget_warnings()
    registry_module.reset_plugins()
    yield
    forget_warnings()
    registry_module.reset_plugins()


def _said(action: Callable[[], object]) -> list[str]:
    """The SettingWarning messages ``action()`` issues."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return [str(w.message) for w in caught if issubclass(w.category, SettingWarning)]


def test_a_misspelt_variable_is_a_warning_with_a_did_you_mean(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_VERISON", "2.0")
    (message,) = _said(ETLConfig)
    assert "ETL_MANIFESTS_VERISON" in message
    assert "did you mean 'ETL_MANIFESTS_VERSION'?" in message
    assert "2.0" not in message  # values may be credentials
    assert ETLConfig().version == "1.0.0"  # never a failure


def test_the_warning_is_said_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_VERISON", "2.0")
    assert len(_said(ETLConfig)) == 1
    assert _said(ETLConfig) == []


def test_a_stray_dotenv_entry_is_a_warning_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ETL_MANIFESTS_MANIFEST_DIR=elsewhere\n")
    (message,) = _said(ETLConfig)
    assert str(tmp_path / ".env") in message
    assert "did you mean 'ETL_MANIFESTS_MANIFESTS_DIR'?" in message


def test_known_variables_warn_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VERSION", "DEBUG", "PLUGINS", "PROCESSES", "MANIFESTS_DIR"):
        monkeypatch.setenv(f"ETL_MANIFESTS_{name}", "x" if name != "PLUGINS" else "sqlite")
    assert _said(ETLConfig) == []


def test_an_unknown_plugin_name_is_a_warning_with_a_did_you_mean(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_PLUGINS", "sqlitee,nonexistent")
    said = _said(registry_module.get_plugin_manager)
    assert len(said) == 2
    assert any("'sqlitee'" in m and "did you mean 'sqlite'?" in m for m in said)
    assert any("'nonexistent'" in m for m in said)
    # The memory backend is built in and still serves.
    assert registry_module.open_backend("memory://x") is not None


def test_the_command_line_says_it_as_one_warning_line(monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli("ls", env={"ETL_MANIFESTS_VERISON": "2.0"})
    assert result.exit_code == 3  # what ls does with no manifests: the warning changes nothing
    lines = [line for line in result.stderr.splitlines() if "VERISON" in line]
    assert len(lines) == 1
    assert lines[0].startswith("etl-manifests: warning: ETL_MANIFESTS_VERISON")
