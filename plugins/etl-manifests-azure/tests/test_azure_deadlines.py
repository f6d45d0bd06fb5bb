"""Every Azure request gives up in bounded time, whatever the server does.

The issue's reproduction: against an endpoint that accepts the TCP connection and never
answers, a read with ``etl_manifests_retries=2`` took 120 s (two of the SDK's default
60 s read timeouts), and nothing bounded a request with its retries as a whole.

Each test points a real backend at a :class:`~etl_manifests.testing.StallingServer` on
127.0.0.1 (for a stalled body: Azurite's own answer, cut in half) with small deadlines
set through the documented storage options, and runs the operation with
:func:`~etl_manifests.testing.call_within`, so that a hang fails the test after
``HANG`` seconds instead of hanging the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from etl_manifests import Manifest
from etl_manifests.errors import BackendConfigurationError, TransientStorageError
from etl_manifests.testing import StallingServer, call_within, running_stalling_server
from etl_manifests.testing.stalling import Outcome

from etl_manifests_azure import AzureBackend
from etl_manifests_azure._options import read_options

from .azurite_server import AzuriteServer

HANG = 30.0  # seconds after which an operation counts as hung
SLACK = 3.0  # seconds of scheduling noise allowed past a deadline on a busy machine
PAYLOAD = b'{"records": "' + b"x" * 4000 + b'"}'

OPERATIONS: dict[str, Callable[[AzureBackend], object]] = {
    "read": lambda backend: backend.read("k.json"),
    "write": lambda backend: backend.write("k.json", PAYLOAD),
    "list": lambda backend: backend.list(""),
    "delete": lambda backend: backend.delete("k.json"),
}


@pytest.fixture
def silent() -> Iterator[StallingServer]:
    with running_stalling_server() as server:
        yield server


def _backend(azurite: AzuriteServer, endpoint: str, container: str, **options: Any) -> AzureBackend:
    return AzureBackend(f"az://{container}/m", azurite.storage_options(endpoint, **options))


def _transient(outcome: Outcome) -> str:
    assert isinstance(outcome.error, TransientStorageError), repr(outcome.error)
    assert outcome.error.__cause__ is None
    message = str(outcome.error)
    assert "retry later" in message
    return message


def test_a_silent_endpoint_costs_one_read_timeout_per_attempt(
    azurite: AzuriteServer, silent: StallingServer
) -> None:
    backend = _backend(
        azurite,
        silent.endpoint_url,
        "stalled",
        read_timeout=1,
        etl_manifests_retries=2,
        etl_manifests_retry_base=0.01,
    )

    outcome = call_within(HANG, lambda: backend.read("k.json"))

    message = _transient(outcome)
    assert "no answer within the 1 s read timeout" in message
    assert "after 2 attempts" in message
    assert "raise the read_timeout storage option" in message
    assert silent.requests == 2
    assert 2.0 <= outcome.elapsed < 2.0 + SLACK


def test_an_endpoint_that_never_accepts_costs_one_connect_timeout_per_attempt(
    azurite: AzuriteServer,
) -> None:
    with running_stalling_server("unaccepted") as unaccepted:
        backend = _backend(
            azurite,
            unaccepted.endpoint_url,
            "stalled",
            connection_timeout=1,
            etl_manifests_retries=2,
            etl_manifests_retry_base=0.01,
        )
        outcome = call_within(HANG, lambda: backend.read("k.json"))

    message = _transient(outcome)
    assert "no connection within the 1 s connect timeout" in message
    assert "raise the connection_timeout storage option" in message
    assert 2.0 <= outcome.elapsed < 2.0 + SLACK


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_operation_deadline_ends_every_operation(
    azurite: AzuriteServer, silent: StallingServer, operation: str
) -> None:
    """A read timeout longer than the deadline: the deadline alone must end the wait."""
    backend = _backend(
        azurite,
        silent.endpoint_url,
        "stalled",
        read_timeout=60,
        etl_manifests_retries=50,
        etl_manifests_operation_timeout=2,
    )

    outcome = call_within(HANG, lambda: OPERATIONS[operation](backend))

    message = _transient(outcome)
    assert "within the 2 s operation deadline" in message
    assert "etl_manifests_operation_timeout" in message
    assert outcome.elapsed < 2.0 + SLACK


def test_a_body_stalled_after_the_headers_is_a_transient_failure(
    azurite: AzuriteServer, container: str
) -> None:
    """The SDK's downloader re-sends the GET (3 in all, 1 s apart) inside each attempt."""
    AzureBackend(f"az://{container}/m", azurite.storage_options()).write("k.json", PAYLOAD)

    with running_stalling_server("body", upstream=azurite.endpoint) as stalling:
        backend = _backend(
            azurite,
            stalling.endpoint_url,
            container,
            read_timeout=1,
            etl_manifests_retries=2,
            etl_manifests_retry_base=0.01,
        )
        outcome = call_within(HANG, lambda: backend.read("k.json"))

    message = _transient(outcome)
    assert "after 2 attempts" in message
    assert stalling.requests == 6
    assert outcome.elapsed < 2 * (3 * 1 + 2) + SLACK


def test_a_manifest_on_a_silent_endpoint_fails_to_load_within_the_deadline(
    azurite: AzuriteServer, silent: StallingServer
) -> None:
    backend = _backend(
        azurite, silent.endpoint_url, "stalled", read_timeout=60, etl_manifests_operation_timeout=2
    )

    outcome = call_within(HANG, lambda: Manifest("extractor", "1.0.0", backend).records)

    assert "operation deadline" in _transient(outcome)
    assert outcome.elapsed < 2.0 + SLACK


@pytest.mark.parametrize(
    "option", ["connection_timeout", "read_timeout", "etl_manifests_operation_timeout"]
)
@pytest.mark.parametrize("value", [0, -1, "soon", True, float("inf"), float("nan")])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_refused(
    option: str, value: object
) -> None:
    with pytest.raises(BackendConfigurationError, match=option) as info:
        read_options({"account_name": "acct", "anon": True, option: value}, None)
    assert "positive number of seconds" in str(info.value)


def test_the_default_deadlines() -> None:
    settings = read_options({"account_name": "acct", "anon": True}, None)
    assert (settings.connect_timeout, settings.read_timeout, settings.operation_timeout) == (
        5,
        30,
        120,
    )
