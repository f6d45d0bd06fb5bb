"""A fault at each request of a manifest's life: nothing lost, nothing extra.

The scenario opens a manifest, adds two records in one batch and adds a third (with the
store capability check before the first write), once with one-request Put Blob commits
and once with every body staged in blocks. A dry run records its requests through the
proxy; then, for every position in that sequence, the scenario runs again with one fault
injected there: a 503, a reset before the request is forwarded, or a response lost after
the write landed (see ``_faults_for``). Each run must end with exactly the three records
stored, read back by a fresh manifest.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from etl_manifests import Manifest, ManifestManager, RetryPolicy

from .azure_fault_proxy import Fault, FaultProxy

BLOCK_PATH = {"etl_manifests_max_single_put": 1, "etl_manifests_block_size": 4096}
ACTIONS = ("status", "reset", "drop_response")


def _record(n: int) -> dict[str, Any]:
    return {"checksum": f"{n:064x}", "filename": f"f{n}.gz", "filepath": f"/data/f{n}.gz"}


def _open(root: str, options: dict[str, Any]) -> Manifest:
    ManifestManager.reset()
    manager = ManifestManager(
        root, "1", storage_options=options, retry=RetryPolicy(20, 0.001, 0.01)
    )
    return manager.extractor


def _scenario(root: str, options: dict[str, Any]) -> None:
    manifest = _open(root, options)
    with manifest.batch():
        manifest.add_record(_record(1))
        manifest.add_record(_record(2))
    manifest.add_record(_record(3))


def _requests_of_scenario(container: str, options: dict[str, Any], proxy: FaultProxy) -> list[str]:
    with proxy.recording() as seen:
        _scenario(f"az://{container}/dry-{uuid.uuid4().hex[:6]}", options)
    return [r.op for r in seen]


def _faults_for(path: str, position: int, op: str) -> tuple[str, ...]:
    """The faults to try at one request.

    On the one-request path, every fault at every write, and at reads the two that differ
    there (a lost answer to a GET is the same to the client as a reset). On the block path,
    one fault per request, taking turns, so each kind meets blocks and block lists.
    """
    if path == "blocks":
        return (ACTIONS[position % len(ACTIONS)],)
    return ACTIONS if op.startswith(("put", "delete")) else ("status", "reset")


@pytest.mark.parametrize("path", ["put", "blocks"])
def test_a_fault_at_any_request_loses_nothing(
    container: str, proxied_options: dict[str, Any], proxy: FaultProxy, path: str
) -> None:
    options = {**proxied_options, **(BLOCK_PATH if path == "blocks" else {})}
    ops = _requests_of_scenario(container, options, proxy)
    writes = {"put_blob"} if path == "put" else {"put_block", "put_block_list"}
    assert (
        writes <= set(ops) <= {"get", "list", "delete", "put_blob", "put_block", "put_block_list"}
    )
    runs = 0
    for position, op in enumerate(ops):
        skip = ops[:position].count(op)  # earlier requests of the same operation pass
        for action in _faults_for(path, position, op):
            proxy.reset()
            fault = proxy.add(Fault(action, op=op, skip=skip))  # type: ignore[arg-type]
            root = f"az://{container}/{path}-{position}-{action}"
            _scenario(root, options)
            assert fault.fired == 1, (position, op, action)
            stored = _open(root, options)
            assert sorted(r.checksum for r in stored) == [_record(n)["checksum"] for n in (1, 2, 3)]
            runs += 1
    assert runs >= len(ops)
