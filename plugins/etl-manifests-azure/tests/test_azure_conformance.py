"""The library's backend contract, run against the Azure backend on plain Azurite.

Plain: no proxy between the backend and Azurite, because Azurite itself enforces the
conditions (test_azurite_harness.py). The second class sends every write down the block
path (Put Block + conditional Put Block List), so the contract is proved for both ways a
body is committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from etl_manifests.testing import BackendConformance

from etl_manifests_azure.backend import AzureBackend


class TestAzureConformance(BackendConformance):
    @pytest.fixture
    def backend(self, container: str, plain_options: dict[str, Any]) -> Iterator[AzureBackend]:
        backend = AzureBackend(f"az://{container}/manifests", plain_options)
        yield backend
        backend.close()


class TestAzureConformanceBlockPath(BackendConformance):
    """Every body over one byte is staged in 256 KiB blocks and committed by a block list."""

    @pytest.fixture
    def backend(self, container: str, plain_options: dict[str, Any]) -> Iterator[AzureBackend]:
        options = {
            **plain_options,
            "etl_manifests_max_single_put": 1,
            "etl_manifests_block_size": 256 * 1024,
        }
        backend = AzureBackend(f"abfs://{container}/{uuid.uuid4().hex[:6]}/deeper", options)
        yield backend
        backend.close()
