"""Files anywhere fsspec can reach: what the store says about one, and reading it as a stream.

Local paths, ``file://``, ``s3://``, ``gs://``, ``http(s)://`` and any installed fsspec
protocol. Store-specific metadata is mapped onto the record's HTTP-header fields:

============================  ==========================================================
record field                  taken from
============================  ==========================================================
``etag``                      ``ETag`` (HTTP, S3), ``etag`` (GCS)
``last_modified_server``      ``Last-Modified`` verbatim (HTTP); else the store's
                              modification time as an HTTP date (S3, GCS, local disk)
``content_type``              ``Content-Type`` (HTTP, without parameters), ``ContentType``
                              (S3), ``contentType`` (GCS)
``content_length_bytes``      the size the store reports
============================  ==========================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from ..errors import (
    BackendConfigurationError,
    ManifestError,
    MissingDependencyError,
    NotAFileError,
    NotFoundError,
    TransferError,
)
from .hashing import Readable

__all__ = [
    "FileInfo",
    "StorageOptions",
    "filesystem",
    "location",
    "open_stream",
    "redact",
    "stat",
]

#: fsspec options per URL scheme, for example ``{"s3": {"endpoint_url": "http://..."}}``.
StorageOptions = Mapping[str, Mapping[str, Any]]

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")
# fsspec protocols whose implementations need a package that etl-manifests has an extra for.
_EXTRAS = {"http": ("aiohttp", "http"), "https": ("aiohttp", "http"), "s3": ("s3fs", "s3")}
_EXTRAS |= {"s3a": _EXTRAS["s3"], "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}


def redact(url: str) -> str:
    """``url`` fit for a message: no user name, password or query string (signed URLs
    carry their credentials in it)."""
    return _USERINFO.sub(r"\1***@", url).split("?", 1)[0]


def _scheme(urlpath: str) -> str:
    match = _SCHEME.match(urlpath)
    return match.group(1).lower() if match else "file"


def filesystem(
    urlpath: str, storage_options: StorageOptions | None = None
) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for ``urlpath`` (with its scheme's options) and its path there.

    :raises MissingDependencyError: the scheme needs a package that is not installed.
    :raises BackendConfigurationError: no fsspec implementation knows the scheme.
    """
    scheme = _scheme(urlpath)
    options = dict((storage_options or {}).get(scheme, {}))
    try:
        return fsspec.core.url_to_fs(urlpath, **options)  # type: ignore[no-any-return]
    except ImportError as exc:
        # fsspec re-raises a failed import with its own message; the cause names the module.
        missing = exc.name or getattr(exc.__cause__, "name", None) or "its fsspec implementation"
        package, extra = _EXTRAS.get(scheme, (missing.split(".")[0], None))
        raise MissingDependencyError(scheme, package, extra) from exc
    except ValueError as exc:
        if "Protocol not known" not in str(exc):
            raise
        raise BackendConfigurationError(
            f"no fsspec implementation reads {scheme}:// URLs ({redact(urlpath)}); "
            "install the package that provides it, or give a local path or an "
            "s3://, gs:// or http(s):// URL"
        ) from exc


def location(fs: AbstractFileSystem, urlpath: str, path: str) -> str:
    """What a record's ``filepath`` holds for ``urlpath``: an absolute path on local disk
    (fsspec has made it absolute), else the URL as given."""
    if isinstance(fs, LocalFileSystem):
        return path
    return urlpath


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What the store reports about one file; ``None`` where it reports nothing."""

    location: str
    """Absolute local path or URL."""
    filename: str
    """The last component of the path (URL-decoded)."""
    size: int | None
    etag: str | None
    last_modified: str | None
    content_type: str | None


def stat(urlpath: str, storage_options: StorageOptions | None = None) -> FileInfo:
    """Ask the store about ``urlpath`` (one HEAD request on HTTP and object stores).

    :raises NotAFileError: something other than a regular file is there: a folder, a
        device, a FIFO or a socket (local paths only; stores hold only files).
    :raises NotFoundError: nothing is there.
    :raises TransferError: the store could not be asked.
    """
    fs, path = filesystem(urlpath, storage_options)
    with _translated(urlpath):
        fs.invalidate_cache(path)  # a listing cached earlier must not hide a change
        info = fs.info(path)
    _check_regular(urlpath, info)
    return FileInfo(
        location=location(fs, urlpath, path),
        filename=_filename(urlpath),
        size=info.get("size"),
        etag=info.get("ETag") or info.get("etag") or None,
        last_modified=_last_modified(info),
        content_type=info.get("mimetype") or info.get("ContentType") or info.get("contentType"),
    )


# What fsspec's local filesystem calls what it finds; "other" is a device, FIFO or socket.
_NOT_A_FILE = {"directory": "a folder", "other": "a device, FIFO or socket"}


def _check_regular(urlpath: str, info: Mapping[str, Any]) -> None:
    """Refuse what is not a regular file before anything opens it: reading a FIFO would
    block, a device never ends (or is empty, like ``/dev/null``), a socket cannot be
    read at all."""
    kind = _NOT_A_FILE.get(info.get("type", "file"))
    if kind is None:
        return
    raise NotAFileError(
        f"{redact(urlpath)} is {kind}, not a regular file; only regular files can be "
        "recorded: give the path of a file"
    )


@contextmanager
def open_stream(
    urlpath: str, size: int | None = None, storage_options: StorageOptions | None = None
) -> Iterator[Readable]:
    """Open ``urlpath`` for one front-to-back read; errors of the store while opening or
    reading become :class:`NotFoundError` or :class:`TransferError`.

    :param size: the size from :func:`stat`, so that HTTP does not ask for it again.
    """
    fs, path = filesystem(urlpath, storage_options)
    kwargs: dict[str, Any] = {}
    if "http" in _protocols(fs):
        # One streaming GET: no range requests, which simple servers do not answer.
        kwargs = {"block_size": 0, "size": size}
    with _translated(urlpath):
        handle = fs.open(path, "rb", **kwargs)
    try:
        yield _Stream(handle, urlpath)
    finally:
        with suppress(Exception):  # closing a broken connection must not hide why it broke
            handle.close()


class _Stream:
    """A file opened by fsspec whose read errors are ours."""

    __slots__ = ("_handle", "_urlpath")

    def __init__(self, handle: Any, urlpath: str) -> None:
        self._handle = handle
        self._urlpath = urlpath

    def read(self, size: int = -1, /) -> bytes:
        with _translated(self._urlpath):
            data: bytes = self._handle.read(size)
        return data


@contextmanager
def _translated(urlpath: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError as exc:
        raise NotFoundError(f"{redact(urlpath)} does not exist; check the path or URL") from exc
    except ManifestError:
        raise
    except Exception as exc:  # aiohttp, botocore and OS errors alike
        raise TransferError(
            f"cannot read {redact(urlpath)}: {type(exc).__name__}: {exc}; check the URL "
            "and that the server or store is reachable, then try again"
        ) from exc


def _protocols(fs: AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _filename(urlpath: str) -> str:
    path = urlsplit(urlpath).path if _SCHEME.match(urlpath) else urlpath
    name = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if not name:
        raise NotFoundError(f"{redact(urlpath)} names no file; give the path of a file")
    return name


def _last_modified(info: Mapping[str, Any]) -> str | None:
    header = info.get("Last-Modified")
    if isinstance(header, str) and header:
        return header
    for key in ("LastModified", "mtime"):
        value = info.get(key)
        if isinstance(value, datetime):
            when = value if value.tzinfo else value.replace(tzinfo=UTC)
            return format_datetime(when.astimezone(UTC), usegmt=True)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return format_datetime(datetime.fromtimestamp(value, UTC), usegmt=True)
    return None
