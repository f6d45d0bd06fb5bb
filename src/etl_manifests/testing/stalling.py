"""A loopback server that accepts connections and then never finishes an answer.

It stands in for an endpoint behind a NAT that dropped the connection's state (the TCP
connection is accepted, requests vanish, nothing comes back) or for a server that sends
a response's headers and then stalls its body. Tests point a backend's endpoint at it
and check that every operation gives up within the deadlines the backend promises.

``mode="silent"``
    Read whatever the client sends and never write a byte.
``mode="body"``
    Forward each request to ``upstream`` (a real emulator), send its status line, its
    headers and at most half of its body, then stall.
``mode="unaccepted"``
    Listen, but never accept: the server fills the one-connection queue itself, so the
    kernel drops every client's SYN and ``connect()`` waits (a server too busy to
    accept, or a firewall that drops packets).

Stalled connections are held until :meth:`StallingServer.stop`, which closes them.
:func:`call_within` runs the operation under test in a thread and fails the test if it
is still running after a limit, so a hang fails instead of hanging the test run.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import pytest

__all__ = ["Outcome", "StallMode", "StallingServer", "call_within", "running_stalling_server"]

StallMode = Literal["silent", "body", "unaccepted"]

# Request and response framing headers the server re-derives itself.
_DROPPED = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
_POLL_S = 0.05


class StallingServer:
    """Accepts TCP connections on 127.0.0.1 and stalls them; see the module docstring.

    ``connections`` counts accepted connections, ``requests`` the requests read.
    """

    def __init__(self, mode: StallMode = "silent", upstream: str | None = None) -> None:
        if mode not in ("silent", "body", "unaccepted"):
            raise ValueError(f"unknown stall mode {mode!r}")
        if mode == "body" and not upstream:
            raise ValueError("mode 'body' needs the upstream URL to forward requests to")
        self.mode = mode
        self._upstream = urlsplit(upstream) if upstream else None
        self._listener = socket.create_server(
            ("127.0.0.1", 0), backlog=0 if mode == "unaccepted" else 64
        )
        self._filler: socket.socket | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.connections = 0
        self.requests = 0

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``: point a client's endpoint here."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> StallingServer:
        """Start accepting connections (in a daemon thread); returns ``self``."""
        if self.mode == "unaccepted":
            # Linux queues backlog + 1 connections; this one takes the only place.
            self._filler = socket.create_connection(self._listener.getsockname(), timeout=5)
        else:
            self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        """Close the listener and every held connection, and wait for the threads."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        if self._filler is not None:
            with contextlib.suppress(OSError):
                self._filler.close()
        with self._lock:
            held, self._open = set(self._open), set()
        for conn in held:
            with contextlib.suppress(OSError):
                conn.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> StallingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- connections ---------------------------------------------------------------

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            if not select.select([self._listener], [], [], _POLL_S)[0]:
                continue
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(conn)
                self.connections += 1
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = self._read_request(conn)
            if request is not None:
                with self._lock:
                    self.requests += 1
                if self.mode == "body":
                    conn.sendall(self._partial_answer(*request))
            self._hold(conn)
        except OSError:
            return
        finally:
            with self._lock:
                self._open.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _hold(self, conn: socket.socket) -> None:
        """Read and discard until the client gives up or the server stops; never answer."""
        while not self._stopping.is_set():
            if select.select([conn], [], [], _POLL_S)[0] and not conn.recv(65536):
                return

    def _read_request(self, conn: socket.socket) -> tuple[bytes, bytes] | None:
        """The head and body of one request, or ``None`` if the client went away."""
        data = b""
        while b"\r\n\r\n" not in data:
            if self._stopping.is_set():
                return None
            if not select.select([conn], [], [], _POLL_S)[0]:
                continue
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip() or b"0")
        while len(body) < length and not self._stopping.is_set():
            if select.select([conn], [], [], _POLL_S)[0]:
                chunk = conn.recv(65536)
                if not chunk:
                    return None
                body += chunk
        return head, body

    def _partial_answer(self, head: bytes, body: bytes) -> bytes:
        """The upstream's answer to the request, cut after half of its body."""
        assert self._upstream is not None
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        upstream = http.client.HTTPConnection(
            self._upstream.hostname or "127.0.0.1", self._upstream.port, timeout=30
        )
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip().lower() not in _DROPPED:
                    upstream.putheader(name.strip(), value.strip())
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body or None)
            response = upstream.getresponse()
            payload = response.read()
            status, reason, headers = response.status, response.reason, response.getheaders()
        finally:
            upstream.close()
        out = [f"HTTP/1.1 {status} {reason}"]
        out += [f"{k}: {v}" for k, v in headers if k.lower() not in _DROPPED]
        # A body of at least two bytes, so that half of it is sent and half is owed.
        payload = payload or b"{}"
        out.append(f"Content-Length: {len(payload)}")
        return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + payload[: len(payload) // 2]


@contextlib.contextmanager
def running_stalling_server(
    mode: StallMode = "silent", upstream: str | None = None
) -> Iterator[StallingServer]:
    """A :class:`StallingServer` for the block's length."""
    server = StallingServer(mode, upstream).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Outcome:
    """How an operation run by :func:`call_within` ended."""

    #: What it raised, or ``None`` if it returned.
    error: BaseException | None
    #: Seconds it took.
    elapsed: float


def call_within(limit: float, operation: Callable[[], object]) -> Outcome:
    """Run ``operation`` in a daemon thread and wait at most ``limit`` seconds for it.

    Fails the calling test (``pytest.fail``) if it is still running then; the thread is
    left behind (stopping the server it waits on usually ends it).
    """
    ended: list[Outcome] = []

    def target() -> None:
        start = time.monotonic()
        error: BaseException | None = None
        try:
            operation()
        except BaseException as exc:
            error = exc
        ended.append(Outcome(error, time.monotonic() - start))

    thread = threading.Thread(target=target, name="call-within", daemon=True)
    thread.start()
    thread.join(limit)
    if not ended:
        pytest.fail(f"the operation was still running after {limit:g} s: it hangs", pytrace=False)
    return ended[0]
