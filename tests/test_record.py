"""ManifestRecord: the seed's fields, and what counts as a valid record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

import pytest
from pydantic import ValidationError

from conftest import CHECKSUM
from etl_manifests import ManifestRecord

BASE = {"checksum": CHECKSUM, "filename": "a.gz", "filepath": "/data/a.gz", "etl_version": "1.0.0"}


def make(**changes: object) -> ManifestRecord:
    return ManifestRecord.model_validate({**BASE, **changes})


def test_defaults_match_the_seed() -> None:
    record = make()
    assert record.is_verified is False
    assert (record.etag, record.content_type, record.last_modified_server) == (None, None, None)
    assert record.content_length_bytes is None


def test_updated_at_defaults_to_now_in_utc() -> None:
    before = datetime.now(UTC)
    record = make()
    assert record.updated_at.utcoffset() == timedelta(0)
    assert before <= record.updated_at <= datetime.now(UTC)


def test_upper_case_checksum_is_normalised_to_lower_case() -> None:
    assert make(checksum=CHECKSUM.upper()).checksum == CHECKSUM


@pytest.mark.parametrize(
    "bad", ["", "abc", CHECKSUM[:-1], CHECKSUM + "0", "g" * 64, " " + CHECKSUM[1:], 123]
)
def test_checksum_that_is_not_sha256_hex_is_rejected(bad: object) -> None:
    with pytest.raises(ValidationError):
        make(checksum=bad)


def test_object_store_url_round_trips_exactly() -> None:
    record = make(filepath="s3://bucket/a/b.gz")
    assert record.filepath == "s3://bucket/a/b.gz"
    assert ManifestRecord.model_validate_json(record.model_dump_json()).filepath == (
        "s3://bucket/a/b.gz"
    )


def test_path_object_is_stored_as_its_string() -> None:
    assert make(filepath=Path("/data/x/a.gz")).filepath == "/data/x/a.gz"
    assert make(filepath=PurePosixPath("/data/y.gz")).filepath == "/data/y.gz"


@pytest.mark.parametrize("bad", ["relative/a.gz", "", "a.gz", Path("relative"), "s3:/one-slash"])
def test_filepath_must_be_absolute_or_a_url(bad: object) -> None:
    with pytest.raises(ValidationError):
        make(filepath=bad)


def test_windows_paths_are_accepted() -> None:
    assert make(filepath="C:\\data\\a.gz").filepath == "C:\\data\\a.gz"


def test_negative_content_length_is_rejected() -> None:
    with pytest.raises(ValidationError):
        make(content_length_bytes=-1)


def test_naive_updated_at_is_rejected() -> None:
    with pytest.raises(ValidationError):
        make(updated_at=datetime(2026, 1, 1))


def test_aware_updated_at_in_another_zone_is_stored_in_utc() -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    stored = make(updated_at=when).updated_at
    assert stored == when
    assert stored.utcoffset() == timedelta(0)


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="filname"):
        make(filname="typo.gz")


def test_records_are_immutable() -> None:
    record = make()
    with pytest.raises(ValidationError):
        record.filename = "other"  # type: ignore[misc]


def test_json_round_trip_is_lossless() -> None:
    record = make(etag='"abc"', content_type="application/gzip", content_length_bytes=7)
    assert ManifestRecord.model_validate_json(record.model_dump_json()) == record


def test_nul_in_filepath_is_rejected() -> None:
    with pytest.raises(ValidationError, match="filepath"):
        make(filepath="/data/a\x00.gz")


def test_content_length_beyond_64_bits_is_rejected() -> None:
    with pytest.raises(ValidationError, match="content_length_bytes"):
        make(content_length_bytes=2**64)


def test_text_that_cannot_be_utf8_is_rejected() -> None:
    with pytest.raises(ValidationError, match="etag holds characters"):
        make(etag="bad\udcff")
