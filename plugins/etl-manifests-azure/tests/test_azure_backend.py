"""Behaviour of the Azure backend beyond the conformance suite: the requests it sends, the
block path, errors, retries.

Tests that look at requests go through the fault proxy (which records them); the others
talk to plain Azurite.
"""

from __future__ import annotations

import base64
import multiprocessing
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient
from etl_manifests import ManifestManager
from etl_manifests.errors import (
    AlreadyExistsError,
    BucketNotFoundError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
    UnsupportedStoreError,
)
from etl_manifests.storage import ABSENT

from etl_manifests_azure.backend import AzureBackend

from .azure_fault_proxy import Fault, FaultProxy
from .azurite_server import DEV_ACCOUNT, AzuriteServer, connection_string

BLOCKS = {"etl_manifests_max_single_put": 1024, "etl_manifests_block_size": 4096}


@pytest.fixture
def raw(azurite: AzuriteServer, container: str) -> Iterator[ContainerClient]:
    """azure-storage-blob straight to Azurite: what another program would see."""
    with BlobServiceClient.from_connection_string(azurite.connection_string()) as service:
        yield service.get_container_client(container)


def _backend(container: str, options: dict[str, Any], **extra: Any) -> AzureBackend:
    return AzureBackend(f"az://{container}/root", {**options, **extra})


def _block_id() -> str:
    # The backend's own format: Azure wants one block-id length for all blocks of a blob.
    return base64.b64encode(f"{uuid.uuid4().hex}-{0:05d}".encode()).decode()


def _ops(proxy: FaultProxy) -> list[tuple[str, str | None, str | None]]:
    return [(r.op, r.if_match, r.if_none_match) for r in proxy.requests]


# --- the requests behind each primitive --------------------------------------------------


def test_a_read_is_one_get_returning_the_etag_of_its_bytes(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy
) -> None:
    backend = _backend(container, proxied_options)
    token = backend.write("m.json", b"one")
    proxy.reset()
    blob = backend.read("m.json")
    assert (blob.data, blob.version) == (b"one", token)
    assert [r.op for r in proxy.requests] == ["get"]


def test_a_small_write_is_one_put_blob_carrying_its_condition(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy
) -> None:
    backend = _backend(container, proxied_options)
    created = backend.write("m.json", b"one", expect=ABSENT)
    replaced = backend.write("m.json", b"two", expect=created)
    backend.write("m.json", b"three")
    assert _ops(proxy) == [
        ("put_blob", None, "*"),
        ("put_blob", created, None),
        ("put_blob", None, None),
    ]
    assert replaced != created


def test_a_large_write_puts_the_condition_on_the_block_list_only(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy, raw: ContainerClient
) -> None:
    backend = _backend(container, proxied_options, **BLOCKS)
    data = bytes(range(256)) * 40  # 10240 bytes: three blocks of at most 4096
    created = backend.write("m.json", data, expect=ABSENT)
    backend.write("m.json", data[::-1], expect=created)
    unstaged = [("put_block", None, None)] * 3
    assert _ops(proxy) == [
        *unstaged,
        ("put_block_list", None, "*"),
        *unstaged,
        ("put_block_list", created, None),
    ]
    assert raw.get_blob_client("root/m.json").download_blob().readall() == data[::-1]
    committed, uncommitted = raw.get_blob_client("root/m.json").get_block_list("all")
    assert (len(committed), len(uncommitted)) == (3, 0)


def test_a_stale_token_on_the_block_path_is_refused_by_the_commit(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy, raw: ContainerClient
) -> None:
    backend = _backend(container, proxied_options, **BLOCKS)
    stale = backend.write("m.json", b"a" * 5000)
    backend.write("m.json", b"b" * 5000)
    proxy.reset()
    with pytest.raises(ConflictError):
        backend.write("m.json", b"c" * 5000, expect=stale)
    # The blocks were staged; only the conditional commit stopped the write.
    assert [(r.op, r.status) for r in proxy.requests][-1] == ("put_block_list", 412)
    assert raw.get_blob_client("root/m.json").download_blob().readall() == b"b" * 5000


def test_blocks_discarded_by_another_writers_commit_are_staged_again(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy, raw: ContainerClient
) -> None:
    backend = _backend(container, proxied_options, **BLOCKS)
    other = raw.get_blob_client("root/m.json")

    def commit_by_another_writer() -> None:
        block = _block_id()
        other.stage_block(block, b"theirs")
        other.commit_block_list([BlobBlock(block)])

    proxy.add(Fault("call", op="put_block_list", callback=commit_by_another_writer))
    token = backend.write("m.json", b"ours" * 2000)
    assert backend.read("m.json").data == b"ours" * 2000
    assert backend.read("m.json").version == token
    assert [r.op for r in proxy.requests].count("put_block_list") == 2


def test_a_token_write_whose_blocks_were_discarded_is_a_conflict(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy, raw: ContainerClient
) -> None:
    backend = _backend(container, proxied_options, **BLOCKS)
    token = backend.write("m.json", b"start")
    other = raw.get_blob_client("root/m.json")
    proxy.add(
        Fault(
            "call",
            op="put_block_list",
            callback=lambda: other.upload_blob(b"theirs", overwrite=True),
        )
    )
    with pytest.raises(ConflictError):
        backend.write("m.json", b"ours" * 2000, expect=token)
    assert backend.read("m.json").data == b"theirs"


def test_blocks_left_by_a_killed_writer_are_invisible(
    container: str, plain_options: dict[str, Any], raw: ContainerClient
) -> None:
    # What a writer killed between Put Block and Put Block List leaves behind.
    leftover = raw.get_blob_client("root/m.json")
    leftover.stage_block(_block_id(), b"half")
    backend = _backend(container, plain_options, **BLOCKS)
    with pytest.raises(NotFoundError):
        backend.read("m.json")
    assert backend.list() == []
    token = backend.write("m.json", b"x" * 5000, expect=ABSENT)  # a block-list create
    assert backend.read("m.json").version == token


def test_on_azurite_a_single_put_create_over_leftover_blocks_is_refused_not_forced(
    container: str, plain_options: dict[str, Any], raw: ContainerClient
) -> None:
    """Azurite's divergence (test_azurite_harness.py) reaches a writer as AlreadyExistsError:
    a refusal, never an overwrite."""
    leftover = raw.get_blob_client("root/m.json")
    leftover.stage_block(_block_id(), b"half")
    backend = _backend(container, plain_options)
    with pytest.raises(AlreadyExistsError):
        backend.write("m.json", b"small", expect=ABSENT)
    with pytest.raises(NotFoundError):
        backend.read("m.json")


# --- tokens, listing, lifecycle -----------------------------------------------------------


def test_rewriting_the_same_bytes_gives_a_new_token(
    container: str, plain_options: dict[str, Any]
) -> None:
    backend = _backend(container, plain_options)
    first = backend.write("m.json", b"same")
    second = backend.write("m.json", b"same", expect=first)
    assert first != second
    with pytest.raises(ConflictError):
        backend.write("m.json", b"same", expect=first)


def test_listing_reports_sizes_and_times_and_stays_below_the_prefix(
    container: str, plain_options: dict[str, Any], raw: ContainerClient
) -> None:
    raw.upload_blob("rootless.json", b"outside the prefix")
    raw.upload_blob("root2/m.json", b"a sibling prefix")
    backend = _backend(container, plain_options)
    backend.write("b/m.json", b"12345")
    backend.write("a.json", b"1")
    listed = backend.list()
    assert [(i.key, i.size) for i in listed] == [("a.json", 1), ("b/m.json", 5)]
    assert all(isinstance(i.modified, datetime) and i.modified.tzinfo for i in listed)
    assert [i.key for i in backend.list("b/")] == ["b/m.json"]


def test_a_closed_backend_reopens(container: str, plain_options: dict[str, Any]) -> None:
    backend = _backend(container, plain_options)
    token = backend.write("m.json", b"kept")
    backend.close()
    assert backend.read("m.json").version == token
    backend.close()
    backend.close()


def test_keys_are_blob_names_below_the_prefix(
    container: str, plain_options: dict[str, Any], raw: ContainerClient
) -> None:
    _backend(container, plain_options).write("extractor_v1.json", b"{}")
    assert [b.name for b in raw.list_blobs()] == ["root/extractor_v1.json"]


# --- errors ---------------------------------------------------------------------------


def test_a_missing_container_is_bucket_not_found_naming_it(
    azurite: AzuriteServer, plain_options: dict[str, Any]
) -> None:
    backend = AzureBackend("az://no-such-container/root", plain_options)
    for operation in (
        lambda: backend.read("m.json"),
        lambda: backend.write("m.json", b"x"),
        lambda: backend.list(),
        lambda: backend.delete("m.json"),
    ):
        with pytest.raises(BucketNotFoundError, match="container 'no-such-container'") as info:
            operation()
        assert info.value.bucket == "no-such-container"


def test_a_manifest_in_a_missing_container_does_not_load_as_empty(
    plain_options: dict[str, Any],
) -> None:
    manager = ManifestManager("az://no-such-container/root", "1", storage_options=plain_options)
    with pytest.raises(BucketNotFoundError):
        manager.get("extractor")


def test_not_implemented_is_an_unsupported_store(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy
) -> None:
    backend = _backend(container, proxied_options)
    proxy.add(Fault("status", op="put_blob", status=501, code="NotImplemented"))
    with pytest.raises(UnsupportedStoreError):
        backend.write("m.json", b"x", expect=ABSENT)


def _write_in_child(backend: AzureBackend, token: str) -> None:
    backend.write("m.json", b"written by the child", expect=token)


def test_a_forked_child_opens_its_own_connection(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy
) -> None:
    backend = _backend(container, proxied_options)
    token = backend.write("m.json", b"written by the parent")  # the parent's connection
    (parent_port,) = {r.client_port for r in proxy.requests}
    child = multiprocessing.get_context("fork").Process(
        target=_write_in_child, args=(backend, token)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert backend.read("m.json").data == b"written by the child"  # the parent goes on
    ports = [r.client_port for r in proxy.requests]
    assert ports[0] == ports[2] == parent_port
    assert ports[1] != parent_port


def test_a_token_write_to_a_deleted_blob_is_a_conflict(
    container: str, plain_options: dict[str, Any]
) -> None:
    backend = _backend(container, plain_options)
    token = backend.write("m.json", b"x")
    backend.delete("m.json")
    with pytest.raises(ConflictError):
        backend.write("m.json", b"y", expect=token)


def test_a_wrong_key_is_permission_denied_at_once(container: str, proxy: FaultProxy) -> None:
    wrong = base64.b64encode(b"not the key" * 4).decode()
    options = {"connection_string": connection_string(proxy.endpoint, DEV_ACCOUNT, wrong)}
    backend = _backend(container, options)
    with pytest.raises(PermissionDeniedError, match="HTTP 403"):
        backend.read("m.json")
    assert len(proxy.requests) == 1  # refusals are not retried


def test_transient_failures_are_retried_with_one_request_per_attempt(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy
) -> None:
    backend = _backend(container, proxied_options)
    token = backend.write("m.json", b"x")
    proxy.reset()
    proxy.add(Fault("status", op="get", status=503, times=2))
    proxy.add(Fault("reset", op="put_blob", times=1))
    assert backend.read("m.json").version == token
    backend.write("m.json", b"y", expect=token)
    assert [(r.op, r.status) for r in proxy.requests] == [
        ("get", 503),
        ("get", 503),
        ("get", 206),
        ("put_blob", 0),
        ("put_blob", 201),
    ]


def test_retries_stop_after_the_configured_attempts_and_azure_core_adds_none(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy
) -> None:
    backend = _backend(container, proxied_options, etl_manifests_retries=3)
    proxy.add(Fault("status", op="put_blob", status=500, code="InternalError", times=None))
    with pytest.raises(TransientStorageError, match="after 3 attempts"):
        backend.write("m.json", b"x")
    assert [r.op for r in proxy.requests] == ["put_blob"] * 3


@pytest.mark.parametrize("status", [400, 409])
def test_other_refusals_are_storage_errors_with_the_azure_code(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy, status: int
) -> None:
    backend = _backend(container, proxied_options)
    proxy.add(Fault("status", op="put_blob", status=status, code="LeaseIdMissing"))
    with pytest.raises(StorageError, match=f"HTTP {status} LeaseIdMissing") as info:
        backend.write("m.json", b"x")
    assert not isinstance(info.value, ConflictError)


def test_a_lost_answer_to_a_create_is_reported_as_already_exists(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy
) -> None:
    """The retry finds the first attempt's blob; the manifest layer then reloads and finds
    its own write, so nothing is lost or doubled."""
    backend = _backend(container, proxied_options)
    proxy.add(Fault("drop_response", op="put_blob"))
    with pytest.raises(AlreadyExistsError):
        backend.write("m.json", b"mine", expect=ABSENT)
    assert backend.read("m.json").data == b"mine"
