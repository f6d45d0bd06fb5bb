"""The ETL processes that own a manifest each, and which names a process may have.

The seed's three processes are the members of :class:`ETLProcess`. A pipeline declares
its own stages by name (``ManifestManager(..., processes=["noaa_download"])``,
``ETL_MANIFESTS_PROCESSES``); every name, built-in or declared, follows one rule, checked
by :func:`validate_process_name`: lower-case ASCII letters, digits and ``_``, starting
with a letter, at most :data:`MAX_PROCESS_NAME_LENGTH` characters, and not a Python
keyword. So a name is always a safe part of a file or object name (no ``/``, ``..`` or
NUL), can never name two files on a case-insensitive disk (``Loader_v1.json`` and
``loader_v1.json`` are one file on macOS), and always works as ``manager.<name>``.
"""

from __future__ import annotations

import difflib
import enum
import keyword
import re
from collections.abc import Collection
from typing import Final

from .errors import InvalidNameError, UnknownProcessError

__all__ = [
    "MAX_PROCESS_NAME_LENGTH",
    "ETLProcess",
    "parse_process",
    "validate_process_name",
]

_PROCESS_NAME = re.compile(r"[a-z][a-z0-9_]*")

#: File names are limited to 255 bytes: the process name shares them with ``_v``, an ETL
#: version of up to 128 characters, ``.json``, a save's staging suffix (40) and the lock
#: file's dot and ``.lock``.
MAX_PROCESS_NAME_LENGTH: Final = 64


class ETLProcess(enum.StrEnum):
    """The seed's processes, always available as ``manager.extractor`` and so on.

    Members are strings (``ETLProcess.EXTRACTOR == "extractor"``), so they can be used
    wherever a process name is expected.
    """

    EXTRACTOR = "extractor"
    TRANSFORMER = "transformer"
    LOADER = "loader"


def validate_process_name(name: object) -> str:
    """Return ``name`` if it may name a process; a seed name comes back as its
    :class:`ETLProcess` member.

    :raises InvalidNameError: ``name`` is not a string of lower-case letters, digits and
        ``_`` starting with a letter, is longer than :data:`MAX_PROCESS_NAME_LENGTH`, or is
        a Python keyword. Nothing is ever created under a refused name.
    """
    if isinstance(name, ETLProcess):
        return name
    if not isinstance(name, str):
        raise InvalidNameError(
            f"a process name must be a string, not {type(name).__name__}; "
            "use a name such as 'noaa_download'"
        )
    try:
        return ETLProcess(name)
    except ValueError:
        pass
    if len(name) > MAX_PROCESS_NAME_LENGTH:
        raise InvalidNameError(
            f"process name {name[:20]!r}... is {len(name)} characters long; "
            f"use at most {MAX_PROCESS_NAME_LENGTH}"
        )
    if not _PROCESS_NAME.fullmatch(name) or keyword.iskeyword(name):
        hint = f" (did you mean {name.lower()!r}?)" if _PROCESS_NAME.fullmatch(name.lower()) else ""
        raise InvalidNameError(
            f"{name!r} cannot name a process{hint}: use lower-case letters, digits and '_', "
            "starting with a letter and not a Python keyword (for example 'noaa_download'), "
            "so that it is a safe file name and works as manager.<name>"
        )
    return name


def parse_process(name: object, declared: Collection[str] | None = None) -> str:
    """Return the process called ``name`` (a seed name as its :class:`ETLProcess` member).

    :param declared: the names a caller may use (a manager's declared processes). When
        given, any other name is refused, so a typo never reaches storage.
    :raises UnknownProcessError: ``name`` is not in ``declared``; the message lists them
        and suggests the closest one.
    :raises InvalidNameError: without ``declared``, ``name`` breaks the naming rule of
        :func:`validate_process_name`.
    """
    if declared is None:
        return validate_process_name(name)
    if isinstance(name, str) and name in declared:
        return validate_process_name(name)
    text = str(name)
    close = difflib.get_close_matches(text.lower(), [str(d) for d in declared], n=1)
    raise UnknownProcessError(text, declared, suggestion=close[0] if close else None)
