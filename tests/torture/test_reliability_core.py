"""Reliability, round two: each test here failed on the release before the fix it guards.

Local version tokens on coarse-timestamp filesystems, roots that are only a scheme,
duplicate JSON keys, typed errors for bad input, the memory of the corrupt-file path,
missing optional dependencies, configuration objects, and messages that name the right
culprit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etl_manifests import ConflictError
from etl_manifests.backends import local
from etl_manifests.backends.local import LocalBackend

pytestmark = pytest.mark.torture


# --- local version tokens on coarse-timestamp filesystems ------------------------------


def _same_size_commits_keep_tokens_apart(backend: LocalBackend, rounds: int = 5) -> None:
    """A reader's token must go stale after two same-size commits, however fast they come.

    Two same-size versions written within one timestamp tick, on a filesystem that hands
    freed inode numbers out again, used to get the identity of the version before them.
    """
    backend.write("m.json", b"version-0")
    for n in range(rounds):
        held = backend.read("m.json")  # a reader that will write later
        first = backend.write("m.json", f"version-{n}a".encode()[:9], expect=held.version)
        second = backend.write("m.json", f"version-{n}b".encode()[:9], expect=first)
        assert len({held.version, first, second}) == 3
        with pytest.raises(ConflictError):
            backend.write("m.json", b"stale-one", expect=held.version)
        with pytest.raises(ConflictError):
            backend.write("m.json", b"stale-two", expect=first)
        assert backend.read("m.json") == local.Blob(f"version-{n}b".encode()[:9], second)


class _CoarseFilesystem(types.SimpleNamespace):
    """The ``os`` module as seen on a filesystem with whole-second mtimes that reuses a
    single inode number for every new file (the worst case of inode reuse)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_times: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def _coarse(st: os.stat_result) -> os.stat_result:
        _cls, (fields, extra) = st.__reduce__()  # type: ignore[misc]
        fields = list(fields)
        fields[1] = 1  # st_ino
        seconds = st.st_mtime_ns // 1_000_000_000
        fields[8] = seconds  # integer st_mtime
        extra = dict(extra, st_mtime=float(seconds), st_mtime_ns=seconds * 1_000_000_000)
        return os.stat_result(fields, extra)

    def stat(self, path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        return self._coarse(os.stat(path, *args, **kwargs))

    def fstat(self, fd: int) -> os.stat_result:
        return self._coarse(os.fstat(fd))

    def utime(self, path: Any, *args: Any, ns: tuple[int, int], **kwargs: Any) -> None:
        self.set_times.append(ns[1])
        whole = tuple(t // 1_000_000_000 * 1_000_000_000 for t in ns)
        os.utime(path, *args, ns=whole, **kwargs)


def test_tokens_differ_on_simulated_one_second_filesystem_with_inode_reuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coarse = _CoarseFilesystem()
    monkeypatch.setattr(local, "os", coarse)
    _same_size_commits_keep_tokens_apart(LocalBackend(str(tmp_path)))
    # The commits had to raise their mtimes by whole seconds to stay apart.
    assert any(t % 1_000_000_000 == 0 for t in coarse.set_times)


def test_filesystem_ignoring_set_mtimes_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coarse = _CoarseFilesystem()
    coarse.utime = lambda path, *args, **kwargs: None  # type: ignore[method-assign]
    monkeypatch.setattr(local, "os", coarse)
    backend = LocalBackend(str(tmp_path))
    token = backend.write("m.json", b"one")
    with pytest.raises(local.StorageError, match="modification times"):
        backend.write("m.json", b"two", expect=token)
    assert backend.read("m.json").data == b"one"


@pytest.fixture
def coarse_ext4(tmp_path: Path) -> Iterator[Path]:
    """A loop-mounted ext4 with 128-byte inodes: mtimes kept to the second only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop filesystem needs root (CI runs as root)")
    if shutil.which("mkfs.ext4") is None or shutil.which("mount") is None:
        pytest.skip("mkfs.ext4 or mount is not installed")
    image, mountpoint = tmp_path / "ext4.img", tmp_path / "mnt"
    mountpoint.mkdir()
    with open(image, "wb") as f:
        f.truncate(64 * 2**20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-I", "128", str(image)], check=True)
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a loop device here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_tokens_differ_on_ext4_with_one_second_timestamps(coarse_ext4: Path) -> None:
    probe = coarse_ext4 / "probe"
    probe.write_bytes(b"")
    os.utime(probe, ns=(1_500_000_123, 1_500_000_123))
    assert probe.stat().st_mtime_ns == 1_000_000_000, "the filesystem keeps sub-second mtimes"
    _same_size_commits_keep_tokens_apart(LocalBackend(str(coarse_ext4 / "manifests")), rounds=10)


def test_create_only_writes_take_no_lock_file(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path))
    tokens = {backend.write(f"log/{n:08d}.json", b"{}", expect=local.ABSENT) for n in range(5)}
    assert len(tokens) == 5
    with pytest.raises(local.AlreadyExistsError):
        backend.write("log/00000003.json", b"{}", expect=local.ABSENT)
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == [
        f"{n:08d}.json" for n in range(5)
    ]
    # A create's token is a real version: a replace with it succeeds once.
    token = backend.write("m.json", b"one", expect=local.ABSENT)
    backend.write("m.json", b"two", expect=token)
    with pytest.raises(ConflictError):
        backend.write("m.json", b"three", expect=token)
