"""``repair``: report damaged log entries and seals, and set them aside with ``--apply``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..process import ETLProcess
from .common import EtlVersionOption, JsonOption, ProcessOption, RootOption, Target
from .output import print_json, stdout

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``repair`` to ``app``."""
    app.command("repair")(repair)


def repair(
    process: ProcessOption = ETLProcess.EXTRACTOR,
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Set the damaged objects aside (default: only report)."),
    ] = False,
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    json: JsonOption = False,
) -> None:
    """Check a manifest's log for damage, say what setting it aside would lose, and with
    --apply set it aside so the manifest loads again.

    Exit code 0 when nothing is damaged (or --apply made it load), 1 otherwise.

    Example: `etl-manifests repair -p extractor`, then `etl-manifests repair -p extractor --apply`
    """
    target = Target.resolve(root, etl_version)
    from ..repair import repair_manifest

    report = repair_manifest(target.backend(), process, target.etl_version, apply=apply)
    if json:
        print_json(report.to_dict())
    else:
        console = stdout()
        if not report.damage:
            console.print(f"{report.manifest}: no damage found", markup=False)
        for damage in report.damage:
            console.print(f"{damage.location}: {damage.problem}", markup=False)
            console.print(f"  setting it aside loses: {damage.loses}", markup=False)
            fix = damage.fix or "nothing can be done here"
            console.print(
                f"  {'done' if report.applied and damage.fix else '--apply'}: {fix}", markup=False
            )
        if report.loads:
            console.print(f"{report.manifest} loads", markup=False)
        else:
            console.print(f"{report.manifest} does not load: {report.error}", markup=False)
        if report.damage and not report.applied and any(d.fix for d in report.damage):
            console.print("run again with --apply to set the damage aside", markup=False)
    fixed = report.loads and (report.applied or not report.damage)
    if not fixed:
        raise typer.Exit(1)
