"""The fault proxy forwards faithfully, injects exactly the faults asked for, and records.

Everything here talks azure-storage-blob (with its retries off) to the proxy, never to the
backend under test.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError
from azure.storage.blob import BlobBlock, BlobServiceClient, ContainerClient

from .azure_fault_proxy import Fault, FaultProxy, operation
from .azurite_server import AzuriteServer


@pytest.fixture
def via_proxy(
    azurite: AzuriteServer, proxy: FaultProxy, container: str
) -> Iterator[ContainerClient]:
    service = BlobServiceClient.from_connection_string(
        azurite.connection_string(endpoint=proxy.endpoint), retry_total=0
    )
    with service:
        yield service.get_container_client(container)


@pytest.fixture
def direct(azurite: AzuriteServer, container: str) -> Iterator[ContainerClient]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string())
    with service:
        yield service.get_container_client(container)


@pytest.mark.parametrize(
    ("method", "query", "expected"),
    [
        ("GET", "", "get"),
        ("PUT", "", "put_blob"),
        ("PUT", "comp=block&blockid=QQ%3D%3D", "put_block"),
        ("PUT", "comp=blocklist", "put_block_list"),
        ("DELETE", "", "delete"),
        ("GET", "restype=container&comp=list&prefix=a", "list"),
        ("PUT", "restype=container", "put_container"),
        ("HEAD", "", "head"),
    ],
)
def test_operations_are_named_from_method_and_query(method: str, query: str, expected: str) -> None:
    assert operation(method, query) == expected


def test_requests_pass_through_unchanged(
    via_proxy: ContainerClient, direct: ContainerClient, proxy: FaultProxy
) -> None:
    data = bytes(range(256)) * 4000
    etag = via_proxy.get_blob_client("a/b.json").upload_blob(data)["etag"]
    download = direct.get_blob_client("a/b.json").download_blob()
    assert (download.readall(), download.properties.etag) == (data, etag)
    assert via_proxy.get_blob_client("a/b.json").download_blob().readall() == data
    assert [r.op for r in proxy.requests] == ["put_blob", "get"]
    assert [r.status for r in proxy.requests] == [201, 206]


def test_status_fault_answers_an_azure_error_and_forwards_nothing(
    via_proxy: ContainerClient, direct: ContainerClient, proxy: FaultProxy
) -> None:
    proxy.add(Fault("status", op="put_blob", status=503, code="ServerBusy"))
    blob = via_proxy.get_blob_client("m.json")
    with pytest.raises(HttpResponseError) as info:
        blob.upload_blob(b"one")
    assert info.value.status_code == 503
    assert getattr(info.value, "error_code", None) == "ServerBusy"
    assert not direct.get_blob_client("m.json").exists()
    blob.upload_blob(b"one")  # fired once only
    assert direct.get_blob_client("m.json").download_blob().readall() == b"one"


def test_skip_lets_the_first_matching_requests_through(
    via_proxy: ContainerClient, proxy: FaultProxy
) -> None:
    fault = proxy.add(Fault("status", op="get", skip=2, status=500, code="InternalError"))
    blob = via_proxy.get_blob_client("m.json")
    blob.upload_blob(b"x")
    blob.download_blob().readall()
    blob.download_blob().readall()
    with pytest.raises(HttpResponseError) as info:
        blob.download_blob()
    assert info.value.status_code == 500
    assert (fault.seen, fault.fired) == (3, 1)


def test_reset_aborts_the_connection_before_forwarding(
    via_proxy: ContainerClient, direct: ContainerClient, proxy: FaultProxy
) -> None:
    proxy.add(Fault("reset", op="put_blob"))
    with pytest.raises(AzureError) as info:
        via_proxy.get_blob_client("m.json").upload_blob(b"one")
    assert not isinstance(info.value, HttpResponseError)  # no response at all
    assert not direct.get_blob_client("m.json").exists()
    assert [(r.op, r.status) for r in proxy.requests] == [("put_blob", 0)]


def test_drop_response_lands_the_write_but_loses_the_answer(
    via_proxy: ContainerClient, direct: ContainerClient, proxy: FaultProxy
) -> None:
    proxy.add(Fault("drop_response", op="put_blob"))
    with pytest.raises(AzureError):
        via_proxy.get_blob_client("m.json").upload_blob(b"landed")
    assert direct.get_blob_client("m.json").download_blob().readall() == b"landed"


def test_call_runs_the_callback_before_forwarding(
    via_proxy: ContainerClient, direct: ContainerClient, proxy: FaultProxy
) -> None:
    blob = via_proxy.get_blob_client("m.json")
    etag = blob.upload_blob(b"one")["etag"]
    proxy.add(
        Fault(
            "call",
            op="put_blob",
            callback=lambda: direct.get_blob_client("m.json").upload_blob(b"other", overwrite=True),
        )
    )
    with pytest.raises(HttpResponseError) as info:
        blob.upload_blob(b"two", etag=etag, match_condition=MatchConditions.IfNotModified)
    assert info.value.status_code == 412  # the callback's write came first
    assert direct.get_blob_client("m.json").download_blob().readall() == b"other"


def test_conditional_headers_are_recorded_per_request(
    via_proxy: ContainerClient, proxy: FaultProxy
) -> None:
    blob = via_proxy.get_blob_client("m.json")
    etag = blob.upload_blob(b"one", match_condition=MatchConditions.IfMissing)["etag"]
    block = base64.b64encode(uuid.uuid4().hex.encode()).decode()
    blob.stage_block(block, b"two")
    blob.commit_block_list(
        [BlobBlock(block)], etag=etag, match_condition=MatchConditions.IfNotModified
    )
    assert [(r.op, r.if_match, r.if_none_match) for r in proxy.requests] == [
        ("put_blob", None, "*"),
        ("put_block", None, None),
        ("put_block_list", etag, None),
    ]
