"""Printing: results on stdout (tables for people, plain JSON/JSONL/CSV for programs),
messages and progress on stderr, progress only when stderr is a terminal.

Text that comes from records or roots (file names, paths, response headers) can hold
anything, including escape sequences that would clear a terminal or retitle its window,
and text that rich would read as markup (``[red]``) or emoji codes (``:smile:``). Tables
and CSV show such text through :func:`visible` (control characters as ``\\xNN``
escapes) and tables through :func:`cell` (never parsed as markup); JSON output keeps the
exact values, escaped by JSON itself.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.text import Text

__all__ = [
    "cell",
    "human_size",
    "print_csv",
    "print_json",
    "print_jsonl",
    "progress",
    "stderr",
    "stdout",
    "timestamp",
    "transfer_progress",
    "visible",
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


def timestamp(moment: datetime) -> str:
    """``moment`` as the JSON output writes every time: ISO 8601 in UTC ending in ``Z``
    (``2026-01-02T03:04:05.123456Z``), the form records' own fields have."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


def print_jsonl(rows: list[dict[str, Any]]) -> None:
    """One JSON object per line on stdout."""
    for row in rows:
        sys.stdout.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")


# C0 controls, DEL and C1 controls (a terminal obeys all of them: ESC starts sequences,
# 0x9b is a one-byte CSI), line and paragraph separators, and the bidirectional
# overrides and isolates that make text display in another order than it is stored.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(text: str) -> str:
    """``text`` with every character a terminal would act on written as an escape:
    ``\\x1b`` for ESC, ``\\t``, ``\\n``, ``\\r``, ``\\u202e`` for a bidirectional
    override. Other characters, backslashes included, stay as they are."""
    return _UNSAFE.sub(_escaped, text)


def cell(text: str) -> Text:
    """``text`` for a rich table or ``print``: :func:`visible`, and never read as markup,
    emoji codes or highlighted."""
    return Text(visible(text))


def print_csv(rows: list[dict[str, Any]], fields: list[str]) -> None:
    """CSV with a header row on stdout; text values pass through :func:`visible`,
    booleans are ``true``/``false`` and a missing value is empty."""
    writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as JSON writes them, not Python's True
    return visible(value) if isinstance(value, str) else value


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
    # Imported here: a bar is drawn only on a terminal, and help need not pay for it.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

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
