"""What every command shares: the options naming a manifest, opening it, selecting records."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import (
    InvalidNameError,
    ManifestError,
    NothingFoundError,
    UnknownProcessError,
)
from ..process import ETLProcess, parse_process
from ..registry import open_backend, split_scheme

if TYPE_CHECKING:
    # The models, the settings and the tools load pydantic and fsspec: they are imported
    # where a command uses them, so that --help and completion stay cheap.
    from ..model import Manifest
    from ..policy import CheckpointPolicy
    from ..record import ManifestRecord
    from ..storage import StorageBackend
    from ..tools import StorageOptions

__all__ = [
    "DEFAULT_WORKERS",
    "EtlVersionOption",
    "JsonOption",
    "ProcessOption",
    "ProcessesOption",
    "RootOption",
    "Target",
    "WorkersOption",
    "declared_processes",
    "select",
    "select_some",
]

RootOption = Annotated[
    str | None,
    typer.Option(
        "--root",
        "-r",
        help="Manifests root: a folder, s3://bucket/prefix, gs://bucket/prefix, ... "
        "[default: $ETL_MANIFESTS_MANIFESTS_DIR, else ./manifests]",
        show_default=False,
    ),
]
EtlVersionOption = Annotated[
    str | None,
    typer.Option(
        "--etl-version",
        "-e",
        help="ETL version, part of the manifest's name [default: $ETL_MANIFESTS_VERSION, "
        "else 1.0.0]",
        show_default=False,
    ),
]


def declared_processes() -> list[str]:
    """The processes the command line may name: the seed's three and those declared in
    ``ETL_MANIFESTS_PROCESSES`` (or ``.env``); unreadable settings declare none here
    (the command itself then reports them)."""
    from pydantic import ValidationError

    from ..config import ETLConfig

    try:
        declared = ETLConfig().processes
    except (ValidationError, ManifestError):
        declared = ()
    return [*ETLProcess, *(name for name in declared if name not in set(ETLProcess))]


def parse_process_option(value: str | None) -> str | None:
    """``--process``: a seed or declared process name (seed names in any case).

    :raises typer.BadParameter: any other name, naming the ones that exist (exit 2).
    """
    if value is None:
        return None
    known = declared_processes()
    name = value.lower() if value.lower() in set(ETLProcess) else value
    try:
        return parse_process(name, known)
    except (UnknownProcessError, InvalidNameError) as exc:
        raise typer.BadParameter(str(exc)) from None


def _parse_processes(values: list[str] | None) -> list[str] | None:
    if not values:
        return values
    return [p for v in values if (p := parse_process_option(v)) is not None]


def _complete_process(incomplete: str) -> list[str]:
    return [name for name in declared_processes() if name.startswith(incomplete)]


ProcessOption = Annotated[
    str,
    typer.Option(
        "--process",
        "-p",
        help="Which process's manifest: extractor, transformer, loader, or one declared "
        "in ETL_MANIFESTS_PROCESSES.",
        callback=parse_process_option,
        autocompletion=_complete_process,
    ),
]
#: ``--process`` given any number of times.
ProcessesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--process",
        "-p",
        help="Only this process's manifest (repeatable) [default: the seed's three and "
        "those declared in ETL_MANIFESTS_PROCESSES].",
        callback=_parse_processes,
        autocompletion=_complete_process,
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print plain JSON on stdout (no colour, no progress).")
]
#: The default of ``--workers``, the same in every command that takes it.
DEFAULT_WORKERS = 8
WorkersOption = Annotated[
    int, typer.Option("--workers", "-w", min=1, max=256, help="Files handled at once.")
]

# Keys of storage options that configure etl-manifests' own backends, not fsspec.
_OWN_OPTION = re.compile(r"^(etl_manifests_|lock_timeout$)")
_SCHEME_ALIASES = {
    "s3": ("s3", "s3a"),
    "s3a": ("s3", "s3a"),
    "gs": ("gs", "gcs"),
    "gcs": ("gs", "gcs"),
}


@dataclass(frozen=True)
class Target:
    """Where the manifests are and how to reach them, from options and ``ETL_MANIFESTS_*``."""

    root: str
    etl_version: str
    storage_options: dict[str, Any]
    checkpoint: CheckpointPolicy | None = None  # None: CheckpointPolicy()

    @classmethod
    def resolve(cls, root: str | None, etl_version: str | None) -> Target:
        """Options win; ``ETL_MANIFESTS_*`` (and a ``.env`` file) fill the rest.

        An option given empty (``-e ''``) is used as given, and refused where it is
        opened, as the API refuses it; only an option not given falls back.

        :raises ConfigurationError: a setting is invalid (a usage error, exit code 2).
        """
        from ..config import ETLConfig

        config = ETLConfig()
        if root is not None:
            config = config.model_copy(update={"manifests_dir": root})
        return cls(
            root=config.get_manifests_dir(),
            etl_version=config.version if etl_version is None else etl_version,
            storage_options=dict(config.storage_options),
            checkpoint=config.checkpoint,
        )

    def backend(self) -> StorageBackend:
        """The backend holding the manifests."""
        return open_backend(self.root, self.storage_options)

    def manifest(self, process: ETLProcess | str, *, load: bool = True) -> Manifest:
        """The manifest of ``process`` at this target's ETL version, committing with the
        checkpoint policy of ``ETL_MANIFESTS_CHECKPOINT``."""
        from ..model import Manifest

        return Manifest(
            process, self.etl_version, self.backend(), checkpoint=self.checkpoint, load=load
        )

    def existing_manifest(self, process: ETLProcess | str) -> Manifest:
        """The manifest of ``process``, which must exist (a snapshot or a commit).

        :raises NothingFoundError: there is none under the root at this ETL version (exit
            code 3), with the way to list those there are.
        """
        manifest = self.manifest(process)
        if manifest.version is None and manifest.metadata.revision == 0:
            manifest.close()
            raise NothingFoundError(
                f"no manifest of process {manifest.process!s} at ETL version "
                f"{self.etl_version!r} in {manifest.url}; check --root, --etl-version and "
                f"--process (etl-manifests ls --root {self.root!r} lists the manifests there)"
            )
        return manifest

    def file_options(self) -> StorageOptions:
        """fsspec options for files on the manifests' own store (same credentials and
        endpoint), without the options that only etl-manifests' backends understand."""
        scheme = split_scheme(self.root)[0]
        options = {k: v for k, v in self.storage_options.items() if not _OWN_OPTION.match(k)}
        if scheme in ("file", "memory") or not options:
            return {}
        return dict.fromkeys(_SCHEME_ALIASES.get(scheme, (scheme,)), options)


_HEX = re.compile(r"^[0-9a-fA-F]{4,64}$")


def select(records: Iterable[ManifestRecord], selectors: list[str]) -> list[ManifestRecord]:
    """Records matching any selector: a checksum or its prefix (4+ hex digits), a file
    name, a file path as recorded or its trailing part (``dl/day_1.csv``), or a glob on
    either (``*.csv``, ``dl/*``); all records when there are none. Sorted by file name,
    then checksum."""
    chosen = [
        record
        for record in records
        if not selectors or any(_matches(record, selector) for selector in selectors)
    ]
    return sorted(chosen, key=lambda r: (r.filename, r.checksum))


def _matches(record: ManifestRecord, selector: str) -> bool:
    if _HEX.match(selector) and record.checksum.startswith(selector.lower()):
        return True
    if record.filename == selector or fnmatch.fnmatchcase(record.filename, selector):
        return True
    # Paths are recorded absolute (or as URLs); a path as the user types it, relative to
    # where they are, matches the recorded one's trailing components.
    path = selector.removeprefix("./")
    return (
        record.filepath == selector
        or record.filepath.endswith(f"/{path}")
        or fnmatch.fnmatchcase(record.filepath, selector)
        or fnmatch.fnmatchcase(record.filepath, f"*/{path}")
    )


def select_some(manifest: Manifest, selectors: list[str]) -> list[ManifestRecord]:
    """:func:`select` on ``manifest``, where selectors that match nothing are a mistake.

    :raises NothingFoundError: selectors were given and no record matched them (exit
        code 3); no selectors on an empty manifest select nothing without an error.
    """
    records = select(manifest, selectors)
    if selectors and not records:
        raise NothingFoundError(
            f"no record of {manifest.url} ({len(manifest)} records) matches "
            f"{', '.join(repr(s) for s in selectors)}; give a checksum (or 4+ leading hex "
            "digits), a file name, a file path or a glob ('etl-manifests show' lists them)"
        )
    return records
