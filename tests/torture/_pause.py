"""A backend that stops its caller at one chosen storage operation, as SIGSTOP would.

``Pause(inner, when)`` delegates every call to ``inner``; the first call for which
``when(operation, key)`` is true after :meth:`arm` blocks (before it runs) until the test
sets ``go``. ``reached`` is set once the caller is held there. This is how the torture tests hold a
writer between two steps of the protocol (a GC pause, a preempted VM) while others go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from etl_manifests.storage import Blob, Expect, ObjectInfo, StorageBackend

__all__ = ["Pause", "run_in_thread"]


class Pause(StorageBackend):
    """``inner`` with one pause point."""

    def __init__(self, inner: StorageBackend, when: Callable[[str, str], bool]) -> None:
        self.inner = inner
        self.root = inner.root
        self.when = when
        self.armed = False
        self.reached = threading.Event()
        self.go = threading.Event()

    def arm(self) -> None:
        """Hold the next matching call (open the manifest first: loading reads too)."""
        self.armed = True

    def _gate(self, operation: str, key: str) -> None:
        if self.armed and self.when(operation, key):
            self.armed = False
            self.reached.set()
            if not self.go.wait(60):
                raise TimeoutError("the paused caller was never released")

    def read(self, key: str) -> Blob:
        self._gate("read", key)
        return self.inner.read(key)

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        self._gate("write", key)
        return self.inner.write(key, data, expect=expect)

    def delete(self, key: str) -> None:
        self._gate("delete", key)
        self.inner.delete(key)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        self._gate("list", prefix)
        return self.inner.list(prefix)

    def url(self, key: str) -> str:
        return self.inner.url(key)


class run_in_thread:
    """Run ``call`` in a thread; :meth:`result` joins it and re-raises what it raised."""

    def __init__(self, call: Callable[[], object]) -> None:
        self._result: list[object] = []
        self._error: list[BaseException] = []

        def body() -> None:
            try:
                self._result.append(call())
            except BaseException as exc:
                self._error.append(exc)

        self._thread = threading.Thread(target=body, daemon=True)
        self._thread.start()

    def result(self, timeout: float = 60) -> object:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the call did not finish")
        if self._error:
            raise self._error[0]
        return self._result[0]
