"""``ETLConfig``: settings from the environment (prefix ``ETL_MANIFESTS_``) or a ``.env``.

=================================  =========================================================
variable                           meaning
=================================  =========================================================
``ETL_MANIFESTS_VERSION``          the ETL version (part of each manifest's file name)
``ETL_MANIFESTS_MANIFESTS_DIR``    manifests root: a path, ``file://``, ``s3://bucket/prefix``,
                                   ``gs://bucket/prefix``, or any scheme a plugin adds
``ETL_MANIFESTS_STORAGE_OPTIONS``  JSON object passed to the backend (fsspec-style options:
                                   ``endpoint_url``, ``key``/``secret``, ``token``, ...)
``ETL_MANIFESTS_CHECKPOINT``       JSON object of :class:`CheckpointPolicy` fields, e.g.
                                   ``{"every": 1, "size_ratio": 0, "inline": true}``
=================================  =========================================================
"""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .policy import CheckpointPolicy
from .registry import normalise_root

__all__ = ["ETLConfig"]


class ETLConfig(BaseSettings):
    """Where manifests live and which ETL version writes them.

    ``storage_options`` may hold credentials, so it is left out of ``repr``.
    """

    model_config = SettingsConfigDict(env_prefix="ETL_MANIFESTS_", env_file=".env", extra="ignore")

    version: str = "1.0.0"
    """The ETL version; manifests are named ``{process}_v{version}.json``."""
    manifests_dir: str = "manifests"
    """Root of the manifests: a local path (relative to the working directory) or a URL."""
    storage_options: dict[str, Any] = Field(default_factory=dict, repr=False)
    """Options for the storage backend, passed through to s3fs / gcsfs / plugins."""
    checkpoint: CheckpointPolicy = Field(default_factory=CheckpointPolicy)
    """When the commit log is folded into the snapshot, and how long folded entries stay."""

    def get_manifests_dir(self) -> str:
        """The manifests root: a URL without trailing slashes, or a local path made absolute.

        :raises BackendConfigurationError: the root is empty, only a scheme (``s3://``
            from ``s3://${BUCKET}`` with ``BUCKET`` unset), or a URL without ``//``; such
            roots are never taken for a local folder.
        """
        return normalise_root(self.manifests_dir)
