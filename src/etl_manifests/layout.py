"""Where a manifest's snapshot, log entries and seals are stored, and what a seal holds.

Keys below the root, for the manifest ``extractor_v1.0.0``::

    extractor_v1.0.0.json                                 the snapshot
    extractor_v1.0.0.log/0000000007.seal                  the seal of epoch 7
    extractor_v1.0.0.log/0000000007/<writer>-<seq>.json   one entry per commit

A seal goes through three states, each written with a conditional write on the one
before: ``sealed`` (the epoch is closed), ``listed`` (its members are fixed: the
entries a listing found after the seal existed), ``folded`` (a snapshot holds the
epoch, its retention has passed, and its entries are deleted or being deleted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import orjson

from .errors import CorruptManifestError

__all__ = ["ENTRY_NAME", "FOLDED", "LISTED", "SEALED", "LogLayout", "Seal"]

SEALED: Final = "sealed"
LISTED: Final = "listed"
FOLDED: Final = "folded"

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
    """The closing mark of an epoch and, once listed, the names of its entries."""

    epoch: int
    state: str
    members: frozenset[str]
    sealed_at: datetime
    listed_at: datetime | None
    version: str = ""

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "epoch": self.epoch,
                "state": self.state,
                "members": sorted(self.members),
                "sealed_at": self.sealed_at,
                "listed_at": self.listed_at,
            },
            option=orjson.OPT_UTC_Z,
        )

    @staticmethod
    def decode(data: bytes, version: str, location: str, epoch: int) -> Seal:
        try:
            raw = orjson.loads(data)
            seal = Seal(
                int(raw["epoch"]),
                str(raw["state"]),
                frozenset(str(name) for name in raw["members"]),
                datetime.fromisoformat(raw["sealed_at"]),
                datetime.fromisoformat(raw["listed_at"]) if raw["listed_at"] else None,
                version,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CorruptManifestError(location, f"the log's seal is unreadable ({exc})") from None
        if seal.epoch != epoch or seal.state not in (SEALED, LISTED, FOLDED):
            raise CorruptManifestError(location, "the log's seal is not this epoch's")
        return seal
