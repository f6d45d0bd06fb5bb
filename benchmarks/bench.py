"""Benchmarks of etl-manifests against plain-orjson baselines measured in the same run.

Usage::

    python benchmarks/bench.py [--records N] [--repeat R] [--cloud]

Every timed figure is the best of ``R`` wall-clock runs (``time.perf_counter``), with a
``gc.collect()`` before each run. Each figure is paired with a baseline doing the same job
with plain dicts and ``orjson`` (no validation, no models), so the ratio is what the
library's guarantees cost on top of the raw work, on this machine, in this run.

``--cloud`` adds request/byte counts per ``add_record`` on S3 (moto) and GCS
(gcp-storage-emulator), each behind the test harness's proxy; requests and bytes are
counted exactly at the proxy (see ``CountingProxy``). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import importlib.metadata
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

# gcsfs reads this once, when first imported (here: when --cloud opens a gs:// root).
# Left at its default, gcsfs's file system asks Google's servers for each bucket's type
# (a 60 s timeout against the emulator), and the harness's running_gcs refuses to start.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

import orjson

from etl_manifests.backends.local import LocalBackend
from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.model import Manifest
from etl_manifests.record import ManifestRecord
from etl_manifests.storage import StorageBackend

PROCESS = "extractor"
ETL_VERSION = "1.0.0"
LOOKUPS = 100_000  # look-ups per timed run of figure 5
CLOUD_SIZES = (1_000, 10_000, 100_000)

Record = dict[str, Any]


# --------------------------------------------------------------------------- data


def make_inputs(n: int, start: int = 0, *, seed: int = 20261125) -> list[Record]:
    """``n`` realistic ``add_record`` inputs (Python values, as a downloader passes them).

    Half the files live on local disk, half in a bucket; every field is filled the way a
    real HTTP download fills it.
    """
    rng = random.Random(seed + start)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[Record] = []
    for i in range(start, start + n):
        when = t0 + timedelta(seconds=37 * i)
        checksum = hashlib.sha256(b"file-%d" % i).hexdigest()
        filename = f"{when:%Y/%m/%d}/part-{i % 1_000_000:06d}.csv.gz"
        if i % 2:
            filepath = f"s3://acme-raw-landing/vendor-feeds/{filename}"
        else:
            filepath = f"/data/etl/extractor/downloads/{filename}"
        out.append(
            {
                "checksum": checksum,
                "filename": filename,
                "filepath": filepath,
                "etl_version": ETL_VERSION,
                "is_verified": i % 3 != 0,
                "etag": '"' + hashlib.md5(checksum.encode()).hexdigest() + '"',
                "content_type": "application/gzip",
                "last_modified_server": when.strftime("%a, %d %b %Y %H:%M:%S GMT"),
                "content_length_bytes": rng.randrange(10_000, 2_000_000_000),
                "updated_at": when + timedelta(seconds=rng.randrange(1, 3600)),
            }
        )
    return out


def plain_document(records: Sequence[Record]) -> dict[str, Any]:
    """The same manifest as plain dicts (what the baselines serialize)."""
    now = datetime.now(UTC)
    return {
        "metadata": {
            "format_version": 1,
            "process": PROCESS,
            "etl_version": ETL_VERSION,
            "created_at": now,
            "updated_at": now,
            "revision": 1,
        },
        "records": {r["checksum"]: r for r in records},
    }


def plain_save(path: Path, document: Mapping[str, Any]) -> int:
    """Baseline save: ``orjson.dumps`` + write + fsync + ``os.replace``; returns bytes."""
    data = orjson.dumps(document)
    staged = path.with_name(f"{path.name}.staged-{uuid.uuid4().hex}")
    with open(staged, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staged, path)
    return len(data)


def plain_load(path: Path) -> Any:
    """Baseline load: read the file + ``orjson.loads``."""
    with open(path, "rb") as f:
        return orjson.loads(f.read())


def new_manifest(backend: StorageBackend) -> Manifest:
    return Manifest(PROCESS, ETL_VERSION, backend, load=False)


def local_manifest(root: Path, records: Sequence[Record]) -> Manifest:
    """A manifest of ``records`` committed to a fresh folder below ``root``."""
    folder = root / f"m-{uuid.uuid4().hex[:12]}"
    manifest = new_manifest(LocalBackend(str(folder)))
    if records:
        manifest.add_records(records)
    else:
        manifest.save()
    return manifest


# ------------------------------------------------------------------------ timing


def best_of(
    repeat: int, run: Callable[[], object], setup: Callable[[], object] | None = None
) -> float:
    """Best wall time of ``repeat`` runs of ``run``; ``setup`` runs untimed before each."""
    best = float("inf")
    for _ in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        start = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - start
        # Freed only now, so that neither side's timing includes deallocating its result.
        del result
        best = min(best, elapsed)
    return best


def paired(
    repeat: int,
    ours: Callable[[], object],
    baseline: Callable[[], object],
    setup: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Best-of times of ``ours`` and ``baseline``, interleaved so drift hits both."""
    best_ours = best_base = float("inf")
    for _ in range(repeat):
        best_ours = min(best_ours, best_of(1, ours, setup))
        best_base = min(best_base, best_of(1, baseline, setup))
    return best_ours, best_base


# ------------------------------------------------------------------------ report


@dataclass
class Row:
    figure: str
    ours: str
    baseline: str = ""
    ratio: float | None = None
    target: float | None = None
    note: str = ""

    @property
    def met(self) -> str:
        if self.ratio is None or self.target is None:
            return ""
        return "yes" if self.ratio <= self.target else "NO"


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        # Progress on stderr, so a slow figure shows where it is.
        print(f"  {row.figure}: {row.ours}", file=sys.stderr, flush=True)

    def section(self, title: str) -> None:
        self.rows.append(Row(f"## {title}", ""))

    def render(self) -> str:
        head = ["figure", "ours", "baseline (same run)", "ratio", "target", "met?"]
        body: list[list[str]] = []
        for r in self.rows:
            if r.figure.startswith("## "):
                body.append([r.figure[3:], "", "", "", "", ""])
                continue
            ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
            target = "" if r.target is None else f"<= {r.target:g}"
            body.append([f"  {r.figure}", r.ours, r.baseline, ratio, target, r.met])
        widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

        def fmt(line: list[str]) -> str:
            return " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))

        out = [fmt(head), "-+-".join("-" * w for w in widths)]
        out += [fmt(line).rstrip() for line in body]
        notes = [f"  [{i}] {r.note}" for i, r in enumerate(self.rows, 1) if r.note]
        if notes:
            out += ["", "notes:", *notes]
        return "\n".join(out)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def ns(seconds: float) -> str:
    return f"{seconds * 1e9:,.0f} ns"


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


# ------------------------------------------------------------------------ figures


def fig_load_save(table: Table, work: Path, inputs: list[Record], repeat: int) -> Manifest:
    n = len(inputs)
    manifest = local_manifest(work, inputs)
    path = Path(manifest.url)
    size = path.stat().st_size
    plain = plain_load(path)

    table.section(f"1. load, {n:,} records, {mib(size)} JSON (local disk)")
    # A fresh Manifest per run: reloading a loaded one would also time freeing the old
    # records, which the baseline (result dropped after timing) does not pay.
    holder: list[Manifest] = []

    def setup() -> None:
        holder.clear()
        holder.append(new_manifest(manifest.backend))

    ours, base = paired(repeat, lambda: holder[0].load(), lambda: plain_load(path), setup)
    table.add(Row("Manifest.load()", ms(ours), f"{ms(base)} read+orjson.loads", ours / base, 2.0))
    holder.clear()

    table.section("2. save, same manifest (local disk, atomic)")
    other = path.with_name("baseline.json")
    ours, base = paired(repeat, manifest.save, lambda: plain_save(other, plain))
    table.add(
        Row(
            "Manifest.save()",
            ms(ours),
            f"{ms(base)} orjson.dumps+write+fsync+replace",
            ours / base,
            2.0,
        )
    )
    return manifest


def _traced(run: Callable[[], object]) -> tuple[int, int, object]:
    """(peak, retained) bytes allocated by ``run`` as seen by tracemalloc; and its result."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = run()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before, current - before, result


_RSS_SCRIPT = """
import gc, sys
from etl_manifests.backends.local import LocalBackend
from etl_manifests.model import Manifest

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no " + key)

def run(mode):
    if mode == "ours":
        return Manifest(sys.argv[2], sys.argv[3], LocalBackend(sys.argv[1]))
    import orjson
    with open(sys.argv[1] + "/" + sys.argv[5], "rb") as f:
        return orjson.loads(f.read())

gc.collect()
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM (the peak) to the current RSS
kept = run(sys.argv[4])
gc.collect()
print(status("VmHWM") - before, status("VmRSS") - before)
"""


def _rss(folder: Path, mode: str, key: str) -> tuple[int, int] | None:
    """(peak, retained) RSS growth of a load in a fresh interpreter (Linux only)."""
    if not Path("/proc/self/clear_refs").exists():
        return None
    args = [str(folder), PROCESS, ETL_VERSION, mode, key]
    try:
        out = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout.split()
    except (subprocess.SubprocessError, OSError):
        return None
    return int(out[0]), int(out[1])


def fig_memory(table: Table, manifest: Manifest) -> None:
    path = Path(manifest.url)
    size = path.stat().st_size
    backend = manifest.backend
    table.section(f"3. extra memory of a load vs the JSON file ({mib(size)})")
    peak, kept, loaded = _traced(lambda: Manifest(PROCESS, ETL_VERSION, backend))
    assert isinstance(loaded, Manifest)
    assert len(loaded) == len(manifest)
    del loaded
    base_peak, base_kept, plain = _traced(lambda: plain_load(path))
    del plain
    gc.collect()
    table.add(
        Row(
            "peak during Manifest(...) (tracemalloc)",
            mib(peak),
            f"{mib(size)} file; orjson dicts {mib(base_peak)}",
            peak / size,
            3.0,
            note="orjson's tracemalloc peak includes the parse buffer it reserves up front "
            "(several times the input; mostly never touched, so RSS stays far lower).",
        )
    )
    table.add(
        Row(
            "retained after load (tracemalloc)",
            mib(kept),
            f"{mib(size)} file; orjson dicts {mib(base_kept)}",
            kept / size,
            3.0,
        )
    )
    ours_rss = _rss(path.parent, "ours", path.name)
    base_rss = _rss(path.parent, "plain", path.name)
    if ours_rss is not None and base_rss is not None:
        table.add(
            Row(
                "peak RSS growth, fresh process",
                mib(ours_rss[0]),
                f"{mib(size)} file; orjson dicts {mib(base_rss[0])}",
                ours_rss[0] / size,
                3.0,
                note="RSS also sees allocations made outside Python's allocator (the Rust "
                "side of pydantic-core and orjson), which tracemalloc does not.",
            )
        )
        table.add(
            Row(
                "retained RSS growth, fresh process",
                mib(ours_rss[1]),
                f"{mib(size)} file; orjson dicts {mib(base_rss[1])}",
                ours_rss[1] / size,
                3.0,
            )
        )


def fig_batch(table: Table, work: Path, inputs: list[Record], repeat: int) -> None:
    n = len(inputs)
    table.section(f"4. {n:,} add_record calls in one batch (one commit, local disk)")
    holder: list[Manifest] = []
    plain_path = work / "batch-baseline.json"

    def setup() -> None:
        holder.clear()
        folder = work / f"batch-{uuid.uuid4().hex[:12]}"
        holder.append(new_manifest(LocalBackend(str(folder))))

    def ours() -> None:
        manifest = holder[0]
        with manifest.batch():
            for params in inputs:
                manifest.add_record(params)

    def baseline() -> None:
        for params in inputs:
            ManifestRecord.model_validate(params)
        plain_save(plain_path, plain_document(inputs))

    t_ours, t_base = paired(repeat, ours, baseline, setup)
    table.add(
        Row(
            "with manifest.batch(): add_record x N",
            ms(t_ours),
            f"{ms(t_base)} model_validate x N + plain save",
            t_ours / t_base,
            1.5,
        )
    )
    t_many = best_of(repeat, lambda: holder[0].add_records(inputs), setup)
    table.add(
        Row("add_records(all N) (for reference)", ms(t_many), ms(t_base), t_many / t_base, 1.5)
    )


def _per_call(repeat: int, run: Callable[[], object], calls: int) -> float:
    return best_of(repeat, run) / calls


def fig_lookups(
    table: Table, inputs: list[Record], big: Manifest, sizes: Sequence[int], repeat: int
) -> None:
    table.section(f"5. look-ups, time per call ({LOOKUPS:,} random hits per run)")
    rng = random.Random(5)
    per_size: dict[str, list[float]] = {
        "in": [],
        "get": [],
        "find": [],
        "dict": [],
        "dget": [],
        "pfind": [],
    }
    for n in sizes:
        if n == len(big):
            manifest = big
        else:
            manifest = new_manifest(MemoryBackend(f"memory://bench-{uuid.uuid4().hex}"))
            manifest.add_records(inputs[:n])
        plain = {r["checksum"]: r for r in inputs[:n]}
        by_name: dict[str, list[Record]] = {}
        for r in inputs[:n]:
            by_name.setdefault(r["filename"], []).append(r)
        picks = [inputs[rng.randrange(n)] for _ in range(LOOKUPS)]
        keys = [p["checksum"] for p in picks]
        names = [(p["filename"], p["etag"]) for p in picks]

        def contains(keys: list[str] = keys, manifest: Manifest = manifest) -> None:
            for k in keys:
                _ = k in manifest

        def get(keys: list[str] = keys, manifest: Manifest = manifest) -> None:
            for k in keys:
                manifest.get(k)

        def dict_contains(keys: list[str] = keys, plain: dict[str, Record] = plain) -> None:
            for k in keys:
                _ = k in plain

        def dict_get(keys: list[str] = keys, plain: dict[str, Record] = plain) -> None:
            for k in keys:
                plain.get(k)

        first = time.perf_counter()
        manifest.find(names[0][0], etag=names[0][1])
        index_build = time.perf_counter() - first

        def find(names: list[tuple[str, str]] = names, manifest: Manifest = manifest) -> None:
            for name, etag in names:
                manifest.find(name, etag=etag)

        def plain_find(
            names: list[tuple[str, str]] = names, by_name: dict[str, list[Record]] = by_name
        ) -> None:
            for name, etag in names:
                _ = [r for r in by_name.get(name, ()) if r["etag"] == etag]

        t_in = _per_call(repeat, contains, LOOKUPS)
        t_get = _per_call(repeat, get, LOOKUPS)
        t_dict = _per_call(repeat, dict_contains, LOOKUPS)
        t_dget = _per_call(repeat, dict_get, LOOKUPS)
        t_find = _per_call(repeat, find, LOOKUPS)
        t_pfind = _per_call(repeat, plain_find, LOOKUPS)
        per_size["in"].append(t_in)
        per_size["get"].append(t_get)
        per_size["find"].append(t_find)
        per_size["dict"].append(t_dict)
        per_size["dget"].append(t_dget)
        per_size["pfind"].append(t_pfind)
        sz = label(n)
        table.add(
            Row(f"checksum in manifest @{sz}", ns(t_in), f"{ns(t_dict)} key in dict", t_in / t_dict)
        )
        table.add(
            Row(
                f"manifest.get(checksum) @{sz}",
                ns(t_get),
                f"{ns(t_dget)} dict.get(key)",
                t_get / t_dget,
            )
        )
        table.add(
            Row(
                f"find(filename, etag=) @{sz}",
                ns(t_find),
                f"{ns(t_pfind)} dict of lists + filter",
                t_find / t_pfind,
            )
        )
        table.add(Row(f"first find() builds the name index @{sz}", ms(index_build)))
    if len(sizes) > 1:
        # A plain dict also slows down as it outgrows the CPU caches, so "flat" is judged
        # against the same baseline: ours may grow no faster than the dict it wraps.
        lo, hi = label(sizes[0]), label(sizes[-1])
        for what, base in (("in", "dict"), ("get", "dget"), ("find", "pfind")):
            ours, flat = per_size[what], per_size[base]
            grow, base_grow = ours[-1] / ours[0], flat[-1] / flat[0]
            table.add(
                Row(
                    f"{what}: growth of per-call time @{lo} -> @{hi}",
                    f"x{grow:.2f} ({ours[0] * 1e9:,.0f} -> {ours[-1] * 1e9:,.0f} ns)",
                    f"x{base_grow:.2f} plain dict",
                    grow / base_grow,
                    2.0,
                    note=""
                    if what != "in"
                    else "O(1) check: the growth of our per-call time divided by the growth "
                    "of a plain dict's over the same sizes (cache misses slow both).",
                )
            )


def fig_growth_local(
    table: Table, work: Path, inputs: list[Record], sizes: Sequence[int], repeat: int
) -> None:
    table.section("6a. ONE add_record (with its commit) on local disk, by manifest size")
    extra = make_inputs(repeat * len(sizes) + 10, start=len(inputs) + 1_000_000)
    fresh = iter(extra)
    for n in sizes:
        manifest = local_manifest(work, inputs[:n])
        path = Path(manifest.url)
        plain = plain_document(inputs[:n])
        other = path.with_name("baseline.json")

        def ours(manifest: Manifest = manifest) -> None:
            manifest.add_record(next(fresh))

        def baseline(other: Path = other, plain: dict[str, Any] = plain) -> None:
            plain_save(other, plain)

        t_ours, t_base = paired(repeat, ours, baseline)
        size = path.stat().st_size
        table.add(
            Row(
                f"add_record @{label(n)} records",
                ms(t_ours),
                f"{ms(t_base)} plain save of same data",
                t_ours / t_base,
                note=""
                if n != sizes[0]
                else "Every add_record outside a batch rewrites "
                "the whole document: bytes written per call = the file size.",
            )
        )
        table.add(Row(f"  bytes written per add_record @{label(n)}", f"{size:,} B"))


# ------------------------------------------------------------------ cloud (counted)


class _Counter:
    """Requests and wire bytes seen by a proxy, exact; safe across handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.bytes_in = 0  # request bytes received from clients (line + headers + body)
        self.body_in = 0  # request bodies only (the uploaded payload)
        self.bytes_out = 0  # response bytes sent to clients (status + headers + body)

    def snapshot(self) -> tuple[int, int, int, int]:
        with self.lock:
            return len(self.requests), self.bytes_in, self.body_in, self.bytes_out


class _CountingReader:
    def __init__(self, raw: Any, counter: _Counter) -> None:
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
    def __init__(self, raw: Any, counter: _Counter) -> None:
        self._raw = raw
        self._counter = counter

    def write(self, data: bytes) -> int:
        with self._counter.lock:
            self._counter.bytes_out += len(data)
        return int(self._raw.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _counting_proxy_class() -> type[Any]:
    """A ``ConditionalProxy`` whose handler counts requests and wire bytes.

    Built by subclassing the harness classes here; the harness itself is unchanged.
    """
    from harness.proxy import ConditionalProxy, _Handler, _ProxyServer

    class CountingHandler(_Handler):
        def setup(self) -> None:
            super().setup()
            counter: _Counter = self.server.proxy.counter  # type: ignore[attr-defined]
            self.rfile = _CountingReader(self.rfile, counter)  # type: ignore[assignment]
            self.wfile = _CountingWriter(self.wfile, counter)  # type: ignore[assignment]

        def _serve(self) -> None:
            # Counted before forwarding: the client cannot see the response (and move
            # on to its next request) before its request is on the books.
            counter: _Counter = self.server.proxy.counter  # type: ignore[attr-defined]
            kind = "COPY" if self.headers.get("x-amz-copy-source") else self.command
            with counter.lock:
                counter.requests.append(kind)
            super()._serve()

        def _read_body(self) -> bytes:
            body = super()._read_body()
            counter: _Counter = self.server.proxy.counter  # type: ignore[attr-defined]
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
            self.counter = _Counter()
            self._server.server_close()
            self._server = CountingServer(("127.0.0.1", 0), self)

    return CountingProxy


@contextlib.contextmanager
def _cloud_backend(
    store: str,
) -> Iterator[tuple[Callable[[str], StorageBackend], _Counter]]:
    """Backends on a fresh bucket of the ``"s3"`` or ``"gcs"`` emulator, behind a counting
    proxy (started with the test harness's own server helpers)."""
    from etl_manifests.backends.gcs._backend import GCSBackend
    from etl_manifests.backends.s3._backend import S3Backend
    from harness.fixtures import running_gcs, running_s3

    running, backend_class, scheme = (
        (running_s3, S3Backend, "s3") if store == "s3" else (running_gcs, GCSBackend, "gs")
    )
    opened: list[StorageBackend] = []
    with running(_counting_proxy_class()) as server:
        bucket = f"bench-{uuid.uuid4().hex[:16]}"
        server.create_bucket(bucket)

        def backend(prefix: str) -> StorageBackend:
            opened.append(backend_class(f"{scheme}://{bucket}/{prefix}", server.storage_options))
            return opened[-1]

        try:
            yield backend, server.proxy.counter  # type: ignore[attr-defined]
        finally:
            for b in opened:
                b.close()


def _exact(values: Sequence[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"


def fig_cloud(
    table: Table,
    name: str,
    opened: contextlib.AbstractContextManager[tuple[Callable[[str], StorageBackend], _Counter]],
    inputs: list[Record],
    sizes: Sequence[int],
    repeat: int,
) -> None:
    table.section(f"6b. ONE add_record on {name} through the counting proxy (exact counts)")
    extra = iter(make_inputs(repeat * len(sizes) + 10, start=len(inputs) + 2_000_000))
    with opened as (backend, counter):
        for n in sizes:
            manifest = new_manifest(backend(f"size-{n}"))
            if n:
                manifest.add_records(inputs[:n])
            else:
                manifest.save()
            # One row per figure: the first call (the manifest held exactly n records);
            # the later calls see one more record each, so their bytes grow by one record.
            calls: list[tuple[list[str], int, int, int, float]] = []
            record_json = 0
            for i in range(repeat):
                params = next(extra)
                if i == 0:
                    record_json = len(ManifestRecord.model_validate(params).model_dump_json())
                with counter.lock:
                    first = len(counter.requests)
                before = counter.snapshot()
                gc.collect()
                start = time.perf_counter()
                manifest.add_record(params)
                took = time.perf_counter() - start
                after = counter.snapshot()
                with counter.lock:
                    kinds = counter.requests[first:]
                d_in, d_body, d_out = (after[k] - before[k] for k in (1, 2, 3))
                calls.append((kinds, d_in, d_body, d_out, took))
            before = counter.snapshot()
            start = time.perf_counter()
            manifest.load()
            load_time = time.perf_counter() - start
            load = [a - b for a, b in zip(counter.snapshot(), before, strict=True)]
            kinds, wire, body, out, _ = calls[0]
            same = all(c[0] == kinds for c in calls)
            sz = label(n)
            shown = f"{len(kinds)} ({'+'.join(kinds)})"
            if not same:
                shown += f"; later calls {[len(c[0]) for c in calls[1:]]}"
            table.add(Row(f"add_record @{sz}: HTTP requests", shown))
            table.add(
                Row(
                    f"add_record @{sz}: bytes uploaded (request bodies)",
                    f"{body:,} B",
                    f"{record_json:,} B the new record's JSON",
                    body / record_json,
                )
            )
            table.add(Row(f"add_record @{sz}: request bytes on the wire", f"{wire:,} B"))
            table.add(Row(f"add_record @{sz}: response bytes on the wire", f"{out:,} B"))
            table.add(Row(f"add_record @{sz}: wall time (emulator)", ms(min(c[4] for c in calls))))
            table.add(
                Row(
                    f"load @{sz}: HTTP requests / response bytes",
                    f"{load[0]} / {load[3]:,} B",
                    f"{ms(load_time)} wall time",
                )
            )


# --------------------------------------------------------------------------- main


def machine_info() -> str:
    versions = []
    for dist in ("etl-manifests", "pydantic", "pydantic-core", "orjson"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist} ?")
    return "\n".join(
        [
            f"python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} at start",
            ", ".join(versions),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000, help="manifest size (100000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing, best kept (5)")
    parser.add_argument("--cloud", action="store_true", help="add S3/GCS request counts")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args(argv)
    n: int = max(1, args.records)
    repeat: int = max(1, args.repeat)

    print(machine_info())
    print(f"records={n:,} repeat={repeat} (best of {repeat}, gc.collect() before each run)\n")
    work = Path(tempfile.mkdtemp(prefix="etl-manifests-bench-", dir=args.dir))
    started = time.perf_counter()
    table = Table()
    try:
        inputs = make_inputs(n)
        sizes = sorted({s for s in (1_000, 10_000, 100_000) if s < n} | {n})
        big = fig_load_save(table, work, inputs, repeat)
        fig_memory(table, big)
        fig_batch(table, work, inputs, repeat)
        fig_lookups(table, inputs, big, sizes, repeat)
        del big
        fig_growth_local(table, work, inputs, sizes, repeat)
        if args.cloud:
            tests = Path(__file__).resolve().parent.parent / "tests"
            sys.path.insert(0, str(tests))
            cloud_sizes = sorted({s for s in CLOUD_SIZES if s < n} | {min(n, CLOUD_SIZES[-1])})
            cloud_repeat = min(repeat, 3)
            fig_cloud(table, "S3 (moto)", _cloud_backend("s3"), inputs, cloud_sizes, cloud_repeat)
            fig_cloud(
                table, "GCS (emulator)", _cloud_backend("gcs"), inputs, cloud_sizes, cloud_repeat
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table.render())
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
