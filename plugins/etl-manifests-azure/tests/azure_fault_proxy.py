"""A loopback reverse proxy in front of Azurite that injects faults and records requests.

Azurite enforces ``If-Match`` / ``If-None-Match`` atomically by itself (proved in
``test_azurite_harness.py``), so this proxy adds no enforcement: it forwards every request
unchanged, except where a :class:`Fault` says otherwise, and records what it saw.

Faults match a request by its Blob service operation (:func:`operation`: ``"get"``,
``"put_blob"``, ``"put_block"``, ``"put_block_list"``, ``"delete"``, ``"list"``, ...),
optionally let ``skip`` matching requests through first, and then fire ``times`` times:

``"status"``
    answer ``status`` with an Azure-style XML error (``x-ms-error-code``: ``code``);
    nothing is forwarded.
``"reset"``
    read the request, then abort the connection with a TCP RST; nothing is forwarded.
``"drop_response"``
    forward the request (a write lands), then abort the connection instead of answering.
``"call"``
    run ``callback()`` (for example, another writer's commit), then forward normally.

:attr:`FaultProxy.requests` lists every request with the headers that carry conditions,
so tests can check which request carried ``If-Match``, and which connection (client
port) each came over.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlsplit

__all__ = ["Fault", "FaultProxy", "Recorded", "operation"]

Action = Literal["status", "reset", "drop_response", "call"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


def operation(method: str, query: str) -> str:
    """The Blob service operation of a request, from its method and query string."""
    params = parse_qs(query, keep_blank_values=True)
    comp = params.get("comp", [""])[0]
    container_level = params.get("restype", [""])[0] == "container"
    if method == "GET" and comp == "list":
        return "list"
    if container_level:
        return f"{method.lower()}_container"
    if method == "PUT":
        return {"": "put_blob", "block": "put_block", "blocklist": "put_block_list"}.get(
            comp, f"put_{comp}"
        )
    if method == "GET" and comp == "":
        return "get"
    return f"{method.lower()}_{comp}" if comp else method.lower()


@dataclass(eq=False)
class Fault:
    """One fault rule; see the module docstring."""

    action: Action
    op: str | None = None  # an operation() name, None for any
    status: int = 503
    code: str = "ServerBusy"
    skip: int = 0
    times: int | None = 1
    callback: Callable[[], object] | None = None
    seen: int = 0
    fired: int = 0

    def take(self, op: str) -> bool:
        """Count a request of ``op``; whether the fault fires for it (call under a lock)."""
        if self.op is not None and self.op != op:
            return False
        self.seen += 1
        if self.seen <= self.skip or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


@dataclass(frozen=True)
class Recorded:
    """One request as the proxy saw it, and the status it answered."""

    op: str
    method: str
    path: str
    if_match: str | None
    if_none_match: str | None
    status: int  # 0: the connection was reset
    client_port: int  # tells the client's connections apart


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: list[Fault] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        return  # client hang-ups and injected resets are routine


class _Reset(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self._upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if self._upstream is not None:
            self._upstream.close()

    def log_message(self, format: str, *args: object) -> None:
        return

    def _serve(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        path, _, query = self.path.partition("?")
        op = operation(self.command, query)
        fault = proxy._take(op)

        def record(status: int) -> None:
            # Before answering, so the client never sees a response the log lacks.
            proxy._record(
                Recorded(
                    op,
                    self.command,
                    path,
                    self.headers.get("If-Match"),
                    self.headers.get("If-None-Match"),
                    status,
                    int(self.client_address[1]),
                )
            )

        try:
            if fault is not None and fault.action == "reset":
                raise _Reset
            if fault is not None and fault.action == "status":
                response = _error(fault.status, fault.code)
            else:
                if fault is not None and fault.action == "call":
                    assert fault.callback is not None
                    fault.callback()
                try:
                    response = self._forward(body)
                except (OSError, http.client.HTTPException):
                    self._drop_upstream()
                    response = _error(502, "UpstreamUnreachable")  # like a gateway would
                if fault is not None and fault.action == "drop_response":
                    raise _Reset
            record(response[0])
            self._answer(*response)
        except _Reset:
            record(0)
            self._reset()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = _serve

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length else b""

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        if body or self.command in ("PUT", "POST"):
            headers.append(("Content-Length", str(len(body))))
        for attempt in range(2):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(proxy._host, proxy._port, timeout=60)
            reused = self._upstream.sock is not None
            try:
                self._upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in headers:
                    self._upstream.putheader(name, value)
                self._upstream.endheaders(body or None)
                response = self._upstream.getresponse()
                payload = response.read()
                return response.status, response.reason, response.getheaders(), payload
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # An idle kept-alive upstream connection may have been closed: retry once.
                self._drop_upstream()
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    def _drop_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    def _answer(
        self, status: int, reason: str, headers: list[tuple[str, str]], payload: bytes
    ) -> None:
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP]
        if self.command != "HEAD" and status not in (204, 304):
            lines.append(f"Content-Length: {len(payload)}")
        else:
            length = {k.lower(): v for k, v in headers}.get("content-length")
            if length is not None:
                lines.append(f"Content-Length: {length}")
            payload = b""
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)

    def _reset(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()


def _error(status: int, code: str) -> tuple[int, str, list[tuple[str, str]], bytes]:
    request_id = str(uuid.uuid4())
    payload = (
        '<?xml version="1.0" encoding="utf-8"?><Error>'
        f"<Code>{code}</Code><Message>Injected fault.\nRequestId:{request_id}</Message>"
        "</Error>"
    ).encode()
    headers = [
        ("Content-Type", "application/xml"),
        ("x-ms-error-code", code),
        ("x-ms-request-id", request_id),
    ]
    return status, http.client.responses.get(status, "Error"), headers, payload


class FaultProxy:
    """Forwards to ``upstream`` (``http://127.0.0.1:port``) from a free loopback port."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self._host, self._port = parts.hostname, parts.port
        self._state = _State()
        self._server = _Server(self)
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>`` of the proxy."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, fault: Fault) -> Fault:
        """Add a fault rule (rules are tried in order; the first that fires wins)."""
        with self._state.lock:
            self._state.faults.append(fault)
        return fault

    @property
    def requests(self) -> list[Recorded]:
        """Every request so far, in the order they arrived."""
        with self._state.lock:
            return list(self._state.requests)

    def reset(self) -> None:
        """Forget every fault rule and recorded request."""
        with self._state.lock:
            self._state.faults.clear()
            self._state.requests.clear()

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Recorded]]:
        """Collect the requests made inside the block into the yielded list."""
        start = len(self.requests)
        found: list[Recorded] = []
        try:
            yield found
        finally:
            found.extend(self.requests[start:])

    def _take(self, op: str) -> Fault | None:
        with self._state.lock:
            for fault in self._state.faults:
                if fault.take(op):
                    return fault
        return None

    def _record(self, entry: Recorded) -> None:
        with self._state.lock:
            self._state.requests.append(entry)

    def start(self) -> FaultProxy:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="azure-fault-proxy",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
