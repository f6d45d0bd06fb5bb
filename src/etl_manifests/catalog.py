"""Which manifests a root holds: :func:`list_manifests`, from one listing of the root.

A manifest is there when its snapshot ``{process}_v{version}.json`` or anything of its
commit log ``{process}_v{version}.log/...`` is stored (a manifest may have log entries
and no snapshot yet). Staged leftovers of killed writes, the store check's probe keys
and files that follow no manifest's naming rule are ignored, so a root may share its
folder or prefix with other data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .document import decode
from .errors import ManifestError
from .model import manifest_key
from .process import validate_process_name
from .storage import StorageBackend, is_staging_key

__all__ = ["ManifestRef", "list_manifests", "snapshot_sizes"]

# The stem ``{process}_v{version}`` of a snapshot or of a key inside its log.
_STEM = re.compile(r"^(?P<stem>[a-z][a-z0-9_]*_v[A-Za-z0-9][A-Za-z0-9._+-]*?)(?:\.json|\.log/.+)$")


@dataclass(frozen=True, order=True, slots=True)
class ManifestRef:
    """One manifest's name: its process and ETL version (sorted by both)."""

    process: str
    etl_version: str

    @property
    def key(self) -> str:
        """The snapshot's key below the root: ``{process}_v{etl_version}.json``."""
        return manifest_key(self.process, self.etl_version)


def list_manifests(backend: StorageBackend) -> list[ManifestRef]:
    """The manifests stored on ``backend``, sorted by process, then ETL version.

    Costs one listing of the root, plus one snapshot read for each rare name that
    splits into a valid process and version in more than one way
    (``load_v2_v1.json``: ``load`` v``2_v1``, or ``load_v2`` v``1``); the snapshot's
    own metadata decides.

    :raises NotFoundError: the bucket (or container) does not exist.
    """
    return sorted(snapshot_sizes(backend))


def snapshot_sizes(backend: StorageBackend) -> dict[ManifestRef, int | None]:
    """Each manifest :func:`list_manifests` finds, with its snapshot's size in bytes as
    the listing gave it (``None``: no snapshot stored, or a store that does not say)."""
    stems: dict[str, int | None] = {}
    snapshots: set[str] = set()
    for info in backend.list(""):
        key = info.key
        match = _STEM.match(key)
        if match is None or is_staging_key(key):
            continue
        stem = match["stem"]
        if key == f"{stem}.json":
            stems[stem] = info.size
            snapshots.add(stem)
        else:
            stems.setdefault(stem, None)
    found: dict[ManifestRef, int | None] = {}
    for stem, size in stems.items():
        ref = _parse(backend, stem, has_snapshot=stem in snapshots)
        if ref is not None:
            found[ref] = size
    return found


def _parse(backend: StorageBackend, stem: str, has_snapshot: bool) -> ManifestRef | None:
    candidates = []
    for match in re.finditer("_v", stem):
        process, version = stem[: match.start()], stem[match.end() :]
        try:
            manifest_key(validate_process_name(process), version)
        except ManifestError:
            continue
        candidates.append(ManifestRef(str(process), version))
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if has_snapshot:
        key = f"{stem}.json"
        try:
            meta = decode(backend.read(key).data, backend.url(key)).metadata
        except ManifestError:
            pass  # unreadable: opening it says why, under any of its names
        else:
            owner = ManifestRef(str(meta.process), meta.etl_version)
            if owner in candidates:
                return owner
    # No snapshot to ask: the longest process name (versions rarely hold "_v").
    return candidates[-1]
