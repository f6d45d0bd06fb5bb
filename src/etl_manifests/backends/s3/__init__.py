"""Amazon S3 (and S3-compatible) backend, registered for ``s3://`` and ``s3a://``.

The backend module imports s3fs, so it is named here as an import string and loaded only
when an ``s3://`` root is opened; without s3fs that raises
:class:`~etl_manifests.errors.MissingDependencyError` with the install command.
"""

from __future__ import annotations

from ...hookspecs import RegisterBackend, hookimpl


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    """Register the S3 backend for ``s3://`` and ``s3a://`` URLs."""
    register(
        ("s3", "s3a"),
        "etl_manifests.backends.s3._backend:S3Backend",
        requires="s3fs",
        extra="s3",
    )
