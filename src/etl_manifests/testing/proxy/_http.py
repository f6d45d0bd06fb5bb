"""HTTP plumbing shared by the proxy's parts: the request as the dialect rules see it
(:class:`Exchange`), what to do around forwarding it (:class:`Plan`), buffered upstream
responses, and one lock per object.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs

Dialect = Literal["s3", "gcs"]

# Hop-by-hop headers (RFC 9110 section 7.6.1) plus the framing headers the proxy
# re-derives itself because it de-chunks request bodies and re-frames responses.
HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)

UPSTREAM_TIMEOUT_S = 60.0
STREAM_CHUNK = 64 * 1024


class UpstreamConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` with Nagle disabled: requests are tiny and latency-bound."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass
class Response:
    """A fully buffered HTTP response."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


class Reset(Exception):
    """Raised inside the handler to abort the client connection with an RST."""


class KeyLocks:
    """One lock per object identity; the table only grows, which is fine for a test run."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    @contextlib.contextmanager
    def hold(self, key: tuple[str, str]) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield


@dataclass
class Plan:
    """What the proxy must do around forwarding one request.

    ``lock_key`` is the object the request writes (or, for GCS media downloads,
    reads); ``check`` runs under that lock before forwarding and returns an error
    response to send instead, or ``None`` to forward; ``decorate`` may amend the
    upstream response (still under the lock).
    """

    lock_key: tuple[str, str] | None = None
    check: Callable[[Exchange], Response | None] | None = None
    decorate: Callable[[Exchange, Response], None] | None = None


@dataclass
class Exchange:
    """A request as seen by the policies, plus a way to talk to the upstream."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    upstream: Callable[[str, str, list[tuple[str, str]]], Response]
    # The object the plan locked, and values a check hands to its decorator.
    target: tuple[str, str] = ("", "")
    notes: dict[str, str] = field(default_factory=dict)
    # Set by a plan that must send the upstream something other than the request.
    forward_url: str | None = None
    forward_body: bytes | None = None
    forward_content_type: str | None = None
    # Request headers (lower-case) not to forward.
    drop_headers: frozenset[str] = frozenset()

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status``."""
    return http.client.responses.get(status, "Unknown")
