"""Re-exports :mod:`etl_manifests.testing.http_files`."""

from etl_manifests.testing.http_files import FileServer, running_file_server

__all__ = ["FileServer", "running_file_server"]
