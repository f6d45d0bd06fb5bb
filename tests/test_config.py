"""ETLConfig: settings from code, the environment and a .env file."""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import pytest

from etl_manifests import (
    BackendConfigurationError,
    CheckpointPolicy,
    ConfigurationError,
    ETLConfig,
    ManifestManager,
    setting_sources,
)


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


def test_checkpoint_policy_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_CHECKPOINT", '{"every": 1, "size_ratio": 0, "inline": true}')
    assert ETLConfig().checkpoint == CheckpointPolicy.after_every_commit()
    manager = ManifestManager(tmp_path, "1.0.0")
    assert manager.extractor.checkpoint_policy == CheckpointPolicy.after_every_commit()


def test_checkpoint_policy_defaults() -> None:
    policy = ETLConfig().checkpoint
    assert (policy.every, policy.size_ratio, policy.inline) == (1000, 0.01, False)
    assert policy.due(999, 10_000) is False
    assert policy.due(1000, 10_000) is True
    assert policy.due(1000, 1_000_000) is False  # 1% of a million: 10,000


def test_storage_options_that_are_not_json_name_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", '{"secret": "hunter2"')
    with pytest.raises(BackendConfigurationError, match="not valid JSON") as info:
        ETLConfig()
    assert "ETL_MANIFESTS_STORAGE_OPTIONS" in str(info.value)
    assert "hunter2" not in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", ['"secret=hunter2"', '["hunter2"]'])
def test_storage_options_that_are_not_an_object_are_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", value)
    with pytest.raises(BackendConfigurationError, match="JSON object") as info:
        ETLConfig()
    assert "hunter2" not in str(info.value)
    assert info.value.__context__ is None  # pydantic's error (echoing the input) is not kept


def test_a_bad_setting_in_code_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ETL_MANIFESTS_VERSION"):
        ETLConfig(version=1)  # type: ignore[arg-type]


def test_dotenv_in_the_working_directory_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ETL_MANIFESTS_VERSION=3.0.0\n")
    assert ETLConfig().version == "3.0.0"
    monkeypatch.setenv("ETL_MANIFESTS_VERSION", "4.0.0")
    assert ETLConfig().version == "4.0.0"


def test_setting_sources_say_where_each_value_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ETL_MANIFESTS_VERSION=3.0.0\nETL_MANIFESTS_PROCESSES=a\n")
    monkeypatch.setenv("etl_manifests_manifests_dir", "s3://bucket/m")
    monkeypatch.setenv("ETL_MANIFESTS_PROCESSES", "b")
    config = ETLConfig(storage_options={"secret": "hunter2"})
    assert setting_sources(config) == {
        "version": f"ETL_MANIFESTS_VERSION in {tmp_path / '.env'}",
        "manifests_dir": "environment variable ETL_MANIFESTS_MANIFESTS_DIR",
        "storage_options": "argument",
        "checkpoint": "default",
        "processes": "environment variable ETL_MANIFESTS_PROCESSES",
    }
    assert config.processes == ("b",)
    assert "hunter2" not in str(setting_sources(config))


def test_setting_sources_of_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert set(setting_sources(ETLConfig()).values()) == {"default"}


def test_processes_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_PROCESSES", " noaa_download,noaa_parse,, noaa_download ")
    assert ETLConfig().processes == ("noaa_download", "noaa_parse")
    assert ETLConfig(processes=["x1"]).processes == ("x1",)


def test_unsafe_process_name_in_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_PROCESSES", "ok,../escape")
    with pytest.raises(ValueError, match="cannot name a process"):
        ETLConfig()


SECRET_JSON = '{"key": "AKIAEXAMPLE", "secret": "hunter2"'  # the closing brace is missing


def test_invalid_json_in_environment_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", SECRET_JSON)
    with pytest.raises(ConfigurationError) as info:
        ETLConfig()
    message = str(info.value)
    assert "ETL_MANIFESTS_STORAGE_OPTIONS from the environment is not valid JSON" in message
    assert "hunter2" not in message
    assert "AKIAEXAMPLE" not in message
    assert isinstance(info.value, ValueError)


def test_invalid_json_in_dotenv_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"ETL_MANIFESTS_STORAGE_OPTIONS={SECRET_JSON}\n")
    with pytest.raises(ConfigurationError) as info:
        ETLConfig()
    message = str(info.value)
    assert f"ETL_MANIFESTS_STORAGE_OPTIONS from the .env file {tmp_path / '.env'}" in message
    assert "not valid JSON" in message
    assert "hunter2" not in message
    assert "hunter2" not in "".join(traceback.format_exception(info.value))


# A secret key with a "/" in it, pasted into the root URL unencoded, as people do.
ROOT_KEY = "AKIAROOTKEY000000001"
ROOT_SECRET = "root/Secret+Key=0123456789abcdefXYZ"


@pytest.mark.parametrize(
    "root",
    [
        f"s3://{ROOT_KEY}:{ROOT_SECRET}@bucket/m",
        f"gs://user:{ROOT_SECRET}@bucket/m",
        f"s3://bucket/m?token={ROOT_SECRET}",
    ],
)
def test_credentials_in_the_root_never_appear_in_repr_or_str(root: str) -> None:
    config = ETLConfig(manifests_dir=root, storage_options={"secret": ROOT_SECRET})
    for text in (repr(config), str(config)):
        assert ROOT_SECRET not in text
        assert ROOT_KEY not in text
        assert "bucket/m" in text  # the root is still shown, only its credentials are not
    assert config.manifests_dir == root  # the value itself is kept as given


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"secret": f"{ROOT_SECRET}\udc80"}, "'secret'"),
        (
            {"client_kwargs": {"endpoint_url": f"http://u:{ROOT_SECRET}\ud800@h"}},
            "'client_kwargs.endpoint_url'",
        ),
        ({"token": [f"{ROOT_SECRET}\udfff"]}, "'token[0]'"),
    ],
)
def test_storage_options_that_are_not_valid_text_name_the_option_not_the_value(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, object], named: str
) -> None:
    # json.dumps writes a lone surrogate as "\udc80": valid JSON, but no codec can send it.
    monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", json.dumps(options))
    with pytest.raises(BackendConfigurationError) as info:
        ETLConfig()
    error = info.value
    assert named in str(error)
    assert "ETL_MANIFESTS_STORAGE_OPTIONS" in str(error)
    for text in (str(error), repr(error), repr(error.args), *traceback.format_exception(error)):
        assert ROOT_SECRET not in text
    assert error.__cause__ is None
    assert error.__context__ is None


@pytest.mark.parametrize("root", ["memory://surrogates", "s3://bucket/m", "gs://bucket/m"])
def test_storage_options_in_code_that_are_not_valid_text_are_refused_before_any_request(
    root: str,
) -> None:
    options = {
        "key": ROOT_KEY,
        "secret": f"{ROOT_SECRET}\udc80",
        "endpoint_url": "http://127.0.0.1:1",
    }
    with pytest.raises(BackendConfigurationError) as info:
        ManifestManager(root, "1.0.0", storage_options=options)
    error = info.value
    assert "'secret'" in str(error)
    for text in (str(error), repr(error), repr(error.args), *traceback.format_exception(error)):
        assert ROOT_SECRET not in text
    assert error.__cause__ is None
    assert error.__context__ is None
