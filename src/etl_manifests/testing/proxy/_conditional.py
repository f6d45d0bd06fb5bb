"""The :class:`ConditionalProxy`: a loopback reverse proxy in front of one S3 or GCS
emulator that enforces write preconditions atomically and injects faults."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from . import _gcs, _s3
from ._http import Dialect, Exchange, KeyLocks, Plan, Response
from ._ignore import IGNORABLE_OPERATIONS, operation, strip_conditions
from ._server import _ProxyServer
from .faults import FaultRules

__all__ = ["ConditionalProxy"]


class ConditionalProxy:
    """A threaded HTTP reverse proxy in front of one S3 or GCS emulator.

    ``dialect`` selects the precondition rules and error formats (``"s3"`` or
    ``"gcs"``).  The proxy listens on ``host`` (loopback only) and ``port``
    (``0`` picks a free one); :attr:`endpoint_url` is what clients should use.
    ``max_upstream_connections`` bounds simultaneous upstream exchanges, for
    emulators with a single-threaded server and a tiny listen backlog.

    Guarantees callers may rely on:

    * every write/delete of one object (and, for GCS, every media download) is
      serialised, and its preconditions are checked against the upstream under
      the same lock, so of N concurrent conditional writes expecting the same
      state exactly one can succeed;
    * requests that are not object writes are forwarded unchanged;
    * the rules in ``faults`` (:class:`FaultRules`) apply to every request first.
    """

    def __init__(
        self,
        upstream_url: str,
        dialect: Dialect,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_upstream_connections: int | None = None,
    ) -> None:
        if dialect not in ("s3", "gcs"):
            raise ValueError(f"unknown dialect {dialect!r}")
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream_url!r}")
        self.upstream_url = upstream_url.rstrip("/")
        self.dialect: Dialect = dialect
        self.faults = FaultRules()
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port
        self._upstream_netloc = parts.netloc
        self._locks = KeyLocks()
        self._slots: threading.BoundedSemaphore | None = (
            threading.BoundedSemaphore(max_upstream_connections)
            if max_upstream_connections
            else None
        )
        self._dialect_plan: Callable[[Exchange], Plan] = _s3.plan if dialect == "s3" else _gcs.plan
        self._ignore_conditions: frozenset[str] = frozenset()
        self._fault_response: Callable[[int], Response] = (
            _s3.fault if dialect == "s3" else _gcs.fault
        )
        self._server = _ProxyServer((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def ignore_conditions(self) -> frozenset[str]:
        """Operations whose write conditions the proxy ignores (empty: enforce all).

        Names come from :data:`IGNORABLE_OPERATIONS` for the proxy's dialect. For those
        operations the proxy neither checks the conditions nor lets the emulator see
        them (moto would check PutObject's itself): the write lands unconditionally,
        as on a store that ignores them. Changing it affects requests that start after.
        """
        return self._ignore_conditions

    @ignore_conditions.setter
    def ignore_conditions(self, operations: frozenset[str] | set[str]) -> None:
        unknown = set(operations) - IGNORABLE_OPERATIONS[self.dialect]
        if unknown:
            raise ValueError(f"cannot ignore conditions on {sorted(unknown)} ({self.dialect})")
        self._ignore_conditions = frozenset(operations)

    def _plan(self, ex: Exchange) -> Plan:
        plan = self._dialect_plan(ex)
        ignored = self._ignore_conditions
        if ignored and operation(self.dialect, ex) in ignored:
            strip_conditions(self.dialect, ex)
            # Still serialised per object, like every write; just never refused.
            return Plan(lock_key=plan.lock_key)
        return plan

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the proxy (valid once constructed)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _upstream_slot(self) -> contextlib.AbstractContextManager[object]:
        return self._slots if self._slots is not None else contextlib.nullcontext()

    def start(self) -> ConditionalProxy:
        """Start serving on a daemon thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.dialect}-proxy",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and close the listening socket (idempotent)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ConditionalProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
