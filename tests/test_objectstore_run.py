"""The object-store backends' request runner (``backends/_objectstore.run``) on fsspec's
real event loop thread: what counts as transient, and what is returned."""

from __future__ import annotations

import asyncio

import pytest
from fsspec.asyn import get_loop

from etl_manifests import TransientStorageError
from etl_manifests.backends._objectstore import Retryable, run
from etl_manifests.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=3, base_delay=0.0)


def scripted(*outcomes: object) -> tuple[list[int], object]:
    """An attempt that plays ``outcomes`` in turn: a value, an exception, or "cancel"."""
    calls: list[int] = []

    async def attempt() -> object:
        calls.append(1)
        outcome = outcomes[len(calls) - 1]
        if outcome == "cancel":
            raise asyncio.CancelledError
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return calls, attempt


def test_a_cancelled_request_is_retried_not_returned_as_none() -> None:
    calls, attempt = scripted("cancel", {"Body": b"x"})
    assert run(get_loop(), attempt, FAST, "get_object on k") == {"Body": b"x"}  # type: ignore[arg-type]
    assert len(calls) == 2


def test_requests_cancelled_every_time_are_a_transient_error() -> None:
    calls, attempt = scripted("cancel", "cancel", "cancel")
    with pytest.raises(TransientStorageError, match="cancelled before it completed"):
        run(get_loop(), attempt, FAST, "get_object on k")  # type: ignore[arg-type]
    assert len(calls) == 3


def test_a_retryable_failure_then_success_returns_the_value() -> None:
    calls, attempt = scripted(Retryable("HTTP 503"), None)
    # A coroutine that legitimately returns None returns None, not a retry.
    assert run(get_loop(), attempt, FAST, "delete_object on k") is None  # type: ignore[arg-type]
    assert len(calls) == 2
