"""Conditional writes racing across processes, not just threads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from etl_manifests_sqlite.backend import SQLiteBackend

WORKER = Path(__file__).with_name("_race_worker.py")
PROCESSES = 4


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("expect", ["absent", "token"])
def test_processes_racing_one_version_have_exactly_one_winner(tmp_path: Path, expect: str) -> None:
    db = tmp_path / "state.db"
    backend = SQLiteBackend(f"sqlite://{db}", {})
    expect_arg = backend.write("race.json", b"start") if expect == "token" else "absent"
    go = tmp_path / "go"
    workers = [_start("once", str(db), expect_arg, str(go)) for _ in range(PROCESSES)]
    try:
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline().strip() != "ready":
                pytest.fail(f"a worker failed to start: {worker.communicate(timeout=60)[1]}")
        go.touch()
        outcomes = [worker.communicate(timeout=60)[0].strip() for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert sorted(outcomes) == ["lost"] * (PROCESSES - 1) + ["won"]
    assert backend.read("race.json").data.startswith(b"writer ")
    backend.close()


def test_read_modify_write_from_several_processes_loses_no_update(tmp_path: Path) -> None:
    db, times = tmp_path / "state.db", 25
    workers = [_start("increment", str(db), str(times)) for _ in range(PROCESSES)]
    try:
        results = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert all(worker.returncode == 0 for worker in workers), [err for _out, err in results]
    backend = SQLiteBackend(f"sqlite://{db}", {})
    assert int(backend.read("counter").data) == PROCESSES * times
    backend.close()
