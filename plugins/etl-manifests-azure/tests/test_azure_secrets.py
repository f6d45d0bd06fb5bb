"""No account key, SAS token or connection string in any message, repr, traceback or log line.

Azurite runs with an extra account whose key is random for this run; a SAS token is
signed with it. Every test below uses those real secrets (so they reach the SDK, the
wire and the loggers), makes the backend fail in a different way with DEBUG logging on
for every logger, then searches everything a user could see for them.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from etl_manifests import ManifestManager, open_backend
from etl_manifests.errors import ManifestError

from etl_manifests_azure.backend import AzureBackend

from .azure_fault_proxy import Fault, FaultProxy
from .azurite_server import AzuriteServer, connection_string


@pytest.fixture
def secret_container(azurite: AzuriteServer) -> str:
    return azurite.create_container(azurite.secret_account)


@pytest.fixture
def sas(azurite: AzuriteServer, secret_container: str) -> str:
    """A read-and-list SAS token for the container, signed with the planted key."""
    return generate_container_sas(
        azurite.secret_account,
        secret_container,
        account_key=azurite.secret_key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )


@pytest.fixture
def secrets(azurite: AzuriteServer, sas: str) -> list[str]:
    signature = parse_qs(sas)["sig"][0]
    return [
        azurite.secret_key,
        azurite.connection_string(azurite.secret_account),
        sas,
        signature,
        unquote(signature),
        signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D"),
    ]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


def _sas_options(azurite: AzuriteServer, sas: str, endpoint: str | None = None) -> dict[str, Any]:
    base = endpoint or azurite.endpoint
    return {
        "connection_string": (
            f"BlobEndpoint={base}/{azurite.secret_account};SharedAccessSignature={sas}"
        ),
        "etl_manifests_retries": 2,
        "etl_manifests_retry_base": 0.001,
    }


def _key_options(azurite: AzuriteServer, endpoint: str | None = None) -> dict[str, Any]:
    return {
        "connection_string": azurite.connection_string(azurite.secret_account, endpoint),
        "etl_manifests_retries": 2,
        "etl_manifests_retry_base": 0.001,
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _visible(error: BaseException) -> str:
    """Everything a user may see of an error: message, repr, and the whole traceback."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


def _assert_clean(texts: list[str], secrets: list[str]) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret appeared in: {text[:300]!r}"


def _fails(action: Callable[[], object]) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        action()
    return info.value


def test_errors_reprs_and_logs_with_an_account_key_hold_no_secret(
    azurite: AzuriteServer,
    secret_container: str,
    secrets: list[str],
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    options = _key_options(azurite)
    backend = AzureBackend(f"az://{secret_container}/m", options)
    token = backend.write("m.json", b"written with the planted key")  # the key works
    errors = [
        _fails(lambda: backend.write("m.json", b"x", expect="stale")),
        _fails(lambda: backend.read("missing.json")),
        _fails(lambda: AzureBackend("az://no-such-container/m", options).read("m.json")),
        _fails(
            lambda: AzureBackend(
                f"az://{secret_container}/m",
                {
                    "connection_string": connection_string(
                        f"http://127.0.0.1:{_closed_port()}",
                        azurite.secret_account,
                        azurite.secret_key,
                    ),
                    "etl_manifests_retries": 2,
                    "etl_manifests_retry_base": 0.001,
                },
            ).read("m.json")
        ),
    ]
    manager = ManifestManager(f"az://{secret_container}/mgr", "1", storage_options=options)
    manager.extractor.add_record(
        {"checksum": "ab" * 32, "filename": "a.gz", "filepath": "/data/a.gz"}
    )
    texts = [
        repr(backend),
        repr(backend._settings),
        repr(open_backend(f"az://{secret_container}/m", options)),
        repr(manager),
        repr(manager.extractor),
        token,
        *map(_visible, errors),
        debug_logs.text,
    ]
    assert "HTTP 404" in debug_logs.text or any("no object" in str(e) for e in errors)
    _assert_clean(texts, secrets)


def test_errors_and_logs_with_a_sas_token_hold_no_secret(
    azurite: AzuriteServer,
    secret_container: str,
    sas: str,
    secrets: list[str],
    proxy: FaultProxy,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    with BlobServiceClient.from_connection_string(
        azurite.connection_string(azurite.secret_account)
    ) as service:
        service.get_blob_client(secret_container, "m/m.json").upload_blob(b"readable")
    backend = AzureBackend(f"az://{secret_container}/m", _sas_options(azurite, sas))
    assert backend.read("m.json").data == b"readable"  # the SAS token works
    proxied = AzureBackend(f"az://{secret_container}/m", _sas_options(azurite, sas, proxy.endpoint))
    proxy.add(Fault("status", op="get", status=503, times=None))
    unreachable = AzureBackend(
        f"az://{secret_container}/m",
        _sas_options(azurite, sas, f"http://127.0.0.1:{_closed_port()}"),
    )
    errors = [
        _fails(lambda: backend.write("m.json", b"the token may only read")),  # 403
        _fails(lambda: proxied.read("m.json")),  # 503 until the retries run out
        _fails(lambda: unreachable.read("m.json")),  # connection refused
        _fails(lambda: unreachable.list()),
    ]
    assert "PermissionDeniedError" in repr(errors[0])
    _assert_clean([repr(backend), *map(_visible, errors), debug_logs.text], secrets)
    # The request lines of the HTTP library were logged, with the signature masked.
    assert "sig=*****" in debug_logs.text


def test_a_malformed_root_or_option_echoes_no_secret(
    azurite: AzuriteServer, secrets: list[str], sas: str
) -> None:
    errors = [
        _fails(lambda: AzureBackend(f"az://box/m?{sas}", {})),
        _fails(
            lambda: AzureBackend(
                "az://box/m", {"account_name": "a", "acount_key": azurite.secret_key}
            )
        ),
        _fails(
            lambda: AzureBackend(
                "az://box/m", {"connection_string": f"AccountKey{azurite.secret_key}"}
            ).read("m.json")
        ),
    ]
    _assert_clean([_visible(e) for e in errors], secrets)
