"""Property: any valid manifest round-trips through save and load unchanged, on every
backend (local disk, memory, S3 and GCS behind the harness proxy), through both of the
forms it is stored in: log entries (what a commit writes) and the snapshot (what a
checkpoint writes, the JSON file)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_manifests import ManifestRecord
from etl_manifests.testing import GcsServer, S3Server
from torture._support import ETL_VERSION, Target

pytestmark = pytest.mark.torture

HEX = "0123456789abcdefABCDEF"
# Text without NUL (not allowed in paths or file names) and, as hypothesis does by
# default, without lone surrogates (rejected or unencodable; see test_bad_input).
name_characters = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
path_text = st.text(name_characters, max_size=40)

checksums = st.text(HEX, min_size=64, max_size=64)
filepaths = st.one_of(
    path_text.map(lambda s: "/" + s),
    st.tuples(st.sampled_from("CdZ"), st.sampled_from("\\/"), path_text)
    .map("".join)
    .map(lambda s: s[0] + ":" + s[1:]),
    path_text.map(lambda s: "\\\\server\\share\\" + s),
    st.tuples(
        st.sampled_from(["s3", "gs", "gcs", "https", "file", "az", "abfs+x", "s3a"]), path_text
    ).map(lambda t: f"{t[0]}://{t[1]}"),
)
# Offsets in whole minutes over the full legal range, and real zones since 1980 (older
# dates in real zones have offsets with seconds: see the test at the bottom).
minute_offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda m: timezone(timedelta(minutes=m))
)
real_zones = st.sampled_from(
    [
        "UTC",
        "Europe/Amsterdam",
        "America/St_Johns",
        "Asia/Kathmandu",
        "Pacific/Chatham",
        "Australia/Lord_Howe",
        "America/Los_Angeles",
        "Asia/Kolkata",
        "Pacific/Kiritimati",
    ]
).map(ZoneInfo)
aware_datetimes = st.one_of(
    st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31), timezones=minute_offsets),
    st.datetimes(datetime(1980, 1, 1), datetime(2200, 1, 1), timezones=real_zones),
    st.datetimes(datetime(1970, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
)
optional_text = st.none() | st.text(max_size=30)
records = st.fixed_dictionaries(
    {
        "checksum": checksums,
        "filename": st.text(name_characters, min_size=1, max_size=40),
        "filepath": filepaths,
    },
    optional={
        "etl_version": st.text(min_size=1, max_size=12),
        "is_verified": st.booleans(),
        "etag": optional_text,
        "content_type": optional_text,
        "last_modified_server": optional_text,
        "content_length_bytes": st.none()
        | st.integers(0, 2**63 - 1)
        | st.sampled_from([0, 2**31, 2**32, 2**53 + 1, 2**63 - 1]),
        "updated_at": aware_datetimes,
    },
)


def manifests(max_records: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(records, max_size=max_records, unique_by=lambda r: r["checksum"].lower())


def _canon(rec: ManifestRecord) -> dict[str, Any]:
    """A record's fields with ``updated_at`` as (UTC instant, UTC offset).

    Python never calls datetimes in a DST gap or fold equal to ones in another zone
    (PEP 495), so ``==`` cannot compare a ZoneInfo datetime with the fixed-offset one a
    load returns; the instant and the offset are what must survive.
    """
    fields = rec.model_dump()
    when: datetime = fields.pop("updated_at")
    fields["updated_at"] = (when.astimezone(UTC), when.utcoffset())
    return fields


def _check_roundtrip(target: Target, params: list[dict[str, Any]]) -> None:
    writer = target.manifest()
    added = writer.add_records(params)
    expected = {rec.checksum: _canon(rec) for rec in added}
    for p, rec in zip(params, added, strict=True):  # what was asked is what was kept
        asked = ManifestRecord.model_validate(
            {"etl_version": ETL_VERSION, "updated_at": rec.updated_at, **p}
        )
        assert _canon(rec) == _canon(asked)
    if not params:
        writer.save()  # an empty manifest is a manifest too
    assert {k: _canon(r) for k, r in writer.records.items()} == expected

    # Through the log: the snapshot holds nothing yet, the entries everything.
    loaded = target.manifest()
    assert {k: _canon(r) for k, r in loaded.records.items()} == expected
    assert len(loaded) == len(expected)
    assert loaded.metadata == writer.metadata
    # Through the snapshot: fold the log into the JSON file, then load that.
    writer.compact()
    raw = target.raw_read()
    assert raw is not None
    assert set(json.loads(raw)["records"]) == set(expected)
    snapshot_only = target.manifest()
    assert {k: _canon(r) for k, r in snapshot_only.records.items()} == expected
    assert snapshot_only.metadata.revision == loaded.metadata.revision
    assert snapshot_only.metadata.updated_at == loaded.metadata.updated_at


def examples(n: int) -> settings:
    # Fixtures are function-scoped; each example uses its own root, so reuse is harmless.
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


@examples(50)
@given(params=manifests(12))
def test_local_disk(tmp_path: Path, params: list[dict[str, Any]]) -> None:
    _check_roundtrip(Target("local", str(tmp_path / uuid.uuid4().hex)), params)


@examples(50)
@given(params=manifests(12))
def test_memory(params: list[dict[str, Any]]) -> None:
    _check_roundtrip(Target("memory", f"memory://rt-{uuid.uuid4().hex}"), params)


@pytest.mark.s3
@examples(15)
@given(params=manifests(6))
def test_s3(s3_server: S3Server, s3_bucket: str, params: list[dict[str, Any]]) -> None:
    root = f"s3://{s3_bucket}/rt-{uuid.uuid4().hex}"
    _check_roundtrip(
        Target("s3", root, dict(s3_server.storage_options), s3_server.endpoint_url), params
    )


@pytest.mark.gcs
@examples(15)
@given(params=manifests(6))
def test_gcs(gcs_server: GcsServer, gcs_bucket: str, params: list[dict[str, Any]]) -> None:
    root = f"gs://{gcs_bucket}/rt-{uuid.uuid4().hex}"
    _check_roundtrip(
        Target("gcs", root, dict(gcs_server.storage_options), gcs_server.endpoint_url), params
    )


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(datetime(1900, 1, 1, tzinfo=ZoneInfo("Europe/Amsterdam")), id="LMT+00:19:32"),
        pytest.param(datetime(1970, 6, 1, tzinfo=ZoneInfo("Africa/Monrovia")), id="-00:44:30"),
        pytest.param(datetime(2024, 1, 1, tzinfo=timezone(timedelta(seconds=30))), id="+00:00:30"),
        pytest.param(
            datetime(2024, 1, 1, tzinfo=timezone(timedelta(microseconds=1))), id="+00:00:00.000001"
        ),
    ],
)
def test_sub_minute_utc_offsets_keep_the_instant(when: datetime) -> None:
    # JSON offsets carry minutes only: an offset with seconds must not move the instant.
    from conftest import checksum, record

    target = Target("memory", f"memory://rt-{uuid.uuid4().hex}")
    _check_roundtrip(target, [record(1, updated_at=when)])
    stored = target.manifest().records[checksum(1)].updated_at
    assert stored.astimezone(UTC) == when.astimezone(UTC)
