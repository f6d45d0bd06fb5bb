"""Helpers shared by the tests of etl_manifests.tools."""

from __future__ import annotations

import hashlib
from pathlib import Path

from etl_manifests import Manifest, open_backend


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_manifest(root: Path) -> Manifest:
    """The extractor manifest under ``root``, freshly loaded."""
    return Manifest("extractor", "1.0.0", open_backend(str(root)))


def part_files(folder: Path) -> list[Path]:
    """Temporary download files left in ``folder``."""
    return sorted(folder.glob(".*.part-*")) if folder.exists() else []
