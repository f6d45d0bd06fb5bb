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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from etl_manifests import RetryPolicy
from etl_manifests.errors import BackendConfigurationError, TransientStorageError

from ._errors import transient_reason

__all__ = [
    "RETRIES_OPTION",
    "RETRY_BASE_OPTION",
    "Retry",
    "call",
    "pop_retry_policy",
]

logger = logging.getLogger("etl_manifests_azure")

#: Storage option: attempts per request for transient failures (default 5).
RETRIES_OPTION: Final = "etl_manifests_retries"
#: Storage option: first back-off delay in seconds (default 0.1); doubles, with jitter.
RETRY_BASE_OPTION: Final = "etl_manifests_retry_base"

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


def call(policy: RetryPolicy, what: str, attempt: Callable[[], _T]) -> _T:
    """Run ``attempt`` until it succeeds or fails for good.

    Transient failures (see the module docstring, and :class:`Retry`) are retried up to
    ``policy.max_attempts`` attempts in all; any other exception propagates at once.

    :param what: names the request for log lines and messages, e.g. ``PUT az://c/k``.
    :raises TransientStorageError: every attempt failed transiently.
    """
    reason = ""
    for number in range(1, policy.max_attempts + 1):
        try:
            return attempt()
        except Exception as exc:
            found = exc.reason if isinstance(exc, Retry) else transient_reason(exc)
            if found is None:
                raise
            reason = found
        if number < policy.max_attempts:
            logger.debug(
                "retrying %s after %s (attempt %d of %d)",
                what,
                reason,
                number,
                policy.max_attempts,
            )
            time.sleep(policy.delay(number))
    # Raised after the loop, outside the handler: the last SDK error is not attached.
    raise TransientStorageError(
        f"{what} kept failing ({reason}) after {policy.max_attempts} attempts; "
        "the store is throttling or unreachable: retry later, or raise the "
        f"{RETRIES_OPTION} storage option"
    )
