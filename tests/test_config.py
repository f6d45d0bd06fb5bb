"""ETLConfig: settings from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etl_manifests import ETLConfig


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    config = ETLConfig()
    assert config.version == "1.0.0"
    assert config.get_manifests_dir() == os.path.join(tmp_path, "manifests")


def test_values_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_VERSION", "2.1.0")
    monkeypatch.setenv("ETL_MANIFESTS_MANIFESTS_DIR", "s3://bucket/manifests")
    monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", '{"endpoint_url": "http://127.0.0.1:9"}')
    config = ETLConfig()
    assert config.version == "2.1.0"
    assert config.get_manifests_dir() == "s3://bucket/manifests"
    assert config.storage_options == {"endpoint_url": "http://127.0.0.1:9"}


def test_relative_dir_is_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert ETLConfig(manifests_dir="state").get_manifests_dir() == str(tmp_path / "state")


def test_storage_options_never_appear_in_repr() -> None:
    config = ETLConfig(storage_options={"secret": "hunter2"})
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config)
