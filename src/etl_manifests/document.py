"""The manifest document on disk: encode and decode ``{"metadata": ..., "records": ...}``.

Decoding validates the whole document inside pydantic-core in one pass over the bytes:
the records are checked against exactly the field schemas of :class:`ManifestRecord`,
but come out as plain dicts ("rows") instead of model objects, which costs about half as
much time and memory. Then it checks what a schema cannot express: each record sits
under its own checksum, and no object in the text has a key twice. Encoding hands the
rows to orjson.

Duplicate keys: JSON parsers (pydantic-core's and orjson alike) keep the last of two equal
keys and drop the other silently, so a document with ``"records"`` twice would load with
the records of one of them only, and the next save would make the loss permanent.
:func:`decode` therefore compares the keys the text holds with the keys the validated
document has (rows are validated without filling in defaults, so each row holds exactly
the keys its text had). The count must be cheap, because a load must stay within about
twice the time of a bare ``orjson.loads``: it runs on the text reduced to its quotes and
colons, where every key leaves ``"":`` (see :func:`_key_count_bound`). That number is at
least the number of keys in the text; when it equals the keys of the validated document,
no key can be there twice. Otherwise (duplicates, or a string value holding an escaped
quote later followed by a colon) an exact check with the standard library's parser
decides, and names the duplicate.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from pydantic_core import CoreSchema, SchemaValidator, core_schema

from .errors import (
    CorruptManifestError,
    RevisionLimitError,
    UnknownFieldError,
    UnsupportedFormatError,
)
from .metadata import FORMAT_VERSION, MAX_REVISION, ManifestMetadata
from .record import SPARSE_FIELDS, ManifestRecord, Row

__all__ = [
    "Document",
    "check_unique_keys",
    "decode",
    "encode",
    "fill_defaults",
    "format_validation_error",
    "validate_rows",
]


def _model_fields(model: type[ManifestRecord]) -> dict[str, Any]:
    schema: Any = model.__pydantic_core_schema__
    while schema["type"] != "model":
        schema = schema["schema"]
    fields: dict[str, Any] = schema["schema"]["fields"]
    return fields


def _row_schema(*, defaults: bool = True) -> CoreSchema:
    """ManifestRecord's field schemas as a typed dict: same checks, plain-dict output.

    With ``defaults=False`` a field with a default stays absent from the row when the
    input lacks it, so that the keys of a row are the keys of the text (the duplicate
    check of :func:`decode` counts them); :func:`fill_defaults` adds them afterwards.
    """
    fields = {}
    for name, field in _model_fields(ManifestRecord).items():
        schema = field["schema"]
        optional = schema["type"] == "default"
        # A sparse field is never filled in: absent from the text, absent from the row.
        bare = optional and (not defaults or name in SPARSE_FIELDS)
        fields[name] = core_schema.typed_dict_field(
            schema["schema"] if bare else schema, required=not optional
        )
    return core_schema.typed_dict_schema(fields, extra_behavior="forbid")


#: Fields every row has once defaults are filled in (sparse fields only when set).
_ROW_FIELDS = len(ManifestRecord.model_fields) - len(SPARSE_FIELDS)
_DEFAULTED = {
    name: info
    for name, info in ManifestRecord.model_fields.items()
    if not info.is_required() and name not in SPARSE_FIELDS
}


def _sparse_in(row: Row) -> int:
    return sum(name in row for name in SPARSE_FIELDS)


def fill_defaults(rows: dict[str, Row]) -> None:
    """Give rows that lack optional fields their defaults, as the model would; a sparse
    field stays absent, and one stored as ``null`` is dropped."""
    for row in rows.values():
        if len(row) != _ROW_FIELDS + _sparse_in(row):
            for name, info in _DEFAULTED.items():
                if name not in row:
                    row[name] = info.get_default(call_default_factory=True)
        for name in SPARSE_FIELDS:
            if name in row and row[name] is None:
                del row[name]


# Only field names go through pydantic-core's string cache. Caching values too would share
# repeated ones (content types, versions) but costs about 10% more load time, because
# every checksum is a new string of exactly the longest cached length (64).
_CONFIG = core_schema.CoreConfig(cache_strings="keys")

_DOCUMENT = SchemaValidator(
    core_schema.typed_dict_schema(
        {
            "metadata": core_schema.typed_dict_field(ManifestMetadata.__pydantic_core_schema__),
            "records": core_schema.typed_dict_field(
                core_schema.dict_schema(core_schema.str_schema(), _row_schema(defaults=False))
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


# Metadata integers that commits raise; each is bounded by MAX_REVISION.
_COUNTERS = ("revision", "log_epoch", "log_clock", "log_start")


def encode(metadata: ManifestMetadata, records: dict[str, Row]) -> bytes:
    """Serialize a manifest to compact JSON bytes.

    :raises RevisionLimitError: ``metadata.revision`` (or a log counter) is above
        :data:`MAX_REVISION`, so the document could not be read back.
    """
    for name in _COUNTERS:
        value = getattr(metadata, name)
        if value > MAX_REVISION:
            raise RevisionLimitError(
                f"cannot commit metadata.{name} = {value}: it may be at most {MAX_REVISION} "
                "(2**63 - 1), which only a value set by hand in the stored manifest can "
                "reach; lower it there, then save again. Nothing was written"
            )
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
    "filename": "must be a non-empty string without NUL characters",
    "filepath": "must be an absolute path or a URL such as s3://bucket/key",
}


def format_validation_error(exc: ValidationError, limit: int = 5, root: str = "document") -> str:
    """One ``field.path: problem`` per invalid field, at most ``limit`` of them.

    ``root`` names the whole value, for problems that belong to no single field.
    """
    problems: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
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


# A key named format_version and its number. A key, because in JSON text a quote that
# ends a name and is followed by a colon cannot sit inside a string value.
_FORMAT_VERSION = re.compile(rb'"format_version"\s*:\s*(-?[0-9]{1,20})')


def _stored_format(data: bytes) -> int | None:
    """The document's format version, found without parsing the document again.

    Only the failure path asks. A second parse of a large document would cost several
    times its size in memory, on the path taken exactly when something is already wrong;
    the search reads the bytes in place (our own documents start with it).
    """
    found = _FORMAT_VERSION.search(data)
    return int(found.group(1)) if found else None


def _loc(err: Any) -> list[str]:
    # Drop the union-branch tags pydantic adds to the location of custom types.
    return [str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or "-" in p))]


_TOP_FIELDS = ("metadata", "records")


def _known_fields(loc: list[str]) -> tuple[str, ...]:
    """The field names defined where ``loc`` points (top level, metadata or a record)."""
    if len(loc) == 1:
        return _TOP_FIELDS
    if loc[0] == "metadata":
        return tuple(ManifestMetadata.model_fields)
    return tuple(ManifestRecord.model_fields)


def _unknown_fields(errors: list[Any]) -> dict[str, str | None] | None:
    """Unknown field -> the known field it looks like a misspelling of; ``None`` if any
    problem is more than an unknown field."""
    if not errors or any(e["type"] != "extra_forbidden" for e in errors):
        return None
    fields: dict[str, str | None] = {}
    for err in errors:
        loc = _loc(err)
        close = difflib.get_close_matches(loc[-1], _known_fields(loc), n=1, cutoff=0.75)
        fields[".".join(loc)] = close[0] if close else None
    return fields


def _unreadable(data: bytes, location: str, exc: ValidationError) -> CorruptManifestError:
    """The error for a document that failed validation with ``exc``."""
    found = _stored_format(data)
    if found is not None and found > FORMAT_VERSION:
        return UnsupportedFormatError(location, found, FORMAT_VERSION)
    errors = exc.errors(include_url=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        reason = f"not valid JSON (truncated or overwritten?): {errors[0]['msg']}"
        return CorruptManifestError(location, reason)
    unknown = _unknown_fields(errors)
    if unknown is not None:
        return UnknownFieldError(location, found or FORMAT_VERSION, unknown)
    if any(e["type"] in ("dict_type", "model_type") for e in errors):
        reason = "not a manifest document (expected an object with metadata and records)"
        reason += f": {format_validation_error(exc)}"
    else:
        reason = format_validation_error(exc)
    return CorruptManifestError(location, reason)


# Every byte but the two that tell where keys end: the quote and the colon.
_NOT_KEY_SYNTAX = bytes(b for b in range(256) if b not in b'":')


def _key_count_bound(data: bytes) -> int:
    """At least the number of keys in the JSON text ``data``, whatever its whitespace.

    Reduced to its quotes and colons, the text turns every key into ``"":``: the closing
    quote of a key that validated (a field name or a checksum, so no quote or colon in
    it, and any escape deleted with the rest) follows its opening quote, and the colon
    follows the key. Two consecutive quotes then a colon come from nothing else but a
    string value holding an escaped quote later followed by a colon (rare; it makes the
    bound too high, which only costs the exact check).
    """
    return data.translate(None, _NOT_KEY_SYNTAX).count(b'"":')


class _Duplicate(Exception):
    pass


_CHECKSUM = re.compile(r"[0-9a-fA-F]{64}")


def _duplicate_in(pairs: list[tuple[str, Any]]) -> None:
    """``object_pairs_hook`` that raises on a repeated key and keeps nothing."""
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            names = dict(pairs)
            if "checksum" in names or "filename" in names:
                where = f"the record {names.get('checksum')!r} has the key {key!r}"
            elif _CHECKSUM.fullmatch(key):
                where = f"records has the checksum {key}"
            elif key in _TOP_FIELDS:
                where = f"the document has the key {key!r}"
            elif key in ManifestMetadata.model_fields:
                where = f"metadata has the key {key!r}"
            else:
                where = f"an object has the key {key!r}"
            raise _Duplicate(
                f"{where} more than once, and JSON readers keep only one of them, so "
                "records or fields would be lost"
            )
        seen.add(key)
    # Returning nothing keeps memory flat: only whether a key repeats matters here.


def check_unique_keys(data: bytes, keys: int, location: str) -> None:
    """Refuse a JSON text in which some object has a key twice.

    ``keys`` is the number of keys the validated value holds, counting every object's
    keys once (rows validated without filled-in defaults, see :func:`_row_schema`). Cheap
    when the text has exactly that many keys; otherwise an exact check decides.

    :raises CorruptManifestError: naming the repeated key and where it is.
    """
    if _key_count_bound(data) == keys:
        return
    try:
        json.loads(data, object_pairs_hook=_duplicate_in)
    except _Duplicate as duplicate:
        raise CorruptManifestError(location, str(duplicate)) from None
    except (ValueError, RecursionError) as exc:
        # pydantic-core read it, the standard parser cannot: refuse rather than guess.
        raise CorruptManifestError(
            location, f"cannot check the document for duplicate keys ({type(exc).__name__})"
        ) from None


def decode(data: bytes, location: str) -> Document:
    """Parse and validate a stored manifest.

    :raises UnsupportedFormatError: written by a newer release.
    :raises UnknownFieldError: a format this release reads, with fields it does not know.
    :raises CorruptManifestError: anything else that is not a valid manifest, including a
        key that appears twice in one object.
    """
    # isspace() stops at the first visible byte; strip() would copy the whole document.
    if not data or data.isspace():
        raise CorruptManifestError(location, "the file is empty")
    try:
        doc = _DOCUMENT.validate_json(data)
    except ValidationError as exc:
        # Only the failure path looks inside again, and without a second parse.
        raise _unreadable(data, location, exc) from None
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
    in_rows = sum(map(len, records.values()))
    # The document's own two keys, the metadata's, one per record, and the records' own.
    keys = len(_TOP_FIELDS) + len(metadata.model_fields_set) + len(records) + in_rows
    check_unique_keys(data, keys, location)
    if in_rows != _ROW_FIELDS * len(records):
        fill_defaults(records)  # also rows with a source: they hold more than the count
    return Document(metadata, records)
