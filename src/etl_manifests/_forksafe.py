"""Staying usable in a child made by ``os.fork()`` (``multiprocessing``'s default on Linux).

A forked child has a copy of the parent's memory but only the thread that called
``fork()``. A lock another thread held at that moment stays held forever in the child; a
client whose event loop thread stayed behind never answers; a connection shared with the
parent must not be used from both sides. Objects that own such things register a method
here, and it runs in every child right after the fork, before any other code of the
child's:

* :func:`register_after_fork` holds the object weakly: registering never keeps it alive,
  and a dead object's method is dropped.
* :func:`renewed` gives a lock back unchanged when the calling thread can take it (it is
  free, or the forking thread itself holds it and will release it), or a fresh one when a
  thread that no longer exists holds it.

A method registered here must be quick and must not do I/O (no connecting, no logging):
mark what is stale and rebuild it on first use instead. Children made with the ``spawn``
or ``forkserver`` start methods start from scratch and never run these methods.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

__all__ = ["register_after_fork", "renewed"]


class _Lock(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...


_T = TypeVar("_T")
_L = TypeVar("_L", bound=_Lock)
_RLockType = type(threading.RLock())

# id(obj) -> (weak reference to obj, methods to call with it). Only changed by single
# dict operations (atomic under the GIL), so no lock is needed, and none can be left
# held by a thread that did not survive the fork.
_registered: dict[int, tuple[weakref.ref[Any], list[Callable[[Any], object]]]] = {}


def register_after_fork(obj: _T, method: Callable[[_T], object]) -> None:
    """Call ``method(obj)`` in every child forked from now on, as long as ``obj`` lives.

    ``method`` is a plain function taking the object (``Backend._after_fork``); a method
    bound to ``obj`` itself is accepted too and is held without keeping ``obj`` alive.
    Methods run in the order they were registered. An exception from one is swallowed
    (there is nobody to report it to), and the others still run.
    """
    if getattr(method, "__self__", None) is obj:
        method = getattr(method, "__func__", method)
    key = id(obj)
    entry = _registered.get(key)
    if entry is not None and entry[0]() is obj:
        entry[1].append(method)
        return

    def forget(_ref: weakref.ref[Any], key: int = key) -> None:
        current = _registered.get(key)
        if current is not None and current[0] is _ref:
            _registered.pop(key, None)

    _registered[key] = (weakref.ref(obj, forget), [method])


def renewed(lock: _L) -> _L:
    """``lock`` if the calling thread can take it now, else a new, unlocked one of its kind.

    Call it in a child right after the fork, for a ``threading.Lock`` or ``RLock``: a lock
    held by a thread that did not survive the fork can never be released, so it is
    replaced; a free one is kept, and so is an ``RLock`` the forking thread itself holds
    (inside a ``with`` block it will leave). A plain ``Lock`` cannot tell its holder, so
    use it only for locks no thread holds while it could call ``fork()``.
    """
    if lock.acquire(blocking=False):
        lock.release()
        return lock
    return cast(_L, threading.RLock() if isinstance(lock, _RLockType) else threading.Lock())


def _run_after_fork() -> None:
    for ref, methods in list(_registered.values()):
        obj = ref()
        if obj is None:
            continue
        for method in list(methods):
            # One broken method must not leave the others' objects unusable.
            with contextlib.suppress(Exception):
                method(obj)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_run_after_fork)
