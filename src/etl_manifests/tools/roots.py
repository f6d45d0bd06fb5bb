"""Two roots at once, for :func:`copy_manifests` and :func:`compare_manifests`: opening
them, refusing one root twice, and choosing which manifests to work on."""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from .._readonly import ReadOnlyBackend
from ..catalog import ManifestRef
from ..errors import BackendConfigurationError, NotFoundError, UnknownProcessError
from ..model import manifest_key
from ..policy import CheckpointPolicy
from ..process import validate_process_name
from ..registry import normalise_root, open_backend, split_scheme
from ..registry import redact_root as _redact
from ..retry import RetryPolicy
from ..storage import StorageBackend
from ..store import ManifestStore

__all__ = ["Root", "Side", "open_roots", "select_manifests"]

#: A root as a path or URL (with its storage options given beside it), or a
#: :class:`~etl_manifests.ManifestStore`, which stands for its root and options (every
#: ETL version under the root, not only the store's own).
Root: TypeAlias = str | os.PathLike[str] | ManifestStore


@dataclass(frozen=True)
class Side:
    """One opened root: its backend and the settings manifests on it are opened with."""

    root: str
    options: dict[str, Any]
    backend: StorageBackend
    retry: RetryPolicy | None = None
    checkpoint: CheckpointPolicy | None = None
    owned: bool = True


def _open(root: Root, options: Mapping[str, Any] | None, what: str) -> Side:
    if isinstance(root, ManifestStore):
        if options is not None:
            raise BackendConfigurationError(
                f"the {what} is a ManifestStore, which has its own storage options; pass "
                f"{what}_options only with a path or URL"
            )
        return Side(
            root.root_dir, root.storage_options, root.backend, root.retry, root.checkpoint, False
        )
    if options is not None and not isinstance(options, Mapping):
        raise BackendConfigurationError(
            f"{what}_options must be a mapping of option names to values, not "
            f"{type(options).__name__}"
        )
    normalised = normalise_root(root)
    opts = dict(options or {})
    return Side(normalised, opts, open_backend(normalised, opts))


@contextmanager
def open_roots(
    source: Root,
    destination: Root,
    source_options: Mapping[str, Any] | None,
    destination_options: Mapping[str, Any] | None,
    *,
    write: bool,
) -> Iterator[tuple[Side, Side]]:
    """Open both roots: the source always read-only, the destination read-only unless
    ``write``. Backends opened here are closed on exit; a store's are left open.

    :raises BackendConfigurationError: both name the same place.
    """
    src = _open(source, source_options, "source")
    try:
        dst = _open(destination, destination_options, "destination")
    except BaseException:
        _close(src)
        raise
    try:
        if _same_place(src, dst):
            raise BackendConfigurationError(
                f"the source and the destination are the same root ({_redact(src.root)}); "
                "give two different roots"
            )
        read_src = replace(src, backend=ReadOnlyBackend(src.backend, "source"))
        if not write:
            dst = replace(dst, backend=ReadOnlyBackend(dst.backend, "destination"))
        yield read_src, dst
    finally:
        _close(src)
        _close(dst)


def _close(side: Side) -> None:
    if side.owned:
        backend = side.backend
        (backend.inner if isinstance(backend, ReadOnlyBackend) else backend).close()


_ALIASES = {"s3a": "s3", "gcs": "gs", "local": "file"}


def _same_place(a: Side, b: Side) -> bool:
    scheme_a, scheme_b = (
        _ALIASES.get(s, s) for s in (split_scheme(a.root)[0], split_scheme(b.root)[0])
    )
    if scheme_a != scheme_b:
        return False
    if scheme_a == "file":
        return _local_path(a.root) == _local_path(b.root)
    rest_a, rest_b = (r.split("://", 1)[1] for r in (a.root, b.root))
    return rest_a == rest_b and _endpoint(a.options) == _endpoint(b.options)


def _local_path(root: str) -> str:
    path = root.split("://", 1)[1] if "://" in root else root
    return os.path.normcase(os.path.realpath(path))


def _endpoint(options: Mapping[str, Any]) -> object:
    # Two stores may hold buckets of one name (a local emulator and the cloud).
    client = options.get("client_kwargs")
    nested = client.get("endpoint_url") if isinstance(client, Mapping) else None
    return options.get("endpoint_url") or nested


def select_manifests(
    found: Iterable[ManifestRef],
    processes: Iterable[str] | None,
    versions: Iterable[str] | None,
    where: str,
) -> list[ManifestRef]:
    """The manifests of ``found`` (those stored ``where``, a root for messages) of the
    given processes and ETL versions (``None``: all), sorted.

    :raises InvalidNameError: a process name or version could never name a manifest.
    :raises UnknownProcessError: no manifest of a named process is stored there.
    :raises NotFoundError: no manifest of a named version (or of any named process at
        any named version) is stored there.
    """
    wanted_processes = _names(processes, validate_process_name)
    wanted_versions = _names(versions, _check_version)
    found = sorted(set(found))
    root = where
    held_processes = sorted({ref.process for ref in found})
    for name in wanted_processes or ():
        if name not in held_processes:
            raise _no_such_process(name, held_processes, root)
    held_versions = sorted({ref.etl_version for ref in found})
    for version in wanted_versions or ():
        if version not in held_versions:
            raise NotFoundError(
                f"no manifest of ETL version {version!r} is stored under {root}; it holds "
                f"{', '.join(held_versions) or 'none'} (list them with 'etl-manifests ls')"
            )
    chosen = [
        ref
        for ref in found
        if (wanted_processes is None or ref.process in wanted_processes)
        and (wanted_versions is None or ref.etl_version in wanted_versions)
    ]
    if not chosen and (wanted_processes or wanted_versions):
        raise NotFoundError(
            f"no manifest under {root} is of the processes and ETL versions asked for; "
            "list them with 'etl-manifests ls'"
        )
    return chosen


def _names(values: Iterable[str] | None, check: Any) -> set[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]  # a lone string would otherwise be taken letter by letter
    return {str(check(value)) for value in values}


def _check_version(version: str) -> str:
    manifest_key("extractor", version)  # raises InvalidNameError for an unusable version
    return version


def _no_such_process(name: str, held: Collection[str], root: str) -> UnknownProcessError:
    close = difflib.get_close_matches(name, list(held), n=1)
    error = UnknownProcessError(name, held, suggestion=close[0] if close else None)
    hint = f"did you mean {close[0]!r}? " if close else ""
    error.args = (
        f"no manifest of process {name!r} is stored under {root}; {hint}it holds "
        f"{', '.join(held) or 'none'} (list them with 'etl-manifests ls')",
    )
    return error
