"""``verify``: are the recorded files still there, with their size (and checksum)?
``forget``: remove records, so that the next fetch downloads their files again."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..process import ETLProcess
from .common import (
    DEFAULT_WORKERS,
    EtlVersionOption,
    JsonOption,
    ProcessOption,
    RootOption,
    Target,
    WorkersOption,
    select,
    select_some,
)
from .output import cell, print_json, progress, stdout

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``verify`` and ``forget`` to ``app``."""
    app.command("verify")(verify)
    app.command("forget")(forget)


def verify(
    selectors: Annotated[
        list[str] | None,
        typer.Argument(
            help="Checksums (or 4+ leading hex digits), file names or globs; none: every record.",
            show_default=False,
        ),
    ] = None,
    rehash: Annotated[
        bool,
        typer.Option("--rehash", help="Also read every file and compare its SHA-256."),
    ] = False,
    mark: Annotated[
        bool,
        typer.Option(
            "--mark/--no-mark",
            help="Set is_verified on records that pass and clear it on those that fail "
            "(one commit).",
        ),
    ] = True,
    process: ProcessOption = ETLProcess.EXTRACTOR,
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    workers: WorkersOption = DEFAULT_WORKERS,
    json: JsonOption = False,
) -> None:
    """Check that every recorded file still exists at its filepath with its recorded size
    (and, with --rehash, its checksum). Exit code 1 if any is missing or changed, 3 if
    the manifest does not exist or the selectors match no record.

    Example: `etl-manifests verify --rehash`
    """
    from ..tools import verify as verify_files

    target = Target.resolve(root, etl_version)
    manifest = target.existing_manifest(process)
    records = select_some(manifest, selectors or [])
    with progress("verifying", len(records)) as advance:
        report = verify_files(
            manifest,
            records,
            rehash=rehash,
            mark=mark,
            workers=workers,
            storage_options=target.file_options(),
            on_checked=lambda *_: advance(),
        )
    if json:
        print_json(report.to_dict())
    else:
        console = stdout()
        if report.problems:
            table = Table("problem", "file", "detail")
            for p in report.problems:
                table.add_row(f"[red]{p.kind.value}[/red]", cell(p.filepath), cell(p.detail))
            console.print(table)
        checked = "size and checksum" if rehash else "size"
        unreadable = len(report.problems) - len(report.missing) - len(report.changed)
        summary = Text(
            f"{report.checked} checked ({checked}): {len(report.passed)} ok, "
            f"{len(report.missing)} missing, {len(report.changed)} changed, "
            f"{unreadable} unreadable; is_verified changed on {report.marked} ("
        )
        console.print(summary.append(cell(manifest.url)).append(")"))
    if not report.ok:
        raise typer.Exit(1)


def forget(
    selectors: Annotated[
        list[str],
        typer.Argument(
            help="Checksums (or 4+ leading hex digits), file names or globs ('*' for all).",
            show_default=False,
        ),
    ],
    missing: Annotated[
        bool,
        typer.Option("--missing", help="Only records whose file is gone (as verify says)."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Say what would be removed; change nothing.")
    ] = False,
    process: ProcessOption = ETLProcess.EXTRACTOR,
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    workers: WorkersOption = DEFAULT_WORKERS,
    json: JsonOption = False,
) -> None:
    """Remove records from the manifest, in one commit; the files are left alone, and the
    next fetch of their URLs downloads them again.

    Example: `etl-manifests forget --missing '*'`
    """
    from ..tools import forget as forget_records
    from ..tools import verify as verify_files

    target = Target.resolve(root, etl_version)
    manifest = target.manifest(process)
    records = select(manifest, selectors)
    if missing:
        with progress("verifying", len(records)) as advance:
            report = verify_files(
                manifest,
                records,
                mark=False,
                workers=workers,
                storage_options=target.file_options(),
                on_checked=lambda *_: advance(),
            )
        gone = {p.checksum for p in report.missing}
        records = [r for r in records if r.checksum in gone]
    removed = records if dry_run else forget_records(manifest, records)
    if json:
        print_json(
            {
                "dry_run": dry_run,
                "forgotten": [r.model_dump(mode="json") for r in removed],
            }
        )
        return
    console = stdout()
    for r in removed:
        console.print(f"forgotten {r.checksum[:12]}  ", cell(r.filepath), sep="")
    what = "would be forgotten" if dry_run else "forgotten"
    console.print(f"{len(removed)} {what} ({manifest.url})")
