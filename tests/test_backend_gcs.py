"""The GCS backend against gcp-storage-emulator behind the harness's proxy."""

from __future__ import annotations

import json
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from etl_manifests.backends.gcs._backend import GCSBackend
from etl_manifests.capability import check_store, ensure_store_checked
from etl_manifests.errors import (
    AlreadyExistsError,
    BucketNotFoundError,
    ConflictError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    TransientStorageError,
    UnsupportedStoreError,
)
from etl_manifests.registry import BackendRegistry, open_backend
from etl_manifests.storage import ABSENT
from etl_manifests.testing import BackendConformance, GcsServer

PREFIX = "manifests"
FAST = {"etl_manifests_retry_base": 0.01}


def _backend(gcs_server: GcsServer, bucket: str, **options: Any) -> GCSBackend:
    return GCSBackend(f"gs://{bucket}/{PREFIX}", {**gcs_server.storage_options, **FAST, **options})


def _count_requests(gcs_server: GcsServer) -> Any:
    """A fault rule that only counts the requests reaching the proxy."""
    return gcs_server.faults.add(action="delay", delay=0.0, times=None)


class TestGCSConformance(BackendConformance):
    @pytest.fixture
    def backend(self, gcs_server: GcsServer, gcs_bucket: str) -> Iterator[GCSBackend]:
        backend = _backend(gcs_server, gcs_bucket)
        yield backend
        backend.close()


@pytest.fixture
def backend(gcs_server: GcsServer, gcs_bucket: str) -> Iterator[GCSBackend]:
    backend = _backend(gcs_server, gcs_bucket)
    # The store check runs before the first conditional write; running it here keeps
    # its probe requests out of the tests' request counts and fault rules.
    ensure_store_checked(backend)
    yield backend
    backend.close()


# --- protocol --------------------------------------------------------------------------


def test_keys_live_below_the_prefix(
    backend: GCSBackend, gcs_server: GcsServer, gcs_bucket: str
) -> None:
    backend.write("a/m.json", b"x")
    assert [info.key for info in backend.list()] == ["a/m.json"]
    assert backend.url("a/m.json") == f"gs://{gcs_bucket}/{PREFIX}/a/m.json"
    assert backend.root == f"gs://{gcs_bucket}/{PREFIX}"
    outside = GCSBackend(f"gcs://{gcs_bucket}", gcs_server.storage_options)
    assert [info.key for info in outside.list()] == [f"{PREFIX}/a/m.json"]
    assert outside.root == f"gcs://{gcs_bucket}"


def test_one_request_per_save_and_per_load(backend: GCSBackend, gcs_server: GcsServer) -> None:
    token = backend.write("m.json", b"one")  # opens the session first
    counter = _count_requests(gcs_server)
    token = backend.write("m.json", b"two", expect=token)
    assert counter.fired == 1
    assert backend.read("m.json").version == token
    assert counter.fired == 2


def test_tokens_change_on_identical_bytes(backend: GCSBackend) -> None:
    first = backend.write("m.json", b"same")
    second = backend.write("m.json", b"same", expect=first)
    assert first != second
    with pytest.raises(ConflictError):
        backend.write("m.json", b"same", expect=first)


def test_conflicts_leave_the_stored_object(backend: GCSBackend) -> None:
    stale = backend.write("m.json", b"one")
    current = backend.write("m.json", b"two")
    with pytest.raises(ConflictError):
        backend.write("m.json", b"three", expect=stale)
    with pytest.raises(AlreadyExistsError):
        backend.write("m.json", b"four", expect=ABSENT)
    assert backend.read("m.json").version == current
    assert [info.key for info in backend.list()] == ["m.json"]


def test_read_falls_back_when_generation_header_is_missing(
    backend: GCSBackend, gcs_server: GcsServer, gcs_bucket: str
) -> None:
    token = backend.write("m.json", b"one")
    # The bare emulator (no proxy) omits x-goog-generation on media downloads.
    direct = GCSBackend(
        f"gs://{gcs_bucket}/{PREFIX}",
        {**gcs_server.storage_options, "endpoint_url": gcs_server.upstream_url},
    )
    assert direct.read("m.json").version == token
    assert direct.read("m.json").data == b"one"
    with pytest.raises(NotFoundError):
        direct.read("missing.json")
    direct.close()


def test_lost_response_of_conditional_upload_surfaces_as_conflict(
    backend: GCSBackend, gcs_server: GcsServer
) -> None:
    token = backend.write("m.json", b"one")
    # The upload lands but its response is lost; the retry's ifGenerationMatch fails.
    gcs_server.faults.add(method="POST", path_regex="/upload/", action="drop_response")
    with pytest.raises(ConflictError):
        backend.write("m.json", b"two", expect=token)
    assert backend.read("m.json").data == b"two"  # the layer above reloads and merges


# --- the store capability check ----------------------------------------------------------


def test_the_check_passes_where_generations_are_enforced(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    backend = _backend(gcs_server, gcs_bucket)
    report = check_store(backend)
    assert report.ok, report.description
    assert report.mode is None
    assert backend.list() == []  # the probe is gone


def test_a_server_ignoring_generation_conditions_is_refused(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    assert gcs_server.proxy is not None
    gcs_server.proxy.ignore_conditions = frozenset({"insert"})
    backend = _backend(gcs_server, gcs_bucket)
    with pytest.raises(UnsupportedStoreError) as info:
        backend.write("m.json", b"x", expect=ABSENT)
    assert "a create over an existing key was accepted" in str(info.value)
    assert "a replace with a stale version was accepted" in str(info.value)
    assert backend.list() == []


def test_the_plain_emulator_is_refused_rather_than_trusted(plain_gcs_server: GcsServer) -> None:
    # gcp-storage-emulator as shipped ignores ifGenerationMatch.
    bucket = f"plain-{uuid.uuid4().hex[:12]}"
    plain_gcs_server.create_bucket(bucket)
    backend = GCSBackend(f"gs://{bucket}/{PREFIX}", {**plain_gcs_server.storage_options, **FAST})
    with pytest.raises(UnsupportedStoreError, match="does not enforce conditional writes"):
        ensure_store_checked(backend)
    with pytest.raises(UnsupportedStoreError):
        backend.write("m.json", b"x", expect=ABSENT)
    assert backend.list() == []
    # Unconditional writes rely on no condition and still work (and read back whole).
    backend.write("m.json", b'{"a": 1}')
    assert backend.read("m.json").data == b'{"a": 1}'


def test_not_implemented_is_unsupported(gcs_server: GcsServer, gcs_bucket: str) -> None:
    rule = gcs_server.faults.add(
        method="POST", query_regex="ifGenerationMatch", status=501, times=None
    )
    backend = _backend(gcs_server, gcs_bucket)
    with pytest.raises(UnsupportedStoreError, match="501 Not Implemented"):
        backend.write("m.json", b"x", expect=ABSENT)
    assert rule.fired == 1  # the probe's first create; not retried


def test_objects_are_stored_as_json(backend: GCSBackend, gcs_server: GcsServer) -> None:
    backend.write("m.json", b'{"a": 1}')
    url = f"{gcs_server.endpoint_url}/storage/v1/b/{backend.bucket}/o/{PREFIX}%2Fm.json"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert json.load(response)["contentType"] == "application/json"


# --- retries ---------------------------------------------------------------------------


def test_one_503_is_retried_to_success(backend: GCSBackend, gcs_server: GcsServer) -> None:
    token = backend.write("m.json", b"one")
    rule = gcs_server.faults.add(method="POST", path_regex="/upload/", status=503)
    backend.write("m.json", b"two", expect=token)
    assert rule.fired == 1
    assert backend.read("m.json").data == b"two"


def test_throttled_read_is_retried(backend: GCSBackend, gcs_server: GcsServer) -> None:
    backend.write("m.json", b"one")
    rule = gcs_server.faults.add(method="GET", status=429, times=2)
    assert backend.read("m.json").data == b"one"
    assert rule.fired == 2


def test_persistent_resets_end_in_transient_error_with_object_intact(
    backend: GCSBackend, gcs_server: GcsServer
) -> None:
    token = backend.write("m.json", b"one")
    rule = gcs_server.faults.add(method="POST", action="reset", times=None)
    with pytest.raises(TransientStorageError, match="attempts"):
        backend.write("m.json", b"two", expect=token)
    assert rule.fired == 5  # the default number of attempts (POST is never resent by aiohttp)
    gcs_server.faults.clear()
    blob = backend.read("m.json")
    assert (blob.data, blob.version) == (b"one", token)


def test_retry_count_is_configurable(gcs_server: GcsServer, gcs_bucket: str) -> None:
    backend = _backend(gcs_server, gcs_bucket, etl_manifests_retries=2)
    rule = gcs_server.faults.add(method="GET", status=500, times=None)
    with pytest.raises(TransientStorageError):
        backend.read("m.json")
    assert rule.fired == 2


def test_precondition_failures_are_not_retried(backend: GCSBackend, gcs_server: GcsServer) -> None:
    stale = backend.write("m.json", b"one")
    backend.write("m.json", b"two")
    counter = _count_requests(gcs_server)
    with pytest.raises(ConflictError):
        backend.write("m.json", b"three", expect=stale)
    assert counter.fired == 1


# --- error mapping ---------------------------------------------------------------------


def test_missing_bucket_is_bucket_not_found_on_every_operation(gcs_server: GcsServer) -> None:
    backend = GCSBackend("gs://no-such-bucket-here/x", {**gcs_server.storage_options, **FAST})
    for call in (
        lambda: backend.read("m.json"),
        lambda: backend.write("m.json", b"x"),
        lambda: backend.write("m.json", b"x", expect=ABSENT),  # via the store check
        lambda: backend.list(),
        lambda: backend.delete("m.json"),
    ):
        with pytest.raises(BucketNotFoundError, match="no-such-bucket-here") as info:
            call()
        assert "create it" in str(info.value)
        assert info.value.bucket == "no-such-bucket-here"
        assert isinstance(info.value, NotFoundError)


def test_missing_object_is_not_reported_as_missing_bucket(backend: GCSBackend) -> None:
    with pytest.raises(NotFoundError) as info:
        backend.read("m.json")
    assert "no object at" in str(info.value)


def test_forbidden_maps_to_permission_error(backend: GCSBackend, gcs_server: GcsServer) -> None:
    gcs_server.faults.add(method="GET", status=403)
    with pytest.raises(PermissionDeniedError) as info:
        backend.read("m.json")
    message = str(info.value)
    assert backend.bucket in message
    assert "m.json" in message
    assert "credentials" in message
    assert isinstance(info.value, PermissionError)


SECRET = "ya29.n3ver-pr1nted-access-token"


def test_secrets_never_appear_in_repr_or_errors(gcs_server: GcsServer, gcs_bucket: str) -> None:
    options = {
        **gcs_server.storage_options,
        **FAST,
        "token": Credentials(SECRET),
        "etl_manifests_retries": 2,
    }
    backend = GCSBackend(f"gs://{gcs_bucket}/{PREFIX}", options)
    missing = GCSBackend("gs://no-such-bucket-here/x", options)
    texts = [repr(backend), str(backend), backend.root, backend.url("m.json")]
    backend.write("m.json", b"x")  # the token is really used
    gcs_server.faults.add(method="GET", status=403)
    for call in (
        lambda: backend.read("m.json"),  # 403
        lambda: backend.read("missing.json"),  # 404
        lambda: missing.write("m.json", b"x"),
    ):
        with pytest.raises(Exception) as info:  # noqa: PT011 - any error, checked below
            call()
        texts.append(str(info.value))
        texts.append(repr(info.value))
    gcs_server.faults.add(method="GET", action="reset", times=None)
    with pytest.raises(TransientStorageError) as transient:
        backend.read("m.json")
    texts.append(str(transient.value))
    texts.append(repr(transient.value.__cause__))
    for text in texts:
        assert SECRET not in text


# --- registration ----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["gs", "gcs"])
def test_registered_for_gs_urls(gcs_server: GcsServer, gcs_bucket: str, scheme: str) -> None:
    backend = open_backend(f"{scheme}://{gcs_bucket}/{PREFIX}", gcs_server.storage_options)
    assert isinstance(backend, GCSBackend)
    backend.write("m.json", b"x")
    assert backend.read("m.json").data == b"x"


def test_missing_gcsfs_raises_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # makes `import gcsfs` fail
    monkeypatch.delitem(sys.modules, "etl_manifests.backends.gcs._backend")
    registry = BackendRegistry()
    registry.register(
        "gs", "etl_manifests.backends.gcs._backend:GCSBackend", requires="gcsfs", extra="gcs"
    )
    with pytest.raises(MissingDependencyError, match=r"etl-manifests\[gcs\]"):
        registry.open("gs://bucket/prefix", {})
