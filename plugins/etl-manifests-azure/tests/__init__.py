"""Tests of etl-manifests-azure (a package, so its conftest never shadows another one)."""
