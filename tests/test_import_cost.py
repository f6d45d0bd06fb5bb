"""Importing the package, and loading its pytest plugin, pull in nothing heavy.

Timings are in ``benchmarks/import_time.py``; these tests pin down what is imported.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pydantic", "pydantic_settings", "fsspec", "orjson", "etl_manifests.model")


def imported_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


@pytest.mark.parametrize("code", ["import etl_manifests", "import etl_manifests.testing.plugin"])
def test_importing_pulls_in_nothing_heavy(code: str) -> None:
    loaded = imported_after(code)
    assert not [name for name in HEAVY if name in loaded]


def test_every_public_name_still_imports() -> None:
    loaded = imported_after(
        "import etl_manifests as e\n"
        "missing = [n for n in e.__all__ if getattr(e, n, None) is None]\n"
        "assert not missing, missing\n"
        "assert callable(e.fetch) and callable(e.verify)"
    )
    assert "etl_manifests.model" in loaded


@pytest.mark.parametrize("args", [["--help"], ["show", "--help"], ["fetch", "--help"]])
def test_command_line_help_pulls_in_nothing_heavy(args: list[str]) -> None:
    # Help needs the commands' signatures only; their work loads the library's heavy parts.
    loaded = imported_after(
        "import sys\n"
        "from etl_manifests.cli.app import run\n"
        f"assert run({args!r}) == 0\n"
        "sys.stdout.flush()"
    )
    # (typer itself loads pydantic to describe a command's parameters; not ours to avoid)
    heavy = ("pydantic_settings", "fsspec", "orjson", "etl_manifests.model", "rich.progress")
    assert not [name for name in heavy if name in loaded]
    if args == ["--help"]:
        assert "pydantic" not in loaded
