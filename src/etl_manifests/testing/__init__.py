"""Testing helpers for etl-manifests users and plugin authors.

- :class:`BackendConformance`: the conformance tests every storage backend must pass
  (:mod:`etl_manifests.testing.conformance`).
- The pytest plugin (:mod:`etl_manifests.testing.plugin`), loaded automatically by pytest
  once ``etl-manifests[testing]`` is installed: fixtures giving a fresh manager on a
  memory root, a temporary folder, or S3 and GCS emulators on loopback.
- :func:`~etl_manifests.testing.servers.running_s3` /
  :func:`~etl_manifests.testing.servers.running_gcs`: the emulators behind a
  :class:`~etl_manifests.testing.proxy.ConditionalProxy` that enforces the write
  preconditions they ignore, for scripts.
- :class:`~etl_manifests.testing.http_files.FileServer`: files served over HTTP on
  loopback, counting requests.
- :class:`~etl_manifests.testing.stalling.StallingServer`: an endpoint that accepts
  connections and never answers (or stalls mid-body), and
  :func:`~etl_manifests.testing.stalling.call_within`, for testing deadlines.

Requires pytest; the emulators need the ``testing-s3`` / ``testing-gcs`` extras.
"""

from __future__ import annotations

from .conformance import BackendConformance
from .http_files import FileServer, running_file_server
from .proxy import ConditionalProxy, FaultRule, FaultRules
from .roots import ManifestRoot
from .servers import GcsServer, S3Server, running_gcs, running_s3
from .stalling import StallingServer, call_within, running_stalling_server

__all__ = [
    "BackendConformance",
    "ConditionalProxy",
    "FaultRule",
    "FaultRules",
    "FileServer",
    "GcsServer",
    "ManifestRoot",
    "S3Server",
    "StallingServer",
    "call_within",
    "running_file_server",
    "running_gcs",
    "running_s3",
    "running_stalling_server",
]
