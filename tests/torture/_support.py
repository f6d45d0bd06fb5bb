"""Shared plumbing of the torture tests: where a manifest lives, and raw access to it.

A :class:`Target` names a manifests root (local folder, ``memory://``, ``s3://`` or
``gs://`` behind the harness proxy) plus the storage options a worker process needs to
open it, and reads/lists the stored objects *without* going through the library, so
the tests can check what really is in storage.

A manifest is a snapshot (``KEY``, the seed's JSON document) plus a commit log beside it
(``LOG_PREFIX``). What a manifest *holds* is what a fresh :class:`Manifest` loads from
both (:meth:`Target.stored`); the snapshot alone lags the log unless a checkpoint just
ran (:meth:`Target.compacted_json`) or the policy checkpoints after every commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from etl_manifests import Manifest, open_backend
from etl_manifests.errors import NotFoundError
from etl_manifests.storage import STAGING_MARKER, StorageBackend

ETL_VERSION = "1.0.0"
KEY = f"extractor_v{ETL_VERSION}.json"
LOG_PREFIX = f"extractor_v{ETL_VERSION}.log/"
TESTS_DIR = Path(__file__).resolve().parent.parent

#: Quick backend retries for tests that inject faults or run under heavy contention.
FAST_RETRIES: dict[str, Any] = {"etl_manifests_retries": 8, "etl_manifests_retry_base": 0.01}


@dataclass
class Target:
    """A manifests root and how to look at it from outside the library."""

    kind: str  # "local", "memory", "s3", "gcs"
    root: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    endpoint_url: str = ""

    def backend(self) -> StorageBackend:
        return open_backend(self.root, self.storage_options)

    def manifest(self, **kwargs: Any) -> Manifest:
        return Manifest("extractor", ETL_VERSION, self.backend(), **kwargs)

    def stored(self) -> set[str]:
        """The checksums a fresh reader loads (snapshot + log)."""
        return set(self.manifest().records)

    def compacted_json(self, **kwargs: Any) -> dict[str, Any]:
        """Fold the log into the snapshot with ``compact()``, then read the JSON file
        alone, with the standard library."""
        self.manifest(**kwargs).compact()
        raw = self.raw_read()
        assert raw is not None
        return plain_json(raw)

    def entries(self) -> list[str]:
        """The log entries stored (keys below the root), staged copies left out."""
        # Staged copies end in their staging suffix, not in ".json".
        return [n for n in self.listing() if n.startswith(LOG_PREFIX) and n.endswith(".json")]

    # --- raw access, bypassing the library where possible ---------------------------

    def _bucket_prefix(self) -> tuple[str, str]:
        rest = self.root.split("://", 1)[1]
        bucket, _, prefix = rest.partition("/")
        return bucket, prefix.strip("/")

    def raw_read(self, key: str = KEY) -> bytes | None:
        """The stored bytes of ``key``, or ``None`` if nothing is stored."""
        if self.kind == "local":
            path = Path(self.root, key)
            return path.read_bytes() if path.is_file() else None
        if self.kind == "s3":
            from botocore.exceptions import ClientError

            bucket, prefix = self._bucket_prefix()
            try:
                got = _s3_client(self.endpoint_url).get_object(
                    Bucket=bucket, Key=f"{prefix}/{key}" if prefix else key
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                    return None
                raise
            return bytes(got["Body"].read())
        if self.kind == "gcs":
            bucket, prefix = self._bucket_prefix()
            name = quote(f"{prefix}/{key}" if prefix else key, safe="")
            url = f"{self.endpoint_url}/download/storage/v1/b/{bucket}/o/{name}?alt=media"
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    return bytes(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                raise
        # memory:// lives in this process only; its backend is the raw view.
        try:
            return self.backend().read(key).data
        except NotFoundError:
            return None

    def raw_write(self, data: bytes, key: str = KEY) -> None:
        """Store ``data`` under ``key`` without validation (to plant bad documents)."""
        if self.kind == "local":
            Path(self.root, key).parent.mkdir(parents=True, exist_ok=True)
            Path(self.root, key).write_bytes(data)
            return
        if self.kind == "s3":
            bucket, prefix = self._bucket_prefix()
            _s3_client(self.endpoint_url).put_object(
                Bucket=bucket, Key=f"{prefix}/{key}" if prefix else key, Body=data
            )
            return
        self.backend().write(key, data)

    def listing(self) -> list[str]:
        """Every stored name below the root (for local disk: hidden files too, and
        folders), relative to the root."""
        if self.kind == "local":
            base = Path(self.root)
            if not base.exists():
                return []
            return sorted(p.relative_to(base).as_posix() for p in base.rglob("*"))
        if self.kind == "s3":
            bucket, prefix = self._bucket_prefix()
            pages = _s3_client(self.endpoint_url).get_paginator("list_objects_v2")
            start = len(prefix) + 1 if prefix else 0
            return sorted(
                item["Key"][start:]
                for page in pages.paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
                for item in page.get("Contents", [])
            )
        return [info.key for info in self.backend().list("")]

    def staged(self) -> list[str]:
        return [name for name in self.listing() if STAGING_MARKER in name]


_S3_CLIENTS: dict[str, Any] = {}


def _s3_client(endpoint_url: str) -> Any:
    client = _S3_CLIENTS.get(endpoint_url)
    if client is None:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 10}),
        )
        _S3_CLIENTS[endpoint_url] = client
    return client


def plain_json(data: bytes) -> dict[str, Any]:
    """Parse a stored manifest with the standard library and check its shape."""
    doc = json.loads(data)
    assert isinstance(doc, dict), type(doc)
    assert set(doc) == {"metadata", "records"}, sorted(doc)
    assert isinstance(doc["records"], dict)
    for key, rec in doc["records"].items():
        assert rec["checksum"] == key
    return doc


def worker_env() -> dict[str, str]:
    """Environment for worker subprocesses: the tests folder importable, no .env surprises."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_worker(
    args: dict[str, Any], checkpoint: dict[str, Any] | None = None
) -> subprocess.Popen[str]:
    """Start ``python -m torture._writer`` with ``args`` (JSON) and pipes on stdio.

    ``checkpoint``: the writer's checkpoint policy, passed the way users configure it
    (``ETL_MANIFESTS_CHECKPOINT``); ``None`` leaves the default policy.
    """
    env = worker_env()
    env.pop("ETL_MANIFESTS_CHECKPOINT", None)
    if checkpoint is not None:
        env["ETL_MANIFESTS_CHECKPOINT"] = json.dumps(checkpoint)
    return subprocess.Popen(
        [sys.executable, "-m", "torture._writer", json.dumps(args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(TESTS_DIR),
    )
