"""Writers in separate processes: races, concurrent manifests, and SIGKILL mid-commit.

Every process talks to the same plain Azurite. Manifests here cross from the one-request
Put Blob path to the staged-blocks path as they grow (``etl_manifests_max_single_put`` is
2 KiB, about seven records), so both commit paths, and the switch, meet concurrent writers
and kills. The processes are forked by a server that has the SDK imported already (see
``_azure_worker.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from etl_manifests import Manifest, ManifestManager, open_backend
from etl_manifests.errors import NotFoundError

PROCESSES = 4
#: Small manifests go as one Put Blob, larger ones as 1 KiB blocks.
MIXED = {"etl_manifests_max_single_put": 2048, "etl_manifests_block_size": 1024}
BLOCKS_ONLY = {"etl_manifests_max_single_put": 1, "etl_manifests_block_size": 1024}
_TIMEOUT_S = 120.0

SERVER = Path(__file__).with_name("_azure_worker.py")


class ForkServer:
    """``_azure_worker.py`` running as a fork server (see its docstring)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> int:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            pytest.fail("the worker fork server died")
        return int(answer)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server() -> Iterator[ForkServer]:
    forks = ForkServer()
    yield forks
    forks.close()


class Worker:
    """One worker process and the lines it has written so far."""

    def __init__(self, server: ForkServer, work: str, args: dict[str, Any], folder: Path) -> None:
        self.server = server
        self.out = folder / f"worker-{uuid.uuid4().hex[:8]}.out"
        self.out.touch()
        self.pid = server.ask(f"start {work} {self.out} {json.dumps(args)}")
        self.exitcode: int | None = None

    def lines(self) -> list[str]:
        text = self.out.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]  # ignore a line still being written
        return complete.split()

    def wait_for_lines(self, count: int) -> list[str]:
        """Wait until the worker has written ``count`` lines; fail if it errs or dies."""
        deadline = time.monotonic() + _TIMEOUT_S
        while True:
            text = self.out.read_text(encoding="utf-8")
            if "error" in text:
                pytest.fail(f"a worker failed:\n{text[-3000:]}")
            lines = self.lines()
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                pytest.fail(f"a worker stalled after {len(lines)} lines: {text[-3000:]}")
            time.sleep(0.002)

    def kill(self) -> int:
        """SIGKILL the worker (if it still runs) and return its exit status."""
        if self.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.exitcode = self.server.ask(f"wait {self.pid}")
        return self.exitcode


def _checksum(n: int) -> str:
    return f"{n:064x}"


def _load(root: str, options: dict[str, Any]) -> Manifest:
    ManifestManager.reset()
    return ManifestManager(root, "1.0.0", storage_options=options).extractor


def test_processes_racing_one_version_have_exactly_one_winner(
    container: str, plain_options: dict[str, Any], tmp_path: Path, server: ForkServer
) -> None:
    cases = [
        ("create, one Put Blob", "absent", plain_options),
        ("replace, one Put Blob", "token", plain_options),
        ("create, blocks", "absent", {**plain_options, **BLOCKS_ONLY}),
        ("replace, blocks", "token", {**plain_options, **BLOCKS_ONLY}),
    ]
    rounds: list[dict[str, Any]] = []
    for n, (_name, expect, options) in enumerate(cases):
        root = f"az://{container}/race-{n}"
        backend = open_backend(root, options)
        token = backend.write("race.json", b"start") if expect == "token" else "absent"
        rounds.append(
            {"root": root, "options": options, "expect": token, "go": f"{tmp_path}/go{n}"}
        )
    workers = [
        Worker(server, "race", {"rounds": rounds, "size": 300}, tmp_path) for _ in range(PROCESSES)
    ]
    try:
        for n, ((name, _expect, options), round_) in enumerate(zip(cases, rounds, strict=True)):
            for worker in workers:
                worker.wait_for_lines(2 * n + 1)  # this round's "ready"
            Path(round_["go"]).touch()
            outcomes = [worker.wait_for_lines(2 * n + 2)[2 * n + 1] for worker in workers]
            assert sorted(outcomes) == ["lost"] * (PROCESSES - 1) + ["won"], name
            stored = open_backend(round_["root"], options).read("race.json").data
            assert stored.startswith(b"writer "), name
    finally:
        for worker in workers:
            worker.kill()


def test_concurrent_manifest_writers_in_processes_lose_no_record(
    container: str, plain_options: dict[str, Any], tmp_path: Path, server: ForkServer
) -> None:
    options = {**plain_options, **MIXED}
    root, each = f"az://{container}/writers", 6
    workers = [
        Worker(
            server,
            "add",
            {"root": root, "options": options, "start": i * each, "count": each},
            tmp_path,
        )
        for i in range(PROCESSES)
    ]
    try:
        reported = {line for w in workers for line in w.wait_for_lines(1 + each)[1:]}
    finally:
        for worker in workers:
            worker.kill()
    assert len(reported) == PROCESSES * each
    manifest = _load(root, options)
    assert [c for c in reported if c not in manifest] == []
    assert len(manifest) == PROCESSES * each


def test_a_writer_killed_mid_commit_loses_nothing_it_reported(
    container: str, plain_options: dict[str, Any], tmp_path: Path, server: ForkServer
) -> None:
    """SIGKILL at random moments; everything reported as added must be there, with no gap
    (one writer adds records 0, 1, 2, ... in order), and the manifest must stay loadable.

    Each writer is killed after it reported a random number of records (0 to 3) plus a
    random few milliseconds, so kills land at random points of its commit cycle however
    fast or slow the machine is."""
    options = {**plain_options, **MIXED}
    root = f"az://{container}/killed-{uuid.uuid4().hex[:6]}"
    rng = random.Random(int(os.environ.get("TORTURE_SEED", "20240611")))
    plan = [rng.randint(0, 3) for _ in range(12)]
    reported: set[str] = set()
    next_n = 0
    for after in plan:
        args = {"root": root, "options": options, "start": next_n, "count": None}
        worker = Worker(server, "add", args, tmp_path)
        try:
            worker.wait_for_lines(1 + after)
            time.sleep(rng.uniform(0.0, 0.03))
        finally:
            status = worker.kill()
        assert status == -signal.SIGKILL, worker.out.read_text()[-3000:]
        reported |= set(worker.lines()[1:])
        try:
            manifest = _load(root, options)
        except NotFoundError:
            assert not reported, "the manifest vanished after records were reported"
            continue
        assert [c for c in reported if c not in manifest] == [], "reported records were lost"
        count = len(manifest)
        assert {r.checksum for r in manifest} == {_checksum(i) for i in range(count)}, "a gap"
        assert count >= next_n + after
        next_n = count
    assert next_n * 300 > MIXED["etl_manifests_max_single_put"], "never reached the block path"
    # What killed writers leave behind on the block path is invisible and harmless: every
    # listed object reads whole.
    backend = open_backend(root, options)
    for info in backend.list():
        assert len(backend.read(info.key).data) == info.size
    survivor = _load(root, options)
    survivor.add_record({"checksum": _checksum(next_n), "filename": "z.gz", "filepath": "/z.gz"})
    assert len(_load(root, options)) == next_n + 1
