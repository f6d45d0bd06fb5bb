"""Object-store defects found by trying to break the promises from outside; one test each.

* Stores that ignore write conditions (plain moto ignores them on CopyObject, the GCS
  emulator everywhere) must never be written to as if they honoured them: the default
  S3 settings pick a protocol the store enforces, or refuse with UnsupportedStoreError.
* A missing bucket is BucketNotFoundError, never "no manifest yet".
* gcsfs must not have picked its experimental file system (a 60 s timeout per call
  against the emulator).
* Copy mode on a versioned bucket keeps staged versions that cleanup_staged cannot see:
  the backend says so.
* A GCS reader without ``x-goog-generation`` (the plain emulator) outlasts writers.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest

from conftest import checksum, record
from etl_manifests import (
    BucketNotFoundError,
    ManifestManager,
    NotFoundError,
    UnsupportedStoreError,
    open_backend,
)
from etl_manifests.backends.gcs._backend import GCSBackend
from etl_manifests.storage import PROBE_MARKER, STAGING_MARKER
from etl_manifests.testing import GcsServer, S3Server
from torture._support import KEY, TESTS_DIR, Target, start_worker, worker_env

pytestmark = pytest.mark.torture

PROCESSES = 4
RECORDS_EACH = 25
DEFAULT_RETRY = [50, 0.01, 1.0]  # RetryPolicy's defaults: "default settings"
WRITES_EACH = 100  # per writer thread racing the GCS fallback reader


def _new_bucket(server: S3Server | GcsServer) -> str:
    name = f"rel-{uuid.uuid4().hex[:16]}"
    server.create_bucket(name)
    return name


# --- 1. stores that ignore write conditions ------------------------------------------------


@pytest.mark.s3
def test_default_settings_on_plain_moto_keep_every_record(plain_s3_server: S3Server) -> None:
    """The issue's reproduction: 4 processes x 25 add_record, default settings, no proxy."""
    bucket = _new_bucket(plain_s3_server)
    target = Target(
        "s3",
        f"s3://{bucket}/manifests",
        dict(plain_s3_server.storage_options),
        plain_s3_server.endpoint_url,
    )
    workers = [
        start_worker(
            {
                "root": target.root,
                "storage_options": target.storage_options,
                "start": i * 1_000,
                "count": RECORDS_EACH,
                "retry": DEFAULT_RETRY,
                "wait_for_go": True,
            }
        )
        for i in range(PROCESSES)
    ]
    try:
        for proc in workers:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in workers:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=240) for proc in workers]
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    reported: set[str] = set()
    for proc, (out, err) in zip(workers, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
        reported.update(line for line in out.splitlines() if not line.startswith("stats "))
    expected = {checksum(i * 1_000 + j) for i in range(PROCESSES) for j in range(RECORDS_EACH)}
    assert reported == expected  # every add_record returned...
    stored = target.manifest()
    assert set(stored.records) == expected  # ... and every record is stored, once
    assert len(stored) == PROCESSES * RECORDS_EACH
    assert target.staged() == []
    assert [name for name in target.listing() if PROBE_MARKER in name] == []


@pytest.mark.s3
def test_s3_store_ignoring_every_condition_refuses_the_first_save(
    s3_server: S3Server, s3_bucket: str
) -> None:
    assert s3_server.proxy is not None
    s3_server.proxy.ignore_conditions = frozenset({"PutObject", "CopyObject"})
    manager = ManifestManager(
        f"s3://{s3_bucket}/m", "1.0.0", storage_options=s3_server.storage_options
    )
    manifest = manager.extractor
    with pytest.raises(UnsupportedStoreError, match="does not enforce conditional writes"):
        manifest.add_record(record(1))
    assert not manifest.dirty  # refused before any entry was written: nothing unsettled
    assert checksum(1) not in manifest
    listing = s3_server.client().list_objects_v2(Bucket=s3_bucket)
    assert listing.get("Contents", []) == []


@pytest.mark.gcs
def test_plain_gcs_emulator_refuses_the_first_save(plain_gcs_server: GcsServer) -> None:
    bucket = _new_bucket(plain_gcs_server)
    manager = ManifestManager(
        f"gs://{bucket}/m", "1.0.0", storage_options=plain_gcs_server.storage_options
    )
    manifest = manager.extractor
    with pytest.raises(UnsupportedStoreError, match="ifGenerationMatch"):
        manifest.add_record(record(1))
    assert open_backend(f"gs://{bucket}/m", plain_gcs_server.storage_options).list() == []


# --- 9. a missing bucket is not an empty manifest -----------------------------------------


@pytest.mark.s3
def test_s3_missing_bucket_is_bucket_not_found_on_read(s3_server: S3Server) -> None:
    backend = open_backend("s3://no-such-bucket-rel/m", s3_server.storage_options)
    with pytest.raises(BucketNotFoundError, match="no-such-bucket-rel") as info:
        backend.read(KEY)
    assert isinstance(info.value, NotFoundError)


@pytest.mark.gcs
def test_gcs_missing_bucket_is_bucket_not_found_on_read(gcs_server: GcsServer) -> None:
    backend = open_backend("gs://no-such-bucket-rel/m", gcs_server.storage_options)
    with pytest.raises(BucketNotFoundError, match="no-such-bucket-rel"):
        backend.read(KEY)


@pytest.mark.s3
def test_s3_manifest_on_a_missing_bucket_does_not_load_as_empty(s3_server: S3Server) -> None:
    manager = ManifestManager(
        "s3://no-such-bucket-rel/m", "1.0.0", storage_options=s3_server.storage_options
    )
    with pytest.raises(BucketNotFoundError, match="no-such-bucket-rel"):
        _ = manager.extractor


@pytest.mark.gcs
def test_gcs_manifest_on_a_missing_bucket_does_not_load_as_empty(gcs_server: GcsServer) -> None:
    manager = ManifestManager(
        "gs://no-such-bucket-rel/m", "1.0.0", storage_options=gcs_server.storage_options
    )
    with pytest.raises(BucketNotFoundError, match="no-such-bucket-rel"):
        _ = manager.extractor


# --- 12. the GCS tests never wait on gcsfs's bucket-type look-ups ---------------------------


def test_gcsfs_runs_without_its_experimental_file_system() -> None:
    import gcsfs
    import gcsfs.core

    # Imported here at the latest; tests/conftest.py set the variable before that.
    assert gcsfs.GCSFileSystem is gcsfs.core.GCSFileSystem


def test_the_gcs_harness_refuses_an_experimental_gcsfs() -> None:
    env = worker_env()
    env.pop("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", None)
    script = (
        "import gcsfs\n"
        "from etl_manifests.testing import running_gcs\n"
        "with running_gcs():\n"
        "    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(TESTS_DIR),
        timeout=120,
    )
    assert done.returncode != 0
    assert "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false" in done.stderr


# --- 13. copy mode on a versioned bucket -----------------------------------------------------


@pytest.mark.s3
def test_copy_mode_on_a_versioned_bucket_says_what_cleanup_cannot_see(
    s3_server: S3Server, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = s3_server.client()
    client.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    options = {**s3_server.storage_options, "etl_manifests_commit": "copy"}
    manager = ManifestManager(f"s3://{s3_bucket}/m", "1.0.0", storage_options=options)
    manifest = manager.extractor
    with caplog.at_level(logging.INFO, logger="etl_manifests"):
        for n in range(5):
            manifest.add_record(record(n))
    notes = [r.getMessage() for r in caplog.records if "versioning enabled" in r.getMessage()]
    assert len(notes) == 1  # once per backend, not per save
    assert s3_bucket in notes[0]
    assert "cleanup_staged() cannot see" in notes[0]

    versions = client.list_object_versions(Bucket=s3_bucket, Prefix="m/")
    staged_versions = [v for v in versions.get("Versions", []) if STAGING_MARKER in v["Key"]]
    staged_markers = [m for m in versions.get("DeleteMarkers", []) if STAGING_MARKER in m["Key"]]
    assert len(staged_versions) >= 5  # at least one per save, each with its delete marker...
    assert len(staged_markers) == len(staged_versions)
    assert manifest.cleanup_staged(min_age=timedelta(0)) == 0  # ... which listing misses


# --- 14. GCS reads without x-goog-generation, under contention ------------------------------


@pytest.mark.gcs
def test_fallback_reads_outlast_concurrent_writers(plain_gcs_server: GcsServer) -> None:
    """4 threads rewrite one object while a fifth reads it, on the emulator as shipped."""
    bucket = _new_bucket(plain_gcs_server)
    root = f"gs://{bucket}/m"
    options: dict[str, Any] = dict(plain_gcs_server.storage_options)
    seed = GCSBackend(root, options)
    written: dict[str, bytes] = {seed.write(KEY, b'{"writer": -1}'): b'{"writer": -1}'}
    lock = threading.Lock()
    writers_done = threading.Event()
    start = threading.Barrier(5)
    failures: list[BaseException] = []
    reads: list[tuple[str, bytes]] = []

    def write(i: int) -> None:
        backend = GCSBackend(root, options)
        start.wait()
        try:
            for n in range(WRITES_EACH):
                # Unconditional: the plain emulator enforces no condition to rely on.
                data = json.dumps({"writer": i, "n": n, "pad": "x" * 512}).encode()
                token = backend.write(KEY, data)
                with lock:
                    written[token] = data
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            backend.close()

    def read() -> None:
        backend = GCSBackend(root, options)
        start.wait()
        try:
            while not writers_done.is_set():
                blob = backend.read(KEY)
                reads.append((blob.version, blob.data))
            blob = backend.read(KEY)
            reads.append((blob.version, blob.data))
            assert backend._generation_header is False  # the fallback path was taken
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            backend.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    reader = threading.Thread(target=read)
    for thread in [*threads, reader]:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    writers_done.set()
    reader.join(timeout=300)
    seed.close()
    assert failures == []
    assert len(reads) >= 2
    for version, data in reads:
        assert written[version] == data  # the token is the generation of exactly these bytes
    assert len(written) == 4 * WRITES_EACH + 1


def test_the_harness_plain_fixtures_carry_no_proxy(
    plain_s3_server: S3Server, plain_gcs_server: GcsServer
) -> None:
    for server in (plain_s3_server, plain_gcs_server):
        assert server.proxy is None
        assert server.endpoint_url == server.upstream_url
        with pytest.raises(RuntimeError, match="no proxy"):
            server.faults.clear()
