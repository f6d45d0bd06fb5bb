"""``ManifestRecord``: the contract for one downloaded file's entry in a manifest.

Every constraint below is a core-schema constraint evaluated inside pydantic-core (Rust),
never a Python validator, so validating 100,000 records from JSON stays close to the speed
of parsing the JSON. A manifest keeps each record's validated field dict (a "row") and
builds the model object only when asked for it; see :meth:`ManifestRecord.from_row`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    Strict,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic_core import core_schema

__all__ = ["Checksum", "Location", "ManifestRecord", "Row"]

#: A record's validated fields, exactly as ``ManifestRecord.__dict__`` holds them.
Row = dict[str, Any]

#: A SHA-256 hex digest; upper-case input is normalised to lower case.
Checksum = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{64}$", to_lower=True)]

# An absolute POSIX path, an absolute Windows path (drive or UNC), or a URL with a scheme;
# never a NUL, which no filesystem or URL allows.
_LOCATION_PATTERN = r"^(?:/|[A-Za-z]:[\\/]|\\\\|[A-Za-z][A-Za-z0-9+.-]+://)[^\x00]*$"
# Any text without a NUL: file names, like paths, never hold one.
_NO_NUL_PATTERN = r"^[^\x00]*$"

#: Largest ``content_length_bytes``: what JSON readers commonly hold as a signed 64-bit int.
MAX_CONTENT_LENGTH = 2**63 - 1

# Strict: True is not 1, nor "12" twelve. Stored documents are JSON, where a size is an
# integer already, so strictness refuses nothing an earlier release wrote.
_Length = Annotated[int, Strict(), Field(ge=0, le=MAX_CONTENT_LENGTH)]

# Text fields a caller fills freely; each must be encodable as UTF-8 to be stored.
_TEXT_FIELDS = (
    "filename",
    "filepath",
    "etl_version",
    "etag",
    "content_type",
    "last_modified_server",
    "source",
)

#: Optional fields a row holds only when set: a record without them is stored (and
#: encoded) exactly as before they existed, and reads them as ``None``.
SPARSE_FIELDS = ("source",)


class _LocationSchema:
    """Core schema for :data:`Location`: a string, or an ``os.PathLike`` turned into one.

    JSON input takes the pure-Rust string path; only Python input that is a path object
    pays for ``os.fspath``.
    """

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        text = core_schema.str_schema(pattern=_LOCATION_PATTERN, min_length=1)
        from_path = core_schema.chain_schema(
            [
                core_schema.is_instance_schema(os.PathLike),
                core_schema.no_info_plain_validator_function(os.fspath),
                text,
            ]
        )
        return core_schema.json_or_python_schema(
            json_schema=text,
            python_schema=core_schema.union_schema([text, from_path]),
        )


#: Where a file lives: an absolute local path or an object-store URL, kept as a string.
#:
#: Not ``pathlib.Path``: ``Path("s3://bucket/a/b.gz")`` collapses the double slash into
#: ``s3:/bucket/a/b.gz``, so object-store URLs would not survive a round trip. Callers may
#: still pass a ``Path`` (any ``os.PathLike``); it is stored as ``os.fspath(path)``.
Location = Annotated[str, _LocationSchema]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ManifestRecord(BaseModel):
    """One downloaded file. Immutable: record a change by adding a new record.

    Unknown or misspelled fields are rejected, never dropped.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    checksum: Checksum
    """SHA-256 of the file, lower-case hex. The record's key in ``Manifest.records``."""
    filename: Annotated[str, StringConstraints(min_length=1, pattern=_NO_NUL_PATTERN)]
    """The name of the file; never holds a NUL, as :attr:`filepath` cannot."""
    filepath: Location
    """Absolute local path or object-store URL of the stored file."""
    etl_version: Annotated[str, StringConstraints(min_length=1)]
    """Version of the ETL that produced the record; ``add_record`` defaults it to the
    manifest's ETL version."""
    is_verified: StrictBool = False
    """Whether a post-download verification check was run: ``True`` or ``False`` only
    (not ``1`` or ``"yes"``)."""
    etag: str | None = None
    """The ``ETag`` response header of the download, if any."""
    content_type: str | None = None
    """The ``Content-Type`` response header of the download, if any."""
    last_modified_server: str | None = None
    """The ``Last-Modified`` response header of the download, verbatim."""
    content_length_bytes: _Length | None = None
    """The ``Content-Length`` response header of the download, as an ``int`` (not a bool,
    a float or a string of digits: parse the header first)."""
    source: str | None = None
    """Where the file was downloaded from: the URL without credentials (see
    ``etl_manifests.tools.files.source_of``); ``None`` for records of files recorded where
    they lie, and for records written before this field existed. Stored only when set."""
    updated_at: AwareDatetime = Field(default_factory=_utcnow)
    """When the record was last updated; timezone-aware, stored in UTC (other offsets are
    converted, keeping the instant), defaults to now. When two writers store the same
    checksum, the record with the later ``updated_at`` wins."""

    @model_validator(mode="after")
    def _storable(self) -> ManifestRecord:
        # Runs for records built from Python values only: a stored document's rows are
        # validated with the field schemas alone (see document.py), where JSON input can
        # carry neither of these problems in a form we would write back.
        fields = self.__dict__
        for name in SPARSE_FIELDS:
            if fields.get(name, 0) is None:
                del fields[name]  # absent, as in rows decoded from documents without it
        for name in _TEXT_FIELDS:
            value = fields.get(name)
            if value is not None and not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(
                        f"{name} holds characters that cannot be stored as UTF-8 (lone "
                        "surrogates, often from decoding bytes with errors='surrogateescape')"
                    ) from None
        when: datetime = fields["updated_at"]
        if when.utcoffset():
            # JSON keeps offsets to the minute only; UTC keeps every instant exact.
            try:
                fields["updated_at"] = when.astimezone(UTC)
            except OverflowError:
                # 9999-12-31T23:30-01:00 is in year 10000 in UTC, which datetime cannot hold.
                raise ValueError(
                    "updated_at is outside the range a datetime can hold once converted to "
                    "UTC (years 1 to 9999)"
                ) from None
        return self

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # A sparse field that is not set is not in the row: it reads as None.
            if name in SPARSE_FIELDS:
                return None
            return super().__getattr__(name)

    @classmethod
    def from_row(cls, row: Row) -> ManifestRecord:
        """Wrap an already validated row without validating it again.

        ``row`` must come from this model's own validation: a record's ``__dict__`` or a
        row decoded by :mod:`etl_manifests.document`. The record shares the dict, which is
        safe because records are frozen and rows are never mutated.
        """
        record = cls.__new__(cls)
        object.__setattr__(record, "__dict__", row)
        object.__setattr__(record, "__pydantic_fields_set__", set(row))
        object.__setattr__(record, "__pydantic_extra__", None)
        object.__setattr__(record, "__pydantic_private__", None)
        return record
