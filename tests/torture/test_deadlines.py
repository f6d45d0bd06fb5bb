"""Every S3 and GCS request gives up in bounded time, whatever the server does.

The issue's reproduction: an endpoint that accepts the TCP connection and never answers
(a half-open connection after a NAT dropped it) held a GCS read for more than 10
minutes, even with ``etl_manifests_retries=2``, because gcsfs's default
``requests_timeout=None`` switches aiohttp's timeouts off. S3 gave up after 30 s only
because s3fs happens to set botocore timeouts; neither had a deadline for the request
with its retries.

Each test points a real backend at a :class:`~etl_manifests.testing.StallingServer` on
127.0.0.1 with small deadlines set through the documented storage options, and runs the
operation with :func:`~etl_manifests.testing.call_within`: a hang fails the test after
``HANG`` seconds instead of hanging the run.

* per request: each attempt waits ``etl_manifests_read_timeout`` for an answer, so a
  silent endpoint costs ``retries x read timeout``, and ``etl_manifests_connect_timeout``
  for a connection, so one that never accepts costs ``retries x connect timeout``;
* per operation: with a read timeout longer than the operation deadline, every
  operation still ends at ``etl_manifests_operation_timeout``;
* a body that stalls after the headers (a real emulator's answer, cut in half) is a
  read timeout too;
* each ends in :class:`~etl_manifests.errors.TransientStorageError` naming what timed
  out and the option to raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from etl_manifests import Manifest, open_backend
from etl_manifests.errors import BackendConfigurationError, TransientStorageError
from etl_manifests.storage import StorageBackend
from etl_manifests.testing import (
    GcsServer,
    S3Server,
    StallingServer,
    call_within,
    running_stalling_server,
)

pytestmark = pytest.mark.torture

HANG = 30.0  # seconds after which an operation counts as hung
SLACK = 3.0  # seconds of scheduling noise allowed past a deadline on a busy machine
PAYLOAD = b'{"records": "' + b"x" * 4000 + b'"}'

OPERATIONS: dict[str, Callable[[StorageBackend], object]] = {
    "read": lambda backend: backend.read("k.json"),
    "write": lambda backend: backend.write("k.json", PAYLOAD),
    "list": lambda backend: backend.list(""),
    "delete": lambda backend: backend.delete("k.json"),
}


def _options(kind: str, endpoint: str, **deadlines: Any) -> dict[str, Any]:
    """Storage options reaching ``endpoint``, with ``deadlines`` as our options."""
    ours = {f"etl_manifests_{name}": value for name, value in deadlines.items()}
    if kind == "s3":
        return {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            **ours,
        }
    return {"endpoint_url": endpoint, "token": "anon", "project": "test-project", **ours}


def _root(kind: str, bucket: str = "stalled") -> str:
    return f"{'s3' if kind == 's3' else 'gs'}://{bucket}/manifests"


@pytest.fixture
def silent() -> Iterator[StallingServer]:
    with running_stalling_server() as server:
        yield server


def _transient(outcome: Any) -> str:
    assert isinstance(outcome.error, TransientStorageError), repr(outcome.error)
    message = str(outcome.error)
    assert "retry later" in message
    assert outcome.error.__cause__ is None
    return message


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_a_silent_endpoint_costs_one_read_timeout_per_attempt(
    kind: str, silent: StallingServer
) -> None:
    backend = open_backend(
        _root(kind),
        _options(kind, silent.endpoint_url, retries=2, retry_base=0.01, read_timeout=1),
    )

    outcome = call_within(HANG, lambda: backend.read("k.json"))

    message = _transient(outcome)
    assert "no answer within the 1 s read timeout" in message
    assert "after 2 attempts" in message
    assert "raise the etl_manifests_read_timeout storage option" in message
    assert silent.requests == 2
    assert 2.0 <= outcome.elapsed < 2.0 + SLACK


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_an_endpoint_that_never_accepts_costs_one_connect_timeout_per_attempt(kind: str) -> None:
    with running_stalling_server("unaccepted") as unaccepted:
        backend = open_backend(
            _root(kind),
            _options(kind, unaccepted.endpoint_url, retries=2, retry_base=0.01, connect_timeout=1),
        )
        outcome = call_within(HANG, lambda: backend.read("k.json"))

    message = _transient(outcome)
    assert "no connection within the 1 s connect timeout" in message
    assert "raise the etl_manifests_connect_timeout storage option" in message
    assert 2.0 <= outcome.elapsed < 2.0 + SLACK


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_the_operation_deadline_ends_every_operation(
    kind: str, operation: str, silent: StallingServer
) -> None:
    """A read timeout longer than the deadline: the deadline alone must end the wait."""
    backend = open_backend(
        _root(kind),
        _options(kind, silent.endpoint_url, retries=50, read_timeout=60, operation_timeout=2),
    )

    outcome = call_within(HANG, lambda: OPERATIONS[operation](backend))

    message = _transient(outcome)
    assert "within the 2 s operation deadline" in message
    assert "etl_manifests_operation_timeout" in message
    assert 2.0 <= outcome.elapsed < 2.0 + SLACK


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_a_body_stalled_after_the_headers_is_a_read_timeout(
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    server: S3Server | GcsServer = request.getfixturevalue(f"{kind}_server")
    bucket = request.getfixturevalue(f"{kind}_bucket")
    open_backend(_root(kind, bucket), server.storage_options).write("k.json", PAYLOAD)

    with running_stalling_server("body", upstream=server.endpoint_url) as stalling:
        backend = open_backend(
            _root(kind, bucket),
            _options(kind, stalling.endpoint_url, retries=2, retry_base=0.01, read_timeout=1),
        )
        outcome = call_within(HANG, lambda: backend.read("k.json"))

    message = _transient(outcome)
    assert "no answer within the 1 s read timeout" in message
    assert stalling.requests == 2
    assert 2.0 <= outcome.elapsed < 2.0 + SLACK


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_a_manifest_on_a_silent_endpoint_fails_to_load_within_the_deadline(
    kind: str, silent: StallingServer
) -> None:
    backend = open_backend(
        _root(kind), _options(kind, silent.endpoint_url, read_timeout=60, operation_timeout=2)
    )

    outcome = call_within(HANG, lambda: Manifest("extractor", "1.0.0", backend).records)

    message = _transient(outcome)
    assert "operation deadline" in message
    assert outcome.elapsed < 2.0 + SLACK


@pytest.mark.parametrize("kind", ["s3", "gcs"])
@pytest.mark.parametrize("option", ["connect_timeout", "read_timeout", "operation_timeout"])
@pytest.mark.parametrize("value", [0, -1, "soon", True, float("inf"), float("nan")])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_refused(
    kind: str, option: str, value: object
) -> None:
    options = _options(kind, "http://127.0.0.1:9", **{option: value})
    with pytest.raises(BackendConfigurationError, match=f"etl_manifests_{option}") as info:
        open_backend(_root(kind), options)
    assert "positive number of seconds" in str(info.value)


def test_s3_takes_botocores_own_timeouts_when_ours_are_not_set() -> None:
    backend = open_backend(
        "s3://b/m",
        {
            **_options("s3", "http://127.0.0.1:9", connect_timeout=2),
            "config_kwargs": {"connect_timeout": 9, "read_timeout": 7},
        },
    )
    deadlines = backend.deadlines  # type: ignore[attr-defined]
    assert (deadlines.connect, deadlines.read, deadlines.operation) == (2, 7, 120)


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_the_default_deadlines(kind: str) -> None:
    backend = open_backend(_root(kind), _options(kind, "http://127.0.0.1:9"))
    deadlines = backend.deadlines  # type: ignore[attr-defined]
    assert (deadlines.connect, deadlines.read, deadlines.operation) == (5, 30, 120)
