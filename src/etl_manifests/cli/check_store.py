"""``check-store``: does the manifests' store keep the promises commits rely on?"""

from __future__ import annotations

import typer

from ..capability import check_store as run_check
from .common import JsonOption, RootOption, Target
from .output import print_json, stdout

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``check-store`` to ``app``."""
    app.command("check-store")(check_store)


def check_store(root: RootOption = None, json: JsonOption = False) -> None:
    """Check that the store under the root makes saves atomic and conditional, as
    etl-manifests needs. Exit code 1 if it does not.

    Example: `etl-manifests check-store --root s3://bucket/manifests`
    """
    report = run_check(Target.resolve(root, None).backend())
    if json:
        print_json({"ok": bool(report.ok), "description": str(report.description)})
    else:
        verdict = "[green]ok[/green]" if report.ok else "[red]not usable[/red]"
        stdout().print(f"{verdict}: {report.description}")
    if not report.ok:
        raise typer.Exit(1)
