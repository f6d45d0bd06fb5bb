"""Plumbing shared by the object-store backends: root URLs, options, retries, deadlines.

Both cloud backends run their requests on fsspec's event loop thread and retry transient
failures (throttling, 5xx, resets, timeouts) here, in one place, with the same
:class:`~etl_manifests.retry.RetryPolicy` the manifest layer uses for conflicts.

Every request has two deadlines (:class:`Deadlines`): a connect and a read timeout per
attempt, which the backend hands to its HTTP client, and an operation deadline for the
request with all its retries and back-off, which :func:`run` enforces on the event loop
whatever the client library does underneath.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fsspec.asyn import sync
from fsspec.exceptions import FSTimeoutError

from .._forksafe import register_after_fork
from .._redact import strip_userinfo
from ..errors import BackendConfigurationError, TransientStorageError
from ..retry import RetryPolicy

__all__ = [
    "CONNECT_TIMEOUT_OPTION",
    "OPERATION_TIMEOUT_OPTION",
    "READ_TIMEOUT_OPTION",
    "RETRIES_OPTION",
    "RETRY_BASE_OPTION",
    "Deadlines",
    "ProcessClient",
    "Retryable",
    "check_option_types",
    "options_refused",
    "pop_deadlines",
    "pop_retry_policy",
    "run",
    "split_root",
]

logger = logging.getLogger("etl_manifests.backends")

#: Storage option: attempts per request for retryable failures (default 5).
RETRIES_OPTION = "etl_manifests_retries"
#: Storage option: first back-off delay in seconds (default 0.1); doubles, with jitter.
RETRY_BASE_OPTION = "etl_manifests_retry_base"

#: Storage option: seconds to wait for a connection to be established (default 5).
CONNECT_TIMEOUT_OPTION = "etl_manifests_connect_timeout"
#: Storage option: seconds to wait for the next bytes of an answer (default 30).
READ_TIMEOUT_OPTION = "etl_manifests_read_timeout"
#: Storage option: seconds one request may take with all its retries (default 120).
OPERATION_TIMEOUT_OPTION = "etl_manifests_operation_timeout"

DEFAULT_RETRIES = 5
DEFAULT_RETRY_BASE = 0.1
MAX_RETRY_DELAY = 5.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_OPERATION_TIMEOUT = 120.0

_T = TypeVar("_T")


class Retryable(Exception):
    """Raised by one attempt that failed in a way worth retrying.

    ``description`` is short and credential-free (see :func:`etl_manifests._redact.describe`).
    ``option`` is the storage option to raise if every attempt fails like this one.
    """

    def __init__(self, description: str, option: str = RETRIES_OPTION) -> None:
        super().__init__(description)
        self.description = description
        self.option = option


def split_root(root: str, default_scheme: str) -> tuple[str, str, str]:
    """``scheme://[user@]bucket/prefix`` -> (scheme, bucket, prefix); credentials dropped.

    :raises BackendConfigurationError: the URL names no bucket.
    """
    had_userinfo = strip_userinfo(root) != root
    scheme, sep, rest = strip_userinfo(root).partition("://")
    if not sep:
        scheme, rest = default_scheme, root
    rest = rest.split("?", 1)[0]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        # Never echo the user-info part: it may hold credentials.
        raise BackendConfigurationError(
            f"the root {scheme}://{'***@' if had_userinfo else ''}/{prefix} names no "
            f"bucket; use {scheme}://bucket/prefix"
        )
    return scheme.lower(), bucket, prefix.strip("/")


def check_option_types(
    options: Mapping[str, Any], strings: Iterable[str], mappings: Iterable[str]
) -> None:
    """Refuse options of the wrong type by name, before a client library trips on them.

    :raises BackendConfigurationError: naming the option and the type found (never its
        value, which may be a credential).
    """
    for name in strings:
        value = options.get(name)
        if value is not None and not isinstance(value, str):
            raise BackendConfigurationError(
                f"the storage option {name!r} must be a string, not {type(value).__name__}"
            )
    for name in mappings:
        value = options.get(name)
        if value is not None and not isinstance(value, Mapping):
            raise BackendConfigurationError(
                f"the storage option {name!r} must be a mapping (a JSON object), not "
                f"{type(value).__name__}"
            )


# Names that client libraries put in their messages about unknown or missing options.
_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w{1,60})'")
_FIELD = re.compile(r"\w{1,60}")


def options_refused(library: str, exc: Exception) -> BackendConfigurationError:
    """Our error for storage options a client library refused with ``exc``.

    Only an option or field *name* found in ``exc`` is repeated, never its message as a
    whole, which may quote a credential.
    """
    found = _UNEXPECTED.search(str(exc))
    if found:
        detail = f"it does not know the option {found.group(1)!r} (check its spelling)"
    elif (
        isinstance(exc, KeyError) and isinstance(exc.args[0], str) and _FIELD.fullmatch(exc.args[0])
    ):
        detail = (
            f"a value it expected to find under {exc.args[0]!r} is missing (a credentials "
            "dict such as 'token' may be incomplete)"
        )
    else:
        detail = f"{type(exc).__name__}; check the names and types of the options"
    return BackendConfigurationError(f"{library} refused the storage options: {detail}")


def pop_retry_policy(options: dict[str, Any]) -> RetryPolicy:
    """Take this library's retry options out of ``options`` (the rest go to fsspec)."""
    try:
        return RetryPolicy(
            max_attempts=max(1, int(options.pop(RETRIES_OPTION, DEFAULT_RETRIES))),
            base_delay=float(options.pop(RETRY_BASE_OPTION, DEFAULT_RETRY_BASE)),
            max_delay=MAX_RETRY_DELAY,
        )
    except (TypeError, ValueError) as exc:
        # Not the error's text: int() and float() quote the value, which may be a
        # credential pasted into the wrong option.
        problem = type(exc).__name__
    raise BackendConfigurationError(
        f"{RETRIES_OPTION} must be a positive integer and {RETRY_BASE_OPTION} a "
        f"non-negative number of seconds ({problem}; the value is not shown)"
    )


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long one request may take, in seconds.

    ``connect`` and ``read`` bound each attempt: establishing a connection, and each
    wait for the next bytes of the answer (so a server that accepts and never answers,
    or stalls mid-body, costs one attempt ``read`` seconds). ``operation`` bounds the
    request with all its attempts and back-off pauses.
    """

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT
    operation: float = DEFAULT_OPERATION_TIMEOUT

    def read_timed_out(self) -> Retryable:
        """The failure of an attempt that waited ``read`` seconds for an answer."""
        return Retryable(f"no answer within the {self.read:g} s read timeout", READ_TIMEOUT_OPTION)

    def connect_timed_out(self) -> Retryable:
        """The failure of an attempt that could not connect within ``connect`` seconds."""
        return Retryable(
            f"no connection within the {self.connect:g} s connect timeout", CONNECT_TIMEOUT_OPTION
        )


def pop_deadlines(options: dict[str, Any]) -> Deadlines:
    """Take this library's timeout options out of ``options`` (the rest go to fsspec).

    :raises BackendConfigurationError: a timeout is not a positive number of seconds.
    """
    values = []
    for name, default in (
        (CONNECT_TIMEOUT_OPTION, DEFAULT_CONNECT_TIMEOUT),
        (READ_TIMEOUT_OPTION, DEFAULT_READ_TIMEOUT),
        (OPERATION_TIMEOUT_OPTION, DEFAULT_OPERATION_TIMEOUT),
    ):
        raw = options.pop(name, None)
        value = math.nan
        if raw is None:  # unset, or null in a JSON configuration
            value = default
        elif not isinstance(raw, bool):
            with contextlib.suppress(TypeError, ValueError):
                value = float(raw)
        if not (value > 0 and math.isfinite(value)):
            raise BackendConfigurationError(
                f"the {name} storage option must be a positive number of seconds"
            )
        values.append(value)
    return Deadlines(*values)


def run(
    loop: Any,
    attempt: Callable[[], Awaitable[_T]],
    policy: RetryPolicy,
    what: str,
    deadlines: Deadlines = Deadlines(),
) -> _T:
    """Run ``attempt`` on ``loop`` until it succeeds, retrying on :class:`Retryable`.

    The whole run, back-off pauses included, ends within ``deadlines.operation``
    seconds (plus about a second if the event loop itself is blocked): an attempt still
    running then is cancelled on the loop, and no pause is taken that would end past it.

    :raises TransientStorageError: every attempt failed retryably, or the operation
        deadline passed; names ``what``, what timed out, and the option to raise. The
        errors from underneath are not chained: they may quote credentials (an
        endpoint's ``user:password@``, a signed URL).
    """

    async def boxed() -> tuple[_T]:
        return (await attempt(),)

    give_up = time.monotonic() + deadlines.operation
    description = ""
    option = RETRIES_OPTION
    for number in range(1, policy.max_attempts + 1):
        remaining = give_up - time.monotonic()
        if remaining <= 0:
            break
        try:
            # fsspec cancels the attempt on the loop when the time is up.
            result = sync(loop, boxed, timeout=remaining)
        except FSTimeoutError:
            description = "the last attempt was still waiting for an answer"
            break
        except Retryable as failure:
            description, option = failure.description, failure.option
        else:
            if result is not None:
                return cast(tuple[_T], result)[0]
            # fsspec's sync() returns None when the coroutine was cancelled instead of
            # finishing (asyncio.CancelledError is not an Exception; seen with 8
            # processes reading from one S3 emulator). No response arrived, so it is
            # retried like a reset connection.
            description = "the request was cancelled before it completed"
            option = RETRIES_OPTION
        if number < policy.max_attempts:
            pause = policy.delay(number)
            if time.monotonic() + pause >= give_up:
                break
            logger.debug("retrying %s after %s", what, description)
            time.sleep(pause)
    else:
        raise TransientStorageError(
            f"{what} kept failing ({description}) after {policy.max_attempts} attempts; the "
            f"store is throttling, slow or unreachable: retry later, or raise the {option} "
            "storage option"
        )
    raise TransientStorageError(
        f"{what} did not complete within the {deadlines.operation:g} s operation deadline "
        f"(last failure: {description or 'no attempt finished'}); the store is slow or "
        f"unreachable: retry later, or raise the {OPERATION_TIMEOUT_OPTION} storage option"
    )


class ProcessClient:
    """A backend's fsspec file system, one per process: opened again after a fork.

    ``open_fs`` builds a new instance. It runs once now (so bad options fail at
    construction) and again on first use in a child made by ``os.fork()``.
    """

    def __init__(self, open_fs: Callable[[], Any]) -> None:
        self._open_fs = open_fs
        self._lock = threading.Lock()
        self.instance: Any = open_fs()
        # Instances inherited from the parent process; see _after_fork.
        self._abandoned: list[Any] = []
        register_after_fork(self, ProcessClient._after_fork)

    def get(self) -> Any:
        """This process's instance."""
        fs = self.instance
        if fs is None:
            with self._lock:
                fs = self.instance
                if fs is None:
                    fs = self.instance = self._open_fs()
        return fs

    def _after_fork(self) -> None:
        # The parent's instance runs on an event loop thread that did not survive the
        # fork, and its connections are the parent's. Keep it referenced, so that no
        # finalizer closes those connections from here, and open a new one on first use.
        if self.instance is not None:
            self._abandoned.append(self.instance)
        self.instance = None
        self._lock = threading.Lock()
