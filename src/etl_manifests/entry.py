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

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from pydantic import ValidationError
from pydantic_core import SchemaValidator, core_schema

from .document import _row_schema as row_schema
from .document import format_validation_error
from .errors import CorruptManifestError
from .record import Row

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
                core_schema.dict_schema(core_schema.str_schema(), row_schema())
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


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


class _DuplicateKey(Exception):
    pass


def _check_unique_keys(data: bytes, raw: dict[str, Any], location: str) -> None:
    # A duplicate key would otherwise silently drop a record or a removal. Entries this
    # library writes are exactly orjson's encoding of what they decode to, and encoding
    # a dict cannot repeat a key, so one fast re-encoding clears them (a batch entry can
    # hold 100k records, where the pair hook below costs more than validating them).
    # Any other bytes go through the standard parser's pair hook, which sees every key.
    if orjson.dumps(raw, option=orjson.OPT_UTC_Z) == data:
        return
    try:
        json.loads(data, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as exc:
        raise CorruptManifestError(
            location, f"the log entry has the key {exc.args[0]!r} twice"
        ) from None


def decode_entry(data: bytes, location: str, manifest: str) -> LogEntry:
    """Parse and validate a stored entry of the log of ``manifest`` (its snapshot's stem).

    :raises CorruptManifestError: the bytes are not an entry of this manifest's log
        (truncated, not JSON, wrong shape, an unknown field, duplicate keys, a record
        under the wrong checksum, or an entry of another manifest's log).
    """
    if not data or data.isspace():
        raise CorruptManifestError(location, "the log entry is empty")
    try:
        raw: dict[str, Any] = _ENTRY.validate_json(data)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            reason = f"the log entry is not valid JSON (truncated?): {exc.errors()[0]['msg']}"
        else:
            reason = f"not a log entry: {format_validation_error(exc, root='entry')}"
        raise CorruptManifestError(location, reason) from None
    _check_unique_keys(data, raw, location)
    if raw["format"] > ENTRY_FORMAT:
        raise CorruptManifestError(
            location,
            f"the log entry has format {raw['format']}, newer than this release reads "
            f"({ENTRY_FORMAT}); upgrade etl-manifests",
        )
    if raw["manifest"] != manifest:
        raise CorruptManifestError(
            location, f"the log entry belongs to {raw['manifest']!r}, not {manifest!r}"
        )
    changes: dict[str, Row | None] = {}
    for key, row in raw["put"].items():
        if key != row["checksum"]:
            raise CorruptManifestError(
                location, f"record stored under {key!r} has checksum {row['checksum']!r}"
            )
        row["checksum"] = key
        changes[key] = row
    for key in raw["remove"]:
        if key in changes:
            raise CorruptManifestError(location, f"the entry both puts and removes {key!r}")
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
