"""A hostile HTTP endpoint: every answer is an error that repeats the request back.

Gateways, proxies and misconfigured servers exist that quote the request they refused,
headers included, in the error body; some put it in a header or in a redirect's
``Location``. :class:`HostileServer` does all of that on 127.0.0.1, for one of

* ``403``, ``500``, ``400``: the error body a store of the client's kind would send
  (S3 or Azure XML, GCS JSON) with the request's headers, path and query as its message,
  and the same text in the ``x-amz-request-id`` / ``x-ms-request-id`` response headers
  (a client may quote a request id);
* ``302``: a redirect to itself whose ``Location`` carries the request's headers as a
  query string (a client that follows it comes back and is redirected again), with the
  same echo in a header and in the body;
* ``reset``: the request is read, then the connection is aborted with a TCP RST.

The credential-bearing headers (``Authorization``, ``X-Amz-Security-Token``,
``x-goog-*``, ``x-ms-*``) come first in the echo, so that a client which keeps only the
start of a message still keeps them. :attr:`HostileServer.credentials` collects what the
requests carried that works as a credential on its own (bearer tokens, request
signatures, session tokens, signed query parameters), for the tests to search for.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlencode
from xml.sax.saxutils import escape

__all__ = ["MODES", "HostileServer"]

#: What the server can answer, in the order the tests go through them.
MODES = ("403", "500", "400", "302", "reset")

_FIRST = ("authorization", "x-amz-security-token", "x-amz-date", "x-goog-", "x-ms-")
_CODES = {
    "s3": {403: "AccessDenied", 500: "InternalError", 400: "InvalidRequest", 302: "Found"},
    "azure": {
        403: "AuthenticationFailed",
        500: "InternalError",
        400: "InvalidHeaderValue",
        302: "Found",
    },
}


def _echo_items(handler: BaseHTTPRequestHandler) -> list[tuple[str, str]]:
    headers = [(name.lower(), value) for name, value in handler.headers.items()]
    first = [item for item in headers if item[0].startswith(_FIRST)]
    rest = [item for item in headers if not item[0].startswith(_FIRST)]
    path, _, query = handler.path.partition("?")
    return [*first, ("query", query), ("path", path), *rest]


_SIGNATURE = re.compile(r"Signature=([0-9a-f]{16,})")
_SIGNED_QUERY = frozenset({"sig", "x-amz-signature", "x-goog-signature", "x-amz-security-token"})


def _credentials(handler: BaseHTTPRequestHandler) -> set[str]:
    """The values in this request that authenticate on their own."""
    found: set[str] = set()
    authorization = handler.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme in ("Bearer", "Basic"):
        found.add(value)
    elif scheme.startswith("SharedKey"):
        found.add(value.rpartition(":")[2])
    found.update(_SIGNATURE.findall(authorization))
    if token := handler.headers.get("X-Amz-Security-Token"):
        found.add(token)
    query = handler.path.partition("?")[2]
    found.update(v for k, v in parse_qsl(query) if k.lower() in _SIGNED_QUERY)
    return {value for value in found if len(value) >= 8}


def _kind(handler: BaseHTTPRequestHandler) -> str:
    if "x-ms-version" in handler.headers:
        return "azure"
    if handler.path.startswith(("/storage/", "/upload/", "/download/", "/b/")):
        return "gcs"
    return "s3"


def _body(kind: str, status: int, echo: str) -> tuple[bytes, str]:
    if kind == "gcs":
        error = {"code": status, "message": echo, "errors": [{"message": echo}]}
        return json.dumps({"error": error}).encode(), "application/json"
    code = _CODES[kind].get(status, "Error")
    detail = "AuthenticationErrorDetail" if kind == "azure" else "HostId"
    text = escape(echo)
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{text}</Message><{detail}>{text}</{detail}></Error>"
    )
    return xml.encode(), "application/xml"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.owner.count(_credentials(self))
        mode = self.server.owner.mode
        if mode == "reset":
            self._reset()
            return
        items = _echo_items(self)
        # One line for headers (no CR/LF allowed), several for bodies.
        line = "; ".join(f"{name}: {value}" for name, value in items)
        status = int(mode)
        kind = _kind(self)
        body, content_type = _body(kind, status, "\n".join(f"{n}: {v}" for n, v in items))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", line)
        self.send_header("x-ms-request-id", line)
        self.send_header("X-Echo-Request", line)
        if kind == "azure":
            self.send_header("x-ms-error-code", _CODES["azure"].get(status, "Error"))
        if status == 302:
            echoed = urlencode([item for item in items if item[0] != "query"])
            self.send_header("Location", f"{self.server.owner.url}/redirected?{echoed}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

    def _reset(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: HostileServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        return  # resets and clients hanging up are the point here


class HostileServer:
    """The endpoint, started by ``with``; set :attr:`mode` to one of :data:`MODES`."""

    def __init__(self) -> None:
        self.mode = "403"
        self.requests = 0
        #: Every credential a request carried (see the module docstring).
        self.credentials: set[str] = set()
        self._lock = threading.Lock()
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def count(self, credentials: set[str]) -> None:
        with self._lock:
            self.requests += 1
            self.credentials |= credentials

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
