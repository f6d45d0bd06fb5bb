"""``python -m etl_manifests``: the same command line as ``etl-manifests``."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
