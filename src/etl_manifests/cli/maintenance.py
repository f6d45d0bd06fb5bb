"""Housekeeping: ``cleanup`` (staged leftovers of killed saves) and ``plugins``."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from ..registry import ENTRY_POINT_GROUP, get_plugin_manager, get_registry, plugin_errors
from .common import (
    EtlVersionOption,
    JsonOption,
    ProcessesOption,
    RootOption,
    Target,
    declared_processes,
)
from .output import print_json, stderr, stdout

__all__ = ["parse_age", "register"]

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def register(app: typer.Typer) -> None:
    """Add ``cleanup`` and ``plugins`` to ``app``."""
    app.command("cleanup")(cleanup)
    app.command("plugins")(plugins)


def parse_age(text: str) -> timedelta:
    """``"90"``, ``"90s"``, ``"30m"``, ``"1h"``, ``"2d"`` -> a :class:`timedelta`."""
    match = _AGE.match(text.strip())
    if match is None:
        raise typer.BadParameter(
            f"{text!r} is not an age; write it like 90s, 30m, 1h or 2d", param_hint="--min-age"
        )
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def cleanup(
    process: ProcessesOption = None,
    min_age: Annotated[
        str,
        typer.Option(
            "--min-age",
            help="Only leftovers at least this old (a save in flight elsewhere is younger).",
        ),
    ] = "1h",
    root: RootOption = None,
    etl_version: EtlVersionOption = None,
    json: JsonOption = False,
) -> None:
    """Delete staged leftovers of saves that were killed halfway.

    Example: `etl-manifests cleanup --min-age 2h`
    """
    age = parse_age(min_age)
    target = Target.resolve(root, etl_version)
    removed: dict[str, int] = {}
    for proc in process or declared_processes():
        manifest = target.manifest(proc, load=False)
        removed[manifest.key] = manifest.cleanup_staged(min_age=age)
    if json:
        print_json({"removed": removed})
        return
    console = stdout()
    for key, count in removed.items():
        console.print(f"{count} staged leftovers removed for {key}")


def plugins(json: JsonOption = False) -> None:
    """List the installed backend plugins and the URL schemes each one claims.

    Example: `etl-manifests plugins --json`
    """
    rows = _plugin_rows()
    errors = plugin_errors()
    if json:
        print_json({"plugins": rows, "errors": errors})
        return
    table = Table("plugin", "package", "schemes")
    for row in rows:
        table.add_row(row["name"], row["package"], ", ".join(row["schemes"]) or "-")
    stdout().print(table)
    for error in errors:
        stderr().print(f"[red]{error}[/red]", highlight=False)


def _plugin_rows() -> list[dict[str, Any]]:
    registry = get_registry()
    pm = get_plugin_manager()
    packages = {
        ep.name: f"{ep.dist.name} {ep.dist.version}" if ep.dist else ep.value
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    }
    active = registry.schemes
    rows = []
    for impl in pm.hook.register_backends.get_hookimpls():
        claims = _Claims()
        try:
            impl.function(register=claims)
        except Exception:
            continue
        name = impl.plugin_name
        rows.append(
            {
                "name": name,
                "package": packages.get(name, "etl-manifests (built in)"),
                # A scheme another plugin took over with replace=True is not this one's.
                "schemes": [s for s, factory in claims.found if active.get(s) == factory],
            }
        )
    return sorted(rows, key=lambda r: (r["package"].startswith("etl-manifests (built"), r["name"]))


class _Claims:
    """A ``register`` callback that only notes which schemes a plugin claims."""

    def __init__(self) -> None:
        self.found: list[tuple[str, Any]] = []

    def __call__(self, schemes: str | Sequence[str], factory: Any, **_: Any) -> None:
        names = [schemes] if isinstance(schemes, str) else list(schemes)
        self.found.extend((name.lower(), factory) for name in names)
