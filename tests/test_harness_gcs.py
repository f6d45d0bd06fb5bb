"""The GCS side of the harness follows Google's documented generation-precondition behaviour.

Everything here talks plain HTTP (``requests``) to the proxy in front of
gcp-storage-emulator, never to the library under test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
import requests

from etl_manifests.testing import GcsServer

NAME = "dir/doc one.json"
PRECONDITION_MSG = "At least one of the pre-conditions you specified did not hold."


def _upload(
    gcs: GcsServer, bucket: str, data: bytes, name: str = NAME, **params: str
) -> requests.Response:
    return requests.post(
        f"{gcs.endpoint_url}/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "media", "name": name, **params},
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )


def _object_url(gcs: GcsServer, bucket: str, name: str = NAME) -> str:
    return f"{gcs.endpoint_url}/storage/v1/b/{bucket}/o/{quote(name, safe='')}"


def _generation(gcs: GcsServer, bucket: str, name: str = NAME) -> str:
    resp = requests.get(_object_url(gcs, bucket, name), timeout=30)
    resp.raise_for_status()
    generation: str = resp.json()["generation"]
    return generation


def _read(gcs: GcsServer, bucket: str, name: str = NAME) -> bytes:
    resp = requests.get(_object_url(gcs, bucket, name), params={"alt": "media"}, timeout=30)
    resp.raise_for_status()
    return resp.content


def _exists(gcs: GcsServer, bucket: str, name: str = NAME) -> bool:
    return requests.get(_object_url(gcs, bucket, name), timeout=30).status_code == 200


def _assert_condition_not_met(resp: requests.Response) -> None:
    assert resp.status_code == 412
    error: dict[str, Any] = resp.json()["error"]
    assert error["code"] == 412
    assert error["message"] == PRECONDITION_MSG
    assert error["errors"][0]["reason"] == "conditionNotMet"


def _run_concurrently(n: int, attempt: Callable[[int], int]) -> list[int]:
    """Run ``attempt(i)`` for i in range(n), all released at the same instant."""
    barrier = threading.Barrier(n)

    def go(i: int) -> int:
        barrier.wait()
        return attempt(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(go, range(n)))


# ------------------------------------------------------- emulator + proxy basics


def test_upload_response_and_metadata_report_generation(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    resp = _upload(gcs_server, gcs_bucket, b"v1")
    assert resp.status_code == 200
    assert resp.json()["generation"] == _generation(gcs_server, gcs_bucket)


def test_new_upload_changes_generation(gcs_server: GcsServer, gcs_bucket: str) -> None:
    first = _upload(gcs_server, gcs_bucket, b"v1").json()["generation"]
    second = _upload(gcs_server, gcs_bucket, b"v2").json()["generation"]
    assert first != second
    assert _generation(gcs_server, gcs_bucket) == second


@pytest.mark.parametrize("form", ["download", "alt_media"])
def test_media_download_carries_x_goog_generation(
    gcs_server: GcsServer, gcs_bucket: str, form: str
) -> None:
    generation = _upload(gcs_server, gcs_bucket, b"v1").json()["generation"]
    prefix = "/download" if form == "download" else ""
    url = f"{gcs_server.endpoint_url}{prefix}/storage/v1/b/{gcs_bucket}/o/{quote(NAME, safe='')}"
    resp = requests.get(url, params={"alt": "media"}, timeout=30)
    assert resp.status_code == 200
    assert resp.content == b"v1"
    assert resp.headers["x-goog-generation"] == generation
    assert resp.headers["x-goog-metageneration"] == "1"


@pytest.mark.parametrize(
    "data", [b"", b'{"a": 1}\n', b"not json\r\n--x--\r\n", bytes(range(256))], ids=repr
)
def test_media_upload_stores_bytes_verbatim(
    gcs_server: GcsServer, gcs_bucket: str, data: bytes
) -> None:
    # Sent as application/json, which the bare emulator would JSON-decode.
    resp = _upload(gcs_server, gcs_bucket, data)
    assert resp.status_code == 200
    assert resp.json()["size"] == str(len(data))
    assert resp.json()["metageneration"] == "1"
    assert _read(gcs_server, gcs_bucket) == data


def test_download_of_generation_no_longer_live_is_404(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    old = _upload(gcs_server, gcs_bucket, b"v1").json()["generation"]
    _upload(gcs_server, gcs_bucket, b"v2")
    url = _object_url(gcs_server, gcs_bucket)
    resp = requests.get(url, params={"alt": "media", "generation": old}, timeout=30)
    assert resp.status_code == 404


def test_download_of_missing_object_is_404(gcs_server: GcsServer, gcs_bucket: str) -> None:
    url = _object_url(gcs_server, gcs_bucket)
    assert requests.get(url, params={"alt": "media"}, timeout=30).status_code == 404


# ------------------------------------------------------------------ uploads


def test_upload_if_generation_match_zero_creates_absent_object(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    resp = _upload(gcs_server, gcs_bucket, b"v1", ifGenerationMatch="0")
    assert resp.status_code == 200
    assert _read(gcs_server, gcs_bucket) == b"v1"


def test_upload_if_generation_match_zero_over_existing_object_is_412(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    _upload(gcs_server, gcs_bucket, b"v1")
    _assert_condition_not_met(_upload(gcs_server, gcs_bucket, b"v2", ifGenerationMatch="0"))
    assert _read(gcs_server, gcs_bucket) == b"v1"


def test_upload_with_current_generation_replaces_object(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    generation = _upload(gcs_server, gcs_bucket, b"v1").json()["generation"]
    resp = _upload(gcs_server, gcs_bucket, b"v2", ifGenerationMatch=generation)
    assert resp.status_code == 200
    assert resp.json()["generation"] != generation
    assert _read(gcs_server, gcs_bucket) == b"v2"


def test_upload_with_stale_generation_is_412(gcs_server: GcsServer, gcs_bucket: str) -> None:
    stale = _upload(gcs_server, gcs_bucket, b"v1").json()["generation"]
    _upload(gcs_server, gcs_bucket, b"v2")
    _assert_condition_not_met(_upload(gcs_server, gcs_bucket, b"v3", ifGenerationMatch=stale))
    assert _read(gcs_server, gcs_bucket) == b"v2"


def test_upload_with_nonzero_generation_on_missing_object_is_412(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    _assert_condition_not_met(_upload(gcs_server, gcs_bucket, b"v1", ifGenerationMatch="123"))
    assert not _exists(gcs_server, gcs_bucket)


def test_multipart_upload_with_name_in_metadata_honours_precondition(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    _upload(gcs_server, gcs_bucket, b"v1")
    body = (
        b"--==0==\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        + json.dumps({"name": NAME}).encode()
        + b"\r\n--==0==\r\nContent-Type: application/octet-stream\r\n\r\nv2\r\n--==0==--"
    )
    resp = requests.post(
        f"{gcs_server.endpoint_url}/upload/storage/v1/b/{gcs_bucket}/o",
        params={"uploadType": "multipart", "ifGenerationMatch": "0"},
        data=body,
        headers={"Content-Type": 'multipart/related; boundary="==0=="'},
        timeout=30,
    )
    _assert_condition_not_met(resp)
    assert _read(gcs_server, gcs_bucket) == b"v1"


# ------------------------------------------------------------------- deletes


def test_delete_with_stale_generation_is_412(gcs_server: GcsServer, gcs_bucket: str) -> None:
    stale = _upload(gcs_server, gcs_bucket, b"v1").json()["generation"]
    _upload(gcs_server, gcs_bucket, b"v2")
    url = _object_url(gcs_server, gcs_bucket)
    _assert_condition_not_met(requests.delete(url, params={"ifGenerationMatch": stale}, timeout=30))
    assert _read(gcs_server, gcs_bucket) == b"v2"


def test_delete_with_current_generation_removes_object(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    generation = _upload(gcs_server, gcs_bucket, b"v1").json()["generation"]
    url = _object_url(gcs_server, gcs_bucket)
    resp = requests.delete(url, params={"ifGenerationMatch": generation}, timeout=30)
    assert resp.status_code in (200, 204)
    assert not _exists(gcs_server, gcs_bucket)


# --------------------------------------------------------------- concurrency


def test_concurrent_conditional_creates_exactly_one_wins(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    def attempt(i: int) -> int:
        return _upload(gcs_server, gcs_bucket, str(i).encode(), ifGenerationMatch="0").status_code

    statuses = _run_concurrently(16, attempt)
    assert sorted(statuses) == [200] + [412] * 15
    assert _read(gcs_server, gcs_bucket) == str(statuses.index(200)).encode()


def test_concurrent_conditional_replaces_exactly_one_wins(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    generation = _upload(gcs_server, gcs_bucket, b"base").json()["generation"]

    def attempt(i: int) -> int:
        data = str(i).encode()
        return _upload(gcs_server, gcs_bucket, data, ifGenerationMatch=generation).status_code

    statuses = _run_concurrently(16, attempt)
    assert sorted(statuses) == [200] + [412] * 15
    assert _read(gcs_server, gcs_bucket) == str(statuses.index(200)).encode()


# ------------------------------------------------------------------- clients


def test_gcsfs_storage_options_route_through_proxy(gcs_server: GcsServer, gcs_bucket: str) -> None:
    import gcsfs

    counter = gcs_server.faults.add(
        method="POST", path_regex=r"^/upload/", action="delay", times=None
    )
    fs = gcsfs.GCSFileSystem(skip_instance_cache=True, **gcs_server.storage_options)
    fs.pipe(f"{gcs_bucket}/fs.json", b'{"a": 1}')
    assert fs.cat(f"{gcs_bucket}/fs.json") == b'{"a": 1}'
    assert counter.fired == 1


# ----------------------------------------------------------- fault injection


def test_fault_reset_surfaces_connection_error_and_skips_write(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    rule = gcs_server.faults.add(method="POST", path_regex=r"^/upload/", action="reset")
    with pytest.raises(requests.ConnectionError):
        _upload(gcs_server, gcs_bucket, b"v1")
    assert rule.fired == 1
    assert not _exists(gcs_server, gcs_bucket)


def test_fault_status_503_is_returned_without_forwarding(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    rule = gcs_server.faults.add(method="POST", path_regex=r"^/upload/", status=503)
    resp = _upload(gcs_server, gcs_bucket, b"v1")
    assert resp.status_code == 503
    assert resp.json()["error"]["errors"][0]["reason"] == "backendError"
    assert rule.fired == 1
    assert not _exists(gcs_server, gcs_bucket)


def test_fault_drop_response_lands_write_but_client_sees_error(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    _upload(gcs_server, gcs_bucket, b"v1")
    rule = gcs_server.faults.add(
        method="POST", query_regex=r"uploadType=media", action="drop_response"
    )
    with pytest.raises(requests.ConnectionError):
        _upload(gcs_server, gcs_bucket, b"v2")
    assert rule.fired == 1
    assert _read(gcs_server, gcs_bucket) == b"v2"


def test_fault_delay_postpones_the_response(gcs_server: GcsServer, gcs_bucket: str) -> None:
    rule = gcs_server.faults.add(method="POST", action="delay", delay=0.3)
    started = time.monotonic()
    assert _upload(gcs_server, gcs_bucket, b"v1").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert rule.fired == 1


def test_fault_fires_at_most_times(gcs_server: GcsServer, gcs_bucket: str) -> None:
    rule = gcs_server.faults.add(method="POST", path_regex=r"^/upload/", status=500, times=2)
    statuses = [_upload(gcs_server, gcs_bucket, b"v1").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert rule.fired == 2


# ------------------------------------------------- a store that ignores conditions


def test_ignoring_insert_conditions_lets_conditional_uploads_land(
    gcs_server: GcsServer, gcs_bucket: str
) -> None:
    assert gcs_server.proxy is not None
    stale = _upload(gcs_server, gcs_bucket, b"old").json()["generation"]
    _upload(gcs_server, gcs_bucket, b"current")
    gcs_server.proxy.ignore_conditions = frozenset({"insert"})
    assert _upload(gcs_server, gcs_bucket, b"over", ifGenerationMatch="0").status_code == 200
    assert _read(gcs_server, gcs_bucket) == b"over"
    assert _upload(gcs_server, gcs_bucket, b"stale", ifGenerationMatch=stale).status_code == 200
    assert _read(gcs_server, gcs_bucket) == b"stale"
    # Deletes are not uploads: their conditions still hold.
    resp = requests.delete(
        _object_url(gcs_server, gcs_bucket), params={"ifGenerationMatch": stale}, timeout=30
    )
    _assert_condition_not_met(resp)


def test_ignore_conditions_takes_only_known_operations(gcs_server: GcsServer) -> None:
    assert gcs_server.proxy is not None
    with pytest.raises(ValueError, match="PutObject"):
        gcs_server.proxy.ignore_conditions = frozenset({"PutObject"})
