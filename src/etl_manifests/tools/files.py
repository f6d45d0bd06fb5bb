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

Errors of the store become ours (:func:`translate`): only a real not-found (HTTP 404,
410) is :class:`NotFoundError`, a refusal (401, 403) :class:`PermissionDeniedError`,
anything else :class:`TransferError`, marked ``retryable`` when it is transient;
:func:`retrying` tries those again under a :class:`TransferRetry` policy. No error keeps
the exception of the library underneath: its text is scrubbed into the message.
"""

from __future__ import annotations

import asyncio
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import wraps
from http import HTTPStatus
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from .._redact import describe
from ..errors import (
    BackendConfigurationError,
    InvalidNameError,
    ManifestError,
    MissingDependencyError,
    NotAFileError,
    NotFoundError,
    PermissionDeniedError,
    TransferError,
)
from .hashing import Readable

__all__ = [
    "DEFAULT_TRANSFER_RETRY",
    "Cancelled",
    "FileInfo",
    "StorageOptions",
    "TransferRetry",
    "answers_get_headers",
    "check_file_name",
    "filesystem",
    "location",
    "no_secrets",
    "open_get",
    "open_stream",
    "redact",
    "remote_path",
    "retrying",
    "source_of",
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


# Query parameters that sign a URL: a signed URL's whole query is credentials and expiry.
_SIGNING = frozenset({"x-amz-signature", "x-goog-signature", "signature", "sig"})
# Query parameters that carry a credential of their own; other parameters name the file.
_CREDENTIAL_PARAM = re.compile(
    r"token|secret|passw|pwd|key|auth|credential|signature|^sig$|session", re.IGNORECASE
)


def source_of(url: str) -> str:
    """Where a download came from, as a record's ``source`` keeps it: the URL without user
    information and fragment; without its query if the query signs the URL
    (``X-Amz-Signature``, ``X-Goog-Signature``, ``Signature``, ``sig``), else without the
    query parameters named like credentials (``token``, ``api_key``, ...).

    Two URLs that name the same file through differently signed links give one source.
    """
    if not _SCHEME.match(url):
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    params = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(n, v) for n, v in params if not _CREDENTIAL_PARAM.search(n)]
    if any(name.lower() in _SIGNING for name, _ in params):
        query = ""
    elif len(kept) != len(params):
        query = urlencode(kept)
    else:
        query = parts.query
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def check_file_name(name: str, *, what: str = "file name") -> None:
    """Refuse a name that is not one plain file name, or that holds control characters.

    A control character (``%1b`` in a URL decodes to ESC) in a file name rewrites a
    terminal that lists the folder, and breaks scripts that read names line by line.

    :raises InvalidNameError: saying what is wrong and what to pass instead.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise InvalidNameError(f"{name!r} is not a plain {what}; pass filename= without folders")
    bad = sorted({c for c in name if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0})
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad)
        raise InvalidNameError(
            f"{name!r} holds control characters ({codes}), which no file name written by "
            "etl-manifests may hold; pass filename= (or a naming template) to name it"
        )


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
    :raises InvalidNameError: ``urlpath`` is only a scheme (``s3://``), as a root would be.
    :raises TransferError: the store could not be asked.
    """
    _refuse_bare_scheme(urlpath)
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


_BARE_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:///*$")


def _refuse_bare_scheme(urlpath: str) -> None:
    # fsspec reads "s3://" as the store's top, a folder; the mistake is the empty name
    # (often a variable that was unset), said the way a root that is only a scheme is.
    if _BARE_SCHEME.match(urlpath):
        raise InvalidNameError(
            f"{urlpath!r} is only a scheme: it names no bucket or file (was it built from "
            "a variable that is unset?); write the file's URL, such as s3://bucket/key"
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


def answers_get_headers(urlpath: str) -> bool:
    """Whether :func:`open_get` can tell ``urlpath``'s headers from its download alone
    (HTTP and HTTPS), so that no HEAD is needed when nothing could be skipped."""
    match = _SCHEME.match(urlpath)
    return match is not None and match.group(1).lower() in ("http", "https")


@contextmanager
def open_get(
    urlpath: str, storage_options: StorageOptions | None = None
) -> Iterator[tuple[Readable, FileInfo]]:
    """One streaming GET of an HTTP(S) ``urlpath`` and what its response headers say
    (as :func:`stat` would from a HEAD), without asking for them first.

    :raises NotFoundError: and :class:`TransferError`, as :func:`open_stream`.
    """
    fs, path = filesystem(urlpath, storage_options)
    handle: Any = None
    with _translated(urlpath):
        # fsspec turns a GET's 404 (and only that status) into FileNotFoundError, which
        # is said here as a HEAD's 404 is; raised outside the handler, so that no
        # context carries the URL.
        with suppress(FileNotFoundError):
            # fsspec asks for the size (a HEAD) unless it is given one; a streaming read
            # (block_size 0) never uses it, so any true value saves that request.
            handle = fs.open(path, "rb", block_size=0, size=1)
        if handle is None:
            raise _from_status(redact(urlpath), _NotFound())
    try:
        headers = handle.r.headers
        yield _Stream(handle, urlpath), _info_of(fs, urlpath, path, headers)
    finally:
        with suppress(Exception):
            handle.close()


class _NotFound:
    status = 404
    headers: Mapping[str, str] = {}


def _info_of(
    fs: AbstractFileSystem, urlpath: str, path: str, headers: Mapping[str, str]
) -> FileInfo:
    """A response's headers read as fsspec reads a HEAD's (see :func:`stat`)."""
    size = None
    if "Content-Length" in headers and headers.get("Content-Encoding", "") in ("", "identity"):
        size = int(headers["Content-Length"])
    content_type = headers.get("Content-Type")
    return FileInfo(
        location=location(fs, urlpath, path),
        filename=_filename(urlpath),
        size=size,
        etag=headers.get("ETag") or None,
        last_modified=headers.get("Last-Modified") or None,
        content_type=content_type.partition(";")[0] if content_type else None,
    )


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
    """Errors of the store as ours, with no credential anywhere in them: the original
    exception is described (scrubbed), never chained, so neither ``__cause__`` nor
    ``__context__`` nor a printed traceback can show a password or a signature."""
    error: ManifestError | None = None
    try:
        yield
    except ManifestError:
        raise
    except Exception as exc:  # aiohttp, botocore and OS errors alike
        error = translate(exc, urlpath)
    if error is not None:
        raise error  # outside the except block: no __context__ either


def translate(exc: BaseException, urlpath: str) -> ManifestError:
    """The error of ours that says what ``exc`` (raised reading ``urlpath``) means.

    * HTTP 404 or 410, or the store's own not-found: :class:`NotFoundError`;
    * HTTP 401 or 403, or the store's refusal: :class:`PermissionDeniedError`;
    * HTTP 408, 425, 429 and 5xx, a connection reset or cut short, a timeout: a
      :class:`TransferError` with ``retryable`` true (and ``retry_after``, in seconds,
      when the server sent ``Retry-After``);
    * anything else (a refused connection, a DNS failure, other statuses): a
      :class:`TransferError` with ``retryable`` false.
    """
    where = redact(urlpath)
    response = _response_error(exc)
    if response is not None:
        return _from_status(where, response)
    cause = _innermost(exc)
    if _is_transient(cause):
        return _transfer(
            f"cannot read {where}: the connection broke off ({_summary(cause, urlpath)}); "
            "retried, still failing: try again later",
            retryable=True,
        )
    if _is_connect_error(cause):
        return _transfer(
            f"cannot read {where}: cannot connect to the server ({_summary(cause, urlpath)}); "
            "check the host name and port, and that the server is up"
        )
    if isinstance(exc, FileNotFoundError) or isinstance(cause, FileNotFoundError):
        return NotFoundError(f"{where} does not exist; check the path or URL")
    if isinstance(cause, PermissionError):
        return PermissionDeniedError(
            f"cannot read {where}: access denied; check the credentials and permissions"
        )
    return _transfer(
        f"cannot read {where}: {_summary(cause, urlpath)}; check the URL and that the "
        "server or store is reachable, then try again"
    )


def _transfer(
    message: str,
    *,
    retryable: bool = False,
    status: int | None = None,
    retry_after: float | None = None,
) -> TransferError:
    return TransferError(message, retryable=retryable, status=status, retry_after=retry_after)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _innermost(exc: BaseException) -> BaseException:
    # fsspec wraps what went wrong in a FileNotFoundError of its own (HTTP ``info``);
    # the innermost exception that is not such a wrapper says what happened.
    chain = list(_chain(exc))
    for item in reversed(chain):
        if not (type(item) is FileNotFoundError and item.__cause__ is None and len(chain) > 1):
            return item
    return exc


def _aiohttp() -> Any:
    # Only loaded modules can have raised: never import aiohttp to classify an error.
    return sys.modules.get("aiohttp")


def _response_error(exc: BaseException) -> Any:
    aiohttp = _aiohttp()
    if aiohttp is None:
        return None
    for item in _chain(exc):
        if isinstance(item, aiohttp.ClientResponseError):
            return item
    return None


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | ConnectionResetError):
        return True
    if type(exc).__name__ == "FSTimeoutError":
        return True
    aiohttp = _aiohttp()
    if aiohttp is None:
        return False
    if isinstance(exc, aiohttp.ClientConnectorError):
        return False
    return isinstance(
        exc,
        aiohttp.ServerDisconnectedError
        | aiohttp.ClientPayloadError
        | aiohttp.ClientOSError
        | aiohttp.http_exceptions.PayloadEncodingError,  # a body cut short
    )


def _is_connect_error(exc: BaseException) -> bool:
    aiohttp = _aiohttp()
    if aiohttp is not None and isinstance(exc, aiohttp.ClientConnectorError):
        return True
    return isinstance(exc, ConnectionRefusedError)


def _summary(exc: BaseException, urlpath: str) -> str:
    # The URL as given can carry secrets in forms the patterns miss; take it out first.
    text = describe(exc)
    for form in {urlpath, urlpath.split("#", 1)[0]}:
        text = text.replace(form, redact(urlpath))
    return text


#: Statuses worth asking again: the server is busy, restarting or throttling.
_RETRYABLE = frozenset({408, 425, 429})


def _from_status(where: str, response: Any) -> ManifestError:
    status = int(response.status)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "unknown status"
    answered = f"the server answered {status} {phrase}"
    if status in (404, 410):
        return NotFoundError(f"{where} does not exist ({answered}); check the URL")
    if status in (401, 403):
        return PermissionDeniedError(
            f"cannot read {where}: {answered}; check the credentials (user information, "
            "a signed URL's expiry, storage_options)"
        )
    retryable = status in _RETRYABLE or status >= 500
    advice = "retried, still failing: try again later" if retryable else "check the URL"
    headers = getattr(response, "headers", None) or {}
    return _transfer(
        f"cannot read {where}: {answered}; {advice}",
        retryable=retryable,
        status=status,
        retry_after=_retry_after(headers.get("Retry-After")),
    )


def _retry_after(value: object) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number, or an HTTP date)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    when = http_date(text)
    return None if when is None else max(0.0, (when - datetime.now(UTC)).total_seconds())


def http_date(text: str) -> datetime | None:
    """An HTTP date (``Last-Modified``, ``Retry-After``) as an aware datetime, or ``None``."""
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TransferRetry:
    """How often, and how long, a transient failure of a source is tried again.

    Transient: HTTP 408, 425, 429 and 5xx, a connection reset or cut short, a timeout.
    Each try waits a random time between 0 and ``base * 2**n`` seconds (at most
    ``cap``), or exactly what the server's ``Retry-After`` asks; no try starts after
    ``deadline`` seconds from the first, and a wait that would end past the deadline is
    not begun. Then the last error is raised.
    """

    attempts: int = 5
    """Tries in all (1: no retry)."""
    deadline: float = 120.0
    """Seconds from the first try after which no further try starts."""
    base: float = 0.5
    """Seconds of the first backoff's upper bound; it doubles with each try."""
    cap: float = 30.0
    """The largest backoff between two tries (``Retry-After`` is bounded by ``deadline``)."""

    def wait(self, attempt: int, error: TransferError) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        if error.retry_after is not None:
            return error.retry_after  # the deadline bounds it, not the cap
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))


#: The policy of fetch, fetch_many, record and verify unless given another.
DEFAULT_TRANSFER_RETRY = TransferRetry()

_T = TypeVar("_T")


def retrying(
    call: Callable[[], _T],
    policy: TransferRetry | None = None,
    cancel: threading.Event | None = None,
) -> _T:
    """``call()``, tried again after a retryable :class:`TransferError` as ``policy`` says.

    A wait is cut short when ``cancel`` is set; the last error is raised then.
    """
    policy = policy or DEFAULT_TRANSFER_RETRY
    started = time.monotonic()
    attempt = 1
    while True:
        try:
            return call()
        except TransferError as error:
            if not error.retryable or attempt >= policy.attempts:
                raise
            pause = policy.wait(attempt, error)
            if time.monotonic() + pause - started > policy.deadline:
                raise
        if cancel is not None:
            if cancel.wait(pause):
                raise _cancelled_error()
        else:
            time.sleep(pause)
        attempt += 1


class Cancelled(BaseException):
    """The run this transfer belongs to was interrupted; it stopped and left nothing."""


def _cancelled_error() -> BaseException:
    return Cancelled()


_P = ParamSpec("_P")


def no_secrets(function: Callable[_P, _T]) -> Callable[_P, _T]:
    """Make every :class:`ManifestError` that ``function`` raises stand alone.

    Its ``__cause__`` and ``__context__`` are cleared, so an exception of a library
    underneath (whose text or attributes may hold the URL with its password or signature,
    and whose attributes may not pickle) never travels with it: not in a traceback, not
    to a cluster's client. Its message already says what that exception was.
    """

    @wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return function(*args, **kwargs)
        except ManifestError as exc:
            exc.__cause__ = None
            exc.__context__ = None
            exc.__suppress_context__ = True
            raise

    return wrapper


def _protocols(fs: AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _filename(urlpath: str) -> str:
    path = urlsplit(urlpath).path if _SCHEME.match(urlpath) else urlpath
    name = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if not name:
        raise NotFoundError(f"{redact(urlpath)} names no file; give the path of a file")
    return name


def remote_path(urlpath: str) -> tuple[str, str]:
    """``(host, path)`` of ``urlpath``: the host (with ``:port`` if the URL names one) or
    bucket, and the decoded path below it without leading slash; for a local path,
    ``("", path)``."""
    if _SCHEME.match(urlpath):
        parts = urlsplit(urlpath)
        return parts.netloc.rpartition("@")[2], unquote(parts.path).strip("/")
    return "", urlpath.strip("/")


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
