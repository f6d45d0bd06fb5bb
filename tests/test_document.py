"""The stored-document codec validates records exactly as ManifestRecord does."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from conftest import CHECKSUM
from etl_manifests import ManifestRecord
from etl_manifests.document import validate_rows

VALID = {
    "checksum": CHECKSUM,
    "filename": "a.gz",
    "filepath": "s3://bucket/a.gz",
    "etl_version": "1.0.0",
    "updated_at": "2026-11-25T10:00:00.5+02:00",
}

INVALID = [
    {"checksum": "xyz"},
    {"checksum": CHECKSUM[:63]},
    {"checksum": None},
    {"filename": ""},
    {"filepath": "relative/a.gz"},
    {"filepath": 12},
    {"etl_version": ""},
    {"is_verified": "maybe"},
    {"etag": 5},
    {"content_length_bytes": -1},
    {"content_length_bytes": 1.5},
    {"content_length_bytes": "many"},
    {"updated_at": "2026-11-25T10:00:00"},
    {"updated_at": "yesterday"},
    {"unexpected": 1},
]


@pytest.mark.parametrize("change", INVALID, ids=lambda c: next(iter(c)))
def test_row_validation_rejects_what_the_model_rejects(change: dict[str, object]) -> None:
    data = orjson.dumps({**VALID, **change})
    with pytest.raises(ValidationError):
        ManifestRecord.model_validate_json(data)
    with pytest.raises(ValidationError):
        validate_rows(b'{"k": ' + data + b"}")


@pytest.mark.parametrize("missing", ["checksum", "filename", "filepath", "etl_version"])
def test_row_validation_requires_what_the_model_requires(missing: str) -> None:
    data = orjson.dumps({k: v for k, v in VALID.items() if k != missing})
    with pytest.raises(ValidationError):
        validate_rows(b'{"k": ' + data + b"}")


def test_row_of_valid_record_equals_the_models_fields() -> None:
    data = orjson.dumps(VALID)
    row = validate_rows(b'{"k": ' + data + b"}")["k"]
    assert row == ManifestRecord.model_validate_json(data).__dict__


def test_defaults_are_filled_in_rows() -> None:
    row = validate_rows(b'{"k": ' + orjson.dumps(VALID) + b"}")["k"]
    assert row["is_verified"] is False
    assert row["content_length_bytes"] is None


def test_record_built_from_row_equals_validated_record() -> None:
    record = ManifestRecord.model_validate(VALID)
    assert ManifestRecord.from_row(dict(record.__dict__)) == record
    assert ManifestRecord.from_row(dict(record.__dict__)).model_dump() == record.model_dump()
