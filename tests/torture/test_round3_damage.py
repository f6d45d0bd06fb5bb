"""Reliability, round three: a damaged log is reported honestly, writers stop adding to a
manifest nobody can load, and the advised repair (``etl-manifests repair``) works.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from cli_support import cli
from conftest import checksum, record
from etl_manifests import (
    CheckpointPolicy,
    CorruptManifestError,
    Manifest,
    UnknownFieldError,
    UnsupportedFormatError,
    open_backend,
    repair_manifest,
)
from etl_manifests.layout import LogLayout
from torture._support import ETL_VERSION, KEY

pytestmark = pytest.mark.torture

LAYOUT = LogLayout(KEY.removesuffix(".json"))
NEVER = CheckpointPolicy(every=None)


@pytest.fixture
def root(tmp_path: Path) -> str:
    return str(tmp_path / "manifests")


def manifest(root: str, **kwargs: object) -> Manifest:
    return Manifest("extractor", ETL_VERSION, open_backend(root), **kwargs)  # type: ignore[arg-type]


def entries(root: str, epoch: int) -> list[str]:
    prefix = LAYOUT.epoch_prefix(epoch)
    return [i.key for i in open_backend(root).list(prefix) if i.key.endswith(".json")]


def sealed_with_members(root: str) -> tuple[Manifest, str]:
    """Records 0..2 committed in epoch 1, which a compact attempt then seals and lists;
    returns a writer and the key of record 1's entry."""
    writer = manifest(root, checkpoint=NEVER)
    for n in range(3):
        writer.add_record(record(n))
    key = next(
        k for k in entries(root, 1) if checksum(1).encode() in open_backend(root).read(k).data
    )
    return writer, key


# --- item 4: the advised repair works, and the message for a missing member is honest ---


def test_a_truncated_entry_is_repaired_end_to_end(root: str) -> None:
    _writer, key = sealed_with_members(root)
    backend = open_backend(root)
    backend.write(key, backend.read(key).data[:40])  # truncated
    with pytest.raises(CorruptManifestError, match="etl-manifests repair"):
        manifest(root)
    with pytest.raises(CorruptManifestError):
        manifest(root, load=False).compact()  # it listed the epoch by now

    report = repair_manifest(open_backend(root), "extractor", ETL_VERSION)
    assert not report.applied
    assert not report.loads
    [damage] = report.damage
    assert damage.location.endswith(key)
    assert "truncated" in damage.problem
    assert checksum(1) not in damage.loses  # the bytes kept show no whole checksum
    assert backend.read(key).data  # a dry run changes nothing

    report = repair_manifest(open_backend(root), "extractor", ETL_VERSION, apply=True)
    assert report.applied
    assert report.loads, report.error
    assert set(manifest(root).records) == {checksum(0), checksum(2)}
    moved = [i.key for i in backend.list(LAYOUT.log_prefix + "damaged/")]
    assert len(moved) == 1  # the damaged bytes are kept, out of the log's way
    fresh = manifest(root)
    fresh.add_record(record(3))
    fresh.compact()
    assert set(manifest(root).records) == {checksum(0), checksum(2), checksum(3)}


def test_an_entry_moved_aside_by_hand_gets_an_honest_message(root: str) -> None:
    _writer, key = sealed_with_members(root)
    manifest(root, checkpoint=NEVER).log.prepare_checkpoint()  # seals and lists epoch 1
    open_backend(root).delete(key)  # "move it aside", as the old advice said
    with pytest.raises(CorruptManifestError) as caught:
        manifest(root)
    message = str(caught.value)
    assert "missing" in message
    assert "retention" not in message
    assert "etl-manifests repair" in message
    result = cli("repair", "--root", root, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["damage"][0]["location"].endswith(key)
    result = cli("repair", "--root", root, "--apply")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(manifest(root).records) == {checksum(0), checksum(2)}


def test_a_writer_that_found_the_log_damaged_refuses_to_commit(root: str) -> None:
    _writer, key = sealed_with_members(root)
    # A writer that has not read record 1's entry (the one that wrote it could fold it
    # from memory, and rightly does).
    writer = manifest(root, load=False, checkpoint=NEVER)
    backend = open_backend(root)
    backend.write(key, b"{")
    with pytest.raises(CorruptManifestError):
        writer.compact()
    before = {i.key for i in backend.list("")}
    with pytest.raises(CorruptManifestError, match="refused"):
        writer.add_record(record(10))
    assert {i.key for i in backend.list("")} == before
    repair_manifest(open_backend(root), "extractor", ETL_VERSION, apply=True)
    writer.load()
    writer.add_record(record(10))
    assert checksum(10) in manifest(root)


def test_repair_reports_an_intact_manifest_as_fine(root: str) -> None:
    sealed_with_members(root)
    report = repair_manifest(open_backend(root), "extractor", ETL_VERSION, apply=True)
    assert report.ok
    assert not report.applied
    assert cli("repair", "--root", root).exit_code == 0


# --- item 5: damage that looks valid is detected --------------------------------------


def test_an_entry_deleted_from_the_open_epoch_is_noticed_not_folded(root: str) -> None:
    writer, key = sealed_with_members(root)
    reader = manifest(root, checkpoint=NEVER)
    assert checksum(1) in reader
    open_backend(root).delete(key)
    with pytest.raises(CorruptManifestError, match="gone"):
        reader.compact()
    assert checksum(1) in reader  # nothing was taken back out
    del writer


def test_a_seal_whose_member_list_was_edited_is_refused(root: str) -> None:
    sealed_with_members(root)
    reader = manifest(root, checkpoint=NEVER)
    reader.log.prepare_checkpoint()  # seals and lists epoch 1
    backend = open_backend(root)
    seal = orjson.loads(backend.read(LAYOUT.seal(1)).data)
    seal["members"] = []  # hides three acknowledged commits
    backend.write(LAYOUT.seal(1), orjson.dumps(seal))
    with pytest.raises(CorruptManifestError, match="digest"):
        manifest(root)
    reader.refresh()
    assert len(reader) == 3  # a live reader does not drop them either


# --- item 6: a newer release's entry says upgrade, never "move it aside" --------------


@pytest.mark.parametrize(
    "change", [{"format": 2}, {"shards": [1, 2]}], ids=["newer-format", "newer-field"]
)
def test_a_newer_releases_entry_says_upgrade(root: str, change: dict[str, object]) -> None:
    _writer, key = sealed_with_members(root)
    backend = open_backend(root)
    entry = orjson.loads(backend.read(key).data)
    entry.update(change)
    backend.write(key, orjson.dumps(entry))
    with pytest.raises((UnsupportedFormatError, UnknownFieldError)) as caught:
        manifest(root)
    message = str(caught.value)
    assert "upgrade" in message
    assert "move it aside" not in message
    assert "check its spelling" not in message
    if change.get("format"):
        report = repair_manifest(open_backend(root), "extractor", ETL_VERSION, apply=True)
        assert report.damage[0].fix is None  # never set aside
        assert backend.read(key).data == orjson.dumps(entry)
