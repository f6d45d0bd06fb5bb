"""Printing: results on stdout (tables for people, plain JSON/JSONL/CSV for programs),
messages and progress on stderr, progress only when stderr is a terminal."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

__all__ = [
    "human_size",
    "print_csv",
    "print_json",
    "print_jsonl",
    "progress",
    "stderr",
    "stdout",
    "transfer_progress",
]


# Width for tables written to a file or a pipe: wide enough not to cut paths short.
_PIPE_WIDTH = 200


def stdout() -> Console:
    """Console for human-readable results (colour only on a terminal, honours NO_COLOR)."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=_PIPE_WIDTH)
    return console


def stderr() -> Console:
    """Console for messages and progress."""
    return Console(stderr=True)


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


def print_jsonl(rows: list[dict[str, Any]]) -> None:
    """One JSON object per line on stdout."""
    for row in rows:
        sys.stdout.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")


def print_csv(rows: list[dict[str, Any]], fields: list[str]) -> None:
    """CSV with a header row on stdout."""
    writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})


def human_size(size: int | None) -> str:
    """``1234567`` -> ``1.2 MiB``; ``None`` -> ``-``."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[], None]]:
    """Yield ``advance()``; draws a bar on stderr only if stderr is a terminal."""
    console = stderr()
    if not console.is_terminal or total == 0:
        yield lambda: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


@contextmanager
def transfer_progress(
    description: str, total: int
) -> Iterator[tuple[Callable[[], None], Callable[[int, int], None]]]:
    """Yield ``(advance, add_bytes)``: a file count and a byte count (bytes, rate, ETA),
    drawn on stderr only if stderr is a terminal. ``add_bytes(received, expected)`` may
    be called from any thread: ``expected`` adds to the bytes announced, ``received`` to
    those that arrived."""
    console = stderr()
    if not console.is_terminal or total == 0:
        yield (lambda: None), (lambda received, expected: None)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"{description} 0/{total}", total=None)
        announced = 0
        done = 0

        def advance() -> None:
            nonlocal done
            done += 1
            bar.update(task, description=f"{description} {done}/{total}")

        def add_bytes(received: int, expected: int) -> None:
            nonlocal announced
            if expected:
                announced += expected
                bar.update(task, total=announced)
            if received:
                bar.advance(task, received)

        yield advance, add_bytes
