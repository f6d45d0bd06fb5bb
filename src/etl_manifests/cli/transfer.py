"""Adding files: ``record`` (files where they lie) and ``fetch`` (download-if-new)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..process import ETLProcess
from ..tools import FetchResult, FetchStatus, fetch_many, record_files
from ..tools.files import redact
from .common import EtlVersionOption, JsonOption, ProcessOption, RootOption, Target, WorkersOption
from .output import human_size, print_json, progress, stdout

__all__ = ["register"]

_STYLE = {
    FetchStatus.DOWNLOADED: "green",
    FetchStatus.SKIPPED: "dim",
    FetchStatus.DUPLICATE: "yellow",
    FetchStatus.FAILED: "red",
}


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
    workers: WorkersOption = 4,
    json: JsonOption = False,
) -> None:
    """Hash files where they lie and record them, all in one commit (nothing is recorded
    if any of them cannot be read).

    Example: `etl-manifests record data/*.csv s3://bucket/raw/a.gz`
    """
    target = Target.resolve(root, etl_version)
    manifest = target.manifest(process)
    with progress("hashing", len(paths)) as advance:
        records = record_files(
            manifest,
            paths,
            workers=workers,
            storage_options=target.file_options(),
            on_hashed=lambda _: advance(),
        )
    if json:
        print_json([r.model_dump(mode="json") for r in records])
        return
    console = stdout()
    for r in records:
        size = human_size(r.content_length_bytes)
        console.print(
            f"recorded  {r.checksum[:12]}  {size:>10}  {escape(r.filepath)}", highlight=False
        )
    console.print(f"{len(records)} recorded in {manifest.url}")


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
            exists=True,
            dir_okay=False,
            allow_dash=True,
            show_default=False,
        ),
    ] = None,
    process: ProcessOption = ETLProcess.EXTRACTOR,
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    workers: WorkersOption = 4,
    json: JsonOption = False,
) -> None:
    """Download files the manifest does not have yet into a folder, and record each one as
    it lands. Files recorded before (same name, same server headers, same destination)
    are skipped without downloading. Exit code 1 if any download failed.

    Example: `etl-manifests fetch https://example.org/data/day_1.csv --dest downloads`
    """
    wanted = list(urls or []) + _read_urls(from_file)
    if not wanted:
        raise typer.BadParameter("give at least one URL, or --from-file", param_hint="URLS")
    target = Target.resolve(root, etl_version)
    manifest = target.manifest(process)
    console = stdout()

    def show(result: FetchResult) -> None:
        advance()
        if not json:
            _print_result(console, result)

    with progress("fetching", len(wanted)) as advance:
        report = fetch_many(
            manifest,
            wanted,
            dest,
            workers=workers,
            storage_options=target.file_options(),
            on_result=show,
        )
    if json:
        print_json(report.to_dict())
    else:
        counts = ", ".join(f"{report.count(s)} {s.value}" for s in FetchStatus)
        console.print(f"{counts} ({manifest.url})")
    if not report.ok:
        raise typer.Exit(1)


def _print_result(console: Any, result: FetchResult) -> None:
    style = _STYLE[result.status]
    line = f"[{style}]{result.status.value:<10}[/{style}] {escape(redact(result.url))}"
    if result.status is FetchStatus.FAILED:
        line += f": {escape(result.error or '')}"
    elif result.status is FetchStatus.DOWNLOADED:
        line += f" -> {escape(result.filepath or '')} ({human_size(result.size)})"
    else:
        line += f" (recorded: {escape(result.filepath or '')})"
    console.print(line, highlight=False)


def _read_urls(source: Path | None) -> list[str]:
    if source is None:
        return []
    text = sys.stdin.read() if str(source) == "-" else source.read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
