"""Fixtures: Azurite started once per session, a fault proxy in front of it, containers.

``azurite`` (session)
    Azurite's blob service on 127.0.0.1 (see ``azurite_server.py``). If it cannot be
    installed or started, every test that needs it *fails* with the reason; none skips.
``proxy`` (session; faults and records cleared after each test)
    A :class:`~azure_fault_proxy.FaultProxy` in front of Azurite.
``container`` (function)
    A fresh, empty container on Azurite.
``plain_options`` / ``proxied_options`` (function)
    Storage options (a connection string) straight to Azurite, or through the proxy, with
    quick retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from etl_manifests import ManifestManager

from .azure_fault_proxy import FaultProxy
from .azurite_server import AzuriteServer, AzuriteUnavailable, running_azurite

#: Quick back-off, so that tests injecting faults stay fast.
FAST_RETRIES: dict[str, Any] = {"etl_manifests_retries": 5, "etl_manifests_retry_base": 0.005}


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_azurite())
        except AzuriteUnavailable as exc:
            reason = str(exc)
        else:
            yield server
            return
    pytest.fail(reason, pytrace=False)


@pytest.fixture(scope="session")
def _session_proxy(azurite: AzuriteServer) -> Iterator[FaultProxy]:
    with FaultProxy(azurite.endpoint) as proxy:
        yield proxy


@pytest.fixture
def proxy(_session_proxy: FaultProxy) -> Iterator[FaultProxy]:
    _session_proxy.reset()
    yield _session_proxy
    _session_proxy.reset()


@pytest.fixture
def container(azurite: AzuriteServer) -> str:
    return azurite.create_container()


@pytest.fixture
def plain_options(azurite: AzuriteServer) -> dict[str, Any]:
    return azurite.storage_options(**FAST_RETRIES)


@pytest.fixture
def proxied_options(azurite: AzuriteServer, proxy: FaultProxy) -> dict[str, Any]:
    return azurite.storage_options(endpoint=proxy.endpoint, **FAST_RETRIES)


@pytest.fixture(autouse=True)
def _fresh_manager() -> Iterator[None]:
    ManifestManager.reset()
    yield
    ManifestManager.reset()
