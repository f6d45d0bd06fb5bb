"""The command line through its real entry points, in subprocesses: the ``etl-manifests``
console script and ``python -m etl_manifests``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from etl_manifests.testing import FileServer

SCRIPT = str(Path(sys.executable).with_name("etl-manifests"))


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_MANIFESTS_")}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_console_script_fetches_then_verify_exits_1_on_a_missing_file(
    tmp_path: Path, file_server: FileServer
) -> None:
    urls = [file_server.add(f"{n}.csv", f"{n}\n".encode()) for n in range(3)]
    fetched = _run(SCRIPT, "fetch", *urls, "--dest", "raw", "--json", cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["counts"]["downloaded"] == 3
    (tmp_path / "raw" / "1.csv").unlink()
    verified = _run(sys.executable, "-m", "etl_manifests", "verify", cwd=tmp_path)
    assert verified.returncode == 1
    assert "1 missing" in verified.stdout


def test_module_entry_point_reports_a_usage_error_in_one_line(tmp_path: Path) -> None:
    result = _run(sys.executable, "-m", "etl_manifests", "show", "--process", "x", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("etl-manifests: error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
