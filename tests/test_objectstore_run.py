"""The object-store backends' request runner (``backends/_objectstore.run``) on fsspec's
real event loop thread: what counts as transient, and what is returned."""

from __future__ import annotations

import asyncio
import time

import pytest
from fsspec.asyn import get_loop

from etl_manifests import TransientStorageError
from etl_manifests.backends._objectstore import Deadlines, Retryable, run
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


def test_an_attempt_that_never_finishes_is_cancelled_at_the_operation_deadline() -> None:
    """Whatever the client library awaits, the deadline ends it, on the loop."""
    cancelled: list[bool] = []

    async def attempt() -> object:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return None

    start = time.monotonic()
    with pytest.raises(TransientStorageError, match=r"within the 0\.5 s operation deadline"):
        run(get_loop(), attempt, FAST, "get_object on k", Deadlines(operation=0.5))
    assert time.monotonic() - start < 1.5
    assert cancelled == [True]


def test_no_back_off_pause_is_taken_past_the_operation_deadline() -> None:
    calls: list[int] = []

    async def attempt() -> object:
        calls.append(1)
        raise Retryable("HTTP 503")

    slow = RetryPolicy(max_attempts=50, base_delay=10.0, max_delay=10.0)
    start = time.monotonic()
    with pytest.raises(TransientStorageError, match="last failure: HTTP 503") as info:
        run(get_loop(), attempt, slow, "get_object on k", Deadlines(operation=1.0))
    assert time.monotonic() - start < 1.5
    assert "etl_manifests_operation_timeout" in str(info.value)
    assert 1 <= len(calls) < 50
