"""The proxy's HTTP server: one handler thread per client connection, each with its own
persistent upstream connection, forwarding requests as the proxy's plan for each says.

Request bodies are buffered (they are small documents); responses to requests that need
no lock are streamed. Everything is forwarded unchanged but the hop-by-hop headers,
keeping the client's ``Host`` and signature headers.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from ._http import (
    HOP_BY_HOP,
    STREAM_CHUNK,
    UPSTREAM_TIMEOUT_S,
    Exchange,
    Plan,
    Reset,
    Response,
    UpstreamConnection,
    reason_phrase,
)

if TYPE_CHECKING:
    from ._conditional import ConditionalProxy

__all__ = ["_Handler", "_ProxyServer"]


class _ProxyServer(ThreadingHTTPServer):
    """Threading server bound to one :class:`ConditionalProxy`."""

    daemon_threads = True
    # The default backlog of 5 makes bursts of concurrent clients wait for SYN
    # retransmits (a full second each); tests routinely open 16+ at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], proxy: ConditionalProxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # Client disconnects and injected resets are routine here; stay quiet.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        # One persistent upstream connection per client connection: no pool to
        # manage and no ephemeral-port churn under load.
        self._conn: UpstreamConnection | None = None

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if self._conn is not None:
            self._conn.close()

    def log_message(self, format: str, *args: object) -> None:
        return

    # -- request handling ------------------------------------------------------

    def _serve(self) -> None:
        proxy = self.server.proxy
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        raw_path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        ex = Exchange(self.command, raw_path, query, headers, body, self._upstream_buffered)
        rule = proxy.faults.take(self.command, raw_path, query, headers)
        head = self.command == "HEAD"
        try:
            if rule is not None and not rule.after_forward:
                if rule.action == "reset":
                    raise Reset
                if rule.action == "status":
                    self._send(proxy._fault_response(rule.status), head)
                    return
                if rule.action == "delay":
                    time.sleep(rule.delay)
            plan = proxy._plan(ex)
            if plan.lock_key is None and (rule is None or not rule.after_forward):
                self._forward_streaming(ex)
                return
            resp = self._forward_planned(ex, plan)
            if rule is not None and rule.after_forward:
                if rule.action in ("reset", "drop_response"):
                    raise Reset
                if rule.action == "status":
                    resp = proxy._fault_response(rule.status)
                elif rule.action == "delay":
                    time.sleep(rule.delay)
            self._send(resp, head)
        except Reset:
            self._reset()
        except (OSError, http.client.HTTPException):
            # Upstream unreachable or hung up mid-exchange: answer like a gateway.
            self._drop_upstream()
            with contextlib.suppress(OSError):
                self._send(proxy._fault_response(502), head)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Discard trailers up to the terminating blank line.
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length else b""

    def _forward_planned(self, ex: Exchange, plan: Plan) -> Response:
        assert plan.lock_key is not None or plan.check is None
        locks = self.server.proxy._locks
        with locks.hold(plan.lock_key) if plan.lock_key else contextlib.nullcontext():
            if plan.check is not None:
                refusal = plan.check(ex)
                if refusal is not None:
                    return refusal
            resp = self._upstream_buffered(
                ex.method,
                ex.forward_url or self.path,
                self._forward_headers(ex),
                ex.body if ex.forward_body is None else ex.forward_body,
            )
            if plan.decorate is not None:
                plan.decorate(ex, resp)
            return resp

    def _forward_streaming(self, ex: Exchange) -> None:
        with self.server.proxy._upstream_slot():
            upstream = self._upstream_open(ex.method, self.path, self._forward_headers(ex), ex.body)
            length = upstream.getheader("Content-Length")
            no_body = ex.method == "HEAD" or upstream.status in (204, 304)
            chunked = not no_body and length is None
            extra = [("Transfer-Encoding", "chunked")] if chunked else []
            if length is not None:
                extra.append(("Content-Length", length))
            self.wfile.write(
                self._head_bytes(upstream.status, upstream.reason, upstream.getheaders(), extra)
            )
            if no_body:
                upstream.read()
                return
            while block := upstream.read1(STREAM_CHUNK):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")

    def _forward_headers(self, ex: Exchange) -> list[tuple[str, str]]:
        listed = {
            token.strip().lower()
            for token in self.headers.get("Connection", "").split(",")
            if token.strip()
        }
        out = [
            (name, value)
            for name, value in self.headers.items()
            if name.lower() not in HOP_BY_HOP and name.lower() not in listed
        ]
        if ex.drop_headers:
            out = [(k, v) for k, v in out if k.lower() not in ex.drop_headers]
        if ex.forward_content_type is not None:
            out = [(k, v) for k, v in out if k.lower() != "content-type"]
            out.append(("Content-Type", ex.forward_content_type))
        body = ex.body if ex.forward_body is None else ex.forward_body
        if body or ex.method in ("POST", "PUT", "PATCH"):
            out.append(("Content-Length", str(len(body))))
        return out

    # -- upstream --------------------------------------------------------------

    def _drop_upstream(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _upstream_open(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> http.client.HTTPResponse:
        proxy = self.server.proxy
        for attempt in range(2):
            if self._conn is None:
                self._conn = UpstreamConnection(
                    proxy._upstream_host, proxy._upstream_port, timeout=UPSTREAM_TIMEOUT_S
                )
            reused = self._conn.sock is not None
            try:
                self._conn.putrequest(method, url, skip_host=True, skip_accept_encoding=True)
                if not any(name.lower() == "host" for name, _ in headers):
                    self._conn.putheader("Host", proxy._upstream_netloc)
                for name, value in headers:
                    self._conn.putheader(name, value)
                self._conn.endheaders(body or None)
                return self._conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive upstream connection may have been closed while idle;
                # retry once on a fresh one.  Fresh-connection failures are real.
                self._drop_upstream()
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    def _upstream_buffered(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> Response:
        with self.server.proxy._upstream_slot():
            resp = self._upstream_open(method, url, headers, body)
            data = resp.read()
        return Response(resp.status, resp.reason, resp.getheaders(), data)

    # -- downstream ------------------------------------------------------------

    def _head_bytes(
        self,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        extra: list[tuple[str, str]],
    ) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason or reason_phrase(status)}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
        lines += [f"{k}: {v}" for k, v in extra]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, resp: Response, head: bool) -> None:
        extra: list[tuple[str, str]] = []
        body = resp.body
        if head:
            # A HEAD answer describes the body it would have had.
            length = resp.header("Content-Length")
            extra.append(("Content-Length", length if length is not None else str(len(body))))
            body = b""
        elif resp.status not in (204, 304):
            extra.append(("Content-Length", str(len(body))))
        # One write: avoids the Nagle/delayed-ACK stall of header-then-body sends.
        self.wfile.write(self._head_bytes(resp.status, resp.reason, resp.headers, extra) + body)

    def _reset(self) -> None:
        """Abort the client connection with a TCP RST and no response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # rfile holds a reference to the socket; drop it so close() is real.
            self.rfile.close()
            self.connection.close()
