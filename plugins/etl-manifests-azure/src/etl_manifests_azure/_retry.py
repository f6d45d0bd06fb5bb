"""The one place this backend retries: transient failures, with exponential back-off.

azure-core ships its own retry policy; the clients this backend builds switch it off
(``retry_total=0``), and every request goes through :func:`call` instead. So an attempt
count in the storage options is exactly the number of HTTP requests made, and the back-off
is the same :class:`etl_manifests.RetryPolicy` (full jitter) that built-in backends use.

Retried: connection failures, resets, timeouts, truncated bodies, and HTTP 408, 429, 500,
502, 503, 504. Never retried: conflicts (412, 409), missing objects, refusals; the
manifest layer above handles conflicts by reloading and merging.

One repetition happens outside this module and cannot be switched off: when the body of
a download breaks off mid-stream, azure-storage-blob's downloader sends that GET again (up
to 3 times, 1 s apart) before giving up. It only ever repeats a read, never a write.

Deadlines: every attempt is handed a :class:`Budget`, the seconds left of the operation
deadline (``etl_manifests_operation_timeout``), and shortens its connect and read timeouts
to fit in it, so a request with all its attempts and pauses ends within that deadline
even against an endpoint that accepts connections and never answers; no pause is taken
that would end past it. When the last attempt's shortened timeout fired, the request
fails for its deadline, not for that timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from etl_manifests import RetryPolicy
from etl_manifests.errors import BackendConfigurationError, TransientStorageError

from ._errors import timed_out, transient_reason

__all__ = [
    "OPERATION_TIMEOUT_OPTION",
    "RETRIES_OPTION",
    "RETRY_BASE_OPTION",
    "Budget",
    "Limits",
    "Retry",
    "call",
    "pop_retry_policy",
]

logger = logging.getLogger("etl_manifests_azure")

#: Storage option: attempts per request for transient failures (default 5).
RETRIES_OPTION: Final = "etl_manifests_retries"
#: Storage option: first back-off delay in seconds (default 0.1); doubles, with jitter.
RETRY_BASE_OPTION: Final = "etl_manifests_retry_base"
#: Storage option: seconds one request may take with all its retries (default 120).
OPERATION_TIMEOUT_OPTION: Final = "etl_manifests_operation_timeout"

DEFAULT_RETRIES: Final = 5
DEFAULT_RETRY_BASE: Final = 0.1
MAX_RETRY_DELAY: Final = 5.0

_T = TypeVar("_T")


class Retry(Exception):
    """Raised by an attempt that found a reason to start over (not an SDK error).

    ``reason`` is short and credential-free.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def pop_retry_policy(options: dict[str, Any]) -> RetryPolicy:
    """Take the retry options out of ``options``.

    :raises BackendConfigurationError: they are not a positive integer and a non-negative
        number of seconds.
    """
    try:
        policy = RetryPolicy(
            max_attempts=int(options.pop(RETRIES_OPTION, DEFAULT_RETRIES)),
            base_delay=float(options.pop(RETRY_BASE_OPTION, DEFAULT_RETRY_BASE)),
            max_delay=MAX_RETRY_DELAY,
        )
    except (TypeError, ValueError):
        policy = None
    if policy is None:
        raise BackendConfigurationError(
            f"{RETRIES_OPTION} must be a positive integer and {RETRY_BASE_OPTION} a "
            "non-negative number of seconds"
        )
    return policy


@dataclass(frozen=True, slots=True)
class Limits:
    """The deadlines of one request: per attempt (connect, read) and in all (operation)."""

    connect: float
    read: float
    operation: float

    def describe(self, exc: BaseException) -> tuple[str, str] | None:
        """What ``exc`` means if one of these timeouts fired, and the option to raise."""
        kind = timed_out(exc)
        if kind == "connect":
            return f"no connection within the {self.connect:g} s connect timeout", (
                "connection_timeout"
            )
        if kind == "read":
            return f"no answer within the {self.read:g} s read timeout", "read_timeout"
        return None


class Budget:
    """The time one attempt has: what is left of the operation deadline when it starts."""

    def __init__(self, limits: Limits, remaining: float) -> None:
        self._limits = limits
        #: Seconds left before the operation deadline.
        self.remaining = remaining
        #: Whether :meth:`transport` had to shorten the configured timeouts.
        self.shortened = False

    def transport(self, requests: int = 1) -> dict[str, float]:
        """The SDK's ``connection_timeout`` / ``read_timeout`` for this attempt, when it
        may send ``requests`` requests, paused 1 s apart.

        Both shrink in proportion when the configured ones would not fit, so the attempt
        ends within :attr:`remaining` even if every request waits out both timeouts; only
        when less than ``2 * (requests - 1)`` seconds remain can the SDK's 1 s pauses
        take it past that, by at most ``requests - 1`` seconds.
        """
        limits, remaining = self._limits, self.remaining
        fits = max((remaining - (requests - 1)) / requests, remaining / (2 * requests))
        scale = min(1.0, fits / (limits.connect + limits.read))
        self.shortened = self.shortened or scale < 1.0
        return {
            "connection_timeout": max(0.01, limits.connect * scale),
            "read_timeout": max(0.01, limits.read * scale),
        }


def call(policy: RetryPolicy, limits: Limits, what: str, attempt: Callable[[Budget], _T]) -> _T:
    """Run ``attempt`` until it succeeds or fails for good, within ``limits.operation``.

    ``attempt`` gets its :class:`Budget` and must hand the SDK the timeouts from
    :meth:`Budget.transport`. Transient failures (see the module docstring, and
    :class:`Retry`) are retried up to ``policy.max_attempts`` attempts in all; any other
    exception propagates at once.

    :param what: names the request for log lines and messages, e.g. ``PUT az://c/k``.
    :raises TransientStorageError: every attempt failed transiently, or the operation
        deadline passed; the message says which, what timed out, and what to raise.
    """
    give_up = time.monotonic() + limits.operation
    reason = ""
    option = RETRIES_OPTION
    exhausted = False
    for number in range(1, policy.max_attempts + 1):
        budget = Budget(limits, give_up - time.monotonic())
        if budget.remaining <= 0:
            break
        try:
            return attempt(budget)
        except Exception as exc:
            found = exc.reason if isinstance(exc, Retry) else transient_reason(exc)
            if found is None:
                raise
            timeout = limits.describe(exc)
            # A shortened timeout that fired is the deadline running out, not the timeout.
            cut_short = timeout is not None and budget.shortened
            if cut_short:
                reason = "the last attempt was still waiting for an answer"
            else:
                reason, option = timeout or (found, RETRIES_OPTION)
            if number >= policy.max_attempts:
                exhausted = not cut_short
                break
        pause = policy.delay(number)
        if time.monotonic() + pause >= give_up:
            break
        logger.debug(
            "retrying %s after %s (attempt %d of %d)", what, reason, number, policy.max_attempts
        )
        time.sleep(pause)
    # Raised after the loop, outside the handler: the last SDK error is not attached.
    if exhausted:
        raise TransientStorageError(
            f"{what} kept failing ({reason}) after {policy.max_attempts} attempts; "
            "the store is throttling, slow or unreachable: retry later, or raise the "
            f"{option} storage option"
        )
    raise TransientStorageError(
        f"{what} did not complete within the {limits.operation:g} s operation deadline "
        f"(last failure: {reason or 'no attempt finished'}); the store is slow or "
        f"unreachable: retry later, or raise the {OPERATION_TIMEOUT_OPTION} storage option"
    )
