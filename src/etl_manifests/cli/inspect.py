"""Looking inside: ``ls`` (manifests under a root), ``show`` (records), ``stats``."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ..errors import ManifestError, NothingFoundError
from ..process import ETLProcess
from .common import EtlVersionOption, JsonOption, ProcessOption, RootOption, Target, select_some
from .output import (
    cell,
    human_size,
    print_csv,
    print_json,
    print_jsonl,
    stderr,
    stdout,
    timestamp,
)

if TYPE_CHECKING:
    from ..storage import StorageBackend

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``ls``, ``show`` and ``stats`` to ``app``."""
    app.command("ls")(list_manifests)
    app.command("show")(show)
    app.command("stats")(stats)


def list_manifests(root: RootOption = None, json: JsonOption = False) -> None:
    """List the manifests under a root (every process, declared or built in): process,
    version, records, data size, revision, last update. Exit code 1 if one cannot be
    read (the reason is on stderr), 3 if there is none.

    Example: `etl-manifests ls --root s3://bucket/manifests`
    """
    target = Target.resolve(root, None)
    backend = target.backend()
    from ..catalog import snapshot_sizes

    sizes = snapshot_sizes(backend)
    rows = [
        _row(backend, ref.process, ref.etl_version, size) for ref, size in sorted(sizes.items())
    ]
    if json:
        print_json(rows)
    else:
        _print_manifests(rows)
    _say_unreadable(rows)
    if not rows:
        raise NothingFoundError(
            f"no manifests under {target.root}; check --root (or ETL_MANIFESTS_MANIFESTS_DIR)"
        )
    if any("error" in row for row in rows):
        raise typer.Exit(1)


def _say_unreadable(rows: list[dict[str, Any]]) -> None:
    console = stderr()
    for row in rows:
        if "error" in row:
            console.print(Text("etl-manifests: error: ").append(cell(row["error"])), soft_wrap=True)


def _print_manifests(rows: list[dict[str, Any]]) -> None:
    table = Table("process", "version", "records", "data", "revision", "updated (UTC)", "size")
    for row in rows:
        if "error" in row:
            unreadable = Text("unreadable", style="red")
            table.add_row(
                row["process"],
                row["etl_version"],
                unreadable,
                "",
                "",
                "",
                human_size(row["document_bytes"]),
            )
            continue
        table.add_row(
            row["process"],
            row["etl_version"],
            str(row["records"]),
            human_size(row["data_bytes"]),
            str(row["revision"]),
            row["updated_at"][:19].replace("T", " "),
            human_size(row["document_bytes"]),
        )
    if rows:
        stdout().print(table)


def _row(backend: StorageBackend, process: str, version: str, size: int | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "process": str(process),
        "etl_version": version,
        "url": backend.url(f"{process}_v{version}.json"),
        "document_bytes": size,
    }
    try:
        from ..model import Manifest

        manifest = Manifest(process, version, backend)
    except ManifestError as exc:
        row["error"] = str(exc)
        return row
    return row | {
        "records": len(manifest),
        "data_bytes": sum(r.content_length_bytes or 0 for r in manifest),
        "revision": manifest.metadata.revision,
        "updated_at": timestamp(manifest.metadata.updated_at),
    }


def show(
    selectors: Annotated[
        list[str] | None,
        typer.Argument(
            help="Checksums (or 4+ leading hex digits), file names or globs such as "
            "'*.csv'; none: every record.",
            show_default=False,
        ),
    ] = None,
    process: ProcessOption = ETLProcess.EXTRACTOR,
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    json: JsonOption = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One JSON record per line.")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
) -> None:
    """Show records as a table, or as JSON, JSON lines or CSV. Exit code 3 if the
    manifest does not exist or the selectors match no record.

    Example: `etl-manifests show '*.csv' --json`
    """
    if sum((json, jsonl, csv)) > 1:
        raise typer.BadParameter("choose one of --json, --jsonl and --csv")
    manifest = Target.resolve(root, etl_version).existing_manifest(process)
    records = select_some(manifest, selectors or [])
    rows = [r.model_dump(mode="json") for r in records]
    if json:
        print_json(rows)
    elif jsonl:
        print_jsonl(rows)
    elif csv:
        from ..record import ManifestRecord

        print_csv(rows, list(ManifestRecord.model_fields))
    else:
        table = Table("checksum", "file", "size", "verified", "updated (UTC)", "filepath")
        for r in records:
            table.add_row(
                r.checksum[:12],
                cell(r.filename),
                human_size(r.content_length_bytes),
                "yes" if r.is_verified else "no",
                r.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
                cell(r.filepath),
            )
        console = stdout()
        console.print(table)
        console.print(
            Text(f"{len(records)} of {len(manifest)} records in ").append(cell(manifest.url))
        )


def stats(
    process: ProcessOption = ETLProcess.EXTRACTOR,
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    json: JsonOption = False,
) -> None:
    """Summarise one manifest: records, data size, verified share, content types, dates.
    Exit code 3 if the manifest does not exist.

    Example: `etl-manifests stats --process loader --json`
    """
    manifest = Target.resolve(root, etl_version).existing_manifest(process)
    records = list(manifest)
    stamps = sorted(r.updated_at for r in records)
    summary: dict[str, Any] = {
        "manifest": manifest.url,
        "process": str(manifest.process),
        "etl_version": manifest.etl_version,
        "records": len(records),
        "verified": sum(r.is_verified for r in records),
        "data_bytes": sum(r.content_length_bytes or 0 for r in records),
        "content_types": dict(Counter(r.content_type or "unknown" for r in records).most_common()),
        "oldest_record": timestamp(stamps[0]) if stamps else None,
        "newest_record": timestamp(stamps[-1]) if stamps else None,
        "revision": manifest.metadata.revision,
        "created_at": timestamp(manifest.metadata.created_at),
        "updated_at": timestamp(manifest.metadata.updated_at),
    }
    if json:
        print_json(summary)
        return
    table = Table("", "", show_header=False, box=None)
    for key, value in summary.items():
        if key == "data_bytes":
            value = human_size(value)
        elif key == "content_types":
            value = ", ".join(f"{k} ({n})" for k, n in value.items()) or "-"
        table.add_row(key.replace("_", " "), cell("-" if value is None else str(value)))
    stdout().print(table)
