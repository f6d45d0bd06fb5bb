"""Re-exports :mod:`etl_manifests.testing.servers` (the fixtures are the pytest plugin's)."""

from etl_manifests.testing.servers import (
    GCS_PROJECT,
    GcsServer,
    S3Server,
    running_gcs,
    running_s3,
)

__all__ = ["GCS_PROJECT", "GcsServer", "S3Server", "running_gcs", "running_s3"]
