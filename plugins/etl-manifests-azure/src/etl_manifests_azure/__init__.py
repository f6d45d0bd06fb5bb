"""etl-manifests-azure: keep etl-manifests manifests in Azure Blob Storage.

Installing the distribution is enough: etl-manifests finds it through its entry point, and
``ManifestManager(root_dir="az://container/manifests", etl_version="1",
storage_options={"account_name": "...", "account_key": "..."})`` then stores every
manifest as a blob. Roots and options follow adlfs (``az://``, ``abfs://``, ``abfss://``;
``account_name``, ``account_key``, ``connection_string``, ``sas_token``, ``credential``,
``anon``...). See :mod:`etl_manifests_azure.backend` for the guarantees.

``AzureBackend`` is importable from here, but the backend module (and the Azure SDK) loads
only on first access, so that etl-manifests loading the plugin
(:mod:`etl_manifests_azure.plugin`) costs nothing until an Azure root is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import AzureBackend

__all__ = ["AzureBackend", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "AzureBackend":
        from .backend import AzureBackend

        return AzureBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
