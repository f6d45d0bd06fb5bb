"""What plain Azurite does with the conditions the backend relies on.

These tests talk to Azurite with azure-storage-blob directly, never through the backend, so
they show what the emulator itself guarantees. They decide how the other tests run: since
Azurite evaluates ``If-Match`` / ``If-None-Match`` atomically (exactly one winner of every
race below), the backend's tests run against plain Azurite, and the harness proxy only
injects faults. Should an Azurite release stop enforcing a condition, these tests fail
first and say which.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobBlock, BlobClient, BlobServiceClient, ContainerClient

from .azurite_server import AzuriteServer

RACERS = 16
ROUNDS = 3


@pytest.fixture
def client(azurite: AzuriteServer, container: str) -> Iterator[ContainerClient]:
    service = BlobServiceClient.from_connection_string(
        azurite.connection_string(), retry_total=0, connection_pool_maxsize=RACERS * 2
    )
    with service:
        yield service.get_container_client(container)


def _status(exc: HttpResponseError) -> tuple[int | None, str]:
    code = getattr(exc, "error_code", None)
    return exc.status_code, str(getattr(code, "value", code))


def _block_id() -> str:
    return base64.b64encode(uuid.uuid4().hex.encode()).decode()


def _commit(blob: BlobClient, data: bytes, **conditions: Any) -> dict[str, Any]:
    block = _block_id()
    blob.stage_block(block, data)
    return blob.commit_block_list([BlobBlock(block)], **conditions)


def _race(attempt: Callable[[int], object]) -> list[str]:
    """Run ``attempt(i)`` in RACERS threads released together; ``ok`` or the HTTP status."""
    barrier = threading.Barrier(RACERS)

    def go(i: int) -> str:
        barrier.wait()
        try:
            attempt(i)
        except HttpResponseError as exc:
            return str(exc.status_code)
        return "ok"

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(go, range(RACERS)))


def _body(i: int) -> bytes:
    # Large enough that Azurite spends real time storing it between check and commit.
    return bytes([i]) * (64 * 1024 + i)


# --- Put Blob --------------------------------------------------------------------------


def test_put_if_none_match_over_existing_blob_is_409_blob_already_exists(
    client: ContainerClient,
) -> None:
    blob = client.get_blob_client("m.json")
    blob.upload_blob(b"one")
    with pytest.raises(HttpResponseError) as info:
        blob.upload_blob(b"two", overwrite=True, match_condition=MatchConditions.IfMissing)
    assert _status(info.value) == (409, "BlobAlreadyExists")
    assert blob.download_blob().readall() == b"one"


def test_put_if_match_stale_etag_is_412_condition_not_met(client: ContainerClient) -> None:
    blob = client.get_blob_client("m.json")
    stale = blob.upload_blob(b"one")["etag"]
    blob.upload_blob(b"two", overwrite=True)
    with pytest.raises(HttpResponseError) as info:
        blob.upload_blob(
            b"three", overwrite=True, etag=stale, match_condition=MatchConditions.IfNotModified
        )
    assert _status(info.value) == (412, "ConditionNotMet")
    assert blob.download_blob().readall() == b"two"


def test_put_if_match_on_missing_blob_is_412(client: ContainerClient) -> None:
    # Real Azure may answer 404 here; the backend reads both as a conflict.
    blob = client.get_blob_client("m.json")
    with pytest.raises(HttpResponseError) as info:
        blob.upload_blob(
            b"x", overwrite=True, etag='"0x1"', match_condition=MatchConditions.IfNotModified
        )
    assert info.value.status_code in (404, 412)


def test_every_write_gets_a_new_etag_even_for_the_same_bytes(client: ContainerClient) -> None:
    blob = client.get_blob_client("m.json")
    first = blob.upload_blob(b"same")["etag"]
    second = blob.upload_blob(b"same", overwrite=True)["etag"]
    assert first != second
    assert blob.download_blob().properties.etag == second


# --- Put Block / Put Block List ---------------------------------------------------------


def test_block_list_if_match_stale_etag_is_412(client: ContainerClient) -> None:
    blob = client.get_blob_client("m.json")
    stale = blob.upload_blob(b"one")["etag"]
    blob.upload_blob(b"two", overwrite=True)
    with pytest.raises(HttpResponseError) as info:
        _commit(blob, b"three", etag=stale, match_condition=MatchConditions.IfNotModified)
    assert _status(info.value) == (412, "ConditionNotMet")
    assert blob.download_blob().readall() == b"two"


def test_block_list_if_none_match_over_existing_blob_is_409(client: ContainerClient) -> None:
    blob = client.get_blob_client("m.json")
    blob.upload_blob(b"one")
    with pytest.raises(HttpResponseError) as info:
        _commit(blob, b"two", match_condition=MatchConditions.IfMissing)
    assert _status(info.value) == (409, "BlobAlreadyExists")
    assert blob.download_blob().readall() == b"one"


def test_staged_blocks_are_invisible_until_committed(client: ContainerClient) -> None:
    blob = client.get_blob_client("m.json")
    blob.stage_block(_block_id(), b"never committed")
    with pytest.raises(HttpResponseError) as info:
        blob.download_blob()
    assert info.value.status_code == 404
    assert [b.name for b in client.list_blobs()] == []
    # For a block-list create, a blob with only uncommitted blocks does not exist.
    _commit(blob, b"created", match_condition=MatchConditions.IfMissing)
    assert blob.download_blob().readall() == b"created"


def test_azurite_refuses_a_put_blob_create_over_staged_blocks(client: ContainerClient) -> None:
    """A divergence to know about: Put Blob with If-None-Match: * answers 409 when the blob
    has only uncommitted blocks, although GET, listing and Put Block List (above) treat that
    blob as absent. It can only refuse a create, never let one overwrite; the backend's
    tests show what that means for a writer (test_azure_backend.py)."""
    blob = client.get_blob_client("m.json")
    blob.stage_block(_block_id(), b"left by a writer killed while staging")
    with pytest.raises(HttpResponseError) as info:
        blob.upload_blob(b"x", overwrite=True, match_condition=MatchConditions.IfMissing)
    assert _status(info.value) == (409, "BlobAlreadyExists")


def test_a_commit_discards_other_writers_staged_blocks(client: ContainerClient) -> None:
    blob = client.get_blob_client("m.json")
    theirs = _block_id()
    blob.stage_block(theirs, b"staged by a slower writer")
    _commit(blob, b"committed by a faster one")
    with pytest.raises(HttpResponseError) as info:
        blob.commit_block_list([BlobBlock(theirs)])
    assert _status(info.value) == (400, "InvalidBlockList")


# --- races: exactly one winner ----------------------------------------------------------


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_racing_put_if_none_match_has_exactly_one_winner(
    client: ContainerClient, round_: int
) -> None:
    blob = client.get_blob_client(f"race-{round_}")
    outcomes = _race(
        lambda i: blob.upload_blob(
            _body(i), overwrite=True, match_condition=MatchConditions.IfMissing
        )
    )
    assert sorted(outcomes) == ["409"] * (RACERS - 1) + ["ok"]
    assert blob.download_blob().readall() == _body(outcomes.index("ok"))


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_racing_put_if_match_has_exactly_one_winner(client: ContainerClient, round_: int) -> None:
    blob = client.get_blob_client(f"race-{round_}")
    etag = blob.upload_blob(b"start")["etag"]
    outcomes = _race(
        lambda i: blob.upload_blob(
            _body(i), overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified
        )
    )
    assert sorted(outcomes) == ["412"] * (RACERS - 1) + ["ok"]
    assert blob.download_blob().readall() == _body(outcomes.index("ok"))


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_racing_block_list_commits_on_one_etag_have_exactly_one_winner(
    client: ContainerClient, round_: int
) -> None:
    blob = client.get_blob_client(f"race-{round_}")
    etag = blob.upload_blob(b"start")["etag"]
    outcomes = _race(
        lambda i: _commit(blob, _body(i), etag=etag, match_condition=MatchConditions.IfNotModified)
    )
    # Losers fail on the condition (412), or, if a winner's commit already discarded their
    # staged blocks, on the block list (400): either way they change nothing.
    assert outcomes.count("ok") == 1
    assert set(outcomes) <= {"ok", "412", "400"}
    assert blob.download_blob().readall() == _body(outcomes.index("ok"))


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_racing_block_list_creates_have_exactly_one_winner(
    client: ContainerClient, round_: int
) -> None:
    blob = client.get_blob_client(f"race-{round_}")
    outcomes = _race(lambda i: _commit(blob, _body(i), match_condition=MatchConditions.IfMissing))
    assert outcomes.count("ok") == 1
    assert set(outcomes) <= {"ok", "409", "400"}
    assert blob.download_blob().readall() == _body(outcomes.index("ok"))


def test_a_get_returns_the_etag_of_the_bytes_it_returns(client: ContainerClient) -> None:
    """Under concurrent overwrites, every (bytes, ETag) a GET returns belong together."""
    blob = client.get_blob_client("m.json")
    written: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()
    mismatches: list[str] = []

    def writer(n: int) -> None:
        for i in range(15):
            data = f"writer {n} write {i} ".encode() * 5000
            etag = str(blob.upload_blob(data, overwrite=True)["etag"])
            with lock:
                written[etag] = data

    def reader() -> None:
        while not stop.is_set():
            download = blob.download_blob()
            data, etag = download.readall(), str(download.properties.etag)
            with lock:
                expected = written.get(etag)
            if expected is not None and expected != data:
                mismatches.append(etag)

    blob.upload_blob(b"start")
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(writer, range(3)))
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert len(written) == 45
    assert mismatches == []
