"""``ManifestMetadata``: the ``metadata`` block of a manifest document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from .process import validate_process_name

__all__ = ["FORMAT_VERSION", "ManifestMetadata"]

#: The document format this release writes, and the newest it can read.
FORMAT_VERSION: Final = 1


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ManifestMetadata(BaseModel):
    """Describes a manifest as a whole. Immutable; each save writes a new one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: Annotated[int, Field(ge=1)] = FORMAT_VERSION
    """Layout of the document. A release reads every version up to its own
    :data:`FORMAT_VERSION` (migrating older ones) and refuses newer ones."""
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
    revision: Annotated[int, Field(ge=0)] = 0
    """How many times the manifest has been committed, by any writer. Every commit
    stores a higher revision than the one it replaced."""
