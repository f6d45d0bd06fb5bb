"""The manifest document on disk: encode and decode ``{"metadata": ..., "records": ...}``.

Decoding validates every record inside pydantic-core in one pass over the bytes (no
intermediate Python dicts), then checks what a schema cannot express: each record sits
under its own checksum, and the document belongs to the expected process and version.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import CorruptManifestError, UnsupportedFormatError
from .metadata import FORMAT_VERSION, ManifestMetadata
from .record import ManifestRecord

__all__ = ["Document", "decode", "encode", "format_validation_error"]


class _DocumentModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metadata: ManifestMetadata
    records: dict[str, ManifestRecord]


@dataclass(slots=True)
class Document:
    """A decoded manifest: its metadata and its records keyed by checksum."""

    metadata: ManifestMetadata
    records: dict[str, ManifestRecord]


def encode(metadata: ManifestMetadata, records: dict[str, ManifestRecord]) -> bytes:
    """Serialize a manifest to compact JSON bytes."""
    # model_construct skips re-validating what is already validated; the serializer
    # runs in pydantic-core.
    doc = _DocumentModel.model_construct(metadata=metadata, records=records)
    return doc.__pydantic_serializer__.to_json(doc)


# Plain-language rules for fields whose raw pydantic message is a regex or a union.
_FIELD_RULES = {
    "checksum": "must be a SHA-256 hex digest (64 characters 0-9, a-f)",
    "filepath": "must be an absolute path or a URL such as s3://bucket/key",
}


def format_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """One ``field.path: problem`` per invalid field, at most ``limit`` of them."""
    problems: dict[str, str] = {}
    for err in exc.errors():
        # Drop the union-branch tags pydantic adds to the location of custom types.
        loc = [str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or "-" in p))]
        where = ".".join(loc) or "document"
        if where in problems:
            continue
        if err["type"] == "extra_forbidden":
            problems[where] = "unknown field (check its spelling)"
        elif err["type"] != "missing" and loc and loc[-1] in _FIELD_RULES:
            problems[where] = _FIELD_RULES[loc[-1]]
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
    if not data.strip():
        raise CorruptManifestError(location, "the file is empty")
    try:
        doc = _DocumentModel.model_validate_json(data)
    except ValidationError as exc:
        # Only the failure path looks inside again, so a valid load parses once.
        found = _stored_format(data)
        if found is not None and found > FORMAT_VERSION:
            raise UnsupportedFormatError(location, found, FORMAT_VERSION) from None
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            reason = f"not valid JSON (truncated or overwritten?): {exc.errors()[0]['msg']}"
        else:
            reason = format_validation_error(exc)
        raise CorruptManifestError(location, reason) from None
    if doc.metadata.format_version > FORMAT_VERSION:
        raise UnsupportedFormatError(location, doc.metadata.format_version, FORMAT_VERSION)
    records = doc.records
    for key, record in records.items():
        if key != record.checksum:
            raise CorruptManifestError(
                location, f"record stored under {key!r} has checksum {record.checksum!r}"
            )
    return Document(doc.metadata, records)
