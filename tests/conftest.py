"""Shared fixtures: every test gets a fresh ManifestManager singleton.

The emulators and the HTTP file server come from the package's own pytest plugin
(``etl_manifests.testing.plugin``, loaded through its ``pytest11`` entry point, so it is
not listed in ``pytest_plugins``: that would register it twice); the fixtures below give
them the short names these tests use, and add the plain (proxy-less) emulators.
"""

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
from etl_manifests.testing import (
    FileServer,
    GcsServer,
    ManifestRoot,
    S3Server,
    running_gcs,
    running_s3,
)

CHECKSUM = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"


@pytest.fixture(autouse=True)
def _fresh_manager() -> Iterator[None]:
    ManifestManager.reset()
    yield
    ManifestManager.reset()


@pytest.fixture(scope="session")
def s3_server(manifest_s3_server: S3Server) -> S3Server:
    """moto behind the precondition-enforcing proxy (the plugin's ``manifest_s3_server``)."""
    return manifest_s3_server


@pytest.fixture
def s3_bucket(s3_manifest_root: ManifestRoot) -> str:
    """A new empty bucket on ``s3_server``; fault rules are cleared afterwards."""
    return s3_manifest_root.bucket


@pytest.fixture(scope="session")
def gcs_server(manifest_gcs_server: GcsServer) -> GcsServer:
    """The GCS emulator behind the proxy (the plugin's ``manifest_gcs_server``)."""
    return manifest_gcs_server


@pytest.fixture
def gcs_bucket(gcs_manifest_root: ManifestRoot) -> str:
    """A new empty bucket on ``gcs_server``; fault rules are cleared afterwards."""
    return gcs_manifest_root.bucket


@pytest.fixture(scope="session")
def plain_s3_server() -> Iterator[S3Server]:
    """moto with no proxy: conditions as moto enforces them (none on CopyObject)."""
    with running_s3(proxy_class=None) as server:
        yield server


@pytest.fixture(scope="session")
def plain_gcs_server() -> Iterator[GcsServer]:
    """The GCS emulator with no proxy: no ``ifGenerationMatch``, no ``x-goog-generation``."""
    with running_gcs(proxy_class=None) as server:
        yield server


@pytest.fixture
def file_server(manifest_file_server: FileServer) -> FileServer:
    """In-memory files served over HTTP on a free loopback port, counting requests."""
    return manifest_file_server


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
