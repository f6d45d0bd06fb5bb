"""A manifests root for a test: its URL and the storage options that reach it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..manager import ManifestManager

__all__ = ["ManifestRoot"]


@dataclass(frozen=True)
class ManifestRoot:
    """Where a test's manifests live: ``url`` (``s3://bucket/manifests``, ...) and the
    ``storage_options`` that reach it (the emulator's endpoint and dummy credentials).

    ``bucket`` is the bucket the fixture created for this test alone (empty when the root
    has no bucket). The options stay out of the repr.
    """

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)
    bucket: str = ""

    def manager(
        self, etl_version: str = "1.0.0", *, processes: Iterable[str] | None = None, **kwargs: Any
    ) -> ManifestManager:
        """``ManifestManager(url, etl_version, storage_options=..., ...)`` on this root.

        The manager is the process-wide singleton: call ``ManifestManager.reset()``
        before asking for one with other settings.
        """
        return ManifestManager(
            self.url,
            etl_version,
            storage_options=self.storage_options,
            processes=processes,
            **kwargs,
        )

    def environ(self) -> dict[str, str]:
        """The ``ETL_MANIFESTS_*`` variables that make ``ETLConfig()`` point at this root.

        For code under test that builds its manager from the environment::

            for name, value in s3_manifest_root.environ().items():
                monkeypatch.setenv(name, value)
        """
        return {
            "ETL_MANIFESTS_MANIFESTS_DIR": self.url,
            "ETL_MANIFESTS_STORAGE_OPTIONS": json.dumps(self.storage_options),
        }
