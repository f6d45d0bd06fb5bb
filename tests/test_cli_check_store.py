"""``etl-manifests check-store``: the store capability check on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_support import cli
from etl_manifests import open_backend
from etl_manifests.capability import check_store  # type: ignore[import-not-found]
from etl_manifests.testing import S3Server


def _expected(root: str, options: dict[str, Any]) -> Any:
    return check_store(open_backend(root, options))


def test_local_disk_report_matches_the_library(tmp_path: Path) -> None:
    report = _expected(str(tmp_path), {})
    result = cli("check-store", "--root", str(tmp_path), "--json")
    assert result.exit_code == (0 if report.ok else 1)
    assert json.loads(result.stdout) == {"ok": report.ok, "description": report.description}


@pytest.mark.s3
def test_s3_report_matches_the_library(s3_server: S3Server, s3_bucket: str) -> None:
    root = f"s3://{s3_bucket}/manifests"
    report = _expected(root, s3_server.storage_options)
    env = {"ETL_MANIFESTS_STORAGE_OPTIONS": json.dumps(s3_server.storage_options)}
    result = cli("check-store", "--root", root, env=env)
    assert result.exit_code == (0 if report.ok else 1)
    assert report.description in result.stdout
