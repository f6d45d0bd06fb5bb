"""etl-manifests-sqlite: keep etl-manifests manifests in one SQLite database file.

Installing the distribution is enough: etl-manifests finds it through its entry point, and
``ManifestManager(root_dir="sqlite:///abs/path/state.db", etl_version="1")`` then stores
every manifest as a row of that file. See :mod:`etl_manifests_sqlite.backend` for the
guarantees.

``SQLiteBackend`` is importable from here, but the backend module loads only on first
access, so that etl-manifests loading the plugin (:mod:`etl_manifests_sqlite.plugin`)
costs nothing until a ``sqlite://`` root is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import SQLiteBackend

__all__ = ["SQLiteBackend", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "SQLiteBackend":
        from .backend import SQLiteBackend

        return SQLiteBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
