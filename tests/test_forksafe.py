"""register_after_fork and renewed: what runs in a forked child, and which locks it frees."""

from __future__ import annotations

import gc
import os
import threading
from typing import Any

import pytest

from etl_manifests import register_after_fork
from etl_manifests._forksafe import _registered, renewed

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


class Thing:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def after_fork(self) -> None:
        self.calls.append(os.getpid())


def _in_child(check: Any) -> int:
    """Fork, run ``check()`` in the child, return the child's exit status (0: passed)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child leaves through os._exit
        try:
            os._exit(0 if check() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@needs_fork
def test_the_method_runs_in_the_child_only() -> None:
    thing = Thing()
    register_after_fork(thing, Thing.after_fork)
    assert _in_child(lambda: thing.calls == [os.getpid()]) == 0
    assert thing.calls == []  # not in the parent


@needs_fork
def test_a_bound_method_is_accepted_and_run_once() -> None:
    thing = Thing()
    register_after_fork(thing, thing.after_fork)
    assert _in_child(lambda: thing.calls == [os.getpid()]) == 0


def test_the_object_is_held_weakly() -> None:
    thing = Thing()
    register_after_fork(thing, thing.after_fork)  # a bound method must not keep it alive
    key = id(thing)
    assert key in _registered
    del thing
    gc.collect()
    assert key not in _registered


@needs_fork
def test_a_failing_method_does_not_stop_the_others() -> None:
    first, second = Thing(), Thing()

    def broken(_: Thing) -> None:
        raise RuntimeError("broken")

    register_after_fork(first, broken)
    register_after_fork(second, Thing.after_fork)
    assert _in_child(lambda: second.calls == [os.getpid()]) == 0


def test_a_free_lock_is_kept() -> None:
    lock = threading.Lock()
    assert renewed(lock) is lock
    rlock = threading.RLock()
    assert renewed(rlock) is rlock


def test_an_rlock_held_by_this_thread_is_kept() -> None:
    rlock = threading.RLock()
    with rlock:
        assert renewed(rlock) is rlock


@pytest.mark.parametrize("factory", [threading.Lock, threading.RLock])
def test_a_lock_held_by_another_thread_is_replaced(factory: Any) -> None:
    lock = factory()
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert taken.wait(10)
        fresh = renewed(lock)
        assert fresh is not lock
        assert type(fresh) is type(lock)
        assert fresh.acquire(blocking=False)
        fresh.release()
    finally:
        done.set()
        thread.join()
