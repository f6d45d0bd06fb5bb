"""Synthetic manifests for the benchmarks: realistic records, built fast at any size.

Two ways to the same records (record ``i`` is the same in both):

* :func:`make_inputs`: ``add_record`` inputs as a downloader passes them (Python values,
  timezone-aware datetimes); what the timed figures feed the library.
* :func:`write_snapshot`: a stored manifest (format 2, empty log) written straight to
  JSON in chunks with ``orjson``, without building the whole manifest in memory. A
  million records take seconds this way instead of a million validated ``add_record``
  calls; :func:`check_snapshot` proves the bytes are exactly what the library writes.

Also here: the plain-``orjson`` baselines (:func:`plain_save`, :func:`plain_load`) and
the durable-create primitive (:func:`durable_create`) the commit figures are judged by.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from etl_manifests.backends.local import LocalBackend
from etl_manifests.document import encode
from etl_manifests.metadata import ManifestMetadata
from etl_manifests.model import Manifest, manifest_key
from etl_manifests.policy import CheckpointPolicy
from etl_manifests.record import ManifestRecord
from etl_manifests.storage import StorageBackend

PROCESS = "extractor"
ETL_VERSION = "1.0.0"
KEY = manifest_key(PROCESS, ETL_VERSION)
SEED = 20261125
CHUNK = 20_000  # records serialized per orjson call by write_snapshot

Record = dict[str, Any]

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _record(i: int, rng: random.Random) -> Record:
    when = _T0 + timedelta(seconds=37 * i)
    checksum = hashlib.sha256(b"file-%d" % i).hexdigest()
    filename = f"{when:%Y/%m/%d}/part-{i % 1_000_000:06d}.csv.gz"
    if i % 2:
        filepath = f"s3://acme-raw-landing/vendor-feeds/{filename}"
    else:
        filepath = f"/data/etl/extractor/downloads/{filename}"
    return {
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


def make_inputs(n: int, start: int = 0) -> list[Record]:
    """``n`` realistic ``add_record`` inputs, records ``start`` .. ``start + n - 1``.

    Half the files live on local disk, half in a bucket; every field is filled the way a
    real HTTP download fills it. The same ``start`` always gives the same records.
    """
    rng = random.Random(SEED + start)
    return [_record(i, rng) for i in range(start, start + n)]


def iter_inputs(n: int, start: int = 0, chunk: int = CHUNK) -> Iterator[list[Record]]:
    """:func:`make_inputs` of ``n`` records, in lists of at most ``chunk``.

    Chunk ``k`` starts at ``start + k * chunk``, so the records do not depend on how a
    caller slices them as long as the chunk size is the same.
    """
    for first in range(start, start + n, chunk):
        yield make_inputs(min(chunk, start + n - first), first)


FRESH = 10_000_000  # records from here on are in no snapshot these helpers write
FRESH_SPAN = 100_000  # records per tag of fresh_inputs


def fresh_inputs(n: int, tag: int) -> list[Record]:
    """``n`` records that no snapshot built by these helpers holds; each ``tag`` picks
    its own range, so figures (and worker processes) never add each other's records."""
    if n > FRESH_SPAN:
        raise ValueError(f"at most {FRESH_SPAN:,} fresh records per tag")
    return make_inputs(n, start=FRESH + FRESH_SPAN * tag)


def snapshot_metadata(n: int) -> ManifestMetadata:
    """Metadata of a format-2 snapshot holding ``n`` commits and an empty log."""
    return ManifestMetadata(process=PROCESS, etl_version=ETL_VERSION, revision=n)


def snapshot_chunks(n: int) -> Iterator[bytes]:
    """The bytes of a snapshot of records ``0 .. n - 1``, in pieces (see module doc)."""
    meta = orjson.dumps(snapshot_metadata(n).model_dump(mode="json"))
    yield b'{"metadata":' + meta + b',"records":{'
    first = True
    for inputs in iter_inputs(n):
        rows = {r["checksum"]: r for r in inputs}
        body = orjson.dumps(rows, option=orjson.OPT_UTC_Z)[1:-1]
        if body:
            yield body if first else b"," + body
            first = False
    yield b"}}"


def write_snapshot(folder: Path, n: int) -> Path:
    """Write a manifest of ``n`` records into ``folder`` as its bare snapshot file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / KEY
    with open(path, "wb") as f:
        for piece in snapshot_chunks(n):
            f.write(piece)
        f.flush()
        os.fsync(f.fileno())
    return path


def snapshot_bytes(n: int) -> bytes:
    """The whole snapshot of :func:`write_snapshot` in memory (for object stores)."""
    return b"".join(snapshot_chunks(n))


def check_snapshot(n: int = 50) -> None:
    """Fail loudly unless :func:`snapshot_chunks` writes what the library itself writes
    for the same records (so a fast-built manifest is an honest one)."""
    inputs = make_inputs(n)
    rows = {r["checksum"]: ManifestRecord.model_validate(r).__dict__ for r in inputs}
    ours = encode(snapshot_metadata(n), rows)
    fast = b"".join(snapshot_chunks(n))
    meta_end = fast.index(b',"records":')
    if fast[meta_end:] != ours[ours.index(b',"records":') :]:
        raise AssertionError("write_snapshot's records differ from the library's encoding")


def open_manifest(
    backend: StorageBackend, *, load: bool = True, checkpoint: CheckpointPolicy | None = None
) -> Manifest:
    """The benchmark's manifest on ``backend`` (default policy unless given)."""
    return Manifest(PROCESS, ETL_VERSION, backend, load=load, checkpoint=checkpoint)


def local_manifest(root: Path, n: int, **kwargs: Any) -> Manifest:
    """A loaded manifest of ``n`` records in a fresh folder below ``root``."""
    folder = root / f"m-{uuid.uuid4().hex[:12]}"
    write_snapshot(folder, n)
    return open_manifest(LocalBackend(str(folder)), **kwargs)


# --------------------------------------------------------------------- baselines


def plain_document(records: Sequence[Record]) -> dict[str, Any]:
    """The same manifest as plain dicts (what the baselines serialize)."""
    now = datetime.now(UTC)
    return {
        "metadata": {
            "format_version": 2,
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


def durable_create(folder: Path, data: bytes) -> None:
    """The primitive a commit is judged by: create a new small file (``O_EXCL``), write,
    fsync it, and fsync its folder so that the new name is durable too."""
    path = folder / f"{uuid.uuid4().hex}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
