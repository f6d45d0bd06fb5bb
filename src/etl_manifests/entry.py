"""One commit of the log: the records it put and the checksums it removed.

An entry is a small JSON object written once, with ``write(key, data, expect=ABSENT)``,
under a name no other writer uses (see :mod:`etl_manifests.commitlog`). It carries its
position in the log's order, a :data:`Stamp`: ``(epoch, clock, writer, seq)``, compared
as a tuple. ``clock`` is a logical (Lamport) clock: the writer picks it above every
clock it has seen, so a commit made after seeing another's effect always sorts after
it, whatever the machines' wall clocks say. ``time`` is informational only.

Decoding validates the rows with exactly the field schemas of
:class:`~etl_manifests.ManifestRecord` (the same validator a snapshot's records go
through) and refuses anything else as :class:`~etl_manifests.errors.CorruptManifestError`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from pydantic import ValidationError
from pydantic_core import SchemaValidator, core_schema

from .document import _row_schema as row_schema
from .document import check_unique_keys, fill_defaults, format_validation_error
from .errors import (
    REPAIR_ADVICE,
    CorruptManifestError,
    UnknownFieldError,
    UnsupportedFormatError,
)
from .record import ManifestRecord, Row

__all__ = ["ENTRY_FORMAT", "LogEntry", "Stamp", "decode_entry", "encode_entry"]

#: Layout of log entries this release writes and reads.
ENTRY_FORMAT: Final = 1

#: An entry's position in the log: ``(epoch, clock, writer, seq)``; later sorts higher.
Stamp = tuple[int, int, str, int]

#: A writer id: 16 lower-case hex digits, fresh for every Manifest object and process.
WRITER_PATTERN: Final = re.compile(r"[0-9a-f]{16}")

_MAX_INT = 2**63 - 1

_ENTRY = SchemaValidator(
    core_schema.typed_dict_schema(
        {
            "format": core_schema.typed_dict_field(core_schema.int_schema(ge=1)),
            "manifest": core_schema.typed_dict_field(core_schema.str_schema(min_length=1)),
            "commit": core_schema.typed_dict_field(
                core_schema.str_schema(pattern=r"^[0-9a-f]{32}$")
            ),
            "epoch": core_schema.typed_dict_field(core_schema.int_schema(ge=1, le=_MAX_INT)),
            "clock": core_schema.typed_dict_field(core_schema.int_schema(ge=1, le=_MAX_INT)),
            "writer": core_schema.typed_dict_field(
                core_schema.str_schema(pattern=r"^[0-9a-f]{16}$")
            ),
            "seq": core_schema.typed_dict_field(core_schema.int_schema(ge=0, le=_MAX_INT)),
            "time": core_schema.typed_dict_field(
                core_schema.datetime_schema(tz_constraint="aware")
            ),
            "put": core_schema.typed_dict_field(
                core_schema.dict_schema(core_schema.str_schema(), row_schema(defaults=False))
            ),
            "remove": core_schema.typed_dict_field(
                core_schema.list_schema(core_schema.str_schema(pattern=r"^[0-9a-f]{64}$"))
            ),
        },
        extra_behavior="forbid",
    ),
    config=core_schema.CoreConfig(cache_strings="keys"),
)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A decoded (or about to be written) commit.

    ``changes`` maps each checksum the commit touched to its new row, or to ``None``
    for a removal. A commit touches a checksum at most once.
    """

    manifest: str
    commit: str
    epoch: int
    clock: int
    writer: str
    seq: int
    time: datetime
    changes: dict[str, Row | None]

    @property
    def stamp(self) -> Stamp:
        """This entry's position in the log's total order."""
        return (self.epoch, self.clock, self.writer, self.seq)

    @property
    def puts(self) -> int:
        """How many records the commit put."""
        return sum(1 for row in self.changes.values() if row is not None)

    @property
    def removals(self) -> int:
        """How many checksums the commit removed."""
        return sum(1 for row in self.changes.values() if row is None)

    def at(self, epoch: int, clock: int, seq: int) -> LogEntry:
        """The same commit (same id and changes) at another position."""
        return LogEntry(
            self.manifest, self.commit, epoch, clock, self.writer, seq, self.time, self.changes
        )


def encode_entry(entry: LogEntry) -> bytes:
    """Serialize an entry to compact JSON."""
    return orjson.dumps(
        {
            "format": ENTRY_FORMAT,
            "manifest": entry.manifest,
            "commit": entry.commit,
            "epoch": entry.epoch,
            "clock": entry.clock,
            "writer": entry.writer,
            "seq": entry.seq,
            "time": entry.time.astimezone(UTC),
            "put": {c: row for c, row in entry.changes.items() if row is not None},
            "remove": [c for c, row in entry.changes.items() if row is None],
        },
        option=orjson.OPT_UTC_Z,
    )


def decode_entry(data: bytes, location: str, manifest: str) -> LogEntry:
    """Parse and validate a stored entry of the log of ``manifest`` (its snapshot's stem).

    :raises CorruptManifestError: the bytes are not an entry of this manifest's log
        (truncated, not JSON, wrong shape, an unknown field, duplicate keys, a record
        under the wrong checksum, or an entry of another manifest's log).
    """
    if not data or data.isspace():
        raise _corrupt(location, "the log entry is empty")
    try:
        raw: dict[str, Any] = _ENTRY.validate_json(data)
    except ValidationError as exc:
        raise _unreadable(data, location, exc) from None
    # The entry's own keys, one per put record and the records' own (rows keep only the
    # keys their text had until the defaults are filled in below).
    puts: dict[str, Row] = raw["put"]
    in_rows = sum(map(len, puts.values()))
    check_unique_keys(data, len(raw) + len(puts) + in_rows, location)
    fill_defaults(puts)
    if raw["format"] > ENTRY_FORMAT:
        raise UnsupportedFormatError(location, raw["format"], ENTRY_FORMAT)
    if raw["manifest"] != manifest:
        raise _corrupt(location, f"the log entry belongs to {raw['manifest']!r}, not {manifest!r}")
    changes: dict[str, Row | None] = {}
    for key, row in raw["put"].items():
        if key != row["checksum"]:
            raise _corrupt(
                location, f"record stored under {key!r} has checksum {row['checksum']!r}"
            )
        row["checksum"] = key
        changes[key] = row
    for key in raw["remove"]:
        if key in changes:
            raise _corrupt(location, f"the entry both puts and removes {key!r}")
        changes[key] = None
    return LogEntry(
        manifest,
        raw["commit"],
        raw["epoch"],
        raw["clock"],
        raw["writer"],
        raw["seq"],
        raw["time"],
        changes,
    )


def _corrupt(location: str, reason: str) -> CorruptManifestError:
    return CorruptManifestError(location, reason, advice=REPAIR_ADVICE)


def _unreadable(data: bytes, location: str, exc: ValidationError) -> CorruptManifestError:
    """The error for an entry that failed validation: a newer release's entry says
    "upgrade" (never "set it aside", which would discard a newer release's commit)."""
    try:
        found = orjson.loads(data).get("format")
    except (orjson.JSONDecodeError, AttributeError):
        found = None
    if type(found) is int and found > ENTRY_FORMAT:
        return UnsupportedFormatError(location, found, ENTRY_FORMAT)
    errors = exc.errors(include_url=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return _corrupt(
            location, f"the log entry is not valid JSON (truncated?): {errors[0]['msg']}"
        )
    if errors and all(e["type"] == "extra_forbidden" for e in errors):
        fields: dict[str, str | None] = {}
        for err in errors:
            loc = [str(part) for part in err["loc"]]
            known = _ROW_FIELDS if len(loc) == 3 and loc[0] == "put" else _ENTRY_FIELDS
            close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.75)
            fields[".".join(loc)] = close[0] if close else None
        return UnknownFieldError(location, ENTRY_FORMAT, fields)
    return _corrupt(location, f"not a log entry: {format_validation_error(exc, root='entry')}")


_ENTRY_FIELDS = ["format", "manifest", "commit", "epoch", "clock", "writer", "seq", "time"]
_ENTRY_FIELDS += ["put", "remove"]
_ROW_FIELDS = list(ManifestRecord.model_fields)
