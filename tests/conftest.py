"""Shared fixtures: emulator servers come from the harness plugin; every test gets a
fresh ManifestManager singleton."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from etl_manifests import ManifestManager

pytest_plugins = ["harness.fixtures"]

CHECKSUM = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"


@pytest.fixture(autouse=True)
def _fresh_manager() -> Iterator[None]:
    ManifestManager.reset()
    yield
    ManifestManager.reset()


def checksum(n: int) -> str:
    """A valid, distinct SHA-256 hex digest for the n-th test record."""
    return f"{n:064x}"


def record(n: int, **overrides: object) -> dict[str, object]:
    """Valid add_record() input for the n-th test record."""
    params: dict[str, object] = {
        "checksum": checksum(n),
        "filename": f"file_{n}.gz",
        "filepath": f"/data/downloads/file_{n}.gz",
        "etag": f"etag-{n}",
        "content_length_bytes": n,
    }
    params.update(overrides)
    return params
