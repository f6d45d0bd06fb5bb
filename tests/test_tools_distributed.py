"""Past one machine: the download helper spread over the workers of a dask cluster.

Four worker processes fetch a few hundred files from one HTTP server into one S3 bucket
(moto) and commit to one manifest there. Each worker process has its own manager,
unpickled from the task, so they are separate writers racing as on separate machines.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import pytest
from distributed import Client, LocalCluster

from etl_manifests import Manifest, ManifestManager, open_backend
from etl_manifests.testing import FileServer, S3Server
from etl_manifests.tools import Fetcher, FetchStatus

pytestmark = [pytest.mark.distributed, pytest.mark.s3]

FILES = 200


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=4,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_every_file_recorded_once_and_none_downloaded_after_it_was_recorded(
    client: Client, s3_server: S3Server, s3_bucket: str, file_server: FileServer
) -> None:
    names = [f"part-{n:04d}.csv" for n in range(FILES)]
    urls = [file_server.add(name, f"row {n}\n".encode()) for n, name in enumerate(names)]
    manager = ManifestManager(
        f"s3://{s3_bucket}/manifests", "1.0.0", storage_options=s3_server.storage_options
    )
    fetcher = Fetcher(
        manager, f"s3://{s3_bucket}/raw", storage_options={"s3": s3_server.storage_options}
    )
    # Every URL twice, shuffled, so that workers race for the same files.
    work = urls + urls
    random.Random(7).shuffle(work)

    first = client.gather(client.map(fetcher, work, pure=False))

    assert {r.status for r in first} <= {
        FetchStatus.DOWNLOADED,
        FetchStatus.SKIPPED,
        FetchStatus.DUPLICATE,
    }
    stored = Manifest(
        "extractor", "1.0.0", open_backend(manager.root_dir, s3_server.storage_options)
    )
    assert len(stored) == FILES
    assert sorted(r.filename for r in stored) == names
    assert {r.filepath for r in stored} == {f"s3://{s3_bucket}/raw/{name}" for name in names}
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="raw/", MaxKeys=1000)
    assert sorted(o["Key"] for o in listed["Contents"]) == [f"raw/{name}" for name in names]
    gets = file_server.requests("GET")
    assert all(file_server.requests("GET", name) >= 1 for name in names)

    # Now that every file is recorded, no worker downloads any of them again.
    second = client.gather(client.map(fetcher, urls, pure=False))

    assert {r.status for r in second} == {FetchStatus.SKIPPED}
    assert file_server.requests("GET") == gets
    assert len(Manifest("extractor", "1.0.0", stored.backend)) == FILES
