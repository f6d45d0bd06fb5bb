"""``CheckpointPolicy``: when the commit log is folded into a new snapshot, and for how
long folded log entries are kept."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CheckpointPolicy"]


class CheckpointPolicy(BaseModel):
    """Knobs of the commit log; the defaults keep loads fast and commits small.

    A checkpoint is due once the log holds ``max(every, size_ratio * records)`` commits
    not yet in the snapshot, counting every writer's: a writer knows its own commits and
    the ones it has read, and every tenth of that many of its own commits it lists the
    open log epoch to count the rest (:meth:`probe_every`). The ratio makes big
    manifests checkpoint less often, so the cost of rewriting the snapshot stays a small
    share of each commit; the log stays a small share of a load. ``every=None`` turns
    automatic checkpoints off (:meth:`~etl_manifests.Manifest.compact` still works).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    every: Annotated[int, Field(ge=1)] | None = 1000
    """Checkpoint after this many commits at the least (``None``: only on demand)."""
    size_ratio: Annotated[float, Field(ge=0, le=1)] = 0.01
    """... or after this fraction of the manifest's record count, if that is more."""
    inline: bool = False
    """Run checkpoints in the committing call instead of a background thread. With
    ``every=1, size_ratio=0`` this keeps the snapshot complete at all times: every
    commit is in the JSON file when ``add_record`` returns."""
    retention: timedelta = timedelta(hours=1)
    """Folded log entries are deleted only this long after their epoch was sealed, so
    readers and slow writers never race the deletion."""

    @classmethod
    def after_every_commit(cls) -> CheckpointPolicy:
        """Fold every commit into the snapshot before it returns (for consumers that
        read only the JSON file); each commit then rewrites the snapshot."""
        return cls(every=1, size_ratio=0.0, inline=True)

    def threshold(self, records: int) -> int | None:
        """Unfolded commits at which a checkpoint is due (``None``: never automatic)."""
        if self.every is None:
            return None
        return max(self.every, int(records * self.size_ratio))

    def due(self, log_commits: int, records: int) -> bool:
        """Whether a checkpoint is due with ``log_commits`` unfolded commits."""
        threshold = self.threshold(records)
        return threshold is not None and log_commits > 0 and log_commits >= threshold

    def probe_every(self, records: int) -> int | None:
        """Own commits between two looks at the log's length (``None``: never).

        A writer sees its own commits, and others' only when it reads them. Many
        writers that each commit fewer than :meth:`threshold` times would never make a
        checkpoint due by that count alone, so every tenth of the threshold a writer
        lists the open log epoch (one listing request) to count everyone's commits.
        """
        threshold = self.threshold(records)
        return None if threshold is None else max(1, threshold // 10)
