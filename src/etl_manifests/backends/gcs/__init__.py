"""Google Cloud Storage backend, registered for ``gs://`` and ``gcs://``.

The backend module imports gcsfs, so it is named here as an import string and loaded only
when a ``gs://`` root is opened; without gcsfs that raises
:class:`~etl_manifests.errors.MissingDependencyError` with the install command.
"""

from __future__ import annotations

from ...hookspecs import RegisterBackend, hookimpl


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    """Register the GCS backend for ``gs://`` and ``gcs://`` URLs."""
    register(
        ("gs", "gcs"),
        "etl_manifests.backends.gcs._backend:GCSBackend",
        requires="gcsfs",
        extra="gcs",
    )
