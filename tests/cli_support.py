"""Running the command line in process, as the tests of etl_manifests.cli do."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from typer.testing import CliRunner, Result

from etl_manifests.cli.app import build_app


def cli(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """Invoke ``etl-manifests *args`` in this process; stdout and stderr kept apart."""
    return CliRunner().invoke(build_app(), list(args), env=env)


def json_of(result: Result) -> Any:
    """The command's stdout, which must be plain JSON and nothing else."""
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)
