"""Managers and manifests keep working in child processes, forked or spawned.

``multiprocessing`` forks on Linux by default: a worker gets a copy of the parent's
manager, with locks that other threads may have held at that moment and clients whose
event loop thread stayed behind. These tests hand a manager created (and used) in the
parent to ``Pool`` workers, with the ``fork`` and the ``spawn`` start methods, on every
backend, and check that the parent then loads every record the workers added. Then they
fork while another thread is inside ``add_record`` (holding the manifest's lock and the
backend's own: the file lock, the SQLite pool's lock, the memory store's lock, an S3 or GCS
request in flight) and check that the child finishes instead of hanging.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.pool
import os
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from etl_manifests import Manifest, ManifestManager, StorageBackend
from etl_manifests.backends import memory
from etl_manifests.backends.local import LocalBackend
from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.storage import Expect
from etl_manifests.testing import GcsServer, S3Server
from torture._fork_worker import (
    add_records,
    add_records_fresh,
    checksum,
    record,
    set_environment,
)

pytestmark = pytest.mark.torture

KINDS = [
    "local",
    "memory",
    "sqlite",
    pytest.param("s3", marks=pytest.mark.s3),
    pytest.param("gcs", marks=pytest.mark.gcs),
]
FAST = {"etl_manifests_retries": 8, "etl_manifests_retry_base": 0.01}
#: A child that has not finished by then is hung (they take well under a second).
CHILD_TIMEOUT = 30.0


@dataclass
class Root:
    kind: str
    url: str
    options: dict[str, Any]
    s3: S3Server | None = None
    gcs: GcsServer | None = None

    def manager(self) -> ManifestManager:
        return ManifestManager(self.url, "1.0.0", storage_options=self.options)


@pytest.fixture
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Root:
    kind = request.param
    if kind == "local":
        return Root(kind, str(tmp_path / "manifests"), {})
    if kind == "memory":
        return Root(kind, f"memory://fork-{uuid.uuid4().hex}", {})
    if kind == "sqlite":
        return Root(kind, f"sqlite:///{tmp_path}/state.db", {})
    if kind == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        return Root(kind, f"s3://{bucket}/fork", {**s3.storage_options, **FAST}, s3=s3)
    gcs: GcsServer = request.getfixturevalue("gcs_server")
    bucket = request.getfixturevalue("gcs_bucket")
    return Root(kind, f"gs://{bucket}/fork", {**gcs.storage_options, **FAST}, gcs=gcs)


# --- Pool workers, fork and spawn -----------------------------------------------------


@pytest.fixture(scope="module")
def spawn_pool() -> Iterator[multiprocessing.pool.Pool]:
    """Two spawned workers for the whole module (starting interpreters is the slow part)."""
    env = {"GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}  # before the workers import gcsfs
    with multiprocessing.get_context("spawn").Pool(2, set_environment, (env,)) as pool:
        yield pool


def _run_in_pool(
    manager: ManifestManager, method: str, request: pytest.FixtureRequest
) -> list[dict[str, Any]]:
    tasks = [(100, 3), (200, 3)]
    if method == "fork":
        # Forked after the manager was created and used: the workers inherit it.
        with multiprocessing.get_context("fork").Pool(2) as pool:
            return pool.starmap(add_records, [(manager, *task) for task in tasks])
    pool = request.getfixturevalue("spawn_pool")
    pickled = pickle.dumps(manager)
    return list(pool.starmap(add_records_fresh, [(pickled, *task) for task in tasks]))


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.parametrize("root", KINDS, indirect=True)
def test_pool_workers_add_through_the_parents_manager(
    root: Root, method: str, request: pytest.FixtureRequest
) -> None:
    manager = root.manager()
    manager.extractor.add_record(record(0))  # clients, sessions and locks now in use
    reports = _run_in_pool(manager, method, request)
    mine = {checksum(n) for n in (100, 101, 102, 200, 201, 202)}
    for report in reports:
        assert report["singleton"], report  # the manager handed over is the worker's own
        assert report["pid"] != os.getpid()
    manager.extractor.load()
    stored = {r.checksum for r in manager.extractor}
    if root.kind == "memory":
        # Memory stores live in one process: each worker saw its own records only.
        for report, first in zip(reports, (100, 200), strict=True):
            assert {checksum(n) for n in range(first, first + 3)} <= set(report["seen"])
        assert stored == {checksum(0)}
    else:
        assert stored == mine | {checksum(0)}


# --- forking while another thread is inside add_record --------------------------------


@dataclass
class Hold:
    """A thread paused inside ``add_record(record(1))``, and how to let it go."""

    thread: threading.Thread
    entered: threading.Event
    release: threading.Event
    # Whether the child's own commit needs the paused thread to finish first (it holds a
    # lock that other processes honour too, like the local file lock).
    release_before_child: bool


class _Pause:
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.armed = True

    def __call__(self) -> None:
        if self.armed:
            self.armed = False
            self.entered.set()
            assert self.release.wait(CHILD_TIMEOUT)


class PausingLocal(LocalBackend):
    """Pauses the first commit while it holds the manifest's lock: inside the file lock
    of a replace, or inside the lock-free create that a log entry is."""

    pause = _Pause()

    def _commit(self, key: str, path: Path, staged: Path, expect: Expect) -> str:
        type(self).pause()
        return super()._commit(key, path, staged, expect)

    def _create(self, key: str, path: Path, staged: Path) -> str | None:
        type(self).pause()
        return super()._create(key, path, staged)


class PausingMemory(MemoryBackend):
    """Pauses the first write while it holds the memory store's lock."""

    pause = _Pause()

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        with memory._lock:
            type(self).pause()
        return super().write(key, data, expect=expect)


def _pausing_sqlite(url: str) -> StorageBackend:
    from etl_manifests_sqlite.backend import SQLiteBackend

    class PausingSQLite(SQLiteBackend):
        """Pauses the first write while it holds the connection pool's lock."""

        pause = _Pause()

        def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
            with self._lock:
                type(self).pause()
            return super().write(key, data, expect=expect)

    return PausingSQLite(url, {})


def _open_pausing(root: Root) -> tuple[Manifest, Callable[[], Hold]]:
    """A manifest whose next commit pauses inside the backend, and how to start it."""
    if root.kind in ("s3", "gcs"):
        # A real request in flight: the proxy holds the commit's response back.
        manifest = root.manager().extractor
        manifest.add_record(record(0))
        server = root.s3 if root.s3 is not None else root.gcs
        assert server is not None
        step = (
            {"method": "PUT", "header": "x-amz-copy-source"}
            if root.kind == "s3"
            else {"method": "POST", "path_regex": r"^/upload/"}
        )
        rule = server.faults.add(action="delay", delay=0.5, **step)
        released = threading.Event()
        released.set()

        def start_s3_gcs() -> Hold:
            entered = threading.Event()
            thread = threading.Thread(target=manifest.add_record, args=(record(1),), daemon=True)
            thread.start()
            deadline = time.monotonic() + CHILD_TIMEOUT
            while not rule.fired and time.monotonic() < deadline:
                time.sleep(0.005)
            entered.set()
            return Hold(thread, entered, released, release_before_child=True)

        return manifest, start_s3_gcs
    backend: StorageBackend
    if root.kind == "local":
        PausingLocal.pause = _Pause()
        backend, pause = PausingLocal(root.url), PausingLocal.pause
    elif root.kind == "memory":
        PausingMemory.pause = _Pause()
        backend = PausingMemory(root.url)
        pause = PausingMemory.pause
    else:
        backend = _pausing_sqlite(root.url)
        pause = type(backend).pause  # type: ignore[attr-defined]
    pause.armed = False
    manifest = Manifest("extractor", "1.0.0", backend)
    manifest.add_record(record(0))
    pause.armed = True

    def start() -> Hold:
        thread = threading.Thread(target=manifest.add_record, args=(record(1),), daemon=True)
        thread.start()
        return Hold(thread, pause.entered, pause.release, root.kind == "local")

    return manifest, start


def _in_batch(manifest: Manifest) -> Hold:
    """A thread inside ``batch()`` that has added record(1) and waits there."""
    entered, release = threading.Event(), threading.Event()

    def work() -> None:
        with manifest.batch():
            manifest.add_record(record(1))
            entered.set()
            assert release.wait(CHILD_TIMEOUT)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return Hold(thread, entered, release, release_before_child=False)


def _lock_files_open() -> list[str]:
    """Lock files this process has open (Linux only; empty elsewhere)."""
    found = []
    with_fds = Path("/proc/self/fd")
    for fd in with_fds.iterdir() if with_fds.is_dir() else ():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith(".lock"):
            found.append(target)
    return found


def _add_in_child(manifest: Manifest) -> Callable[[], dict[str, Any]]:
    """What the child does: add record(2), load, report what it saw."""

    def run() -> dict[str, Any]:
        report: dict[str, Any] = {"lock_files": _lock_files_open()}
        report["before"] = sorted(r.checksum for r in manifest)
        manifest.add_record(record(2))
        manifest.load()
        report["after"] = sorted(r.checksum for r in manifest)
        return report

    return run


def _child(run: Callable[[], dict[str, Any]], write: int) -> None:
    """In the forked child: ``run()`` and report; never return into pytest."""
    code = 1
    try:
        os.write(write, json.dumps(run()).encode())
        code = 0
    except BaseException as exc:
        os.write(write, json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
    finally:
        os._exit(code)


def _wait(pid: int) -> bool:
    """Whether child ``pid`` exited within CHILD_TIMEOUT; a hung child is killed."""
    deadline = time.monotonic() + CHILD_TIMEOUT
    while time.monotonic() < deadline:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            return True
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return False


def _fork_and_check(run: Callable[[], dict[str, Any]], hold: Hold) -> dict[str, Any]:
    assert hold.entered.wait(CHILD_TIMEOUT)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child leaves through os._exit
        os.close(read)
        _child(run, write)
    os.close(write)
    try:
        if hold.release_before_child:
            hold.release.set()
        finished = _wait(pid)
        hold.release.set()
        output = b""
        while chunk := os.read(read, 65536):
            output += chunk
    finally:
        os.close(read)
    assert finished, "the forked child hung"
    report: dict[str, Any] = json.loads(output)
    assert "error" not in report, report["error"]
    return report


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("root", KINDS, indirect=True)
def test_fork_while_another_thread_commits(root: Root) -> None:
    manifest, start = _open_pausing(root)
    hold = start()
    report = _fork_and_check(_add_in_child(manifest), hold)
    assert checksum(2) in report["after"]
    # The file lock the other thread held is not kept open in the child: were the parent
    # to die holding it, the child's copy would keep every writer out.
    assert report["lock_files"] == []
    hold.thread.join(CHILD_TIMEOUT)
    assert not hold.thread.is_alive()
    manifest.load()
    if root.kind != "memory":
        assert {checksum(n) for n in (0, 1, 2)} <= {r.checksum for r in manifest}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("root", KINDS, indirect=True)
def test_fork_while_another_thread_is_in_a_batch(root: Root) -> None:
    manager = root.manager()
    manifest = manager.extractor
    manifest.add_record(record(0))
    hold = _in_batch(manifest)
    report = _fork_and_check(_add_in_child(manifest), hold)
    # The child neither hangs nor commits the other thread's unfinished batch: that
    # batch belongs to the parent, which may still roll it back.
    assert checksum(1) not in report["before"]
    assert report["after"] == sorted({checksum(0), checksum(2)})
    hold.thread.join(CHILD_TIMEOUT)
    assert not hold.thread.is_alive()
    manifest.load()
    expected = {0, 1} if root.kind == "memory" else {0, 1, 2}
    assert {r.checksum for r in manifest} == {checksum(n) for n in expected}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("root", ["local"], indirect=True)
def test_fork_while_another_thread_constructs_a_manager(root: Root) -> None:
    entered, release = threading.Event(), threading.Event()

    def constructing() -> None:
        # What a thread opening a slow backend inside ManifestManager(...) holds.
        with ManifestManager._instance_lock:
            entered.set()
            assert release.wait(CHILD_TIMEOUT)

    thread = threading.Thread(target=constructing, daemon=True)
    thread.start()

    def run() -> dict[str, Any]:
        manager = root.manager()
        manager.extractor.add_record(record(2))
        return {"records": len(manager.extractor)}

    report = _fork_and_check(run, Hold(thread, entered, release, release_before_child=False))
    assert report["records"] == 1
    thread.join(CHILD_TIMEOUT)
