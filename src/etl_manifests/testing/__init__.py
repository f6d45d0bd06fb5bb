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

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from .conformance import BackendConformance
    from .http_files import FileServer, running_file_server
    from .proxy import ConditionalProxy, FaultRule, FaultRules
    from .roots import ManifestRoot
    from .servers import GcsServer, S3Server, running_gcs, running_s3
    from .stalling import StallingServer, call_within, running_stalling_server

# Imported on first use: loading the pytest plugin (etl_manifests.testing.plugin) must
# not import the library, the emulators or the cloud clients into every test run.
_LAZY: dict[str, str] = {
    "BackendConformance": ".conformance",
    "ConditionalProxy": ".proxy",
    "FaultRule": ".proxy",
    "FaultRules": ".proxy",
    "FileServer": ".http_files",
    "GcsServer": ".servers",
    "ManifestRoot": ".roots",
    "S3Server": ".servers",
    "StallingServer": ".stalling",
    "call_within": ".stalling",
    "running_file_server": ".http_files",
    "running_gcs": ".servers",
    "running_s3": ".servers",
    "running_stalling_server": ".stalling",
}

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

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
