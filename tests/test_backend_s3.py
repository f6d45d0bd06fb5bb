"""The S3 backend against moto behind the harness's precondition-enforcing proxy."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from etl_manifests.backends.s3._backend import S3Backend
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
from etl_manifests.storage import ABSENT, STAGING_MARKER
from etl_manifests.testing import BackendConformance, S3Server

PREFIX = "manifests"
FAST = {"etl_manifests_retry_base": 0.01}


def _backend(s3_server: S3Server, bucket: str, **options: Any) -> S3Backend:
    return S3Backend(f"s3://{bucket}/{PREFIX}", {**s3_server.storage_options, **FAST, **options})


def _all_keys(s3_server: S3Server, bucket: str) -> list[str]:
    listing = s3_server.client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def _count_requests(s3_server: S3Server) -> Any:
    """A fault rule that only counts the requests reaching the proxy."""
    return s3_server.faults.add(action="delay", delay=0.0, times=None)


class TestS3Conformance(BackendConformance):
    @pytest.fixture
    def backend(self, s3_server: S3Server, s3_bucket: str) -> Iterator[S3Backend]:
        backend = _backend(s3_server, s3_bucket)
        yield backend
        backend.close()


class TestS3PutCommitConformance(BackendConformance):
    @pytest.fixture
    def backend(self, s3_server: S3Server, s3_bucket: str) -> Iterator[S3Backend]:
        backend = _backend(s3_server, s3_bucket, etl_manifests_commit="put")
        yield backend
        backend.close()


@pytest.fixture
def backend(s3_server: S3Server, s3_bucket: str) -> Iterator[S3Backend]:
    backend = _backend(s3_server, s3_bucket)
    # The store check runs before the first conditional write; running it here keeps
    # its probe requests out of the tests' request counts and fault rules.
    ensure_store_checked(backend)
    yield backend
    backend.close()


# --- commit protocol -------------------------------------------------------------------


def test_keys_live_below_the_prefix(
    backend: S3Backend, s3_server: S3Server, s3_bucket: str
) -> None:
    backend.write("a/m.json", b"x")
    assert _all_keys(s3_server, s3_bucket) == [f"{PREFIX}/a/m.json"]
    assert backend.url("a/m.json") == f"s3://{s3_bucket}/{PREFIX}/a/m.json"
    assert backend.root == f"s3://{s3_bucket}/{PREFIX}"


def test_no_staged_object_after_successful_save(
    backend: S3Backend, s3_server: S3Server, s3_bucket: str
) -> None:
    token = backend.write("m.json", b"one", expect=ABSENT)
    backend.write("m.json", b"two", expect=token)
    backend.write("m.json", b"three")
    assert _all_keys(s3_server, s3_bucket) == [f"{PREFIX}/m.json"]


def test_no_staged_object_after_conflicting_save(
    backend: S3Backend, s3_server: S3Server, s3_bucket: str
) -> None:
    stale = backend.write("m.json", b"one")
    backend.write("m.json", b"two")
    with pytest.raises(ConflictError):
        backend.write("m.json", b"three", expect=stale)
    with pytest.raises(AlreadyExistsError):
        backend.write("m.json", b"four", expect=ABSENT)
    assert _all_keys(s3_server, s3_bucket) == [f"{PREFIX}/m.json"]
    assert backend.read("m.json").data == b"two"


def test_copy_mode_costs_three_requests_per_save_and_one_per_load(
    backend: S3Backend, s3_server: S3Server
) -> None:
    token = backend.write("m.json", b"one")  # connects first, so the count is exact
    counter = _count_requests(s3_server)
    token = backend.write("m.json", b"two", expect=token)
    assert counter.fired == 3  # PUT staged + COPY + DELETE staged
    backend.read("m.json")
    assert counter.fired == 4


def test_put_mode_costs_one_request_per_save_and_stages_nothing(
    s3_server: S3Server, s3_bucket: str
) -> None:
    backend = _backend(s3_server, s3_bucket, etl_manifests_commit="put")
    token = backend.write("m.json", b"one", expect=ABSENT)
    counter = _count_requests(s3_server)
    staged = s3_server.faults.add(path_regex=STAGING_MARKER, action="delay", times=None)
    token = backend.write("m.json", b"two", expect=token)
    assert counter.fired == 1
    assert staged.fired == 0
    assert backend.read("m.json").data == b"two"


def test_put_mode_detects_conflicts(s3_server: S3Server, s3_bucket: str) -> None:
    first = _backend(s3_server, s3_bucket, etl_manifests_commit="put")
    second = _backend(s3_server, s3_bucket, etl_manifests_commit="put")
    token = first.write("m.json", b"one", expect=ABSENT)
    second.write("m.json", b"two", expect=second.read("m.json").version)
    with pytest.raises(ConflictError):
        first.write("m.json", b"three", expect=token)
    with pytest.raises(AlreadyExistsError):
        first.write("m.json", b"four", expect=ABSENT)
    assert first.read("m.json").data == b"two"


def test_unknown_commit_mode_is_rejected(s3_server: S3Server, s3_bucket: str) -> None:
    with pytest.raises(ValueError, match="etl_manifests_commit"):
        _backend(s3_server, s3_bucket, etl_manifests_commit="rename")


def test_versioned_bucket_tokens_change_on_identical_bytes(
    backend: S3Backend, s3_server: S3Server, s3_bucket: str
) -> None:
    s3_server.client().put_bucket_versioning(
        Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    first = backend.write("m.json", b"same")
    second = backend.write("m.json", b"same", expect=first)
    assert first != second
    assert backend.read("m.json").version == second
    third = backend.write("m.json", b"other", expect=second)
    assert backend.read("m.json").version == third


def test_lost_response_of_conditional_copy_surfaces_as_conflict(
    backend: S3Backend, s3_server: S3Server
) -> None:
    token = backend.write("m.json", b"one")
    # The copy lands but its response is lost; the retry's If-Match then fails.
    s3_server.faults.add(method="PUT", header="x-amz-copy-source", action="drop_response")
    with pytest.raises(ConflictError):
        backend.write("m.json", b"two", expect=token)
    assert backend.read("m.json").data == b"two"  # the layer above reloads and merges


# --- the commit mode, chosen by the store capability check -------------------------------


def test_copy_mode_is_chosen_where_the_store_enforces_copy_conditions(
    s3_server: S3Server, s3_bucket: str
) -> None:
    backend = _backend(s3_server, s3_bucket)
    assert backend.commit is None
    report = check_store(backend)
    assert report.ok, report.description
    assert report.mode == "copy"
    assert backend.commit == "copy"
    assert report.rejected == ()
    assert _all_keys(s3_server, s3_bucket) == []  # the probe is gone


def test_put_mode_is_chosen_where_copy_conditions_are_ignored(
    s3_server: S3Server, s3_bucket: str
) -> None:
    assert s3_server.proxy is not None
    s3_server.proxy.ignore_conditions = frozenset({"CopyObject"})
    backend = _backend(s3_server, s3_bucket)
    report = check_store(backend)
    assert report.ok
    assert report.mode == "put"
    assert backend.commit == "put"
    assert [r.mode for r in report.rejected] == ["copy"]
    assert "a create over an existing key was accepted" in report.description


def test_a_store_ignoring_every_condition_is_refused_before_anything_is_written(
    s3_server: S3Server, s3_bucket: str
) -> None:
    assert s3_server.proxy is not None
    s3_server.proxy.ignore_conditions = frozenset({"CopyObject", "PutObject"})
    backend = _backend(s3_server, s3_bucket)
    with pytest.raises(UnsupportedStoreError) as info:
        backend.write("m.json", b"x", expect=ABSENT)
    message = str(info.value)
    assert "commit mode 'copy'" in message
    assert "commit mode 'put'" in message
    assert s3_bucket in message
    assert _all_keys(s3_server, s3_bucket) == []


@pytest.mark.parametrize(("configured", "ignored"), [("copy", "CopyObject"), ("put", "PutObject")])
def test_a_configured_mode_is_verified_not_trusted(
    s3_server: S3Server, s3_bucket: str, configured: str, ignored: str
) -> None:
    assert s3_server.proxy is not None
    s3_server.proxy.ignore_conditions = frozenset({ignored})
    backend = _backend(s3_server, s3_bucket, etl_manifests_commit=configured)
    with pytest.raises(UnsupportedStoreError, match="the configured one, was tried"):
        ensure_store_checked(backend)
    assert backend.commit == configured  # never switched behind the user's back


def test_the_mode_is_chosen_only_before_the_first_conditional_write(
    s3_server: S3Server, s3_bucket: str
) -> None:
    backend = _backend(s3_server, s3_bucket)
    writes = s3_server.faults.add(method="PUT", action="delay", times=None)
    with pytest.raises(NotFoundError):
        backend.read("m.json")  # a read-only user needs no write access
    backend.list()
    assert writes.fired == 0
    assert backend.commit is None
    backend.write("m.json", b"x")  # unconditional: no check needed, one PUT
    assert writes.fired == 1
    assert backend.commit is None
    backend.write("m.json", b"y", expect=backend.read("m.json").version)
    assert backend.commit == "copy"


def test_not_implemented_is_unsupported_and_not_retried(
    s3_server: S3Server, s3_bucket: str
) -> None:
    # Stores such as Backblaze B2 answer conditional writes with 501 NotImplemented.
    rule = s3_server.faults.add(method="PUT", header="if-none-match", status=501, times=None)
    backend = _backend(s3_server, s3_bucket, etl_manifests_commit="put")
    with pytest.raises(UnsupportedStoreError, match="501 NotImplemented"):
        backend.write("m.json", b"x", expect=ABSENT)
    assert rule.fired == 1  # the probe's first create; not retried as a 5xx
    assert _all_keys(s3_server, s3_bucket) == []


def test_a_plain_moto_store_gets_put_mode(plain_s3_server: S3Server) -> None:
    # moto evaluates If-Match / If-None-Match on PutObject but ignores them on CopyObject.
    bucket = f"plain-{uuid.uuid4().hex[:12]}"
    plain_s3_server.create_bucket(bucket)
    backend = S3Backend(f"s3://{bucket}/{PREFIX}", {**plain_s3_server.storage_options, **FAST})
    report = check_store(backend)
    assert report.ok
    assert backend.commit == "put"
    (copy,) = report.rejected
    assert copy.mode == "copy"
    assert not copy.create_refused
    assert not copy.stale_replace_refused
    token = backend.write("m.json", b"one", expect=ABSENT)
    backend.write("m.json", b"two", expect=token)
    with pytest.raises(ConflictError):
        backend.write("m.json", b"three", expect=token)


def test_copy_mode_on_plain_moto_is_refused(plain_s3_server: S3Server) -> None:
    bucket = f"plain-{uuid.uuid4().hex[:12]}"
    plain_s3_server.create_bucket(bucket)
    options = {**plain_s3_server.storage_options, **FAST, "etl_manifests_commit": "copy"}
    backend = S3Backend(f"s3://{bucket}/{PREFIX}", options)
    with pytest.raises(UnsupportedStoreError, match="commit mode 'copy'"):
        backend.write("m.json", b"x", expect=ABSENT)
    listing = plain_s3_server.client().list_objects_v2(Bucket=bucket)
    assert listing.get("Contents", []) == []


# --- retries ---------------------------------------------------------------------------


def test_one_503_is_retried_to_success(backend: S3Backend, s3_server: S3Server) -> None:
    token = backend.write("m.json", b"one")
    rule = s3_server.faults.add(method="PUT", header="x-amz-copy-source", status=503)
    backend.write("m.json", b"two", expect=token)
    assert rule.fired == 1
    assert backend.read("m.json").data == b"two"


def test_throttled_read_is_retried(backend: S3Backend, s3_server: S3Server) -> None:
    backend.write("m.json", b"one")
    rule = s3_server.faults.add(method="GET", status=429, times=2)
    assert backend.read("m.json").data == b"one"
    assert rule.fired == 2


def test_persistent_resets_end_in_transient_error_with_object_intact(
    backend: S3Backend, s3_server: S3Server, s3_bucket: str
) -> None:
    token = backend.write("m.json", b"one")
    rule = s3_server.faults.add(method="PUT", action="reset", times=None)
    with pytest.raises(TransientStorageError, match="attempts"):
        backend.write("m.json", b"two", expect=token)
    # 5 attempts (the default) of the staged PUT; aiohttp itself resends an idempotent
    # request once when a reused keep-alive connection drops, so up to 2 resets each.
    assert 5 <= rule.fired <= 10
    s3_server.faults.clear()
    assert backend.read("m.json").data == b"one"
    assert backend.read("m.json").version == token
    assert _all_keys(s3_server, s3_bucket) == [f"{PREFIX}/m.json"]


def test_retry_count_is_configurable(s3_server: S3Server, s3_bucket: str) -> None:
    backend = _backend(s3_server, s3_bucket, etl_manifests_retries=2)
    rule = s3_server.faults.add(method="GET", status=500, times=None)
    with pytest.raises(TransientStorageError):
        backend.read("m.json")
    assert rule.fired == 2


def test_precondition_failures_are_not_retried(backend: S3Backend, s3_server: S3Server) -> None:
    stale = backend.write("m.json", b"one")
    backend.write("m.json", b"two")
    counter = _count_requests(s3_server)
    with pytest.raises(ConflictError):
        backend.write("m.json", b"three", expect=stale)
    assert counter.fired == 3  # PUT staged, one COPY (412), DELETE staged


# --- error mapping ---------------------------------------------------------------------


def test_missing_bucket_is_bucket_not_found_on_every_operation(s3_server: S3Server) -> None:
    backend = S3Backend("s3://no-such-bucket-here/x", {**s3_server.storage_options, **FAST})
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


def test_access_denied_maps_to_permission_error(backend: S3Backend, s3_server: S3Server) -> None:
    s3_server.faults.add(method="GET", status=403)
    with pytest.raises(PermissionDeniedError) as info:
        backend.read("m.json")
    message = str(info.value)
    assert backend.bucket in message
    assert "m.json" in message
    assert "credentials" in message
    assert isinstance(info.value, PermissionError)


SECRETS = {"key": "AKIDLEAKCHECK0001", "secret": "s3cr3t-never-printed", "token": "sess-t0k3n-x"}


def test_secrets_never_appear_in_repr_or_errors(s3_server: S3Server, s3_bucket: str) -> None:
    options = {**s3_server.storage_options, **SECRETS, **FAST, "etl_manifests_retries": 2}
    backend = S3Backend(f"s3://{s3_bucket}/{PREFIX}", options)
    missing = S3Backend("s3://no-such-bucket-here/x", options)
    texts = [repr(backend), str(backend), backend.root, backend.url("m.json")]
    s3_server.faults.add(method="GET", status=403)
    for call in (
        lambda: backend.read("m.json"),  # 403
        lambda: backend.read("m.json"),  # 404
        lambda: missing.write("m.json", b"x"),
    ):
        with pytest.raises(Exception) as info:  # noqa: PT011 - any error, checked below
            call()
        texts.append(str(info.value))
        texts.append(repr(info.value))
    s3_server.faults.add(method="GET", action="reset", times=None)
    with pytest.raises(TransientStorageError) as transient:
        backend.read("m.json")
    texts.append(str(transient.value))
    for text in texts:
        for secret in ("s3cr3t-never-printed", "sess-t0k3n-x", "AKIDLEAKCHECK0001"):
            assert secret not in text


def test_credentials_in_root_url_are_dropped(s3_server: S3Server, s3_bucket: str) -> None:
    backend = S3Backend(f"s3://user:pw@{s3_bucket}/{PREFIX}/", s3_server.storage_options)
    assert backend.root == f"s3://{s3_bucket}/{PREFIX}"
    assert "pw" not in repr(backend)


# --- registration ----------------------------------------------------------------------


def test_registered_for_s3_urls(s3_server: S3Server, s3_bucket: str) -> None:
    backend = open_backend(f"s3://{s3_bucket}/{PREFIX}", s3_server.storage_options)
    assert isinstance(backend, S3Backend)
    backend.write("m.json", b"x")
    assert backend.read("m.json").data == b"x"


def test_missing_s3fs_raises_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` fail
    monkeypatch.delitem(sys.modules, "etl_manifests.backends.s3._backend")
    registry = BackendRegistry()
    registry.register(
        "s3", "etl_manifests.backends.s3._backend:S3Backend", requires="s3fs", extra="s3"
    )
    with pytest.raises(MissingDependencyError, match=r"etl-manifests\[s3\]"):
        registry.open("s3://bucket/prefix", {})


def test_missing_credentials_map_to_permission_error(
    s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    options = {"client_kwargs": s3_server.storage_options["client_kwargs"], **FAST}
    backend = S3Backend(f"s3://{s3_bucket}/{PREFIX}", options)
    with pytest.raises(PermissionDeniedError, match="credentials"):
        backend.read("m.json")
