"""A small ETL step and its tests, written with the etl-manifests pytest plugin's fixtures.

docs/testing.md shows this file as it is; the test suite runs it.
"""

from pathlib import Path

import pytest

from etl_manifests import FetchStatus, ManifestManager, fetch_many
from etl_manifests.testing import FileServer


def download_new_files(manager: ManifestManager, urls: list[str], dest: Path) -> list[str]:
    """The step under test: download what the extractor has not recorded yet."""
    report = fetch_many(manager.extractor, urls, str(dest))
    report.raise_for_failures()
    return [r.url for r in report.results if r.status is FetchStatus.DOWNLOADED]


def test_a_second_run_downloads_nothing(
    manifest_manager: ManifestManager, manifest_file_server: FileServer, tmp_path: Path
) -> None:
    urls = [manifest_file_server.add(f"day_{n}.csv", b"day %d\n" % n) for n in (1, 2)]

    assert download_new_files(manifest_manager, urls, tmp_path) == urls
    assert download_new_files(manifest_manager, urls, tmp_path) == []
    assert manifest_file_server.requests("GET") == 2  # each file was downloaded once
    assert len(manifest_manager.extractor) == 2


# The same test on every store: each fixture gives a fresh manager, and resets the
# ManifestManager singleton after the test.
@pytest.fixture(
    params=[
        "manifest_manager",  # memory://
        "local_manifest_manager",  # a folder in tmp_path
        "s3_manifest_manager",  # a new bucket on moto
        "gcs_manifest_manager",  # a new bucket on the GCS emulator
    ]
)
def manager(request: pytest.FixtureRequest) -> ManifestManager:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_a_changed_file_is_downloaded_again(
    manager: ManifestManager, manifest_file_server: FileServer, tmp_path: Path
) -> None:
    url = manifest_file_server.add("day_1.csv", b"first version\n")
    download_new_files(manager, [url], tmp_path)

    manifest_file_server.add("day_1.csv", b"second version, longer\n")

    assert download_new_files(manager, [url], tmp_path) == [url]
    assert (tmp_path / "day_1.csv").read_bytes() == b"second version, longer\n"
