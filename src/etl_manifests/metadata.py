"""``ManifestMetadata``: the ``metadata`` block of a manifest document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from .process import validate_process_name

__all__ = ["FORMAT_VERSION", "MAX_REVISION", "ManifestMetadata"]

#: The document format this release writes, and the newest it can read.
FORMAT_VERSION: Final = 2

#: Largest ``revision`` (and log counter) a stored manifest may hold: what JSON readers
#: commonly hold as a signed 64-bit integer (orjson cannot write integers above 2**64 - 1).
MAX_REVISION: Final = 2**63 - 1


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ManifestMetadata(BaseModel):
    """Describes a manifest as a whole. Immutable; each save writes a new one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: Annotated[int, Field(ge=1)] = FORMAT_VERSION
    """Layout of the document. A release reads every version up to its own
    :data:`FORMAT_VERSION` (migrating older ones) and refuses newer ones. Version 1 is a
    whole-document manifest; version 2 is a snapshot with a commit log beside it, which
    releases that read only version 1 refuse instead of overwriting."""
    process: Annotated[str, AfterValidator(validate_process_name)]
    """The ETL process that owns the manifest: an :class:`~etl_manifests.ETLProcess`
    member for the seed's names (documents written by 0.1.0 hold only those), else a
    name declared by the pipeline, following the rule of
    :func:`~etl_manifests.validate_process_name`."""
    etl_version: Annotated[str, StringConstraints(min_length=1)]
    """The ETL version the manifest belongs to (part of its file name)."""
    created_at: AwareDatetime = Field(default_factory=_utcnow)
    """When the manifest was first saved. Merges keep the oldest."""
    updated_at: AwareDatetime = Field(default_factory=_utcnow)
    """When the manifest was last saved. Merges keep the newest."""
    revision: Annotated[int, Field(ge=0, le=MAX_REVISION)] = 0
    """How many commits the manifest holds, by any writer: those folded into the
    snapshot plus, in memory, those read from the log after it. At most
    :data:`MAX_REVISION`, like the log counters below."""
    log_epoch: Annotated[int, Field(ge=0, le=MAX_REVISION)] = 0
    """The snapshot holds every commit of the log's epochs up to this one (format 2)."""
    log_clock: Annotated[int, Field(ge=0, le=MAX_REVISION)] = 0
    """The highest logical clock among the commits the snapshot holds (format 2)."""
    log_start: Annotated[int, Field(ge=1, le=MAX_REVISION)] = 1
    """The oldest epoch whose log entries may still be stored (format 2)."""
