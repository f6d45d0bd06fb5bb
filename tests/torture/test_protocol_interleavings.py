"""The commit protocol stepped one storage operation at a time, in interleavings chosen
by hypothesis, with crashes and lost responses injected between steps.

Writers, checkpointers and a long-lived reader each run in a thread over the memory
backend, behind a gate that lets exactly one storage operation happen at a time. After
every step, a fresh reader (on a copy of the store, so that looking changes nothing)
must see every acknowledged put that no acknowledged removal undid, and nothing that was
never put. Checkpoints run with a retention of zero in half the examples, so deletions
race readers and slow writers as hard as they can.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_manifests import CheckpointPolicy, Manifest, ManifestManager
from etl_manifests import commitlog as commitlog_module
from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.errors import StorageError, TransientStorageError
from etl_manifests.layout import SEALED, LogLayout, Seal
from etl_manifests.storage import Blob, Expect, ObjectInfo, StorageBackend

pytestmark = pytest.mark.torture

LAYOUT = LogLayout("extractor_v1")
FAULTS = ("none", "crash-before", "crash-after", "lost-response")


class Crash(BaseException):
    """The actor's process dies here (not an Exception: nothing in the library catches it)."""


@dataclass
class Gate:
    """Lets one storage operation happen at a time, for the actor the test picks."""

    cv: threading.Condition = field(default_factory=threading.Condition)
    state: dict[str, str] = field(default_factory=dict)  # running / waiting / done
    grants: dict[str, str] = field(default_factory=dict)

    def request(self, actor: str) -> str:
        with self.cv:
            self.state[actor] = "waiting"
            self.cv.notify_all()
            self.cv.wait_for(lambda: actor in self.grants, timeout=30)
            if actor not in self.grants:
                raise Crash  # the test gave up on this actor
            self.state[actor] = "running"
            return self.grants.pop(actor)

    def finish(self, actor: str) -> None:
        with self.cv:
            self.state[actor] = "done"
            self.cv.notify_all()

    def waiting(self) -> list[str]:
        with self.cv:
            return sorted(a for a, s in self.state.items() if s == "waiting")

    def step(self, actor: str, fault: str) -> None:
        with self.cv:
            self.state[actor] = "running"
            self.grants[actor] = fault
            self.cv.notify_all()
            settled = self.cv.wait_for(
                lambda: all(s != "running" for s in self.state.values()), timeout=30
            )
        assert settled, f"{actor} neither finished nor asked for another step"


class SteppedBackend(StorageBackend):
    """Each primitive waits for the gate, then may crash or lose its response."""

    def __init__(self, inner: StorageBackend, gate: Gate, actor: str) -> None:
        self.inner, self.gate, self.actor = inner, gate, actor
        self.root = inner.root

    def _run(self, call: Callable[[], object], writes: bool) -> object:
        fault = self.gate.request(self.actor)
        if fault == "crash-before":
            raise Crash
        if fault == "lost-response" and not writes:
            raise TransientStorageError("injected: connection reset")
        result = call()
        if fault == "crash-after":
            raise Crash
        if fault == "lost-response":
            raise TransientStorageError("injected: response lost after the write landed")
        return result

    def read(self, key: str) -> Blob:
        return self._run(lambda: self.inner.read(key), writes=False)  # type: ignore[return-value]

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        return self._run(lambda: self.inner.write(key, data, expect=expect), writes=True)  # type: ignore[return-value]

    def delete(self, key: str) -> None:
        self._run(lambda: self.inner.delete(key), writes=True)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        return self._run(lambda: self.inner.list(prefix), writes=False)  # type: ignore[return-value]


@dataclass
class Ledger:
    """What the actors attempted and what was acknowledged to them."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempted_puts: set[str] = field(default_factory=set)
    attempted_removals: set[str] = field(default_factory=set)
    acked_puts: set[str] = field(default_factory=set)
    acked_removals: set[str] = field(default_factory=set)


def checksum(n: int) -> str:
    return f"{n:064x}"


def params(n: int) -> dict[str, object]:
    return {"checksum": checksum(n), "filename": f"f{n}", "filepath": f"/d/f{n}"}


def open_view(root: str) -> set[str]:
    """A fresh reader's records, read from a copy of the store (reading writes lists)."""
    source = MemoryBackend(root, {})
    copy = MemoryBackend(f"memory://{uuid.uuid4().hex}", {})
    for info in source.list(""):
        try:
            copy.write(info.key, source.read(info.key).data)
        except StorageError:
            continue  # deleted between list and read
    return {r.checksum for r in Manifest("extractor", "1", copy)}


def open_stepped(gate: Gate, root: str, name: str, policy: CheckpointPolicy) -> Manifest | None:
    """Open the manifest through the gate, trying again after injected read failures."""
    for _ in range(4):
        try:
            backend = SteppedBackend(MemoryBackend(root, {}), gate, name)
            return Manifest("extractor", "1", backend, checkpoint=policy)
        except StorageError:
            continue
    return None


def seen_as_member(manifest: Manifest, root: str, c: str) -> bool | None:
    """Whether the put of ``c`` that ``manifest`` shows is a member of the log (an
    acknowledged commit's), read from the store without stepping; ``None``: unknown."""
    state = manifest.log.state
    keys = state._touched_by.get(c) or []
    if not keys:
        return True  # from the snapshot: folded
    key = max(keys, key=lambda k: state.entries[k].stamp)
    epoch = state.entries[key].epoch
    try:
        blob = MemoryBackend(root, {}).read(LAYOUT.seal(epoch))
    except StorageError:
        return True  # no seal: created before any seal, so every listing has it
    seal = Seal.decode(blob.data, blob.version, root, epoch)
    if seal.state == SEALED:
        return True
    return seal.is_member(key.rpartition("/")[2])


def writer_script(
    gate: Gate, root: str, ledger: Ledger, name: str, first: int, others: list[int]
) -> None:
    try:
        manifest = open_stepped(gate, root, name, CheckpointPolicy(every=None))
        if manifest is None:
            return
        mine: list[str] = []
        actions: list[tuple[str, int]] = [
            ("put", first),
            ("put", first + 1),
            ("remove", first),
            ("put", first + 2),
            ("remove-seen", -1),
        ]
        for kind, n in actions:
            member: bool | None = None
            if kind == "remove-seen":
                # Remove another writer's record after seeing it: a removal made after
                # seeing a put must win over it, whatever happens to that writer.
                for _ in range(3):
                    try:
                        manifest.refresh()
                        break
                    except StorageError:
                        continue
                seen = [checksum(o) for o in others if checksum(o) in manifest]
                if not seen:
                    continue
                n = int(seen[0], 16)
                member = seen_as_member(manifest, root, seen[0])
                kind = "remove"
            c = checksum(n)
            if kind == "remove" and member is None and c not in mine:
                continue
            with ledger.lock:
                (ledger.attempted_puts if kind == "put" else ledger.attempted_removals).add(c)
            for _attempt in range(4):
                try:
                    if _attempt and manifest.dirty:
                        # The failed commit's entry may have landed: settle it (it lands
                        # once). Otherwise nothing of it is left: make it again.
                        manifest.save()
                    elif kind == "put":
                        manifest.add_record(params(n))
                    else:
                        manifest.remove_record(c)
                except StorageError:
                    continue
                with ledger.lock:
                    if kind == "put":
                        ledger.acked_puts.add(c)
                    elif member is not False:  # own removals, and others' seen as members
                        ledger.acked_removals.add(c)
                if kind == "put":
                    mine.append(c)
                break
            else:
                return  # gave up: the change stays unacknowledged
    except Crash:
        return
    finally:
        gate.finish(name)


def checkpointer_script(gate: Gate, root: str, name: str, retention: timedelta) -> None:
    try:
        for _ in range(2):
            policy = CheckpointPolicy(every=None, retention=retention)
            manifest = open_stepped(gate, root, name, policy)
            if manifest is None:
                continue
            try:
                manifest.compact()
            except StorageError:
                continue
    except Crash:
        return
    finally:
        gate.finish(name)


def reader_script(gate: Gate, root: str, name: str, views: list[set[str]]) -> None:
    try:
        manifest = open_stepped(gate, root, name, CheckpointPolicy(every=None))
        if manifest is None:
            return
        for _ in range(3):
            try:
                manifest.refresh()
            except StorageError:
                continue
        views.append({r.checksum for r in manifest})
    except Crash:
        return
    finally:
        gate.finish(name)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), writers=st.integers(2, 3), zero_retention=st.booleans())
def test_every_interleaving_keeps_every_acknowledged_change(
    data: st.DataObject, writers: int, zero_retention: bool
) -> None:
    ManifestManager.reset()
    root = f"memory://{uuid.uuid4().hex}"
    gate, ledger = Gate(), Ledger()
    retention = timedelta(0) if zero_retention else timedelta(hours=1)
    # Start from a stored manifest with one record, as a long-running pipeline would.
    Manifest("extractor", "1", MemoryBackend(root, {})).add_record(params(0))
    ledger.acked_puts.add(checksum(0))
    reader_views: list[set[str]] = []
    firsts = [100 * (i + 1) for i in range(writers)]
    actors = {
        f"w{i}": (
            writer_script,
            (gate, root, ledger, f"w{i}", first, [f + 1 for f in firsts if f != first]),
        )
        for i, first in enumerate(firsts)
    }
    actors["c0"] = (checkpointer_script, (gate, root, "c0", retention))
    actors["c1"] = (checkpointer_script, (gate, root, "c1", retention))
    actors["r0"] = (reader_script, (gate, root, "r0", reader_views))
    threads = []
    for name, (target, args) in actors.items():
        gate.state[name] = "running"
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        threads.append(thread)
        thread.start()
    with gate.cv:
        gate.cv.wait_for(lambda: all(s != "running" for s in gate.state.values()), timeout=30)

    steps = 0
    while (waiting := gate.waiting()) and steps < 400:
        actor = data.draw(st.sampled_from(waiting), label="actor")
        fault = data.draw(
            st.sampled_from(FAULTS).filter(lambda f: True) if steps % 3 == 0 else st.just("none"),
            label="fault",
        )
        gate.step(actor, fault)
        steps += 1
        seen = open_view(root)
        with ledger.lock:
            must = ledger.acked_puts - ledger.attempted_removals
            may = ledger.attempted_puts | {checksum(0)}
            gone = ledger.acked_removals
        assert must <= seen, f"step {steps}: acknowledged records missing: {must - seen}"
        assert seen <= may, f"step {steps}: records never put: {seen - may}"
        assert not (gone & seen), f"step {steps}: removed records back: {gone & seen}"
    for thread in threads:
        thread.join(timeout=30)

    # Once everyone is done, every reader agrees, and a last checkpoint changes nothing.
    final = open_view(root)
    for view in reader_views:
        assert view <= ledger.attempted_puts | {checksum(0)}
    survivor = Manifest(
        "extractor",
        "1",
        MemoryBackend(root, {}),
        checkpoint=CheckpointPolicy(every=None, retention=retention),
    )
    survivor.compact()
    assert open_view(root) == final
    assert ledger.acked_puts - ledger.attempted_removals <= final


@pytest.fixture(autouse=True)
def _one_read_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Catch-up reads entries in parallel threads once reads look slow (and a stepped
    # read waits for its turn); stepping needs them one by one.
    monkeypatch.setattr(commitlog_module, "_FAST_READ_SECONDS", float("inf"))
