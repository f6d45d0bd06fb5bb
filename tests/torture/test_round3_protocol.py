"""Reliability, round three: paused and idle writers, the complete-JSON promise, cleanup.

Each test holds one actor at a chosen storage operation (:class:`Pause`, as SIGSTOP
would) while the others go on, then lets it resume, and checks what a fresh reader, or
the JSON file alone, holds afterwards.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import checksum, record
from etl_manifests import CheckpointPolicy, Manifest, open_backend
from etl_manifests import commitlog as commitlog_module
from etl_manifests.layout import LogLayout
from etl_manifests.storage import Blob, StorageBackend, staging_key
from etl_manifests.testing import ManifestRoot
from torture._pause import Pause, run_in_thread
from torture._support import ETL_VERSION, KEY

pytestmark = pytest.mark.torture

LAYOUT = LogLayout(KEY.removesuffix(".json"))
NEVER = CheckpointPolicy(every=None)
NO_RETENTION = CheckpointPolicy(every=None, retention=timedelta(0))


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> ManifestRoot:
    if request.param == "local":
        return ManifestRoot(str(tmp_path / "manifests"))
    return ManifestRoot(f"memory://{tmp_path.name}")


@pytest.fixture(params=["local", "memory", "s3", "gcs"])
def any_root(request: pytest.FixtureRequest, tmp_path: Path) -> ManifestRoot:
    """Every built-in store: S3 and GCS behind the emulators' enforcing proxies."""
    if request.param in ("s3", "gcs"):
        found: ManifestRoot = request.getfixturevalue(f"{request.param}_manifest_root")
        return found
    if request.param == "local":
        return ManifestRoot(str(tmp_path / "manifests"))
    return ManifestRoot(f"memory://{tmp_path.name}")


def backend(root: ManifestRoot) -> StorageBackend:
    return open_backend(root.url, root.storage_options)


def manifest(root: ManifestRoot, store: StorageBackend | None = None, **kwargs: Any) -> Manifest:
    return Manifest("extractor", ETL_VERSION, store or backend(root), **kwargs)


def is_seal(key: str) -> bool:
    return key.endswith(".seal")


def is_entry(key: str) -> bool:
    return key.startswith(LAYOUT.log_prefix) and key.endswith(".json")


def stored_json(root: ManifestRoot) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(backend(root).read(KEY).data)
    return data


# --- item 1: a writer paused past the retention --------------------------------------


def test_a_writer_paused_past_the_retention_does_not_reapply_its_commit(
    any_root: ManifestRoot,
) -> None:
    root = any_root
    manifest(root).add_record(record(0))
    # A's entry lands; A stops before it reads the seal of its epoch.
    paused = Pause(backend(root), lambda op, key: op == "read" and is_seal(key))
    a = manifest(root, paused, checkpoint=NEVER)
    paused.arm()
    a_commit = run_in_thread(lambda: a.add_records([record(1), record(2)]))
    assert paused.reached.wait(10)

    # B sees A's records, removes one, replaces the other, and checkpoints twice, the
    # second time after the retention (zero here), so A's epoch is folded and deleted.
    b = manifest(root, checkpoint=NO_RETENTION)
    assert checksum(1) in b
    assert checksum(2) in b
    b.remove_record(checksum(1))
    b.add_record(record(2, etag="newer"))
    b.compact()
    b.add_record(record(3))
    b.compact()

    paused.go.set()
    a_commit.result()
    fresh = manifest(root)
    assert checksum(1) not in fresh, "a removal made after seeing the record was undone"
    got = fresh.get(checksum(2))
    assert got is not None
    assert got.etag == "newer", "an older value came back"
    # The initial record, A's one commit, B's three: A's commit counts once.
    assert fresh.metadata.revision == 5


def test_a_paused_writer_is_told_its_commit_landed_even_after_cleanup(root: ManifestRoot) -> None:
    manifest(root).add_record(record(0))
    paused = Pause(backend(root), lambda op, key: op == "read" and is_seal(key))
    a = manifest(root, paused, checkpoint=NEVER)
    paused.arm()
    a_commit = run_in_thread(lambda: a.add_record(record(1)))
    assert paused.reached.wait(10)
    b = manifest(root, checkpoint=NO_RETENTION)
    b.compact()
    b.add_record(record(2))
    b.compact()
    paused.go.set()
    a_commit.result()
    # A wrote no second entry: nothing of A's is in the log any more.
    assert not [k for k in backend(root).list(LAYOUT.log_prefix) if is_entry(k.key)]
    assert {checksum(0), checksum(1), checksum(2)} == set(manifest(root).records)


# --- item 3: the JSON file complete with after_every_commit() and compact() ----------


def test_compact_folds_commits_made_in_epochs_it_has_not_seen(root: ManifestRoot) -> None:
    manifest(root).add_record(record(0))
    stale = manifest(root, checkpoint=NEVER)  # knows epoch 1 only
    other = manifest(root, checkpoint=NEVER)
    other.compact()  # seals epoch 1
    other.add_record(record(1))  # acknowledged, in epoch 2
    stale.compact()
    assert checksum(1) in stored_json(root)["records"]


def test_a_checkpoint_that_loses_to_an_older_fold_folds_again(root: ManifestRoot) -> None:
    manifest(root).add_record(record(0))
    # B prepares a fold of epoch 1 and stops before writing the snapshot.
    b_paused = Pause(backend(root), lambda op, key: op == "write" and key == KEY)
    b = manifest(root, b_paused, checkpoint=NEVER)
    b_paused.arm()
    b_fold = run_in_thread(b.compact)
    assert b_paused.reached.wait(10)
    # A commits (epoch 1 is sealed: its entry goes into epoch 2) and folds up to 2, but
    # B's older fold lands first.
    a_paused = Pause(backend(root), lambda op, key: op == "write" and key == KEY)
    a = manifest(root, a_paused, checkpoint=CheckpointPolicy.after_every_commit())
    a_paused.arm()
    a_commit = run_in_thread(lambda: a.add_record(record(1)))
    assert a_paused.reached.wait(10)
    b_paused.go.set()
    b_fold.result()
    a_paused.go.set()
    a_commit.result()
    assert checksum(1) in stored_json(root)["records"]


def test_after_every_commit_keeps_the_json_complete_with_several_writers(
    root: ManifestRoot,
) -> None:
    manifest(root).add_record(record(0))
    missing: list[int] = []
    lock = threading.Lock()

    def writer(first: int) -> None:
        m = manifest(root, checkpoint=CheckpointPolicy.after_every_commit())
        for n in range(first, first + 15):
            m.add_record(record(n))
            if checksum(n) not in stored_json(root)["records"]:
                with lock:
                    missing.append(n)

    threads = [threading.Thread(target=writer, args=(100 * (i + 1),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not missing, f"{len(missing)} of 60 acknowledged records absent from the JSON"


def test_compact_returns_with_every_earlier_acknowledged_record_in_the_json(
    root: ManifestRoot,
) -> None:
    manifest(root).add_record(record(0))
    acked: set[str] = {checksum(0)}
    missing: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(first: int) -> None:
        m = manifest(root, checkpoint=NEVER)
        for n in range(first, first + 60):
            m.add_record(record(n))
            with lock:
                acked.add(checksum(n))

    def compactor() -> None:
        m = manifest(root, checkpoint=NEVER)
        while not stop.is_set():
            with lock:
                before = set(acked)
            m.compact()
            # and as a cron job would: a manifest opened just before
            with lock:
                before = set(acked)
            manifest(root, checkpoint=NEVER).compact()
            absent = before - set(stored_json(root)["records"])
            with lock:
                missing.append(len(absent))

    writers = [threading.Thread(target=writer, args=(100 * (i + 1),)) for i in range(3)]
    compactors = [threading.Thread(target=compactor) for _ in range(2)]
    for thread in writers + compactors:
        thread.start()
    for thread in writers:
        thread.join(120)
    stop.set()
    for thread in compactors:
        thread.join(120)
    assert missing, "no compact ran"
    assert not any(missing), f"{sum(1 for m in missing if m)} of {len(missing)} compacts short"


# --- item 12: an idle writer catches up in one step -----------------------------------


class CountingReads(StorageBackend):
    def __init__(self, inner: StorageBackend) -> None:
        self.inner, self.root, self.reads = inner, inner.root, 0

    def read(self, key: str) -> Blob:
        self.reads += 1
        return self.inner.read(key)

    def write(self, key: str, data: bytes, *, expect: Any = None) -> str:
        return self.inner.write(key, data, expect=expect)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def list(self, prefix: str = "") -> list[Any]:
        return self.inner.list(prefix)


def test_a_writer_idle_through_many_checkpoints_commits_at_once(root: ManifestRoot) -> None:
    manifest(root).add_record(record(0))
    counting = CountingReads(backend(root))
    idle = manifest(root, counting, checkpoint=NEVER)
    idle.add_record(record(1))
    busy = manifest(root, checkpoint=NEVER)
    for n in range(2, 2 + 70):  # 70 checkpoints, more than the retry budget
        busy.add_record(record(n))
        busy.compact()
    counting.reads = 0
    idle.add_record(record(500))
    assert checksum(500) in manifest(root)
    # Finding the open epoch 70 epochs ahead takes a logarithmic number of seal reads.
    assert counting.reads <= 20


# --- item 13: cleanup leaves other writers' in-flight files alone ---------------------


def test_cleanup_with_no_retention_leaves_staged_files_alone(tmp_path: Path) -> None:
    root = ManifestRoot(str(tmp_path / "manifests"))
    manifest(root).add_record(record(0))
    b = manifest(root, checkpoint=NO_RETENTION)
    b.add_record(record(1))
    # A writer's staged file in the epoch about to be folded (its create in flight).
    folder = Path(root.url) / LAYOUT.epoch_prefix(1)
    staged = list(folder.iterdir())
    assert staged
    inflight = Path(staging_key(str(folder / "0123456789abcdef-0000000001.json")))
    inflight.write_bytes(b"{}")
    b.compact()
    assert inflight.exists(), "cleanup deleted another writer's staged file"


# --- item 14: a corrupt old seal does not fail checkpoints -----------------------------


def test_a_corrupt_folded_seal_does_not_fail_later_checkpoints(root: ManifestRoot) -> None:
    m = manifest(root, checkpoint=CheckpointPolicy(every=None, retention=timedelta(hours=1)))
    m.add_record(record(0))
    m.compact()  # epoch 1 folded, kept for the retention
    backend(root).write(LAYOUT.seal(1), b'{"epoch": 1, "state": "list')  # damaged by hand
    m.add_record(record(1))
    assert m.compact() == 1  # the snapshot lands, and compact says so
    m.add_record(record(2))
    assert m.compact() == 1
    assert {checksum(0), checksum(1), checksum(2)} <= set(stored_json(root)["records"])


# --- item 2: retention timed by one clock ---------------------------------------------


def skewed_clock(offset: timedelta) -> type[datetime]:
    """``datetime`` whose ``now()`` is ``offset`` off (returning plain datetimes)."""
    real = datetime

    class Skewed(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return real.now(tz) + offset

    return Skewed


@pytest.mark.parametrize(
    ("lister", "cleaner"), [(-2, 0), (0, 2)], ids=["lister-behind", "cleaner-ahead"]
)
def test_retention_does_not_depend_on_machines_clocks(
    any_root: ManifestRoot, lister: int, cleaner: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = any_root
    hour = CheckpointPolicy(every=None, retention=timedelta(hours=1))
    manifest(root).add_record(record(0))
    monkeypatch.setattr(commitlog_module, "datetime", skewed_clock(timedelta(hours=lister)))
    manifest(root, checkpoint=hour).compact()  # seals and lists epoch 1, hours off
    monkeypatch.setattr(commitlog_module, "datetime", skewed_clock(timedelta(hours=cleaner)))
    other = manifest(root, checkpoint=hour)
    other.add_record(record(1))
    other.compact()  # its cleanup must keep epoch 1: it was listed seconds ago
    assert [k for k in backend(root).list(LAYOUT.epoch_prefix(1)) if is_entry(k.key)]
