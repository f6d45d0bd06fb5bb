"""Running one function over many items in worker threads that an interrupt does not wait for.

:class:`concurrent.futures.ThreadPoolExecutor` joins its threads when its block ends and
again when the interpreter exits, so Ctrl-C during a long read waits for that read. Here
the workers are daemon threads: on ``KeyboardInterrupt`` in the calling thread no further
item starts, the caller's ``KeyboardInterrupt`` propagates at once, and a read in flight
ends on its own (or with the process).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Generic, TypeVar

__all__ = ["Outcome", "run_parallel"]

_T = TypeVar("_T")
_R = TypeVar("_R")


class Outcome(Generic[_R]):
    """What one item gave: its index in the input, and a result or an exception."""

    __slots__ = ("error", "index", "result")

    def __init__(self, index: int, result: _R | None, error: BaseException | None) -> None:
        self.index = index
        self.result = result
        self.error = error


def run_parallel(
    function: Callable[[_T], _R], items: Sequence[_T], workers: int
) -> Generator[Outcome[_R], None, None]:
    """``function(item)`` for every item, at most ``workers`` at a time, yielding each
    :class:`Outcome` as it completes (in completion order). An ``Exception`` of
    ``function`` is the outcome's ``error``; closing the generator (or an interrupt
    while waiting for it) stops the workers from starting further items."""
    todo: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    done: queue.SimpleQueue[Outcome[_R]] = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        while (index := todo.get()) is not None and not stop.is_set():
            try:
                outcome = Outcome(index, function(items[index]), None)
            except Exception as exc:
                outcome = Outcome[_R](index, None, exc)
            done.put(outcome)

    for index in range(len(items)):
        todo.put(index)
    count = min(max(1, workers), len(items))
    for _ in range(count):
        todo.put(None)
    for _ in range(count):
        threading.Thread(target=work, daemon=True).start()
    try:
        for _ in range(len(items)):
            while True:
                try:
                    outcome = done.get(timeout=0.2)  # a short wait: Ctrl-C gets through
                    break
                except queue.Empty:
                    continue
            yield outcome
    finally:
        stop.set()
