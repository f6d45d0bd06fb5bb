"""Process names: the seed's three, and the ones a pipeline declares."""

from __future__ import annotations

import pickle
from pathlib import Path

import orjson
import pytest

from conftest import record
from etl_manifests import (
    CorruptManifestError,
    ETLProcess,
    InvalidNameError,
    Manifest,
    ManifestManager,
    UnknownProcessError,
    open_backend,
    validate_process_name,
)


@pytest.mark.parametrize("name", ["noaa_download", "a", "stage2", "x" * 64, "a_b_c"])
def test_safe_names_are_accepted(name: str) -> None:
    assert validate_process_name(name) == name


def test_seed_names_come_back_as_enum_members() -> None:
    assert validate_process_name("loader") is ETLProcess.LOADER


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "a/b",
        "a\\b",
        "a\x00b",
        "a.b",
        "a-b",
        "Extractor",
        "noaa download",
        "_private",
        "2nd_stage",
        "x" * 65,
        "class",
        "é",
    ],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_process_name(name)


def test_a_non_string_name_is_refused() -> None:
    with pytest.raises(InvalidNameError, match="string"):
        validate_process_name(3)


def test_upper_case_name_suggests_the_lower_case_one() -> None:
    with pytest.raises(InvalidNameError, match="did you mean 'noaa_download'"):
        validate_process_name("NOAA_download")


def test_declared_process_is_an_attribute_and_a_manifest_file(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0", processes=["noaa_download"])
    manifest = manager.noaa_download
    assert manifest is manager.get("noaa_download") is manager["noaa_download"]
    assert manifest.process == "noaa_download"
    manifest.add_record(record(1))
    stored = orjson.loads((tmp_path / "noaa_download_v1.0.0.json").read_bytes())
    assert stored["metadata"]["process"] == "noaa_download"


def test_seed_processes_stay_declared(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0", processes=["noaa_download"])
    assert manager.processes == ("extractor", "transformer", "loader", "noaa_download")
    assert manager.extractor.process is ETLProcess.EXTRACTOR


def test_processes_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_PROCESSES", "noaa_download, noaa_parse")
    manager = ManifestManager(tmp_path, "1.0.0")
    assert manager.processes[3:] == ("noaa_download", "noaa_parse")
    assert manager.noaa_parse.process == "noaa_parse"


def test_processes_argument_overrides_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_PROCESSES", "from_env")
    manager = ManifestManager(tmp_path, "1.0.0", processes=["from_code"])
    assert manager.processes[3:] == ("from_code",)


def test_misspelt_attribute_lists_declared_names_and_creates_nothing(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path / "root", "1.0.0", processes=["noaa_download"])
    with pytest.raises(UnknownProcessError) as info:
        manager.noaa_donwload  # noqa: B018
    message = str(info.value)
    assert "did you mean 'noaa_download'" in message
    assert "extractor, loader, noaa_download, transformer" in message
    assert info.value.valid == ["extractor", "loader", "noaa_download", "transformer"]
    with pytest.raises(UnknownProcessError):
        manager.get("noaa_donwload")
    with pytest.raises(KeyError):
        manager["Extractor"]
    assert not hasattr(manager, "noaa_donwload")
    assert not (tmp_path / "root").exists() or not list((tmp_path / "root").iterdir())


def test_undeclared_safe_name_is_refused(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0")
    with pytest.raises(UnknownProcessError, match="declare it"):
        manager.get("noaa_download")


def test_declare_processes_adds_names(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0")
    manager.declare_processes("noaa_download", "noaa_download", "noaa_parse")
    assert manager.processes[3:] == ("noaa_download", "noaa_parse")
    assert {"noaa_download", "noaa_parse"} <= set(dir(manager))
    assert not list(tmp_path.iterdir())


def test_processes_given_again_are_declared_on_the_singleton(tmp_path: Path) -> None:
    first = ManifestManager(tmp_path, "1.0.0", processes=["stage_a"])
    second = ManifestManager(tmp_path, "1.0.0", processes=["stage_b"])
    assert second is first
    assert first.processes[3:] == ("stage_a", "stage_b")


@pytest.mark.parametrize("name", ["get", "backend", "processes", "root_dir", "reset"])
def test_names_of_manager_attributes_are_refused(tmp_path: Path, name: str) -> None:
    manager = ManifestManager(tmp_path, "1.0.0")
    with pytest.raises(InvalidNameError, match="own attribute"):
        manager.declare_processes(name)


def test_one_bad_name_declares_none(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0")
    with pytest.raises(InvalidNameError):
        manager.declare_processes("good_one", "../bad")
    assert "good_one" not in manager.processes


def test_bad_name_is_refused_before_a_manager_exists(tmp_path: Path) -> None:
    with pytest.raises(InvalidNameError):
        ManifestManager(tmp_path / "root", "1.0.0", processes=["../escape"])
    assert ManifestManager.instance() is None
    assert not (tmp_path / "root").exists()


def test_a_lone_string_is_one_name(tmp_path: Path) -> None:
    manager = ManifestManager(tmp_path, "1.0.0", processes="noaa_download")
    assert manager.processes[3:] == ("noaa_download",)


def test_unpickled_manager_declares_the_same_processes(tmp_path: Path) -> None:
    data = pickle.dumps(ManifestManager(tmp_path, "1.0.0", processes=["noaa_download"]))
    ManifestManager.reset()
    restored = pickle.loads(data)
    assert restored.processes[3:] == ("noaa_download",)


def test_manifest_refuses_an_unsafe_process_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidNameError):
        Manifest("../x", "1", open_backend(str(tmp_path)))
    assert not list(tmp_path.iterdir())


def test_document_written_by_0_1_0_is_still_read(tmp_path: Path) -> None:
    # The layout of 0.1.0, when the process field could only hold the seed's names.
    (tmp_path / "loader_v1.json").write_bytes(
        orjson.dumps(
            {
                "metadata": {
                    "format_version": 1,
                    "process": "loader",
                    "etl_version": "1",
                    "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z",
                    "revision": 1,
                },
                "records": {},
            }
        )
    )
    manifest = Manifest("loader", "1", open_backend(str(tmp_path)))
    assert manifest.metadata.process is ETLProcess.LOADER


def test_stored_document_with_an_unsafe_process_is_refused_and_kept(tmp_path: Path) -> None:
    # A document whose owner could not have been written by this library.
    path = tmp_path / "noaa_v1.json"
    data = orjson.dumps(
        {
            "metadata": {"process": "../noaa", "etl_version": "1"},
            "records": {},
        }
    )
    path.write_bytes(data)
    with pytest.raises(CorruptManifestError):
        Manifest("noaa", "1", open_backend(str(tmp_path)))
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 records>"), (1, "1 record>"), (2, "2 records>")]
)
def test_repr_counts_records_in_plain_english(tmp_path: Path, count: int, text: str) -> None:
    manifest = Manifest("extractor", "1", open_backend(str(tmp_path)))
    manifest.add_records(record(n) for n in range(count))
    assert repr(manifest).endswith(text)
