"""Re-exports :mod:`etl_manifests.testing.proxy` (and the handler classes that scripts
subclass to count requests)."""

from etl_manifests.testing.proxy import (
    IGNORABLE_OPERATIONS,
    ConditionalProxy,
    Dialect,
    FaultAction,
    FaultRule,
    FaultRules,
)
from etl_manifests.testing.proxy._server import _Handler, _ProxyServer

__all__ = [
    "IGNORABLE_OPERATIONS",
    "ConditionalProxy",
    "Dialect",
    "FaultAction",
    "FaultRule",
    "FaultRules",
    "_Handler",
    "_ProxyServer",
]
