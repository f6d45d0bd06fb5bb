"""Adding files: ``record`` (files where they lie) and ``fetch`` (download-if-new)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ..process import ETLProcess
from .common import (
    DEFAULT_WORKERS,
    EtlVersionOption,
    JsonOption,
    ProcessOption,
    RootOption,
    Target,
    WorkersOption,
)
from .output import human_size, print_json, progress, stdout, transfer_progress

if TYPE_CHECKING:
    from ..tools import FetchResult

__all__ = ["register"]

# By FetchStatus value: the tools (and what they import) load only when a command runs,
# so that --help stays cheap.
_STYLE = {"downloaded": "green", "skipped": "dim", "duplicate": "yellow", "failed": "red"}
#: fetch's --naming default; the same as ``etl_manifests.tools.fetch.DEFAULT_NAMING``.
DEFAULT_NAMING = "{path}"


def register(app: typer.Typer) -> None:
    """Add ``record`` and ``fetch`` to ``app``."""
    app.command("record")(record)
    app.command("fetch")(fetch)


def record(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Local paths or URLs (s3://, gs://, https://, ...).", show_default=False
        ),
    ],
    process: ProcessOption = ETLProcess.EXTRACTOR,
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    workers: WorkersOption = DEFAULT_WORKERS,
    json: JsonOption = False,
) -> None:
    """Hash files where they lie and record them, all in one commit (nothing is recorded
    if any of them cannot be read).

    Example: `etl-manifests record data/*.csv s3://bucket/raw/a.gz`
    """
    from ..tools import record_files

    target = Target.resolve(root, etl_version)
    manifest = target.manifest(process)
    before = {r.checksum: r.updated_at for r in manifest}
    with progress("hashing", len(paths)) as advance:
        records = record_files(
            manifest,
            paths,
            workers=workers,
            storage_options=target.file_options(),
            on_hashed=lambda _: advance(),
        )
    if json:
        print_json(
            [
                r.model_dump(mode="json")
                | {"status": "unchanged" if before.get(r.checksum) == r.updated_at else "recorded"}
                for r in records
            ]
        )
        return
    console = stdout()
    unchanged = 0
    for r in records:
        size = human_size(r.content_length_bytes)
        same = before.get(r.checksum) == r.updated_at
        unchanged += same
        what = "unchanged" if same else "recorded "
        console.print(
            f"{what} {r.checksum[:12]}  {size:>10}  {escape(r.filepath)}", highlight=False
        )
    console.print(f"{len(records) - unchanged} recorded, {unchanged} unchanged in {manifest.url}")


def fetch(
    dest: Annotated[
        str,
        typer.Option(
            "--dest",
            "-d",
            help="Folder or URL prefix (s3://bucket/raw) to download into.",
            show_default=False,
        ),
    ],
    urls: Annotated[
        list[str] | None,
        typer.Argument(
            help="URLs (https://, s3://, gs://, ...) or local paths.", show_default=False
        ),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            "-i",
            help="Read more URLs from this file, one a line ('-': stdin).",
            dir_okay=False,
            allow_dash=True,
            show_default=False,
        ),
    ] = None,
    naming: Annotated[
        str,
        typer.Option(
            "--naming",
            help="Where each file lands below --dest: a template of {host}, {path} (the "
            "URL's path) and {name} (its last part), such as '{host}/{path}' or '{name}'.",
        ),
    ] = DEFAULT_NAMING,
    refetch_missing: Annotated[
        bool,
        typer.Option(
            "--refetch-missing",
            help="Download recorded files again when they are gone from their recorded "
            "place (what verify reports as missing).",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Download every file, recorded or not."),
    ] = False,
    per_host: Annotated[
        int | None,
        typer.Option(
            "--per-host",
            min=1,
            help="At most this many downloads from one host at a time (beside --workers).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Say why each file was skipped or a duplicate."),
    ] = False,
    process: ProcessOption = ETLProcess.EXTRACTOR,
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    workers: WorkersOption = DEFAULT_WORKERS,
    json: JsonOption = False,
) -> None:
    """Download files the manifest does not have yet into a folder, and record each one as
    it lands with its source URL. Files recorded before (same source, same server
    headers, same destination) are skipped without downloading. Each file lands at its
    URL's path below --dest (see --naming); two URLs for one destination are refused.
    Exit code 1 if any download failed, 130 if interrupted (Ctrl-C stops the downloads
    in flight, keeps the files that landed, and prints the summary).

    Example: `etl-manifests fetch https://example.org/data/day_1.csv --dest downloads`
    """
    wanted = list(urls or []) + _read_urls(from_file)
    if not wanted:
        raise typer.BadParameter("give at least one URL, or --from-file", param_hint="URLS")
    from ..tools import FetchReport, FetchStatus, fetch_many

    target = Target.resolve(root, etl_version)
    manifest = target.manifest(process)
    console = stdout()
    seen: list[FetchResult] = []

    def show(result: FetchResult) -> None:
        seen.append(result)
        advance()
        if not json:
            _print_result(console, result, verbose=verbose)

    interrupted = False
    with transfer_progress("fetching", len(wanted)) as (advance, add_bytes):
        try:
            report = fetch_many(
                manifest,
                wanted,
                dest,
                workers=workers,
                naming=naming,
                refetch_missing=refetch_missing,
                force=force,
                per_host=per_host,
                storage_options=target.file_options(),
                on_result=show,
                on_bytes=add_bytes,
            )
        except KeyboardInterrupt as stop:
            interrupted = True
            report = getattr(stop, "report", None) or FetchReport(seen)
    if json:
        print_json({**report.to_dict(), "interrupted": interrupted})
    else:
        counts = ", ".join(f"{report.count(s)} {s.value}" for s in FetchStatus)
        tail = f"; interrupted, {len(wanted) - len(report.results)} not fetched" * interrupted
        console.print(f"{counts} ({manifest.url}){tail}")
    if interrupted:
        raise typer.Exit(130)
    if not report.ok:
        raise typer.Exit(1)


def _print_result(console: Any, result: FetchResult, *, verbose: bool = False) -> None:
    from ..tools import FetchStatus
    from ..tools.files import redact

    style = _STYLE[result.status.value]
    line = f"[{style}]{result.status.value:<10}[/{style}] {escape(redact(result.url))}"
    if result.status is FetchStatus.FAILED:
        line += f": {escape(result.error or '')}"
    elif result.status is FetchStatus.DOWNLOADED:
        line += f" -> {escape(result.filepath or '')} ({human_size(result.size)})"
    else:
        line += f" (recorded: {escape(result.filepath or '')})"
    if verbose and result.reason:
        line += f"\n           {escape(result.reason)}"
    console.print(line, highlight=False)


def _read_urls(source: Path | None) -> list[str]:
    if source is None:
        return []
    if str(source) == "-":
        text = sys.stdin.read()
    elif not source.is_file():
        raise typer.BadParameter(
            f"file {str(source)!r} does not exist; give a file of URLs, one a line, or '-' "
            "to read them from stdin",
            param_hint="'--from-file' / '-i'",
        )
    else:
        text = source.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
