"""The seed's usage example runs as written against every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import CHECKSUM
from etl_manifests import Manifest, open_backend

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "seed_usage.py"


def run_example(
    root: str, storage_options: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> None:
    env = {
        **os.environ,
        **(env or {}),
        "ETL_MANIFESTS_MANIFESTS_DIR": root,
        "ETL_MANIFESTS_VERSION": "1.0.0",
        "ETL_MANIFESTS_STORAGE_OPTIONS": json.dumps(storage_options or {}),
    }
    subprocess.run([sys.executable, str(EXAMPLE)], env=env, check=True, timeout=120)


def stored(root: str, storage_options: dict[str, Any] | None = None) -> Manifest:
    return Manifest("extractor", "1.0.0", open_backend(root, storage_options))


def assert_recorded(root: str, storage_options: dict[str, Any] | None = None) -> None:
    manifest = stored(root, storage_options)
    record = manifest.records[CHECKSUM]
    assert record.filepath == "/path/to/etl/data/downloads/some_file.gz"
    assert record.etl_version == "1.0.0"
    assert manifest.metadata.process == "extractor"


def test_seed_example_on_local_disk(tmp_path: Path) -> None:
    run_example(str(tmp_path / "manifests"))
    assert_recorded(str(tmp_path / "manifests"))


def test_seed_example_runs_twice_without_duplicating(tmp_path: Path) -> None:
    run_example(str(tmp_path))
    run_example(str(tmp_path))
    manifest = stored(str(tmp_path))
    assert list(manifest.records) == [CHECKSUM]
    assert manifest.metadata.revision == 2


def test_seed_example_leaves_a_complete_json_file_when_asked_to(tmp_path: Path) -> None:
    # For consumers that read only extractor_v1.0.0.json (jq, json.load).
    run_example(
        str(tmp_path),
        env={"ETL_MANIFESTS_CHECKPOINT": '{"every": 1, "size_ratio": 0, "inline": true}'},
    )
    document = json.loads((tmp_path / "extractor_v1.0.0.json").read_bytes())
    assert list(document["records"]) == [CHECKSUM]
    assert document["records"][CHECKSUM]["filename"] == "some_file.gz"


@pytest.mark.s3
def test_seed_example_on_s3(s3_server: Any, s3_bucket: str) -> None:
    root = f"s3://{s3_bucket}/manifests"
    run_example(root, s3_server.storage_options)
    assert_recorded(root, s3_server.storage_options)


@pytest.mark.gcs
def test_seed_example_on_gcs(gcs_server: Any, gcs_bucket: str) -> None:
    root = f"gs://{gcs_bucket}/manifests"
    run_example(root, gcs_server.storage_options)
    assert_recorded(root, gcs_server.storage_options)
