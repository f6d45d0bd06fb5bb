"""The local and memory backends keep the backend contract, and local-disk specifics."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from pathlib import Path

import pytest

from etl_manifests import ABSENT, ConflictError, open_backend
from etl_manifests.backends.local import LocalBackend
from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.storage import StorageBackend, staging_key
from etl_manifests.testing import BackendConformance


class TestLocalConformance(BackendConformance):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> StorageBackend:
        return LocalBackend(str(tmp_path / "manifests"), {})


class TestFileURLConformance(BackendConformance):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> StorageBackend:
        return LocalBackend(f"file://{tmp_path}/manifests", {})


@pytest.mark.parametrize("scheme", ["file", "local", "LOCAL"])
def test_url_root_names_the_absolute_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    # Run elsewhere, so that a root taken for a relative path would land in "cwd".
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    open_backend(f"{scheme}://{tmp_path}/manifests").write("m.json", b"x")
    assert (tmp_path / "manifests" / "m.json").read_bytes() == b"x"
    assert not list((tmp_path / "cwd").iterdir())


class TestMemoryConformance(BackendConformance):
    @pytest.fixture
    def backend(self) -> StorageBackend:
        return MemoryBackend(f"memory://{uuid.uuid4().hex}", {})


def test_memory_backends_on_one_root_share_objects() -> None:
    root = f"memory://{uuid.uuid4().hex}"
    MemoryBackend(root, {}).write("m.json", b"x")
    assert MemoryBackend(root, {}).read("m.json").data == b"x"


_NESTED_KEYS = (
    "m.json",
    "m.log/0000000001.seal",
    "m.log/0000000001/a-1.json",
    "m.log/0000000001/b-2.json",
    "m.log/0000000002/a-3.json",
    "m.logx/z.json",
    "n.log/0000000001/c.json",
)


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "m",
        "m.",
        "m.log",
        "m.log/",
        "m.log/0000000001",
        "m.log/0000000001/",
        "m.log/0000000001/a",
        "m.log/00000000",
        "m.log/0000000003/",
        "n.log/0000000001/",
        "x/",
    ],
)
@pytest.mark.parametrize("kind", ["local", "memory"])
def test_list_of_nested_keys_by_any_prefix(tmp_path: Path, kind: str, prefix: str) -> None:
    # The local backend walks only the folder a prefix names; it must still find every
    # key that starts with the prefix, wherever the prefix ends.
    backend: StorageBackend = (
        LocalBackend(str(tmp_path), {})
        if kind == "local"
        else MemoryBackend(f"memory://{uuid.uuid4().hex}", {})
    )
    for key in _NESTED_KEYS:
        backend.write(key, b"{}", expect=ABSENT)
    expected = sorted(key for key in _NESTED_KEYS if key.startswith(prefix))
    assert [info.key for info in backend.list(prefix)] == expected


def test_local_root_folder_is_created_on_first_write(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path / "a" / "b"), {})
    backend.write("m.json", b"x")
    assert (tmp_path / "a" / "b" / "m.json").read_bytes() == b"x"


def test_local_write_leaves_only_the_file_and_its_lock(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path), {})
    token = backend.write("m.json", b"one", expect=ABSENT)
    backend.write("m.json", b"two", expect=token)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.json.lock", "m.json"]


def test_local_failed_conditional_write_leaves_no_staged_file(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path), {})
    backend.write("m.json", b"one")
    with pytest.raises(ConflictError):
        backend.write("m.json", b"two", expect="0:0:0")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.json.lock", "m.json"]


def test_local_token_changes_even_for_identical_bytes_written_at_once(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path), {})
    tokens = {backend.write("m.json", b"same") for _ in range(50)}
    assert len(tokens) == 50


def test_local_staged_files_are_not_read_as_the_manifest(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path), {})
    backend.write("m.json", b"committed")
    Path(staging_key(str(tmp_path / "m.json"))).write_bytes(b"half-writ")
    assert backend.read("m.json").data == b"committed"


def _race_in_process(root: str, token: str, queue: multiprocessing.Queue[bool]) -> None:
    backend = LocalBackend(root, {})
    try:
        backend.write("m.json", f"pid {os.getpid()}".encode(), expect=token)
        queue.put(True)
    except ConflictError:
        queue.put(False)


def test_local_conditional_writes_from_processes_have_one_winner(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path), {})
    token = backend.write("m.json", b"start")
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[bool] = ctx.Queue()
    procs = [
        ctx.Process(target=_race_in_process, args=(str(tmp_path), token, queue)) for _ in range(6)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = [queue.get(timeout=5) for _ in procs]
    assert results.count(True) == 1
