"""The manifest document on disk: encode and decode ``{"metadata": ..., "records": ...}``.

Decoding validates the whole document inside pydantic-core in one pass over the bytes:
the records are checked against exactly the field schemas of :class:`ManifestRecord`,
but come out as plain dicts ("rows") instead of model objects, which costs about half as
much time and memory. Then it checks what a schema cannot express: each record sits
under its own checksum. Encoding hands the rows to orjson.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from pydantic_core import CoreSchema, SchemaValidator, core_schema

from .errors import CorruptManifestError, UnsupportedFormatError
from .metadata import FORMAT_VERSION, ManifestMetadata
from .record import ManifestRecord, Row

__all__ = ["Document", "decode", "encode", "format_validation_error", "validate_rows"]


def _model_fields(model: type[ManifestRecord]) -> dict[str, Any]:
    schema: Any = model.__pydantic_core_schema__
    while schema["type"] != "model":
        schema = schema["schema"]
    fields: dict[str, Any] = schema["schema"]["fields"]
    return fields


def _row_schema() -> CoreSchema:
    """ManifestRecord's field schemas as a typed dict: same checks, plain-dict output."""
    return core_schema.typed_dict_schema(
        {
            name: core_schema.typed_dict_field(
                field["schema"], required=field["schema"]["type"] != "default"
            )
            for name, field in _model_fields(ManifestRecord).items()
        },
        extra_behavior="forbid",
    )


# Only field names go through pydantic-core's string cache. Caching values too would share
# repeated ones (content types, versions) but costs about 10% more load time, because
# every checksum is a new string of exactly the longest cached length (64).
_CONFIG = core_schema.CoreConfig(cache_strings="keys")

_DOCUMENT = SchemaValidator(
    core_schema.typed_dict_schema(
        {
            "metadata": core_schema.typed_dict_field(ManifestMetadata.__pydantic_core_schema__),
            "records": core_schema.typed_dict_field(
                core_schema.dict_schema(core_schema.str_schema(), _row_schema())
            ),
        },
        extra_behavior="forbid",
    ),
    config=_CONFIG,
)
_ROWS = SchemaValidator(
    core_schema.dict_schema(core_schema.str_schema(), _row_schema()), config=_CONFIG
)

# Aware datetimes keep their offset; UTC is written as "Z", as pydantic writes it.
_DUMP_OPTIONS = orjson.OPT_UTC_Z


@dataclass(slots=True)
class Document:
    """A decoded manifest: its metadata and its record rows keyed by checksum."""

    metadata: ManifestMetadata
    records: dict[str, Row]


def encode(metadata: ManifestMetadata, records: dict[str, Row]) -> bytes:
    """Serialize a manifest to compact JSON bytes."""
    return orjson.dumps(
        {"metadata": metadata.model_dump(mode="json"), "records": records},
        option=_DUMP_OPTIONS,
    )


def validate_rows(data: bytes) -> dict[str, Row]:
    """Validate a JSON object of records (checksum -> record) into rows (for tests)."""
    rows: dict[str, Row] = _ROWS.validate_json(data)
    return rows


# Plain-language rules for fields whose raw pydantic message is a regex or a union.
_FIELD_RULES = {
    "checksum": "must be a SHA-256 hex digest (64 characters 0-9, a-f)",
    "filepath": "must be an absolute path or a URL such as s3://bucket/key",
}


def format_validation_error(exc: ValidationError, limit: int = 5, root: str = "document") -> str:
    """One ``field.path: problem`` per invalid field, at most ``limit`` of them.

    ``root`` names the whole value, for problems that belong to no single field.
    """
    problems: dict[str, str] = {}
    for err in exc.errors():
        # Drop the union-branch tags pydantic adds to the location of custom types.
        loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or "-" in p))]
        where = ".".join(loc) or root
        if where in problems:
            continue
        if err["type"] == "extra_forbidden":
            problems[where] = "unknown field (check its spelling)"
        elif err["type"] != "missing" and loc and loc[-1] in _FIELD_RULES:
            problems[where] = _FIELD_RULES[loc[-1]]
        elif err["type"] == "value_error":
            problems[where] = str(err.get("ctx", {}).get("error", err["msg"]))
        else:
            problems[where] = err["msg"]
    lines = [f"{where}: {msg}" for where, msg in list(problems.items())[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    return "; ".join(lines)


def _stored_format(data: bytes) -> int | None:
    try:
        version = orjson.loads(data)["metadata"]["format_version"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return version if isinstance(version, int) else None


def decode(data: bytes, location: str) -> Document:
    """Parse and validate a stored manifest.

    :raises UnsupportedFormatError: written by a newer release.
    :raises CorruptManifestError: anything else that is not a valid manifest.
    """
    # isspace() stops at the first visible byte; strip() would copy the whole document.
    if not data or data.isspace():
        raise CorruptManifestError(location, "the file is empty")
    try:
        doc = _DOCUMENT.validate_json(data)
    except ValidationError as exc:
        # Only the failure path looks inside again, so a valid load parses once.
        found = _stored_format(data)
        if found is not None and found > FORMAT_VERSION:
            raise UnsupportedFormatError(location, found, FORMAT_VERSION) from None
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            reason = f"not valid JSON (truncated or overwritten?): {exc.errors()[0]['msg']}"
        elif any(e["type"] in ("dict_type", "model_type") for e in exc.errors()):
            reason = "not a manifest document (expected an object with metadata and records)"
            reason += f": {format_validation_error(exc)}"
        else:
            reason = format_validation_error(exc)
        raise CorruptManifestError(location, reason) from None
    metadata: ManifestMetadata = doc["metadata"]
    if metadata.format_version > FORMAT_VERSION:
        raise UnsupportedFormatError(location, metadata.format_version, FORMAT_VERSION)
    records: dict[str, Row] = doc["records"]
    for key, row in records.items():
        if key != row["checksum"]:
            raise CorruptManifestError(
                location, f"record stored under {key!r} has checksum {row['checksum']!r}"
            )
        # One string object for key and field: frees a copy of every checksum.
        row["checksum"] = key
    return Document(metadata, records)
