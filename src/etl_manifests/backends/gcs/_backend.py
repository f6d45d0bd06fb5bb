"""Google Cloud Storage backend on gcsfs: ``gs://bucket/prefix`` (also ``gcs://``).

Storage options are passed to :class:`gcsfs.GCSFileSystem` the way fsspec users expect
(``token``, ``project``, ``endpoint_url``, ``requester_pays``, ``session_kwargs``,
``requests_timeout``, ...), except these, which this backend takes out first:

``etl_manifests_retries``
    Attempts per request before giving up with
    :class:`~etl_manifests.errors.TransientStorageError` (default 5).
``etl_manifests_retry_base``
    First back-off delay in seconds; it doubles per attempt, with jitter (default 0.1).
``etl_manifests_connect_timeout``, ``etl_manifests_read_timeout``
    Seconds an attempt waits for a connection (default 5), and for the next bytes of an
    answer (default 30); then it fails and is retried. gcsfs's ``requests_timeout``, if
    given, still bounds each attempt as a whole.
``etl_manifests_operation_timeout``
    Seconds one request may take with all its attempts and back-off pauses (default
    120); then it raises :class:`~etl_manifests.errors.TransientStorageError`.

Requests go through gcsfs's own authenticated aiohttp session (credentials, endpoint,
``userProject`` for requester-pays buckets), but not through gcsfs's public file API,
which cannot send ``ifGenerationMatch``; and not through its retry decorator, so that
retrying happens in exactly one place (here) and its timing is predictable.

Version tokens
    The token of an object is its GCS *generation*, a number GCS assigns afresh on
    every write (also when the bytes are identical), so tokens are exact.

Commit protocol
    A save is one multipart upload (the object's metadata, ``contentType:
    application/json``, and its bytes in one request),
    ``POST /upload/storage/v1/b/{bucket}/o?uploadType=multipart&name={key}``, with
    ``ifGenerationMatch=<generation read before>`` to replace, ``ifGenerationMatch=0``
    to create, no condition for an unconditional write. (Not a media upload: the GCS
    emulator people test with mangles media uploads of JSON.) GCS evaluates the condition
    and swaps in the new object atomically; readers see the old object or the new
    one, never a part. ``412 conditionNotMet`` raises
    :class:`~etl_manifests.errors.ConflictError` (or
    :class:`~etl_manifests.errors.AlreadyExistsError` for a create). The new token is
    the ``generation`` in the upload's response. Nothing is staged.

    Requests per save: 1 (POST).

    Before the first conditional write, the store capability check
    (:mod:`etl_manifests.capability`) proves under a throw-away key that the server
    refuses a create over an existing object and a stale ``ifGenerationMatch``, once
    per backend object (7 requests). gcp-storage-emulator as shipped ignores
    ``ifGenerationMatch``, so there it raises
    :class:`~etl_manifests.errors.UnsupportedStoreError` instead of letting writers
    overwrite each other.

Loads
    One media ``GET``; the ``x-goog-generation`` header of that same response gives the
    generation of exactly those bytes. Requests per load: 1. If a GCS emulator omits
    that header, the backend falls back to metadata GET -> media GET pinned to that
    generation -> metadata GET, and accepts the bytes only if both metadata reads name
    the same generation (generations only grow, so the bytes in between are that
    generation's); otherwise it backs off (jittered, growing delays, see
    :data:`READ_RACE_POLICY`) and repeats, so a reader outlasts a burst of writers.
    Requests per load then: 3.

Deadlines
    Without a timeout of its own, a request to an endpoint that accepts the connection
    and never answers (a half-open connection after a NAT dropped it) would wait
    forever: gcsfs hands its ``requests_timeout`` (``None`` by default) to aiohttp, and
    ``None`` switches aiohttp's timeouts off. Every attempt therefore carries the
    connect and read timeouts above, and the operation deadline cancels whatever is
    still running on gcsfs's event loop when it passes.

Retries
    429, 408, 5xx, connection resets and timeouts are retried with exponential back-off
    and jitter, then raise :class:`~etl_manifests.errors.TransientStorageError`. A
    failed condition (412) is never retried here: the manifest layer reloads, merges and
    tries again. If the response to a conditional upload is lost and the retry finds
    that the first attempt had landed, the retry fails its condition and raises
    ``ConflictError``; that is correct, because the layer above reloads (and finds its
    own write) and merges.

Errors
    A missing key raises :class:`~etl_manifests.errors.NotFoundError`; a missing bucket
    raises its subclass :class:`~etl_manifests.errors.BucketNotFoundError`, naming the
    bucket, on every operation. 501 NotImplemented raises
    :class:`~etl_manifests.errors.UnsupportedStoreError`. 401/403, and credentials that cannot be
    refreshed, raise :class:`~etl_manifests.errors.PermissionDeniedError`. Anything else
    gcsfs, google-auth or requests raise becomes
    :class:`~etl_manifests.errors.BackendConfigurationError` (options gcsfs cannot use) or
    :class:`~etl_manifests.errors.StorageError`. Messages name the bucket and key and never
    contain credentials; errors from underneath are described (type and scrubbed text),
    never chained. (gcsfs checks a raw access token passed as ``token`` with Google's
    token-info endpoint when the backend is opened; set ``FETCH_RAW_TOKEN_EXPIRY=false``
    to skip that request.)

Fork
    In a child made by ``os.fork()`` the parent's gcsfs instance is left alone (its event
    loop thread did not survive the fork, and its connections belong to the parent) and a
    new one is opened on first use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import quote

import aiohttp
import gcsfs
import gcsfs.retry
import google.auth.exceptions
import requests
from fsspec.asyn import sync

from ..._redact import describe, excerpt, redact_url, secret_values
from ...capability import ensure_store_checked
from ...errors import (
    AlreadyExistsError,
    BackendConfigurationError,
    BucketNotFoundError,
    ConflictError,
    ManifestError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
    UnsupportedStoreError,
)
from ...retry import RetryPolicy
from ...storage import ABSENT, Blob, Expect, ObjectInfo, StorageBackend
from .._objectstore import (
    RETRIES_OPTION,
    RETRY_BASE_OPTION,
    Deadlines,
    ProcessClient,
    Retryable,
    check_option_types,
    options_refused,
    pop_deadlines,
    pop_retry_policy,
    run,
    split_root,
)

__all__ = ["RETRIES_OPTION", "RETRY_BASE_OPTION", "GCSBackend"]

logger = logging.getLogger(__name__)

#: How a fallback read (no ``x-goog-generation``) retries when a writer raced it: the
#: budget a save has (:class:`~etl_manifests.RetryPolicy`'s defaults: 50 attempts, a
#: jittered, doubling delay of at most 1 s between them, about 20 s of waiting in all),
#: so that a reader waits out a burst of writers instead of giving up.
READ_RACE_POLICY = RetryPolicy(max_attempts=50, base_delay=0.01, max_delay=1.0)

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Longest part of a server's error message kept in ours: enough for "Invalid argument"
# and its reason, not for a request a gateway echoed back.
_DETAIL_CHARS = 120
_RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,  # connection refused/reset, disconnects, payload errors
    asyncio.TimeoutError,
    ConnectionError,
    TimeoutError,
    google.auth.exceptions.TransportError,  # token refresh could not reach the server
)


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def message(self) -> str:
        """The error message in a GCS JSON error body, or ``""``."""
        try:
            error = self.json().get("error", {})
        except (ValueError, AttributeError):
            return ""
        if isinstance(error, dict):
            return str(error.get("message", ""))
        return str(error)


class GCSBackend(StorageBackend):
    """Objects under ``gs://bucket/prefix``; see the module docstring for the protocol.

    Safe to use from several threads: requests run on gcsfs's event loop thread.
    """

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        options = dict(storage_options or {})
        self.retry = pop_retry_policy(options)
        self.deadlines = pop_deadlines(options)
        scheme, self.bucket, self.prefix = split_root(root, "gs")
        self.root = f"{scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        # A private instance: close() must not break other users of a cached one.
        options.setdefault("skip_instance_cache", True)
        self._secrets = secret_values(storage_options)
        check_option_types(options, ("project", "endpoint_url"), ("session_kwargs",))
        self._fs_options = options
        self._process_fs = ProcessClient(self._open_fs)
        self._timeout = _client_timeout(self.deadlines, self._fs.requests_timeout)
        # Cleared the first time a media download arrives without x-goog-generation.
        self._generation_header = True

    def __repr__(self) -> str:
        return f"GCSBackend({self.root!r})"

    # --- the gcsfs instance, one per process --------------------------------------------

    def _open_fs(self) -> Any:
        """A new gcsfs instance; its credentials are set up (and maybe checked) here."""
        try:
            return gcsfs.GCSFileSystem(**self._fs_options)
        except ManifestError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            # A malformed token (a service-account dict missing fields, ...) fails here.
            failure: ManifestError = options_refused("gcsfs", exc)
        except requests.RequestException as exc:
            failure = TransientStorageError(
                f"cannot open {self.root}: gcsfs could not check the access token with "
                f"Google's token-info endpoint ({describe(exc, self._secrets)}); retry, or "
                "set FETCH_RAW_TOKEN_EXPIRY=false to skip that check"
            )
        except google.auth.exceptions.GoogleAuthError as exc:
            failure = PermissionDeniedError(
                f"cannot open {self.root}: the credentials in the 'token' storage option "
                f"cannot be used ({describe(exc, self._secrets)})"
            )
        except Exception as exc:
            failure = BackendConfigurationError(
                f"cannot set up the GCS client for {self.root} "
                f"({describe(exc, self._secrets)}); check the storage options "
                "('token', 'project', 'endpoint_url', ...)"
            )
        # Raised outside the handler: the original may quote the token (requests puts it
        # in the URL it reports), so it is described above and never attached.
        raise failure

    @property
    def _fs(self) -> Any:
        """This process's gcsfs instance (opened again on first use after a fork)."""
        return self._process_fs.get()

    # --- request plumbing (the only place that talks to GCS) ----------------------------

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        data: bytes | None,
        headers: Mapping[str, str],
    ) -> _Response:
        """One raw HTTP exchange on gcsfs's authenticated session; no retries, no mapping."""
        fs = self._fs
        await fs._set_session()
        async with fs.session.request(
            method=method,
            url=f"{fs._location}/{path}",
            params=fs._get_params(dict(params)),  # adds userProject when requester pays
            headers=fs._get_headers(dict(headers)),  # adds the Authorization header
            data=data,
            timeout=self._timeout,
        ) as response:
            body = await response.read()
            headers = {name.lower(): value for name, value in response.headers.items()}
            return _Response(response.status, headers, body)

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        what: str,
    ) -> _Response:
        """Send a request, retrying transient failures; return any non-retryable answer."""

        async def attempt() -> _Response:
            try:
                response = await self._send(method, path, params or {}, data, headers or {})
            except aiohttp.ConnectionTimeoutError:
                failure: Exception = self.deadlines.connect_timed_out()
            except aiohttp.SocketTimeoutError:
                failure = self.deadlines.read_timed_out()
            except _RETRYABLE_EXCEPTIONS as exc:
                failure = Retryable(describe(exc, self._secrets))
            except ManifestError:
                raise
            except (google.auth.exceptions.GoogleAuthError, gcsfs.retry.HttpError) as exc:
                # Refreshing the credentials failed (gcsfs reports that as an HTTP 401).
                failure = PermissionDeniedError(
                    f"{method} on {what}: the credentials could not be refreshed "
                    f"({describe(exc, self._secrets)}); check the 'token' storage option"
                )
            except Exception as exc:
                failure = StorageError(f"{method} on {what} failed: {describe(exc, self._secrets)}")
            else:
                if response.status in _RETRYABLE_STATUS:
                    raise Retryable(f"HTTP {response.status}")
                return response
            # Raised outside the handler: errors from underneath may quote credentials,
            # so they are described above and never attached, not even as the context.
            raise failure

        return run(self._fs.loop, attempt, self.retry, f"{method} on {what}", self.deadlines)

    def _object_path(self, full: str) -> str:
        return f"storage/v1/b/{quote(self.bucket, safe='')}/o/{quote(full, safe='')}"

    def _download_path(self, full: str) -> str:
        return f"download/storage/v1/b/{quote(self.bucket, safe='')}/o/{quote(full, safe='')}"

    def _fail(self, response: _Response, full: str | None) -> NoReturn:
        """Map a non-retryable error response into our hierarchy."""
        where = self._where(full)
        status = response.status
        if status == 404:
            if full is None or not self._bucket_exists():
                raise BucketNotFoundError(
                    f"bucket {self.bucket!r} does not exist (while accessing {where}); "
                    "create it, or check the bucket name, project and endpoint",
                    self.bucket,
                )
            raise NotFoundError(f"no object at {where}")
        if status == 501:
            raise UnsupportedStoreError(
                f"the server answered 501 Not Implemented on {where}: it does not support "
                "a request this backend needs (uploads with ifGenerationMatch); use a "
                "store that supports them"
            )
        if status in (401, 403):
            raise PermissionDeniedError(
                f"access denied to {where} (HTTP {status}); check the credentials "
                f"(the 'token' storage option) and the IAM policy of bucket {self.bucket!r}"
            )
        # A gateway in front of GCS may quote the request (its Authorization header
        # included) in the message: scrubbed first, then cut, never the other way round.
        detail = excerpt(response.message(), self._secrets, _DETAIL_CHARS)
        raise StorageError(
            f"GCS refused a request on {where}: HTTP {status}" + (f" ({detail})" if detail else "")
        )

    def _bucket_exists(self) -> bool:
        """Whether the bucket exists; ``True`` when we may not ask (only object rights)."""
        response = self._request(
            "GET",
            f"storage/v1/b/{quote(self.bucket, safe='')}",
            {"fields": "name"},
            what=self._where(None),
        )
        return response.status != 404

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, full: str | None) -> str:
        return f"gs://{self.bucket}/{full}" if full else f"gs://{self.bucket}"

    # --- the backend contract ----------------------------------------------------------

    def read(self, key: str) -> Blob:
        """Return the bytes under ``key`` and their generation (see *Loads* above)."""
        full = self._full(key)
        if self._generation_header:
            response = self._download(full, None)
            generation = response.headers.get("x-goog-generation")
            if generation:
                return Blob(response.body, generation)
            logger.debug(
                "no x-goog-generation header from %s; pinning reads",
                redact_url(self._fs._location),
            )
            self._generation_header = False
        policy = READ_RACE_POLICY
        for attempt in range(1, policy.max_attempts + 1):
            before = self._generation(full)
            response = self._download(full, before, missing_ok=True)
            if response.status == 200 and self._generation(full) == before:
                return Blob(response.body, before)
            if attempt < policy.max_attempts:
                # Writers commit in bursts: trying again at once would land in the same
                # burst; a growing, jittered pause lets the reader find a quiet moment.
                time.sleep(policy.delay(attempt))
        raise TransientStorageError(
            f"{self._where(full)} kept changing while being read "
            f"({policy.max_attempts} attempts); retry later"
        )

    def _download(
        self, full: str, generation: str | None, *, missing_ok: bool = False
    ) -> _Response:
        params = {"alt": "media"}
        if generation is not None:
            params["generation"] = generation
        response = self._request("GET", self._download_path(full), params, what=self._where(full))
        if response.status != 200 and not (missing_ok and response.status == 404):
            self._fail(response, full)
        return response

    def _generation(self, full: str) -> str:
        response = self._request(
            "GET", self._object_path(full), {"fields": "generation"}, what=self._where(full)
        )
        if response.status != 200:
            self._fail(response, full)
        return str(response.json()["generation"])

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        """Store ``data`` under ``key`` with one conditional upload; return its generation.

        A conditional write first makes sure the store was checked (once per backend).

        :raises UnsupportedStoreError: the server does not enforce ``ifGenerationMatch``.
        """
        full = self._full(key)
        where = self._where(full)
        params = {"uploadType": "multipart", "name": full}
        if expect is ABSENT:
            params["ifGenerationMatch"] = "0"
        elif isinstance(expect, str):
            params["ifGenerationMatch"] = expect
        if expect is not None:
            ensure_store_checked(self)
        body, content_type = _multipart(full, bytes(data))
        response = self._request(
            "POST",
            f"upload/storage/v1/b/{quote(self.bucket, safe='')}/o",
            params,
            body,
            {"Content-Type": content_type},
            what=where,
        )
        if response.status == 412:
            if expect is ABSENT:
                raise AlreadyExistsError(f"{where} already exists")
            raise ConflictError(f"{where} changed since it was read")
        if response.status == 404 and isinstance(expect, str) and self._bucket_exists():
            raise ConflictError(f"{where} was deleted since it was read")
        if response.status != 200:
            self._fail(response, full)
        try:
            return str(response.json()["generation"])
        except (ValueError, KeyError, TypeError) as exc:
            problem = type(exc).__name__
        # Raised outside the handler: the JSON decoder's error keeps the whole body.
        raise StorageError(f"GCS stored {where} but returned no generation ({problem})")

    def delete(self, key: str) -> None:
        """Remove ``key`` (one ``DELETE``); a missing key is not an error."""
        full = self._full(key)
        response = self._request("DELETE", self._object_path(full), what=self._where(full))
        if response.status in (200, 204):
            return
        if response.status == 404 and self._bucket_exists():
            return
        self._fail(response, full)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (paginated object listing), sorted."""
        base = f"{self.prefix}/" if self.prefix else ""
        params = {
            "prefix": base + prefix,
            "fields": "items(name,size,updated),nextPageToken",
        }
        found: list[ObjectInfo] = []
        while True:
            response = self._request(
                "GET",
                f"storage/v1/b/{quote(self.bucket, safe='')}/o",
                params,
                what=self._where(base + prefix or None),
            )
            if response.status != 200:
                self._fail(response, None if response.status == 404 else base + prefix)
            page = response.json()
            for item in page.get("items") or []:
                name = str(item["name"])
                if name.startswith(base):
                    size = item.get("size")
                    found.append(
                        ObjectInfo(
                            name[len(base) :],
                            int(size) if size is not None else None,
                            _parse_time(item.get("updated")),
                        )
                    )
            token = page.get("nextPageToken")
            if not token:
                break
            params = {**params, "pageToken": str(token)}
        return sorted(found, key=lambda info: info.key)

    def close(self) -> None:
        """Close gcsfs's HTTP session; a later call opens a new one."""
        fs = self._process_fs.instance
        session = getattr(fs, "_session", None)
        if session is None or session.closed:
            return
        fs._session = None
        try:
            sync(fs.loop, session.close, timeout=5)
        except Exception as exc:  # closing is best effort
            logger.debug("closing the GCS session failed: %s", type(exc).__name__)


def _client_timeout(deadlines: Deadlines, requests_timeout: object) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for one attempt: connect and read, and gcsfs's total if set."""
    total = float(requests_timeout) if isinstance(requests_timeout, (int, float)) else None
    return aiohttp.ClientTimeout(
        total=total, sock_connect=deadlines.connect, sock_read=deadlines.read
    )


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    """The body and Content-Type of a multipart upload of ``data`` as JSON named ``name``."""
    boundary = f"etl-manifests-{uuid.uuid4().hex}"  # random: cannot occur in the data
    metadata = json.dumps({"name": name, "contentType": "application/json"}).encode()
    body = b"".join(
        (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
            metadata,
            f"\r\n--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )
    return body, f'multipart/related; boundary="{boundary}"'


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
