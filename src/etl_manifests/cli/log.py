"""The commit log: ``compact`` (checkpoint now) and ``history`` (commits still kept)."""

from __future__ import annotations

import typer
from rich.table import Table

from ..process import ETLProcess
from .common import EtlVersionOption, JsonOption, ProcessOption, RootOption, Target
from .output import print_json, stdout, timestamp

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``compact`` and ``history`` to ``app``."""
    app.command("compact")(compact)
    app.command("history")(history)


def compact(
    process: ProcessOption = ETLProcess.EXTRACTOR,
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    json: JsonOption = False,
) -> None:
    """Fold the commit log into the manifest's JSON snapshot now.

    Safe while other workers commit. Log entries folded in are deleted once the
    retention has passed (ETL_MANIFESTS_CHECKPOINT's "retention", default one hour).

    Example: `etl-manifests compact --process extractor`
    """
    manifest = Target.resolve(root, etl_version).manifest(process)
    folded = manifest.compact()
    result = {"manifest": manifest.url, "commits_folded": folded, "records": len(manifest)}
    if json:
        print_json(result)
        return
    stdout().print(f"{manifest.url}: {folded} commits folded; {len(manifest)} records")


def history(
    process: ProcessOption = ETLProcess.EXTRACTOR,
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    json: JsonOption = False,
) -> None:
    """List the commits still kept in the log: position, time, writer, records put/removed.

    Example: `etl-manifests history --json`
    """
    manifest = Target.resolve(root, etl_version).manifest(process)
    commits = manifest.history()
    rows = [
        {
            "epoch": c.epoch,
            "clock": c.clock,
            "writer": c.writer,
            "seq": c.seq,
            "commit": c.commit,
            "time": timestamp(c.time),
            "put": c.put,
            "removed": c.removed,
            "in_snapshot": c.folded,
        }
        for c in commits
    ]
    if json:
        print_json(rows)
        return
    table = Table("epoch", "clock", "writer", "time", "put", "removed", "in snapshot")
    for row in rows:
        table.add_row(
            str(row["epoch"]),
            str(row["clock"]),
            str(row["writer"]),
            str(row["time"]),
            str(row["put"]),
            str(row["removed"]),
            "yes" if row["in_snapshot"] else "no",
        )
    stdout().print(table)
