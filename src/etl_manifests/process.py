"""The ETL processes that own a manifest each."""

from __future__ import annotations

import enum

from .errors import UnknownProcessError

__all__ = ["ETLProcess", "parse_process"]


class ETLProcess(enum.StrEnum):
    """Valid process names; ``manager.<name>`` returns that process's manifest."""

    EXTRACTOR = "extractor"
    TRANSFORMER = "transformer"
    LOADER = "loader"


def parse_process(name: ETLProcess | str) -> ETLProcess:
    """Return the :class:`ETLProcess` called ``name``.

    :raises UnknownProcessError: naming the valid processes.
    """
    try:
        return ETLProcess(name)
    except ValueError:
        raise UnknownProcessError(str(name), [p.value for p in ETLProcess]) from None
