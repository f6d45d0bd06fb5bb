"""Housekeeping: ``cleanup`` (staged leftovers of killed saves), ``plugins`` and
``config`` (the settings in effect and where each came from)."""

from __future__ import annotations

import importlib.metadata
import json as jsonlib
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..registry import (
    ENTRY_POINT_GROUP,
    get_plugin_manager,
    get_registry,
    plugin_errors,
    redact_root,
)
from .common import (
    EtlVersionOption,
    JsonOption,
    ProcessesOption,
    RootOption,
    Target,
    declared_processes,
)
from .output import cell, print_json, stderr, stdout

if TYPE_CHECKING:
    from ..config import ETLConfig

__all__ = ["parse_age", "register"]

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def register(app: typer.Typer) -> None:
    """Add ``cleanup``, ``plugins`` and ``config`` to ``app``."""
    app.command("cleanup")(cleanup)
    app.command("plugins")(plugins)
    app.command("config")(config)


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


def config(json: JsonOption = False) -> None:
    """Show the settings in effect and where each came from: an argument, an
    ETL_MANIFESTS_* variable, a .env file (with its path, so a stray one shows), or the
    default. Storage options are shown by their names only (they may hold credentials).

    Example: `etl-manifests config --json`
    """
    from ..config import ETLConfig, setting_sources

    settings = ETLConfig()
    sources = setting_sources(settings)
    rows = {name: {"value": _shown(settings, name), "source": sources[name]} for name in sources}
    if json:
        print_json({"settings": rows})
        return
    table = Table("setting", "value", "from")
    for name, row in rows.items():
        value = row["value"]
        if isinstance(value, list):
            text = ", ".join(value)
        else:
            text = jsonlib.dumps(value) if isinstance(value, dict) else str(value)
        table.add_row(name, cell(text or "-"), cell(row["source"]))
    stdout().print(table)


def _shown(settings: ETLConfig, name: str) -> Any:
    # What may be printed of a setting: never a credential.
    if name == "storage_options":
        return sorted(settings.storage_options)
    if name == "manifests_dir":
        return redact_root(settings.manifests_dir)
    if name == "checkpoint":
        return settings.checkpoint.model_dump(mode="json")
    if name == "processes":
        return list(settings.processes)
    return getattr(settings, name)


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
