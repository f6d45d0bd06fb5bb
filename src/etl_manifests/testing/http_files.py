"""A loopback HTTP server of in-memory files that counts what clients ask for.

Serves ``GET`` and ``HEAD`` of the files added with :meth:`FileServer.add`, with
``Content-Length``, ``Content-Type``, and, unless turned off, ``ETag`` and
``Last-Modified`` (so tests can take the "no headers, only the checksum can tell" path).
Every request is counted per method and path, so a test can prove what was downloaded.

Faults on demand: a status instead of a file (always, or for the next few requests, with
``Retry-After``), a connection cut off halfway through a body, slow answers and slow bodies.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

__all__ = ["FileServer", "running_file_server"]


class FileServer:
    """Files served at ``{base_url}/{name}``; thread-safe."""

    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}
        self._requests: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        #: Send ``ETag`` (a quoted SHA-256 prefix of the content).
        self.etag = True
        #: Send ``Last-Modified`` (a fixed date: content changes show in ETag and size).
        self.last_modified = True
        #: Send the ETag as a weak one (``W/"..."``).
        self.weak_etag = False
        #: The time ``Last-Modified`` announces (seconds since the epoch).
        self.modified_at = 1_700_000_000.0
        #: ``Content-Length`` that ``HEAD`` announces instead of the true one, per name
        #: (as if the file changed between a client's HEAD and its GET).
        self.head_lengths: dict[str, int] = {}
        #: Seconds each ``GET`` waits before answering (to make downloads overlap).
        self.get_delay = 0.0
        #: Status answered instead of the file, always, per name (401, 403, 410, 500, ...).
        self.statuses: dict[str, int] = {}
        #: Statuses answered instead of the file, one per request (HEAD or GET), per name;
        #: once used up, the file is served.
        self.failures: dict[str, list[int]] = {}
        #: Headers sent with every failure status (``{"Retry-After": "1"}``).
        self.failure_headers: dict[str, str] = {}
        #: How many ``GET``s of a name are cut off after half the body (the connection
        #: closed with fewer bytes than ``Content-Length`` announced).
        self.resets: dict[str, int] = {}
        #: Seconds a ``GET`` waits between the first half of the body and the rest.
        self.stall = 0.0
        self._in_flight = 0
        self._max_in_flight = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, name: str) -> str:
        """The URL of file ``name`` (percent-encoded)."""
        return f"{self.base_url}/{quote(name)}"

    def add(self, name: str, data: bytes) -> str:
        """Serve ``data`` as ``name`` (replacing what was there); returns its URL."""
        with self._lock:
            self._files[name] = data
        return self.url(name)

    def get(self, name: str) -> bytes | None:
        with self._lock:
            return self._files.get(name)

    def requests(self, method: str, name: str | None = None) -> int:
        """How many ``method`` requests were made (for ``name``, or in total)."""
        with self._lock:
            if name is not None:
                return self._requests[(method, name)]
            return sum(n for (m, _), n in self._requests.items() if m == method)

    @property
    def max_in_flight(self) -> int:
        """The most ``GET`` requests that were being answered at one time."""
        with self._lock:
            return self._max_in_flight

    def count(self, method: str, name: str) -> None:
        with self._lock:
            self._requests[(method, name)] += 1

    def failure(self, name: str) -> int | None:
        """The status to answer for ``name`` instead of the file, if any (consumes one)."""
        with self._lock:
            if name in self.statuses:
                return self.statuses[name]
            queue = self.failures.get(name)
            return queue.pop(0) if queue else None

    def reset(self, name: str) -> bool:
        """Whether to cut this ``GET`` of ``name`` off halfway (consumes one)."""
        with self._lock:
            left = self.resets.get(name, 0)
            if left:
                self.resets[name] = left - 1
            return left > 0

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            with server.answering():
                if server.get_delay:
                    time.sleep(server.get_delay)
                self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            name = unquote(urlsplit(self.path).path.lstrip("/"))
            server.count(self.command, name)
            status = server.failure(name)
            if status is not None:
                self.send_response(status)
                for header, value in server.failure_headers.items():
                    self.send_header(header, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = server.get(name)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            length = len(data)
            if not body:
                length = server.head_lengths.get(name, length)
            self.send_header("Content-Length", str(length))
            self.send_header("Content-Type", "application/octet-stream")
            if server.etag:
                tag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
                self.send_header("ETag", f"W/{tag}" if server.weak_etag else tag)
            if server.last_modified:
                self.send_header("Last-Modified", formatdate(server.modified_at, usegmt=True))
            self.end_headers()
            if body:
                self._body(name, data)

        def _body(self, name: str, data: bytes) -> None:
            half = len(data) // 2
            if server.reset(name):
                self.wfile.write(data[:half])
                self.wfile.flush()
                self.close_connection = True
                return
            if server.stall:
                self.wfile.write(data[:half])
                self.wfile.flush()
                time.sleep(server.stall)
                data = data[half:]
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: tests read the counters instead

    return Handler


@contextlib.contextmanager
def running_file_server() -> Iterator[FileServer]:
    """A :class:`FileServer` on a free loopback port for the block's length."""
    server = FileServer().start()
    try:
        yield server
    finally:
        server.stop()
