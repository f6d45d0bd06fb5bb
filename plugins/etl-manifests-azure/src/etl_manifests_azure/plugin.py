"""The plugin module named by this distribution's ``etl_manifests`` entry point.

etl-manifests imports it when it first opens a backend and calls
:func:`register_backends` once. The factory is given as an import string, so importing
this module stays cheap: :mod:`etl_manifests_azure.backend` and the Azure SDK are imported
only the first time an ``az://``, ``abfs://`` or ``abfss://`` root is opened.
"""

from __future__ import annotations

from etl_manifests import hookimpl
from etl_manifests.hookspecs import RegisterBackend

__all__ = ["register_backends"]


@hookimpl
def register_backends(register: RegisterBackend) -> None:
    """Register :class:`~etl_manifests_azure.backend.AzureBackend` for adlfs's schemes."""
    register(("az", "abfs", "abfss"), "etl_manifests_azure.backend:AzureBackend", requires="adlfs")
