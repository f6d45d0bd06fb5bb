"""Object stores for the benchmarks: S3 (moto) and GCS (gcp-storage-emulator), counted.

The emulators start with the helpers of ``etl_manifests.testing`` (``running_s3`` /
``running_gcs``) behind its precondition proxy, subclassed here to count every request
(with its path) and every byte read from and written to the client connections; the
proxy itself is unchanged. Counts are exact; emulator wall times say little about a
real store.

Also :class:`CountingBackend`, a backend wrapper counting calls by kind (and reads of
the snapshot), for processes that are not behind the proxy's counter (local disk).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from etl_manifests.registry import open_backend
from etl_manifests.storage import Blob, Expect, ObjectInfo, StorageBackend

STORES = {"s3": "S3 (moto)", "gcs": "GCS (emulator)"}


class Counter:
    """Requests and wire bytes seen by a proxy, exact; safe across handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (kind, path) in arrival order
        self.bytes_in = 0  # request bytes received from clients (line + headers + body)
        self.body_in = 0  # request bodies only (the uploaded payload)
        self.bytes_out = 0  # response bytes sent to clients (status + headers + body)

    def mark(self) -> Mark:
        with self.lock:
            return Mark(len(self.requests), self.bytes_in, self.body_in, self.bytes_out)

    def since(self, mark: Mark) -> Counts:
        with self.lock:
            return Counts(
                list(self.requests[mark.requests :]),
                self.bytes_in - mark.bytes_in,
                self.body_in - mark.body_in,
                self.bytes_out - mark.bytes_out,
            )


@dataclass(frozen=True)
class Mark:
    requests: int
    bytes_in: int
    body_in: int
    bytes_out: int


@dataclass(frozen=True)
class Counts:
    """What the proxy saw between a :class:`Mark` and now."""

    requests: list[tuple[str, str]]
    wire_in: int
    uploaded: int  # request bodies
    wire_out: int

    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for kind, _ in self.requests:
            out[kind] = out.get(kind, 0) + 1
        return out

    def kinds_text(self, per: int = 1) -> str:
        return "+".join(f"{count / per:g} {kind}" for kind, count in sorted(self.kinds().items()))


class _CountingReader:
    def __init__(self, raw: Any, counter: Counter) -> None:
        self._raw = raw
        self._counter = counter

    def _count(self, data: bytes) -> bytes:
        with self._counter.lock:
            self._counter.bytes_in += len(data)
        return data

    def read(self, size: int = -1) -> bytes:
        return self._count(self._raw.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._count(self._raw.readline(size))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _CountingWriter:
    def __init__(self, raw: Any, counter: Counter) -> None:
        self._raw = raw
        self._counter = counter

    def write(self, data: bytes) -> int:
        with self._counter.lock:
            self._counter.bytes_out += len(data)
        return int(self._raw.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _counting_proxy_class() -> type[Any]:
    """A ``ConditionalProxy`` whose handler counts requests and wire bytes."""
    from etl_manifests.testing.proxy import ConditionalProxy
    from etl_manifests.testing.proxy._server import _Handler, _ProxyServer

    class CountingHandler(_Handler):
        def setup(self) -> None:
            super().setup()
            counter: Counter = self.server.proxy.counter  # type: ignore[attr-defined]
            self.rfile = _CountingReader(self.rfile, counter)  # type: ignore[assignment]
            self.wfile = _CountingWriter(self.wfile, counter)  # type: ignore[assignment]

        def _serve(self) -> None:
            # Counted before forwarding: the client cannot see the response (and move
            # on to its next request) before its request is on the books.
            counter: Counter = self.server.proxy.counter  # type: ignore[attr-defined]
            kind = "COPY" if self.headers.get("x-amz-copy-source") else self.command
            path = self.path
            if kind == "GET" and ("list-type=" in path or "/o?" in path or path.endswith("/o")):
                kind = "LIST"
            elif kind == "GET" and "/storage/v1/" in path and "alt=media" not in path:
                kind = "GET-META"  # GCS object metadata (a generation look-up)
            with counter.lock:
                counter.requests.append((kind, self.path))
            super()._serve()

        def _read_body(self) -> bytes:
            body = super()._read_body()
            counter: Counter = self.server.proxy.counter  # type: ignore[attr-defined]
            with counter.lock:
                counter.body_in += len(body)
            return body

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _serve

    class CountingServer(_ProxyServer):
        def __init__(self, address: tuple[str, int], proxy: Any) -> None:
            self.proxy = proxy
            ThreadingHTTPServer.__init__(self, address, CountingHandler)

    class CountingProxy(ConditionalProxy):
        def __init__(self, upstream_url: str, dialect: Any, **kwargs: Any) -> None:
            super().__init__(upstream_url, dialect, **kwargs)
            self.counter = Counter()
            self._server.server_close()
            self._server = CountingServer(("127.0.0.1", 0), self)

    return CountingProxy


@dataclass
class Store:
    """A fresh bucket on a running, counted emulator."""

    name: str  # "s3" or "gcs"
    bucket: str
    storage_options: dict[str, Any]
    counter: Counter
    opened: list[StorageBackend]

    @property
    def title(self) -> str:
        return STORES[self.name]

    def root(self, prefix: str) -> str:
        scheme = "s3" if self.name == "s3" else "gs"
        return f"{scheme}://{self.bucket}/{prefix}"

    def backend(self, prefix: str) -> StorageBackend:
        self.opened.append(open_backend(self.root(prefix), self.storage_options))
        return self.opened[-1]


@contextlib.contextmanager
def running_store(name: str) -> Iterator[Store]:
    """A fresh bucket on the ``"s3"`` or ``"gcs"`` emulator behind a counting proxy.

    While the block runs, the environment points clients (also child processes) at the
    emulator, as the harness sets it up.
    """
    from etl_manifests.testing.servers import running_gcs, running_s3

    # The GCS emulator logs every missing object (each commit looks for a seal that is
    # not there) at ERROR level; that is its normal answer here, not a fault.
    logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)
    running = running_s3 if name == "s3" else running_gcs
    with running(_counting_proxy_class()) as server:
        bucket = f"bench-{uuid.uuid4().hex[:16]}"
        server.create_bucket(bucket)
        store = Store(
            name,
            bucket,
            dict(server.storage_options),
            server.proxy.counter,  # type: ignore[attr-defined]
            [],
        )
        try:
            yield store
        finally:
            for b in store.opened:
                b.close()


class CountingBackend(StorageBackend):
    """Delegates to ``inner`` and counts its calls, and the reads and writes of the key
    ``snapshot``."""

    def __init__(self, inner: StorageBackend, snapshot: str) -> None:
        self.inner = inner
        self.root = inner.root
        self.snapshot = snapshot
        self.calls: dict[str, int] = {"read": 0, "write": 0, "delete": 0, "list": 0}
        self.snapshot_reads = 0
        self.snapshot_writes = 0
        self._lock = threading.Lock()

    def _count(self, kind: str) -> None:
        with self._lock:
            self.calls[kind] += 1

    def read(self, key: str) -> Blob:
        self._count("read")
        if key == self.snapshot:
            with self._lock:
                self.snapshot_reads += 1
        return self.inner.read(key)

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        self._count("write")
        if key == self.snapshot:
            with self._lock:
                self.snapshot_writes += 1
        return self.inner.write(key, data, expect=expect)

    def delete(self, key: str) -> None:
        self._count("delete")
        self.inner.delete(key)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        self._count("list")
        return self.inner.list(prefix)

    def url(self, key: str) -> str:
        return self.inner.url(key)

    def close(self) -> None:
        self.inner.close()
