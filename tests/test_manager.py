"""ManifestManager: a singleton handing out one Manifest per process."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from conftest import record
from etl_manifests import (
    ETLProcess,
    InvalidNameError,
    ManagerConfigurationError,
    ManifestManager,
    UnknownProcessError,
)


def test_same_arguments_give_the_same_manager(tmp_path: Path) -> None:
    assert ManifestManager(tmp_path, "1.0.0") is ManifestManager(str(tmp_path), "1.0.0")


def test_different_arguments_raise_instead_of_being_ignored(tmp_path: Path) -> None:
    ManifestManager(tmp_path, "1.0.0")
    with pytest.raises(ManagerConfigurationError, match="reset"):
        ManifestManager(tmp_path, "2.0.0")
    with pytest.raises(ManagerConfigurationError):
        ManifestManager(tmp_path / "other", "1.0.0")


def test_reset_allows_a_new_configuration(tmp_path: Path) -> None:
    first = ManifestManager(tmp_path, "1.0.0")
    ManifestManager.reset()
    second = ManifestManager(tmp_path, "2.0.0")
    assert second is not first
    assert ManifestManager.instance() is second


def test_attribute_returns_one_manifest_per_process(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0")
    assert manager.extractor is manager.extractor
    assert manager.extractor is not manager.loader
    assert manager.transformer.process is ETLProcess.TRANSFORMER


def test_get_and_getitem_return_the_same_manifest(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0")
    assert manager.get("extractor") is manager.extractor
    assert manager[ETLProcess.EXTRACTOR] is manager.extractor


def test_manifest_file_is_named_after_process_and_version(tmp_path: Path) -> None:
    ManifestManager(tmp_path, "1.0.0").extractor.add_record(record(1))
    assert (tmp_path / "extractor_v1.0.0.json").is_file()


def test_existing_manifest_is_loaded(tmp_path: Path) -> None:
    ManifestManager(tmp_path, "1.0.0").extractor.add_record(record(1))
    ManifestManager.reset()
    assert len(ManifestManager(tmp_path, "1.0.0").extractor) == 1


def test_unknown_attribute_names_the_valid_processes(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0")
    with pytest.raises(AttributeError, match="extractor, loader, transformer"):
        manager.extractr  # noqa: B018
    with pytest.raises(UnknownProcessError):
        manager.get("nope")
    with pytest.raises(KeyError):
        manager["nope"]


def test_hasattr_and_getattr_default_behave(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0")
    assert not hasattr(manager, "not_a_process")
    assert getattr(manager, "not_a_process", None) is None
    assert hasattr(manager, "extractor")


def test_private_and_dunder_names_are_not_intercepted(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0")
    with pytest.raises(AttributeError) as info:
        manager.__wrapped__  # noqa: B018
    assert not isinstance(info.value, UnknownProcessError)
    with pytest.raises(AttributeError):
        manager._private  # noqa: B018


def test_copy_and_pickle_return_the_singleton(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0")
    assert copy.copy(manager) is manager
    assert copy.deepcopy(manager) is manager
    assert pickle.loads(pickle.dumps(manager)) is manager


def test_dir_lists_the_processes(tmp_path: Path) -> None:
    assert {"extractor", "transformer", "loader"} <= set(dir(ManifestManager(tmp_path, "1")))


@pytest.mark.parametrize("version", ["../1", "1/2", "1\x00", "..", "", ".hidden", "a\\b"])
def test_unsafe_version_is_refused_before_touching_storage(tmp_path: Path, version: str) -> None:
    with pytest.raises(InvalidNameError):
        ManifestManager(tmp_path / "root", version)
    assert not (tmp_path / "root").exists()
    assert ManifestManager.instance() is None


def test_repr_hides_credentials_in_root_url() -> None:
    manager = ManifestManager("memory://user:hunter2@bucket/x", "1")
    assert "hunter2" not in repr(manager)
