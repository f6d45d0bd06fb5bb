"""Discovery through the entry point, use through ManifestManager, and backend details."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from etl_manifests import (
    ManifestManager,
    TransientStorageError,
    UnknownSchemeError,
    open_backend,
    registry,
)
from etl_manifests.storage import ABSENT

from etl_manifests_sqlite.backend import SQLiteBackend, parse_root

CHECKSUM = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Plugins loaded anew from entry points, with no environment configuration."""
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in ("ETL_MANIFESTS_PLUGINS", "ETL_MANIFESTS_STORAGE_OPTIONS"):
        monkeypatch.delenv(name, raising=False)
    ManifestManager.reset()
    registry.reset_plugins()
    yield
    ManifestManager.reset()
    registry.reset_plugins()


# --- discovery -------------------------------------------------------------------------


def test_entry_point_is_declared() -> None:
    (entry,) = [ep for ep in entry_points(group="etl_manifests") if ep.name == "sqlite"]
    assert entry.value == "etl_manifests_sqlite.plugin"


@pytest.mark.usefixtures("fresh_plugins")
def test_registry_discovers_the_scheme(tmp_path: Path) -> None:
    schemes = registry.get_registry().schemes
    assert schemes["sqlite"] == "etl_manifests_sqlite.backend:SQLiteBackend"
    backend = open_backend(f"sqlite://{tmp_path}/state.db")
    assert isinstance(backend, SQLiteBackend)
    backend.close()


@pytest.mark.usefixtures("fresh_plugins")
def test_manager_stores_manifests_in_the_database(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    manager = ManifestManager(root_dir=f"sqlite://{db}", etl_version="1")
    manager.extractor.add_record(
        {"checksum": CHECKSUM, "filename": "a.gz", "filepath": "/data/a.gz"}
    )
    ManifestManager.reset()

    again = ManifestManager(root_dir=f"sqlite://{db}", etl_version="1")
    assert CHECKSUM in again.extractor
    assert again.extractor.url == f"sqlite://{db}#extractor_v1.json"
    with sqlite3.connect(db) as conn:
        keys = sorted(key for (key,) in conn.execute("SELECT key FROM manifests"))
    # The snapshot and one commit-log entry, both rows of the plugin's table: the commit
    # log needs no code of the plugin's own.
    assert keys[0] == "extractor_v1.json"
    assert len(keys) == 2
    assert keys[1].startswith("extractor_v1.log/0000000001/")


@pytest.mark.usefixtures("fresh_plugins")
def test_plugins_env_var_can_leave_the_plugin_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_PLUGINS", "")
    with pytest.raises(UnknownSchemeError):
        open_backend(f"sqlite://{tmp_path}/state.db")
    registry.reset_plugins()
    monkeypatch.setenv("ETL_MANIFESTS_PLUGINS", "sqlite")
    assert isinstance(open_backend(f"sqlite://{tmp_path}/state.db"), SQLiteBackend)


# --- the root URL and options ----------------------------------------------------------


def test_parse_root(tmp_path: Path) -> None:
    assert parse_root(f"sqlite://{tmp_path}/s.db") == (tmp_path / "s.db", "manifests")
    assert parse_root(f"SQLITE://{tmp_path}/s.db?table=t_2") == (tmp_path / "s.db", "t_2")
    assert parse_root("sqlite://rel/s.db") == (Path.cwd() / "rel/s.db", "manifests")


@pytest.mark.parametrize(
    "root",
    [
        "file:///tmp/s.db",
        "sqlite://",
        "sqlite:///tmp/s.db?table=",
        "sqlite:///tmp/s.db?table=a;drop",
        "sqlite:///tmp/s.db?table=1a",
        "sqlite:///tmp/s.db?table=a&table=b",
        "sqlite:///tmp/s.db?mode=ro",
    ],
)
def test_bad_roots_are_rejected(root: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite|table|query"):
        SQLiteBackend(root, {})


def test_unknown_storage_options_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timeout"):
        SQLiteBackend(f"sqlite://{tmp_path}/s.db", {"timout": 5})


def test_root_is_normalised(tmp_path: Path) -> None:
    assert SQLiteBackend(f"sqlite://{tmp_path}/s.db", {}).root == f"sqlite://{tmp_path}/s.db"
    named = SQLiteBackend(f"sqlite://{tmp_path}/s.db?table=t", {})
    assert named.root == f"sqlite://{tmp_path}/s.db?table=t"
    assert named.url("a/b.json") == f"sqlite://{tmp_path}/s.db?table=t#a/b.json"


# --- behaviour beyond the conformance suite ---------------------------------------------


def test_tokens_are_never_reused_after_delete(tmp_path: Path) -> None:
    backend = SQLiteBackend(f"sqlite://{tmp_path}/s.db", {})
    old = backend.write("m.json", b"one", expect=ABSENT)
    backend.delete("m.json")
    new = backend.write("m.json", b"one", expect=ABSENT)
    assert new != old
    assert int(new) > int(old)


def test_data_outlives_the_backend_and_close(tmp_path: Path) -> None:
    root = f"sqlite://{tmp_path}/deep/er/s.db"
    first = SQLiteBackend(root, {})
    token = first.write("m.json", b"kept")
    first.close()
    assert first.read("m.json").data == b"kept"  # a closed backend reopens
    first.close()
    second = SQLiteBackend(root, {})
    assert second.read("m.json").version == token
    (info,) = second.list()
    assert (info.key, info.size) == ("m.json", 4)
    assert info.modified is not None
    assert info.modified.tzinfo is not None
    second.close()


def test_a_held_lock_becomes_a_transient_error(tmp_path: Path) -> None:
    backend = SQLiteBackend(f"sqlite://{tmp_path}/s.db", {"timeout": 0.1})
    token = backend.write("m.json", b"one")
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(TransientStorageError, match="timeout"):
            backend.write("m.json", b"two", expect=token)
        assert backend.read("m.json").data == b"one"  # WAL: reads go on during a write
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert backend.write("m.json", b"two", expect=token) != token
    backend.close()
