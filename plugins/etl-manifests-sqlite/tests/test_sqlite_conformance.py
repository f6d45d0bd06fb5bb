"""The library's backend contract, run against the SQLite backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from etl_manifests.testing import BackendConformance

from etl_manifests_sqlite.backend import SQLiteBackend


class TestSQLiteConformance(BackendConformance):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[SQLiteBackend]:
        backend = SQLiteBackend(f"sqlite://{tmp_path}/state.db", {})
        yield backend
        backend.close()


class TestSQLiteConformanceNamedTable(BackendConformance):
    """The same contract for a non-default table that shares its file with another."""

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[SQLiteBackend]:
        neighbour = SQLiteBackend(f"sqlite://{tmp_path}/state.db", {})
        neighbour.write("m.json", b"belongs to the default table")
        backend = SQLiteBackend(f"sqlite://{tmp_path}/state.db?table=other", {})
        yield backend
        backend.close()
        assert neighbour.read("m.json").data == b"belongs to the default table"
        neighbour.close()
