"""Warnings about settings that have no effect, each said once per process."""

from __future__ import annotations

import difflib
import threading
import warnings
from collections.abc import Iterable

from .errors import SettingWarning

__all__ = ["did_you_mean", "forget_warnings", "warn_once"]

_said: set[str] = set()
_lock = threading.Lock()


def warn_once(message: str, *, stacklevel: int = 3) -> None:
    """Issue ``message`` as a :class:`SettingWarning`, unless this process already did:
    settings are read again by every ``ETLConfig``, and one mistake deserves one line."""
    with _lock:
        if message in _said:
            return
        _said.add(message)
    warnings.warn(message, SettingWarning, stacklevel=stacklevel)


def forget_warnings() -> None:
    """Let every warning be issued again (for tests)."""
    with _lock:
        _said.clear()


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" (did you mean 'X'?)"`` for the known name closest to ``name``, else ``""``."""
    by_case = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_case), n=1, cutoff=0.6)
    return f" (did you mean {by_case[close[0]]!r}?)" if close else ""
