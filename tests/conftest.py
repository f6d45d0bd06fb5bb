"""Shared fixtures: emulator servers come from the harness plugin; every test gets a
fresh ManifestManager singleton."""

from __future__ import annotations

import os

# gcsfs reads this once, when first imported; left at its default ("true"), its file
# system asks Google's servers for each bucket's type, and against the emulator every
# ask waits out a 60 s timeout. Set before anything below can import gcsfs; the GCS
# fixtures refuse to start if gcsfs was imported without it.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

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
