"""The pytest plugin: fixtures for testing code that uses etl-manifests.

pytest loads it by itself (the ``pytest11`` entry point ``etl_manifests``) wherever
etl-manifests and pytest are installed: ``pip install 'etl-manifests[testing]'``, plus
``[testing-s3]`` / ``[testing-gcs]`` for the emulators. ``-p no:etl_manifests`` turns it
off. Loading it imports no cloud library and starts nothing; each server starts when a
test first asks for it.

Managers (function scope; the manager is the process-wide singleton, so a test uses one
of them; ``ManifestManager.reset()`` runs before and after each test, also when it fails):

``manifest_manager``
    A fresh :class:`~etl_manifests.ManifestManager` on a ``memory://`` root of its own.
``local_manifest_manager``
    One on a folder in the test's ``tmp_path`` (``tmp_path / "manifests"``).
``s3_manifest_manager`` / ``gcs_manifest_manager``
    One on a fresh bucket of the S3 / GCS emulator.

Roots (function scope), for code that opens its own manager:

``s3_manifest_root`` / ``gcs_manifest_root``
    A :class:`~etl_manifests.testing.ManifestRoot` (``url``, ``storage_options``,
    ``bucket``) on a new, empty bucket; fault rules are cleared after the test.

Servers (session scope), started on 127.0.0.1 on free ports when first asked for:

``manifest_s3_server``
    moto's server behind the precondition-enforcing proxy, an
    :class:`~etl_manifests.testing.S3Server` (``faults`` injects failures). While it
    runs, the ``AWS_*`` credential and region variables hold dummy values.
``manifest_gcs_server``
    gcp-storage-emulator (in memory) behind the proxy, a
    :class:`~etl_manifests.testing.GcsServer`. While it runs,
    ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` is set.
``manifest_file_server`` (function scope)
    A :class:`~etl_manifests.testing.FileServer`: files served over HTTP, counting
    requests, for code that downloads.

Without the emulator packages, a test asking for an S3 or GCS fixture errors with the
``pip install`` command that adds them.

The marker ``@pytest.mark.manifests(etl_version="2.0.0", processes=["noaa_download"])``
passes its keyword arguments to every manager fixture the test uses (``etl_version``
defaults to ``"1.0.0"``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Only type names here: the cloud libraries and the emulators are imported when a
# fixture needs them, so that loading the plugin stays cheap in every test run.
if TYPE_CHECKING:
    from etl_manifests import ManifestManager

    from .http_files import FileServer
    from .roots import ManifestRoot
    from .servers import GcsServer, S3Server

__all__ = [
    "gcs_manifest_manager",
    "gcs_manifest_root",
    "local_manifest_manager",
    "manifest_file_server",
    "manifest_gcs_server",
    "manifest_manager",
    "manifest_s3_server",
    "s3_manifest_manager",
    "s3_manifest_root",
]

MARKER = "manifests"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``manifests`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(etl_version='1.0.0', processes=None, **kwargs): settings for the "
        "etl-manifests manager fixtures (keyword arguments of ManifestManager)",
    )


def _fresh_manager(
    request: pytest.FixtureRequest, root: str, storage_options: dict[str, Any]
) -> Iterator[ManifestManager]:
    """The singleton on ``root``, reset before and after the test whatever its outcome."""
    from etl_manifests import ManifestManager

    marker = request.node.get_closest_marker(MARKER)
    if marker is not None and marker.args:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER} takes keyword arguments only, such as etl_version='2.0.0'"
        )
    settings = dict(marker.kwargs) if marker is not None else {}
    version = settings.pop("etl_version", "1.0.0")
    ManifestManager.reset()
    try:
        yield ManifestManager(root, version, storage_options=storage_options, **settings)
    finally:
        ManifestManager.reset()


@pytest.fixture
def manifest_manager(request: pytest.FixtureRequest) -> Iterator[ManifestManager]:
    """A fresh manager on a ``memory://`` root no other test shares."""
    yield from _fresh_manager(request, f"memory://manifests-{uuid.uuid4().hex}", {})


@pytest.fixture
def local_manifest_manager(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[ManifestManager]:
    """A fresh manager on the folder ``tmp_path / "manifests"``."""
    yield from _fresh_manager(request, str(tmp_path / "manifests"), {})


@pytest.fixture(scope="session")
def manifest_s3_server() -> Iterator[S3Server]:
    """moto on a free loopback port, behind the precondition-enforcing proxy."""
    from .servers import running_s3

    with running_s3() as server:
        yield server


@pytest.fixture(scope="session")
def manifest_gcs_server() -> Iterator[GcsServer]:
    """The in-memory GCS emulator on a free loopback port, behind the proxy."""
    from .servers import running_gcs

    with running_gcs() as server:
        yield server


def _bucket_root(server: S3Server | GcsServer, scheme: str) -> Iterator[ManifestRoot]:
    from .roots import ManifestRoot
    from .servers import unique_bucket_name

    bucket = unique_bucket_name()
    server.create_bucket(bucket)
    try:
        yield ManifestRoot(f"{scheme}://{bucket}/manifests", server.storage_options, bucket)
    finally:
        server.reset_proxy()


@pytest.fixture
def s3_manifest_root(manifest_s3_server: S3Server) -> Iterator[ManifestRoot]:
    """``s3://<new bucket>/manifests`` on the S3 emulator; faults cleared afterwards."""
    yield from _bucket_root(manifest_s3_server, "s3")


@pytest.fixture
def gcs_manifest_root(manifest_gcs_server: GcsServer) -> Iterator[ManifestRoot]:
    """``gs://<new bucket>/manifests`` on the GCS emulator; faults cleared afterwards."""
    yield from _bucket_root(manifest_gcs_server, "gs")


@pytest.fixture
def s3_manifest_manager(
    request: pytest.FixtureRequest, s3_manifest_root: ManifestRoot
) -> Iterator[ManifestManager]:
    """A fresh manager on ``s3_manifest_root``."""
    root = s3_manifest_root
    yield from _fresh_manager(request, root.url, root.storage_options)


@pytest.fixture
def gcs_manifest_manager(
    request: pytest.FixtureRequest, gcs_manifest_root: ManifestRoot
) -> Iterator[ManifestManager]:
    """A fresh manager on ``gcs_manifest_root``."""
    root = gcs_manifest_root
    yield from _fresh_manager(request, root.url, root.storage_options)


@pytest.fixture
def manifest_file_server() -> Iterator[FileServer]:
    """Files served over HTTP on a free loopback port (``add(name, data)`` returns a URL)."""
    from .http_files import running_file_server

    with running_file_server() as server:
        yield server
