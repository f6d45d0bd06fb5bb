"""The S3 side of the harness follows AWS's documented conditional-write behaviour.

Everything here talks boto3 (or raw HTTP) to the proxy in front of moto, never
to the library under test.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError

from etl_manifests.testing import S3Server

KEY = "dir/doc one.json"


def _no_retry_client(s3_server: S3Server) -> Any:
    # Retries would hide the injected faults these tests want to observe.
    return s3_server.client(retries={"total_max_attempts": 1})


def _error(exc: ClientError) -> tuple[int, str]:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"], exc.response["Error"]["Code"]


def _body(client: Any, bucket: str, key: str = KEY) -> bytes:
    data: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def _run_concurrently(n: int, attempt: Callable[[int], str]) -> list[str]:
    """Run ``attempt(i)`` for i in range(n), all released at the same instant."""
    barrier = threading.Barrier(n)

    def go(i: int) -> str:
        barrier.wait()
        return attempt(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(go, range(n)))


# ------------------------------------------------------------------ PutObject


def test_put_if_none_match_creates_absent_object(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1", IfNoneMatch="*")
    assert _body(client, s3_bucket) == b"v1"


def test_put_if_none_match_over_existing_object_is_412(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v2", IfNoneMatch="*")
    assert _error(info.value) == (412, "PreconditionFailed")
    assert _body(client, s3_bucket) == b"v1"


def test_412_error_is_aws_precondition_failed_xml(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v2", IfMatch='"0" ')
    error = info.value.response["Error"]
    assert error["Message"] == "At least one of the pre-conditions you specified did not hold"
    assert error["Condition"] == "If-Match"


def test_put_if_match_current_etag_replaces_object(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    etag = client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")["ETag"]
    new_etag = client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v2", IfMatch=etag)["ETag"]
    assert new_etag != etag
    assert _body(client, s3_bucket) == b"v2"


def test_put_if_match_stale_etag_is_412(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    stale = client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")["ETag"]
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v2")
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v3", IfMatch=stale)
    assert _error(info.value) == (412, "PreconditionFailed")
    assert _body(client, s3_bucket) == b"v2"


def test_put_if_match_on_missing_key_is_404_no_such_key(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1", IfMatch='"abc"')
    assert _error(info.value) == (404, "NoSuchKey")


def test_unconditional_put_overwrites(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v2")
    assert _body(client, s3_bucket) == b"v2"


# ----------------------------------------------------------------- CopyObject


def test_copy_if_none_match_over_existing_destination_is_412(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="src", Body=b"new")
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"old")
    with pytest.raises(ClientError) as info:
        client.copy_object(
            Bucket=s3_bucket,
            Key=KEY,
            CopySource={"Bucket": s3_bucket, "Key": "src"},
            IfNoneMatch="*",
        )
    assert _error(info.value) == (412, "PreconditionFailed")
    assert _body(client, s3_bucket) == b"old"


def test_copy_if_none_match_creates_absent_destination(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="src", Body=b"new")
    client.copy_object(
        Bucket=s3_bucket, Key=KEY, CopySource={"Bucket": s3_bucket, "Key": "src"}, IfNoneMatch="*"
    )
    assert _body(client, s3_bucket) == b"new"


def test_copy_if_match_stale_destination_etag_is_412(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="src", Body=b"new")
    stale = client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"old")["ETag"]
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"newer")
    with pytest.raises(ClientError) as info:
        client.copy_object(
            Bucket=s3_bucket, Key=KEY, CopySource={"Bucket": s3_bucket, "Key": "src"}, IfMatch=stale
        )
    assert _error(info.value) == (412, "PreconditionFailed")
    assert _body(client, s3_bucket) == b"newer"


def test_copy_if_match_current_destination_etag_replaces(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="src", Body=b"new")
    etag = client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"old")["ETag"]
    client.copy_object(
        Bucket=s3_bucket, Key=KEY, CopySource={"Bucket": s3_bucket, "Key": "src"}, IfMatch=etag
    )
    assert _body(client, s3_bucket) == b"new"


# ---------------------------------------------------------------- DeleteObject


def test_delete_if_match_stale_etag_is_412(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    stale = client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")["ETag"]
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v2")
    with pytest.raises(ClientError) as info:
        client.delete_object(Bucket=s3_bucket, Key=KEY, IfMatch=stale)
    assert _error(info.value) == (412, "PreconditionFailed")
    assert _body(client, s3_bucket) == b"v2"


# ----------------------------------------------------------------- concurrency


def test_concurrent_conditional_creates_exactly_one_wins(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client(max_pool_connections=32, retries={"total_max_attempts": 1})

    def attempt(i: int) -> str:
        try:
            client.put_object(Bucket=s3_bucket, Key=KEY, Body=str(i).encode(), IfNoneMatch="*")
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "ok"

    outcomes = _run_concurrently(16, attempt)
    assert sorted(outcomes) == ["PreconditionFailed"] * 15 + ["ok"]
    assert _body(client, s3_bucket) == str(outcomes.index("ok")).encode()


def test_concurrent_conditional_replaces_exactly_one_wins(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client(max_pool_connections=32, retries={"total_max_attempts": 1})
    etag = client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"base")["ETag"]

    def attempt(i: int) -> str:
        try:
            client.put_object(Bucket=s3_bucket, Key=KEY, Body=str(i).encode(), IfMatch=etag)
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "ok"

    outcomes = _run_concurrently(16, attempt)
    assert sorted(outcomes) == ["PreconditionFailed"] * 15 + ["ok"]
    assert _body(client, s3_bucket) == str(outcomes.index("ok")).encode()


def test_concurrent_conditional_copies_exactly_one_wins(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client(max_pool_connections=32, retries={"total_max_attempts": 1})
    for i in range(16):
        client.put_object(Bucket=s3_bucket, Key=f"src{i}", Body=str(i).encode())

    def attempt(i: int) -> str:
        try:
            client.copy_object(
                Bucket=s3_bucket,
                Key=KEY,
                CopySource={"Bucket": s3_bucket, "Key": f"src{i}"},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "ok"

    outcomes = _run_concurrently(16, attempt)
    assert sorted(outcomes) == ["PreconditionFailed"] * 15 + ["ok"]
    assert _body(client, s3_bucket) == str(outcomes.index("ok")).encode()


# ------------------------------------------------------------------ transport


def test_chunked_request_body_is_forwarded(s3_server: S3Server, s3_bucket: str) -> None:
    # moto does not verify signatures, so an unsigned chunked PUT stands in for
    # streaming aiohttp uploads.
    url = f"{s3_server.endpoint_url}/{s3_bucket}/chunked"
    resp = requests.put(url, data=iter([b"hello ", b"chunked ", b"world"]), timeout=10)
    assert resp.status_code == 200
    assert _body(s3_server.client(), s3_bucket, "chunked") == b"hello chunked world"


def test_expect_100_continue_is_honoured(s3_server: S3Server, s3_bucket: str) -> None:
    address = urlsplit(s3_server.endpoint_url)
    assert address.hostname is not None
    assert address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            f"PUT /{s3_bucket}/expect HTTP/1.1\r\nHost: {address.netloc}\r\n"
            "Content-Length: 4\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 100")
        sock.sendall(b"body")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert _body(s3_server.client(), s3_bucket, "expect") == b"body"


def test_s3fs_storage_options_route_through_proxy(s3_server: S3Server, s3_bucket: str) -> None:
    import s3fs

    counter = s3_server.faults.add(method="PUT", path_regex="/fs.json$", action="delay", times=None)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    fs.pipe(f"{s3_bucket}/fs.json", b'{"a": 1}')
    assert fs.cat(f"{s3_bucket}/fs.json") == b'{"a": 1}'
    assert counter.fired == 1


# ------------------------------------------------------------- fault injection


def test_fault_reset_surfaces_connection_error_and_skips_write(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = _no_retry_client(s3_server)
    rule = s3_server.faults.add(method="PUT", path_regex=r"/doc", action="reset")
    with pytest.raises(BotoCoreError):
        client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    assert rule.fired == 1
    assert client.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0


def test_fault_status_503_is_returned_without_forwarding(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = _no_retry_client(s3_server)
    rule = s3_server.faults.add(method="PUT", path_regex=r"/doc", action="status", status=503)
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    assert _error(info.value) == (503, "SlowDown")
    assert rule.fired == 1
    assert client.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0


def test_fault_drop_response_lands_write_but_client_sees_error(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = _no_retry_client(s3_server)
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    rule = s3_server.faults.add(method="PUT", path_regex=r"/doc", action="drop_response")
    with pytest.raises(BotoCoreError):
        client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v2")
    assert rule.fired == 1
    assert _body(client, s3_bucket) == b"v2"


def test_fault_status_after_forward_lands_write_but_client_sees_500(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = _no_retry_client(s3_server)
    s3_server.faults.add(method="PUT", action="status", status=500, after_forward=True)
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    assert _error(info.value) == (500, "InternalError")
    assert _body(client, s3_bucket) == b"v1"


def test_fault_delay_postpones_the_response(s3_server: S3Server, s3_bucket: str) -> None:
    client = _no_retry_client(s3_server)
    rule = s3_server.faults.add(method="PUT", path_regex=r"/doc", action="delay", delay=0.3)
    started = time.monotonic()
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    assert time.monotonic() - started >= 0.3
    assert rule.fired == 1


def test_fault_fires_at_most_times(s3_server: S3Server, s3_bucket: str) -> None:
    client = _no_retry_client(s3_server)
    rule = s3_server.faults.add(method="PUT", path_regex=r"/doc", action="status", times=2)
    for _ in range(2):
        with pytest.raises(ClientError):
            client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    assert rule.fired == 2
    assert rule.exhausted


def test_fault_header_criterion_targets_copy_only(s3_server: S3Server, s3_bucket: str) -> None:
    client = _no_retry_client(s3_server)
    rule = s3_server.faults.add(method="PUT", header="x-amz-copy-source", action="status")
    client.put_object(Bucket=s3_bucket, Key="src", Body=b"v1")
    with pytest.raises(ClientError) as info:
        client.copy_object(
            Bucket=s3_bucket, Key=KEY, CopySource={"Bucket": s3_bucket, "Key": "src"}
        )
    assert _error(info.value)[0] == 503
    assert rule.fired == 1


def test_fault_clear_removes_rules(s3_server: S3Server, s3_bucket: str) -> None:
    client = _no_retry_client(s3_server)
    rule = s3_server.faults.add(method="PUT", action="status", times=None)
    s3_server.faults.clear()
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"v1")
    assert rule.fired == 0
    assert s3_server.faults.rules == []


# ------------------------------------------------- a store that ignores conditions


def _copy(client: Any, bucket: str, **conditions: str) -> None:
    client.copy_object(
        Bucket=bucket, Key=KEY, CopySource={"Bucket": bucket, "Key": "src"}, **conditions
    )


def test_ignoring_copy_conditions_lets_conditional_copies_land(
    s3_server: S3Server, s3_bucket: str
) -> None:
    assert s3_server.proxy is not None
    client = _no_retry_client(s3_server)
    client.put_object(Bucket=s3_bucket, Key="src", Body=b"new")
    stale = client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"old")["ETag"]
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"current")
    s3_server.proxy.ignore_conditions = frozenset({"CopyObject"})
    _copy(client, s3_bucket, IfNoneMatch="*")
    assert _body(client, s3_bucket) == b"new"
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"current")
    _copy(client, s3_bucket, IfMatch=stale)
    assert _body(client, s3_bucket) == b"new"
    # PutObject conditions are still enforced.
    with pytest.raises(ClientError) as info:
        client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"x", IfNoneMatch="*")
    assert _error(info.value) == (412, "PreconditionFailed")


def test_ignoring_put_conditions_hides_them_from_moto_too(
    s3_server: S3Server, s3_bucket: str
) -> None:
    # moto evaluates PutObject conditions itself: the proxy must strip them.
    assert s3_server.proxy is not None
    client = _no_retry_client(s3_server)
    stale = client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"old")["ETag"]
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"current")
    s3_server.proxy.ignore_conditions = frozenset({"PutObject"})
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"over", IfNoneMatch="*")
    assert _body(client, s3_bucket) == b"over"
    client.put_object(Bucket=s3_bucket, Key=KEY, Body=b"stale", IfMatch=stale)
    assert _body(client, s3_bucket) == b"stale"
    # CopyObject conditions are still enforced.
    client.put_object(Bucket=s3_bucket, Key="src", Body=b"new")
    with pytest.raises(ClientError) as info:
        _copy(client, s3_bucket, IfNoneMatch="*")
    assert _error(info.value) == (412, "PreconditionFailed")


def test_ignore_conditions_takes_only_known_operations(s3_server: S3Server) -> None:
    assert s3_server.proxy is not None
    with pytest.raises(ValueError, match="insert"):
        s3_server.proxy.ignore_conditions = frozenset({"insert"})
    assert s3_server.proxy.ignore_conditions == frozenset()
