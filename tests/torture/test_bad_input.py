"""The bad-input corpus: every case ends in a typed error naming the problem and leaves
storage (bytes and listing) and memory (records, length, dirtiness) exactly as they were.
A stored manifest that cannot be read is never overwritten, whatever is tried next.
"""

from __future__ import annotations

import json
import re
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
from torture._support import ETL_VERSION, KEY, LOG_PREFIX, Target

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
    # A manifest object opened while the document was still good; compact() puts its
    # records into the snapshot, the document the corruption then replaces.
    opened = target.manifest()
    opened.add_records([record(1), record(2)])
    opened.compact()
    good = dict(opened.records)
    compacted = target.raw_read()
    assert compacted is not None
    assert set(json.loads(compacted)["records"]) == set(good)

    target.raw_write(make(json.loads(compacted)))
    before = _snapshot(target)
    planted = before[0]

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
    # The open one commits to the log without reading the snapshot (a commit never
    # waits on it), but folding its log into a snapshot reads it, refuses, and leaves
    # the document as it was.
    opened.add_record(record(4))
    assert target.raw_read() == planted
    with pytest.raises(error):
        opened.compact()
    assert target.raw_read() == planted
    before = _snapshot(target)

    # The manager does not cache a manifest it could not open.
    manager = ManifestManager(target.root, ETL_VERSION, storage_options=target.storage_options)
    for _ in range(2):
        with pytest.raises(error):
            manager.extractor  # noqa: B018 - the attribute access is the test
    assert _snapshot(target) == before


# --- log entries and seals we cannot use: typed error naming them, never overwritten ----


def _foreign_entry(target: Target) -> bytes:
    """A real entry of another manifest (the loader's) on the same root."""
    Manifest("loader", ETL_VERSION, target.backend()).add_record(record(7))
    prefix = f"loader_v{ETL_VERSION}.log/"
    (key,) = [n for n in target.listing() if n.startswith(prefix) and n.endswith(".json")]
    data = target.raw_read(key)
    assert data is not None
    return data


def _edit_entry(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes, Target], bytes]:
    def damage(data: bytes, target: Target) -> bytes:
        entry: dict[str, Any] = json.loads(data)
        change(entry)
        return json.dumps(entry).encode()

    return damage


def _put_row(entry: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = entry["put"][checksum(3)]
    return row


ENTRY_DAMAGE: dict[str, tuple[Callable[[bytes, Target], bytes], str]] = {
    "truncated": (lambda data, _: data[: len(data) // 2], "JSON"),
    "empty": (lambda data, _: b"", "empty"),
    "not JSON": (lambda data, _: b"<html>502 Bad Gateway</html>", "JSON"),
    "JSON list": (lambda data, _: b"[]", "not a log entry"),
    "foreign (another manifest's entry)": (lambda _, t: _foreign_entry(t), "loader"),
    "duplicate key": (lambda data, _: data[:-1] + b',"remove":[]}', "more than once"),
    "invalid record": (
        _edit_entry(lambda e: _put_row(e).update(content_length_bytes=-5)),
        "content_length_bytes",
    ),
    "unknown key in record": (
        _edit_entry(lambda e: _put_row(e).update(colour="red")),
        "colour",
    ),
    "record under another checksum": (
        _edit_entry(lambda e: e["put"].update({checksum(9): e["put"].pop(checksum(3))})),
        checksum(9),
    ),
    "unknown field": (_edit_entry(lambda e: e.update(shards=4)), "shards"),
    "newer entry format": (_edit_entry(lambda e: e.update(format=99)), "upgrade"),
    "stored under another writer's name": (
        _edit_entry(lambda e: e.update(writer="f" * 16)),
        "name",
    ),
}


def _seal_damage() -> dict[str, tuple[Callable[[bytes], bytes], str]]:
    def other_epoch(seal: bytes) -> bytes:
        return seal  # epoch 1's seal, stored as epoch 2's

    def unknown_state(seal: bytes) -> bytes:
        doc = json.loads(seal)
        doc.update(epoch=2, state="half-folded")
        return json.dumps(doc).encode()

    def truncated(seal: bytes) -> bytes:
        doc = json.loads(seal)
        doc.update(epoch=2)
        data = json.dumps(doc).encode()
        return data[: len(data) // 2]

    return {
        "truncated": (truncated, "unreadable"),
        "empty": (lambda _: b"", "unreadable"),
        "not JSON": (lambda _: b"<html>503 Slow Down</html>", "unreadable"),
        "another epoch's seal": (other_epoch, "not this epoch's"),
        "unknown state": (unknown_state, "not this epoch's"),
    }


SEAL_DAMAGE = _seal_damage()


def _log_with_a_live_entry(target: Target) -> tuple[Manifest, Manifest, str]:
    """Records 1 and 2 folded into the snapshot (epoch 1 sealed), record 3 committed as
    the one entry of the live epoch 2 by a writer that then goes away. Returns a reader
    and a writer opened before record 3 was committed, and the entry's key."""
    author = target.manifest()
    author.add_records([record(1), record(2)])
    author.compact()
    reader, writer = target.manifest(), target.manifest()
    author.add_record(record(3))
    (key,) = [n for n in target.entries() if n.startswith(f"{LOG_PREFIX}0000000002/")]
    return reader, writer, key


def _refused_and_kept(
    target: Target, bad_key: str, detail: str, reader: Manifest, writer: Manifest
) -> None:
    """Every way to read the log raises a CorruptManifestError naming ``bad_key``, and
    nothing that reads or writes the manifest overwrites or deletes it."""
    bad = target.raw_read(bad_key)
    snapshot = target.raw_read()
    before = _snapshot(target)

    def kept() -> None:
        assert target.raw_read(bad_key) == bad
        assert target.raw_read() == snapshot  # no checkpoint folded past it

    with pytest.raises(CorruptManifestError) as info:
        target.manifest()
    assert bad_key in str(info.value)
    assert detail in str(info.value)
    assert _snapshot(target) == before  # reading changed nothing at all

    records_before = dict(reader.records)
    with pytest.raises(CorruptManifestError) as info:
        reader.load()
    assert bad_key in str(info.value)
    assert dict(reader.records) == records_before
    with pytest.raises(CorruptManifestError):
        reader.refresh()
    assert set(reader.records) == {checksum(1), checksum(2)}
    assert _snapshot(target) == before

    manager = ManifestManager(target.root, ETL_VERSION, storage_options=target.storage_options)
    for _ in range(2):
        with pytest.raises(CorruptManifestError):
            manager.extractor  # noqa: B018 - the attribute access is the test
    assert _snapshot(target) == before

    # Writers. A commit reads its epoch's seal but no other entry: with a bad entry it
    # lands; with a bad seal it is refused. A checkpoint reads everything, refuses, and
    # folds nothing.
    commits = [
        lambda: target.manifest(load=False).add_record(record(4)),
        lambda: writer.add_record(record(5)),
    ]
    for commit in commits:
        if bad_key.endswith(".seal"):
            with pytest.raises(CorruptManifestError, match=re.escape(bad_key)):
                commit()
        else:
            commit()
        kept()
    for checkpoint in (writer.compact, lambda: target.manifest(load=False).compact()):
        with pytest.raises(CorruptManifestError, match=re.escape(bad_key)):
            checkpoint()
        kept()
    assert bad_key in target.listing()


@pytest.mark.parametrize("case", list(ENTRY_DAMAGE))
def test_unreadable_log_entry(target: Target, case: str) -> None:
    damage, detail = ENTRY_DAMAGE[case]
    reader, writer, key = _log_with_a_live_entry(target)
    good = target.raw_read(key)
    assert good is not None
    target.raw_write(damage(good, target), key)
    _refused_and_kept(target, key, detail, reader, writer)


@pytest.mark.parametrize("case", list(SEAL_DAMAGE))
def test_unreadable_seal(target: Target, case: str) -> None:
    damage, detail = SEAL_DAMAGE[case]
    reader, writer, _ = _log_with_a_live_entry(target)
    sealed = target.raw_read(f"{LOG_PREFIX}0000000001.seal")  # written by compact()
    assert sealed is not None
    # The seal of the live epoch, which every reader and committer reads.
    key = f"{LOG_PREFIX}0000000002.seal"
    target.raw_write(damage(sealed), key)
    _refused_and_kept(target, key, detail, reader, writer)


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
