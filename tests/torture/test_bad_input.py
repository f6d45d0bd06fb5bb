"""The bad-input corpus: every case ends in a typed error naming the problem and leaves
storage (bytes and listing) and memory (records, length, dirtiness) exactly as they were.
A stored manifest that cannot be read is never overwritten, whatever is tried next.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import checksum, record
from etl_manifests import Manifest, ManifestManager
from etl_manifests.errors import (
    CorruptManifestError,
    InvalidNameError,
    InvalidRecordError,
    ManifestError,
    StorageError,
    UnknownProcessError,
    UnsupportedFormatError,
)
from torture._support import ETL_VERSION, KEY, Target

pytestmark = pytest.mark.torture


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "local":
        return Target("local", str(tmp_path / "manifests"))
    if request.param == "memory":
        return Target("memory", f"memory://torture-{uuid.uuid4().hex}")
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return Target(
        "s3",
        f"s3://{bucket}/bad-{uuid.uuid4().hex[:8]}",
        {**server.storage_options, "etl_manifests_retry_base": 0.01},
        server.endpoint_url,
    )


def _snapshot(target: Target) -> tuple[bytes | None, list[str]]:
    # A local replace attempt may create the manifest's own empty lock file (creates take
    # no lock, so the first replace makes it); it holds no data and is not compared.
    listing = [n for n in target.listing() if not (n.startswith(".") and n.endswith(".lock"))]
    return target.raw_read(), listing


def _good_doc(target: Target) -> dict[str, Any]:
    """A valid stored document with two records, as plain JSON."""
    scratch = Target("memory", f"memory://torture-scratch-{uuid.uuid4().hex}")
    manifest = scratch.manifest()
    manifest.add_records([record(1), record(2)])
    raw = scratch.raw_read()
    assert raw is not None
    doc: dict[str, Any] = json.loads(raw)
    return doc


# --- bad records: rejected before anything is touched ----------------------------------

BAD_RECORDS: dict[str, tuple[dict[str, object], str]] = {
    "non-hex checksum": (record(3, checksum="g" * 64), "checksum"),
    "short checksum": (record(3, checksum="abc123"), "checksum"),
    "negative content length": (record(3, content_length_bytes=-1), "content_length_bytes"),
    "naive datetime": (record(3, updated_at=datetime(2024, 1, 1, 12, 0)), "updated_at"),
    "unknown key": (record(3, colour="red"), "colour"),
    "relative filepath": (record(3, filepath="data/file_3.gz"), "filepath"),
    "empty filename": (record(3, filename=""), "filename"),
}


def _assert_rejected_without_side_effects(
    target: Target, bad: dict[str, object], field: str, error: type[ManifestError]
) -> None:
    manifest = target.manifest()
    manifest.add_records([record(1), record(2)])
    before = _snapshot(target)
    records_before = dict(manifest.records)
    version_before = manifest.version

    with pytest.raises(error) as info:
        manifest.add_record(bad)
    assert field in str(info.value)

    assert _snapshot(target) == before
    assert dict(manifest.records) == records_before
    assert len(manifest) == 2
    assert not manifest.dirty
    assert manifest.version == version_before
    # add_records validates all first: one bad record, nothing added.
    with pytest.raises(error):
        manifest.add_records([record(4), bad])
    assert _snapshot(target) == before
    assert len(manifest) == 2
    # The manifest is still fully usable.
    manifest.add_record(record(5))
    assert set(target.manifest().records) == {checksum(1), checksum(2), checksum(5)}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_bad_record(target: Target, case: str) -> None:
    bad, field = BAD_RECORDS[case]
    _assert_rejected_without_side_effects(target, bad, field, InvalidRecordError)


UNENCODABLE: dict[str, tuple[dict[str, object], str]] = {
    "lone surrogate in etag": (record(3, etag="W/\udcff"), "etag"),
    "lone surrogate in content_type": (record(3, content_type="text/\ud800"), "content_type"),
    "lone surrogate in last_modified_server": (
        record(3, last_modified_server="Mon\udcff"),
        "last_modified_server",
    ),
    "content length beyond 64 bits": (record(3, content_length_bytes=2**64), "content_length"),
}


@pytest.mark.parametrize("case", list(UNENCODABLE))
def test_unencodable_value_is_rejected_up_front(target: Target, case: str) -> None:
    bad, field = UNENCODABLE[case]
    _assert_rejected_without_side_effects(target, bad, field, InvalidRecordError)


def test_nul_in_filepath_is_rejected(target: Target) -> None:
    _assert_rejected_without_side_effects(
        target, record(3, filepath="/data/file\x00.gz"), "filepath", InvalidRecordError
    )


# --- stored documents we cannot use: typed error, never overwritten ----------------------


def _corruptions() -> dict[str, tuple[Callable[[dict[str, Any]], bytes], type[Exception], str]]:
    def dump(doc: object) -> bytes:
        return json.dumps(doc).encode()

    def key_differs(doc: dict[str, Any]) -> bytes:
        rec = doc["records"].pop(checksum(1))
        doc["records"][checksum(9)] = rec
        return dump(doc)

    def newer_format(doc: dict[str, Any]) -> bytes:
        doc["metadata"]["format_version"] = 99
        return dump(doc)

    def newer_format_new_fields(doc: dict[str, Any]) -> bytes:
        doc["metadata"]["format_version"] = 99
        doc["metadata"]["shards"] = 4
        return dump(doc)

    def other_owner(doc: dict[str, Any]) -> bytes:
        doc["metadata"]["process"] = "loader"
        return dump(doc)

    def bad_stored_record(doc: dict[str, Any]) -> bytes:
        doc["records"][checksum(2)]["content_length_bytes"] = -5
        return dump(doc)

    def unknown_stored_key(doc: dict[str, Any]) -> bytes:
        doc["records"][checksum(2)]["colour"] = "red"
        return dump(doc)

    return {
        "records key differs from checksum": (key_differs, CorruptManifestError, checksum(9)),
        "truncated": (lambda d: dump(d)[: len(dump(d)) // 2], CorruptManifestError, "JSON"),
        "empty": (lambda d: b"", CorruptManifestError, "empty"),
        "whitespace only": (lambda d: b" \n\t ", CorruptManifestError, "empty"),
        "not JSON": (lambda d: b"<html>502 Bad Gateway</html>", CorruptManifestError, "JSON"),
        "JSON list": (lambda d: dump([d]), CorruptManifestError, "document"),
        "JSON null": (lambda d: b"null", CorruptManifestError, "document"),
        "missing records": (
            lambda d: dump({"metadata": d["metadata"]}),
            CorruptManifestError,
            "records",
        ),
        "records is a list": (
            lambda d: dump({**d, "records": list(d["records"].values())}),
            CorruptManifestError,
            "records",
        ),
        "format_version 99": (newer_format, UnsupportedFormatError, "99"),
        "format_version 99 with new fields": (
            newer_format_new_fields,
            UnsupportedFormatError,
            "99",
        ),
        "owned by another process": (other_owner, CorruptManifestError, "loader"),
        "invalid stored record": (bad_stored_record, CorruptManifestError, "content_length_bytes"),
        "unknown key in stored record": (unknown_stored_key, CorruptManifestError, "colour"),
    }


CORRUPTIONS = _corruptions()


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_unreadable_stored_manifest(target: Target, case: str) -> None:
    make, error, detail = CORRUPTIONS[case]
    # A manifest object opened while the document was still good.
    opened = target.manifest()
    opened.add_records([record(1), record(2)])
    good = dict(opened.records)

    target.raw_write(make(_good_doc(target)))
    before = _snapshot(target)

    # Loading names the file and what is wrong, with a typed error.
    with pytest.raises(error) as info:
        target.manifest()
    message = str(info.value)
    assert KEY in message
    assert detail in message
    assert isinstance(info.value, CorruptManifestError)
    assert _snapshot(target) == before

    # Reloading an open manifest fails the same way and leaves its memory alone.
    with pytest.raises(error):
        opened.load()
    assert dict(opened.records) == good
    assert not opened.dirty

    # Writing through a fresh manifest never overwrites it: each attempt hits the
    # document, raises the same error again, and the bytes stay exactly as they were.
    blind = target.manifest(load=False)
    with pytest.raises(error):
        blind.add_record(record(3))
    assert _snapshot(target) == before
    with pytest.raises(error):
        blind.save()
    assert _snapshot(target) == before
    # ... nor through the open one (its version is stale, so it merges, and refuses).
    with pytest.raises(error):
        opened.add_record(record(4))
    assert _snapshot(target) == before

    # The manager does not cache a manifest it could not open.
    manager = ManifestManager(target.root, ETL_VERSION, storage_options=target.storage_options)
    for _ in range(2):
        with pytest.raises(error):
            manager.extractor  # noqa: B018 - the attribute access is the test
    assert _snapshot(target) == before


# --- names that could escape the manifests root ---------------------------------------

BAD_VERSIONS = ["1.0/../../etc", "../1.0", "1..0", "..", "1.0\x00", "a/b", "1.0\\x", "", " 1"]
BAD_PROCESSES = ["extractor/..", "../extractor", "extractor\x00", "..", "", "Extractor ", "x/y"]


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_unsafe_version(target: Target, version: str) -> None:
    before = _snapshot(target)
    with pytest.raises(InvalidNameError) as info:
        ManifestManager(target.root, version, storage_options=target.storage_options)
    assert repr(version) in str(info.value)
    assert ManifestManager.instance() is None
    with pytest.raises(InvalidNameError):
        Manifest("extractor", version, target.backend())
    assert _snapshot(target) == before


@pytest.mark.parametrize("process", BAD_PROCESSES)
def test_unknown_or_unsafe_process(target: Target, process: str) -> None:
    manager = ManifestManager(target.root, ETL_VERSION, storage_options=target.storage_options)
    before = _snapshot(target)
    with pytest.raises(UnknownProcessError) as info:
        manager.get(process)
    assert repr(process) in str(info.value)
    with pytest.raises(KeyError):
        manager[process]
    # Not declarable either, and a Manifest built directly refuses the unsafe name.
    with pytest.raises(InvalidNameError):
        manager.declare_processes(process)
    with pytest.raises(InvalidNameError):
        Manifest(process, ETL_VERSION, target.backend())
    assert _snapshot(target) == before


def test_unknown_process_attribute(target: Target) -> None:
    manager = ManifestManager(target.root, ETL_VERSION, storage_options=target.storage_options)
    before = _snapshot(target)
    with pytest.raises(UnknownProcessError) as info:
        manager.extractr  # noqa: B018 - the attribute access is the test
    assert "'extractr'" in str(info.value)
    assert "extractor" in str(info.value)  # names the valid ones
    assert isinstance(info.value, AttributeError)
    assert not hasattr(manager, "extractr")
    assert getattr(manager, "transformr", None) is None
    assert _snapshot(target) == before


# --- local disk only: what the filesystem itself refuses -------------------------------


def test_overlong_version_is_an_invalid_name(tmp_path: Path) -> None:
    target = Target("local", str(tmp_path / "manifests"))
    target.manifest().add_record(record(1))  # the folder exists: names are now checked
    with pytest.raises(InvalidNameError):
        Manifest("extractor", "1" * 300, target.backend())


def test_directory_in_place_of_the_manifest_is_a_storage_error(tmp_path: Path) -> None:
    target = Target("local", str(tmp_path / "manifests"))
    Path(target.root, KEY).mkdir(parents=True)
    before = _snapshot(target)
    with pytest.raises(StorageError) as info:
        target.manifest()
    assert KEY in str(info.value)
    manifest = target.manifest(load=False)
    with pytest.raises(StorageError):
        manifest.add_record(record(1))
    # The write attempt may create the manifest's own (empty) lock file; nothing else.
    data, listing = _snapshot(target)
    assert (data, [n for n in listing if n != f".{KEY}.lock"]) == before
