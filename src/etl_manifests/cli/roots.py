"""Two roots: ``copy`` (manifests from one root to another) and ``compare``."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import BackendConfigurationError
from .common import JsonOption, Target
from .output import print_json, stdout

__all__ = ["register"]

SourceArg = Annotated[
    str, typer.Argument(help="Root to read: a folder, s3://bucket/prefix, ...", show_default=False)
]
DestArg = Annotated[
    str, typer.Argument(help="Root to write (compare: to read).", show_default=False)
]
ProcessesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--process", "-p", help="Only manifests of this process (repeatable).", show_default=False
    ),
]
VersionsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--etl-version",
        "-e",
        help="Only manifests of this ETL version (repeatable).",
        show_default=False,
    ),
]
SourceOptions = Annotated[
    str | None,
    typer.Option(
        "--source-options",
        help="Storage options of the source root, a JSON object "
        "[default: $ETL_MANIFESTS_STORAGE_OPTIONS]",
        show_default=False,
    ),
]
DestOptions = Annotated[
    str | None,
    typer.Option(
        "--dest-options",
        help="Storage options of the destination root, a JSON object "
        "[default: $ETL_MANIFESTS_STORAGE_OPTIONS]",
        show_default=False,
    ),
]

# By CopyStatus value: the tools load only when a command runs (a cheap --help).
_STYLE = {"created": "green", "updated": "yellow", "unchanged": "dim"}


def register(app: typer.Typer) -> None:
    """Add ``copy`` and ``compare`` to ``app``."""
    app.command("copy")(copy)
    app.command("compare")(compare)


def copy(
    source: SourceArg,
    destination: DestArg,
    process: ProcessesOption = None,
    etl_version: VersionsOption = None,
    on_conflict: Annotated[
        Literal["error", "merge", "replace"],
        typer.Option(
            "--on-conflict",
            help="When the destination holds records the source lacks or has otherwise: "
            "error (write nothing), merge (add the source's, keep the destination's), "
            "replace (make the destination equal to the source).",
        ),
    ] = "error",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Write nothing; say what would be done.")
    ] = False,
    source_options: SourceOptions = None,
    dest_options: DestOptions = None,
    json: JsonOption = False,
) -> None:
    """Copy manifests from one root to another (every record and the metadata); the
    source is only read. Running it again writes nothing. Exit code 1, with nothing
    written, if the destination holds other records (see --on-conflict).

    Example: `etl-manifests copy ./manifests s3://bucket/manifests`
    """
    from ..tools import copy_manifests

    report = copy_manifests(
        source,
        destination,
        processes=process,
        versions=etl_version,
        on_conflict=on_conflict,
        dry_run=dry_run,
        source_options=_options(source, source_options, "--source-options"),
        destination_options=_options(destination, dest_options, "--dest-options"),
    )
    if json:
        print_json(report.to_dict())
        return
    console = stdout()
    would = "would be " if dry_run else ""
    for m in report.manifests:
        style = _STYLE[m.status.value]
        detail = f"{m.written} written"
        if m.removed:
            detail += f", {m.removed} removed"
        if m.kept:
            detail += f", {m.kept} kept"
        console.print(
            f"[{style}]{would}{m.status.value:<10}[/{style}] {m.process} v{escape(m.etl_version)}"
            f" -> {escape(m.destination_url)} ({detail}, {m.already_there} already there)",
            highlight=False,
        )
    if not report.manifests:
        console.print(f"no manifests under {escape(source)}")
        return
    from ..tools import CopyStatus

    counts = ", ".join(f"{report.count(s)} {s.value}" for s in CopyStatus)
    prefix = "dry run, nothing written: " if dry_run else ""
    console.print(f"{prefix}{counts}; {report.records_written} records {would}written")


def compare(
    source: SourceArg,
    destination: DestArg,
    process: ProcessesOption = None,
    etl_version: VersionsOption = None,
    source_options: SourceOptions = None,
    dest_options: DestOptions = None,
    json: JsonOption = False,
) -> None:
    """Compare the manifests of two roots record by record (neither is written). Exit
    code 0 if they hold the same records, 1 if not.

    Example: `etl-manifests compare ./manifests s3://bucket/manifests`
    """
    from ..tools import compare_manifests

    report = compare_manifests(
        source,
        destination,
        processes=process,
        versions=etl_version,
        source_options=_options(source, source_options, "--source-options"),
        destination_options=_options(destination, dest_options, "--dest-options"),
    )
    if json:
        print_json(report.to_dict())
    else:
        table = Table(
            "process", "version", "same", "identical", "only source", "only dest", "differ"
        )
        for m in report.manifests:
            r = m.records
            same = "[green]yes[/green]" if m.same else "[red]no[/red]"
            if not m.in_destination:
                same = "[red]missing in dest[/red]"
            elif not m.in_source:
                same = "[red]missing in source[/red]"
            table.add_row(
                m.process,
                escape(m.etl_version),
                same,
                str(r.identical),
                str(len(r.only_in_source)),
                str(len(r.only_in_destination)),
                str(len(r.differing)),
            )
        console = stdout()
        console.print(table)
        console.print("the roots hold the same records" if report.same else "the roots differ")
    if not report.same:
        raise typer.Exit(1)


def _options(root: str, given: str | None, flag: str) -> dict[str, Any]:
    if given is None:
        return Target.resolve(root, None).storage_options
    try:
        value = jsonlib.loads(given)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        # Never echo the value: it may hold credentials.
        raise BackendConfigurationError(f"{flag} must be a JSON object such as '{{}}'")
    return value
