"""Manifests on S3 and GCS behave exactly as on local disk, including concurrent writers."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import checksum, record
from etl_manifests import Manifest, ManifestManager, open_backend
from etl_manifests.storage import is_staging_key


@pytest.fixture(params=["s3-copy", "s3-put", "gcs"])
def cloud_root(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    if request.param.startswith("s3"):
        server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        options = {**server.storage_options, "etl_manifests_commit": request.param[3:]}
        return f"s3://{bucket}/manifests", options
    server = request.getfixturevalue("gcs_server")
    bucket = request.getfixturevalue("gcs_bucket")
    return f"gs://{bucket}/manifests", dict(server.storage_options)


def open_manifest(root: str, options: dict[str, Any]) -> Manifest:
    return Manifest("extractor", "1.0.0", open_backend(root, options))


def test_manager_records_survive_a_new_manager(cloud_root: tuple[str, dict[str, Any]]) -> None:
    root, options = cloud_root
    ManifestManager(root, "1.0.0", storage_options=options).extractor.add_record(record(1))
    ManifestManager.reset()
    manifest = ManifestManager(root, "1.0.0", storage_options=options).extractor
    assert checksum(1) in manifest
    assert manifest.url == f"{root}/extractor_v1.0.0.json"


def test_second_writer_commits_beside_the_first(
    cloud_root: tuple[str, dict[str, Any]],
) -> None:
    root, options = cloud_root
    first, second = open_manifest(root, options), open_manifest(root, options)
    first.add_record(record(1))
    second.add_record(record(2))  # loaded before first committed
    first.add_record(record(3))
    stored = open_manifest(root, options)
    assert {r.checksum for r in stored} == {checksum(1), checksum(2), checksum(3)}
    assert stored.metadata.revision == 3


def test_batch_is_one_commit(cloud_root: tuple[str, dict[str, Any]]) -> None:
    root, options = cloud_root
    manifest = open_manifest(root, options)
    with manifest.batch():
        for n in range(20):
            manifest.add_record(record(n))
    assert manifest.metadata.revision == 1
    assert len(open_manifest(root, options)) == 20


def test_no_staged_objects_after_saves(cloud_root: tuple[str, dict[str, Any]]) -> None:
    root, options = cloud_root
    first, second = open_manifest(root, options), open_manifest(root, options)
    first.add_record(record(1))
    second.add_record(record(2))
    keys = [info.key for info in open_backend(root, options).list("")]
    assert not [key for key in keys if is_staging_key(key)]
    assert keys[0] == "extractor_v1.0.0.json"
    assert len(keys) == 3  # the snapshot and one log entry per commit
