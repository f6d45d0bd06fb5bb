"""Where a manifest's snapshot, log entries and seals are stored, and what a seal holds.

Keys below the root, for the manifest ``extractor_v1.0.0``::

    extractor_v1.0.0.json                                 the snapshot
    extractor_v1.0.0.log/0000000007.seal                  the seal of epoch 7
    extractor_v1.0.0.log/0000000007/<writer>-<seq>.json   one entry per commit

A seal goes through three states, each written with a conditional write on the one
before: ``sealed`` (the epoch is closed), ``listed`` (its members are fixed: the
entries a listing found after the seal existed), ``folded`` (a snapshot holds the
epoch, its retention has passed, and its entries are deleted or being deleted). A
folded seal keeps its member list, so that a writer paused since it created its entry
can still learn, after the entry is gone, that it was folded (and must not commit the
same changes again). Seals of format 2 carry a digest of their member list, so a list
edited by hand is refused instead of silently hiding or adding commits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import orjson

from .errors import REPAIR_ADVICE, CorruptManifestError, UnsupportedFormatError

__all__ = ["ENTRY_NAME", "FOLDED", "LISTED", "SEALED", "SEAL_FORMAT", "LogLayout", "Seal"]

SEALED: Final = "sealed"
LISTED: Final = "listed"
FOLDED: Final = "folded"

#: Layout of seals this release writes; format 1 (no ``format`` key) is still read.
SEAL_FORMAT: Final = 2

ENTRY_NAME = re.compile(r"([0-9a-f]{16})-([0-9]{10,19})\.json")


@dataclass(frozen=True, slots=True)
class LogLayout:
    """Where the snapshot, seals and entries of one manifest live (keys below the root)."""

    stem: str

    @property
    def snapshot(self) -> str:
        return f"{self.stem}.json"

    @property
    def log_prefix(self) -> str:
        return f"{self.stem}.log/"

    def epoch_prefix(self, epoch: int) -> str:
        return f"{self.stem}.log/{epoch:010d}/"

    def seal(self, epoch: int) -> str:
        return f"{self.stem}.log/{epoch:010d}.seal"

    def entry(self, epoch: int, writer: str, seq: int) -> str:
        return f"{self.epoch_prefix(epoch)}{writer}-{seq:010d}.json"


@dataclass(frozen=True, slots=True)
class Seal:
    """The closing mark of an epoch and, once listed, the names of its entries.

    ``members_known`` is false only for a folded seal written by a release before
    format 2, which dropped the member list when it folded the epoch.
    """

    epoch: int
    state: str
    members: frozenset[str]
    sealed_at: datetime
    listed_at: datetime | None
    version: str = ""
    members_known: bool = True

    def is_member(self, name: str) -> bool | None:
        """Whether the entry ``name`` counts (``None``: this seal cannot tell)."""
        if self.state == SEALED or not self.members_known:
            return None
        return name in self.members

    def encode(self) -> bytes:
        members = sorted(self.members)
        return orjson.dumps(
            {
                "format": SEAL_FORMAT,
                "epoch": self.epoch,
                "state": self.state,
                "members": members,
                "digest": _digest(members),
                "sealed_at": self.sealed_at,
                "listed_at": self.listed_at,
            },
            option=orjson.OPT_UTC_Z,
        )

    @staticmethod
    def decode(data: bytes, version: str, location: str, epoch: int) -> Seal:
        """Parse a stored seal of ``epoch``.

        :raises UnsupportedFormatError: a newer release wrote it.
        :raises CorruptManifestError: it is unreadable, another epoch's, or its member
            list does not match its digest.
        """
        try:
            raw = orjson.loads(data)
            fmt = int(raw.get("format", 1))
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            raise CorruptManifestError(
                location, f"the log's seal is unreadable ({exc})", advice=REPAIR_ADVICE
            ) from None
        if fmt > SEAL_FORMAT:
            raise UnsupportedFormatError(location, fmt, SEAL_FORMAT)
        try:
            members = [str(name) for name in raw["members"]]
            seal = Seal(
                int(raw["epoch"]),
                str(raw["state"]),
                frozenset(members),
                datetime.fromisoformat(raw["sealed_at"]),
                datetime.fromisoformat(raw["listed_at"]) if raw["listed_at"] else None,
                version,
                members_known=fmt >= SEAL_FORMAT or raw["state"] != FOLDED,
            )
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CorruptManifestError(
                location, f"the log's seal is unreadable ({exc})", advice=REPAIR_ADVICE
            ) from None
        if seal.epoch != epoch or seal.state not in (SEALED, LISTED, FOLDED):
            raise CorruptManifestError(
                location, "the log's seal is not this epoch's", advice=REPAIR_ADVICE
            )
        if fmt >= SEAL_FORMAT and raw.get("digest") != _digest(sorted(members)):
            raise CorruptManifestError(
                location,
                "the log's seal lists members that do not match its digest (edited by hand?)",
                advice=REPAIR_ADVICE,
            )
        return seal


def _digest(members: list[str]) -> str:
    return hashlib.sha256("\n".join(members).encode()).hexdigest()
