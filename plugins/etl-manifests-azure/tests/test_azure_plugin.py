"""Discovery through the entry point, and use through ManifestManager and the seed example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from etl_manifests import ManifestManager, UnknownSchemeError, open_backend, registry

from etl_manifests_azure.backend import AzureBackend

from .azurite_server import AzuriteServer

SEED_EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "seed_usage.py"
SEED_CHECKSUM = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Plugins loaded anew from entry points, with no environment configuration."""
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in ("ETL_MANIFESTS_PLUGINS", "ETL_MANIFESTS_STORAGE_OPTIONS"):
        monkeypatch.delenv(name, raising=False)
    registry.reset_plugins()
    yield
    registry.reset_plugins()


def test_entry_point_is_declared() -> None:
    (entry,) = [ep for ep in entry_points(group="etl_manifests") if ep.name == "azure"]
    assert entry.value == "etl_manifests_azure.plugin"


@pytest.mark.usefixtures("fresh_plugins")
@pytest.mark.parametrize("scheme", ["az", "abfs", "abfss"])
def test_registry_discovers_adlfs_schemes(scheme: str) -> None:
    assert registry.get_registry().schemes[scheme] == "etl_manifests_azure.backend:AzureBackend"
    backend = open_backend(f"{scheme}://box/prefix", {"account_name": "acct", "anon": True})
    assert isinstance(backend, AzureBackend)


@pytest.mark.usefixtures("fresh_plugins")
def test_plugins_env_var_can_leave_the_plugin_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_PLUGINS", "")
    with pytest.raises(UnknownSchemeError):
        open_backend("az://box/prefix", {"account_name": "acct", "anon": True})
    registry.reset_plugins()
    monkeypatch.setenv("ETL_MANIFESTS_PLUGINS", "azure")
    assert isinstance(
        open_backend("az://box/prefix", {"account_name": "a", "anon": True}), AzureBackend
    )


@pytest.mark.usefixtures("fresh_plugins")
def test_the_manager_keeps_manifests_as_blobs(
    azurite: AzuriteServer, container: str, plain_options: dict[str, Any]
) -> None:
    root = f"az://{container}/manifests"
    manager = ManifestManager(root_dir=root, etl_version="1", storage_options=plain_options)
    manager.extractor.add_record(
        {"checksum": SEED_CHECKSUM, "filename": "a.gz", "filepath": "/a.gz"}
    )
    assert manager.extractor.url == f"{root}/extractor_v1.json"
    ManifestManager.reset()
    again = ManifestManager(root_dir=root, etl_version="1", storage_options=plain_options)
    assert SEED_CHECKSUM in again.extractor
    with BlobServiceClient.from_connection_string(azurite.connection_string()) as service:
        names = [b.name for b in service.get_container_client(container).list_blobs()]
    assert names
    assert all(name.startswith("manifests/extractor_v1") for name in names)


def _run_seed_example(root: str, options: dict[str, Any], cwd: Path) -> None:
    env = {
        **os.environ,
        "ETL_MANIFESTS_MANIFESTS_DIR": root,
        "ETL_MANIFESTS_VERSION": "1.0.0",
        "ETL_MANIFESTS_STORAGE_OPTIONS": json.dumps(options),
    }
    subprocess.run([sys.executable, str(SEED_EXAMPLE)], env=env, cwd=cwd, check=True, timeout=120)


def test_the_seed_example_runs_unchanged_on_an_az_root(
    container: str, plain_options: dict[str, Any], tmp_path: Path
) -> None:
    """Configured only through ETL_MANIFESTS_* variables, storage options included."""
    root = f"az://{container}/manifests"
    _run_seed_example(root, plain_options, tmp_path)
    _run_seed_example(root, plain_options, tmp_path)  # a second run adds no duplicate
    stored = ManifestManager(root, "1.0.0", storage_options=plain_options).extractor
    assert [r.checksum for r in stored] == [SEED_CHECKSUM]
    record = stored.get(SEED_CHECKSUM)
    assert record is not None
    assert str(record.filepath) == "/path/to/etl/data/downloads/some_file.gz"
