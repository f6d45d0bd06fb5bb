"""S3 backend on s3fs: ``s3://bucket/prefix`` (also ``s3a://``).

Storage options are passed to :class:`s3fs.S3FileSystem` the way fsspec users expect
(``key``/``secret``/``token``, ``profile``, ``endpoint_url``, ``client_kwargs``,
``config_kwargs``, ``s3_additional_kwargs``, ``requester_pays``, ...), except these,
which this backend takes out first:

``etl_manifests_commit``
    ``"copy"`` or ``"put"``; see *Commit protocol* below. Unset (the default), the
    store capability check picks one before the first conditional write.
``etl_manifests_retries``
    Attempts per request before giving up with
    :class:`~etl_manifests.errors.TransientStorageError` (default 5).
``etl_manifests_retry_base``
    First back-off delay in seconds; it doubles per attempt, with jitter (default 0.1).
``etl_manifests_connect_timeout``, ``etl_manifests_read_timeout``
    Seconds an attempt waits for a connection (default 5), and for the next bytes of an
    answer (default 30); then it fails and is retried. They become botocore's
    ``connect_timeout`` / ``read_timeout``; set only there (in ``config_kwargs``), those
    are used instead of the defaults.
``etl_manifests_operation_timeout``
    Seconds one request may take with all its attempts and back-off pauses (default
    120); then it raises :class:`~etl_manifests.errors.TransientStorageError`, and
    whatever is still running on s3fs's event loop is cancelled.

Unless ``config_kwargs`` sets ``retries`` itself, botocore's own retries are switched
off so that retrying happens in exactly one place (here) and its timing is predictable.

Version tokens
    The token of an object is its ETag, followed by ``#<VersionId>`` when the bucket has
    versioning enabled. It is taken from the same response as the bytes (``read``) or
    from the response of the request that committed them (``write``).

Choosing the commit protocol
    Stores differ in which requests they evaluate ``If-Match`` / ``If-None-Match`` on:
    AWS S3 on PutObject and (since 2025) on CopyObject's destination; others (and moto)
    on PutObject only; some on neither, or they answer ``501 NotImplemented``. Before
    the first conditional write, the store capability check
    (:mod:`etl_manifests.capability`) probes the store under a throw-away key: ``copy``
    first, then ``put``, keeping the first whose conditions the store enforces. A store
    that enforces neither raises :class:`~etl_manifests.errors.UnsupportedStoreError`.
    A mode set with ``etl_manifests_commit`` is probed too, and refused rather than
    trusted. The check runs lazily (a read-only user never needs write access) and once
    per backend object; unconditional writes need no check (before it, they use
    ``put``).

Commit protocol, ``commit="copy"``
    1. ``PutObject`` the bytes to a staged key beside the target
       (:func:`~etl_manifests.storage.staging_key`); nobody reads staged keys.
    2. ``CopyObject`` staged -> target with a condition on the *destination*:
       ``If-Match: <etag>`` to replace a version read before, ``If-None-Match: *`` to
       create, none for an unconditional write. S3 evaluates the condition and swaps in
       the new object atomically: readers see the old object or the new one, never a
       part. ``412 PreconditionFailed`` (or ``404`` for an If-Match on a key that is gone)
       raises :class:`~etl_manifests.errors.ConflictError` /
       :class:`~etl_manifests.errors.AlreadyExistsError`; S3's
       ``409 ConditionalRequestConflict`` (a concurrent conditional write in flight) is
       retried.
    3. ``DeleteObject`` the staged key, whether step 2 succeeded or not. A writer killed
       between steps leaves a staged object, which
       :meth:`etl_manifests.Manifest.cleanup_staged` removes.

    Requests per save: 3 (PUT + COPY + DELETE). Per load: 1 (GET).

    On a bucket with versioning enabled, every save also leaves the staged object's
    version and the delete marker of step 3 behind as noncurrent versions; listing
    (and so :meth:`~etl_manifests.Manifest.cleanup_staged`) cannot see or remove them.
    Expire them with a lifecycle rule for noncurrent versions, or use ``put``. The
    backend logs this once (INFO) when it first sees a version id.

Commit protocol, ``commit="put"``
    One ``PutObject`` to the target with ``If-Match`` / ``If-None-Match: *``. For
    S3-compatible stores that honour conditions on PutObject but not on CopyObject.
    Requests per save: 1. Per load: 1 (GET).

Retries
    Throttling (429, ``SlowDown``), 5xx, connection resets and timeouts are retried with
    exponential back-off and jitter, then raise
    :class:`~etl_manifests.errors.TransientStorageError`. A failed condition (412) is
    never retried here: the manifest layer reloads, merges and tries again. If the
    response to a conditional write is lost and the retry finds that the first attempt
    had landed, the retry fails its condition and raises ``ConflictError``; that is
    correct, because the layer above reloads (and finds its own write) and merges.

Errors
    A missing key raises :class:`~etl_manifests.errors.NotFoundError`; a missing bucket
    raises its subclass :class:`~etl_manifests.errors.BucketNotFoundError`, naming the
    bucket, on every operation. 501 NotImplemented raises
    :class:`~etl_manifests.errors.UnsupportedStoreError`. 401/403 raise
    :class:`~etl_manifests.errors.PermissionDeniedError`. Anything else s3fs or botocore
    raises becomes :class:`~etl_manifests.errors.BackendConfigurationError` (a client that
    cannot be set up from the storage options) or
    :class:`~etl_manifests.errors.StorageError`. Messages name the bucket and key and never
    contain credentials; errors from underneath are described (type and scrubbed text),
    never chained (neither as the cause nor as the context). Of an S3 error response only
    the code (when it is a plain word) and the HTTP status are used, never its message,
    which a gateway may fill with the request it refused.

Fork
    In a child made by ``os.fork()`` the parent's s3fs client is left alone (its event loop
    thread did not survive the fork, and its connections belong to the parent) and a new
    one is opened on first use.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import aiohttp
import botocore.exceptions
import s3fs
from botocore.parsers import ResponseParserError
from fsspec.asyn import sync

from ..._redact import describe, secret_values
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
    UnsupportedStoreError,
)
from ...storage import (
    ABSENT,
    Blob,
    Expect,
    ObjectInfo,
    StorageBackend,
    is_staging_key,
    staging_key,
)
from .._objectstore import (
    CONNECT_TIMEOUT_OPTION,
    READ_TIMEOUT_OPTION,
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

__all__ = ["COMMIT_OPTION", "RETRIES_OPTION", "RETRY_BASE_OPTION", "S3Backend"]

logger = logging.getLogger(__name__)

#: Storage option choosing the commit protocol: ``"copy"`` or ``"put"``; unset, the
#: capability check picks one.
COMMIT_OPTION = "etl_manifests_commit"
#: The commit protocols, in the order the capability check tries them.
COMMIT_MODES = ("copy", "put")

# Transport-level failures worth another attempt.
_RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    botocore.exceptions.HTTPClientError,  # connection closed/reset, read timeouts
    botocore.exceptions.ConnectionError,  # endpoint unreachable, connect timeouts
    botocore.exceptions.IncompleteReadError,
    ResponseParserError,  # throttling responses sometimes carry broken XML
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionError,
    TimeoutError,
)
_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "ConditionalRequestConflict",
    }
)
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
    }
)
_CONFLICT_CODES = frozenset({"PreconditionFailed"})
# What an S3 error code looks like (botocore uses the status, "403", when there is none).
_CODE = re.compile(r"[A-Za-z0-9.]{1,64}")
# Options s3fs expects as strings / as mappings; anything else fails deep inside botocore.
_STRING_OPTIONS = ("key", "secret", "token", "endpoint_url", "profile", "username", "password")
_MAPPING_OPTIONS = ("client_kwargs", "config_kwargs", "s3_additional_kwargs")
# Raised while finding or using credentials.
_CREDENTIAL_EXCEPTIONS: tuple[type[BaseException], ...] = (
    botocore.exceptions.NoCredentialsError,
    botocore.exceptions.PartialCredentialsError,
    botocore.exceptions.CredentialRetrievalError,
)


def _code(exc: botocore.exceptions.ClientError) -> tuple[str, int]:
    """S3's error code and the HTTP status; a code that is not a plain word is dropped.

    The code comes from the response body, which a gateway in front of S3 may fill with
    anything, the request it refused included; real codes (``AccessDenied``) are words.
    """
    response: Mapping[str, Any] = exc.response or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return (code if _CODE.fullmatch(code) else ""), status


def _token(etag: str, version_id: str | None) -> str:
    # "null" is what S3 reports for objects written while versioning was off/suspended.
    return f"{etag}#{version_id}" if version_id and version_id != "null" else etag


def _etag_of(token: str) -> str:
    return token.partition("#")[0]


class S3Backend(StorageBackend):
    """Objects under ``s3://bucket/prefix``; see the module docstring for the protocol.

    Safe to use from several threads: requests run on s3fs's event loop thread.
    """

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        options = dict(storage_options or {})
        configured = options.pop(COMMIT_OPTION, None)
        if configured is not None:
            configured = str(configured).lower()
            if configured not in COMMIT_MODES:
                # The value is not quoted: a misplaced credential must not reach a message.
                raise BackendConfigurationError(
                    f"the {COMMIT_OPTION} storage option must be 'copy' or 'put' (or unset, "
                    "to let the store check choose)"
                )
        self._configured: str | None = configured
        #: The commit protocol in use: the configured one, else the one the capability
        #: check chose; ``None`` until then.
        self.commit: str | None = configured
        self._versioning_noted = False
        self.retry = pop_retry_policy(options)

        scheme, self.bucket, self.prefix = split_root(root, "s3")
        self.root = f"{scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

        check_option_types(options, _STRING_OPTIONS, _MAPPING_OPTIONS)
        self._secrets = secret_values(storage_options)
        config_kwargs = dict(options.get("config_kwargs") or {})
        # Retry in one place only: botocore's retries would multiply with ours.
        config_kwargs.setdefault("retries", {"total_max_attempts": 1})
        self.deadlines = _deadlines(options, config_kwargs)
        options["config_kwargs"] = config_kwargs
        # A private instance: close() must not break other users of a cached one.
        options.setdefault("skip_instance_cache", True)
        self._fs_options = options
        self._process_fs = ProcessClient(self._open_fs)

    def __repr__(self) -> str:
        return f"S3Backend({self.root!r}, commit={self.commit or 'auto'!r})"

    # --- commit mode (chosen by the store capability check) ------------------------------

    def commit_modes(self) -> tuple[str, ...]:
        """``("copy", "put")``, or only the mode set with ``etl_manifests_commit``."""
        return (self._configured,) if self._configured else COMMIT_MODES

    def use_commit_mode(self, mode: str) -> None:
        """Commit later writes with ``mode`` (``"copy"`` or ``"put"``)."""
        if mode not in self.commit_modes():
            raise ValueError(f"commit mode {mode!r} is not one of {self.commit_modes()}")
        self.commit = mode

    # --- the s3fs client, one per process ----------------------------------------------

    def _open_fs(self) -> Any:
        try:
            return s3fs.S3FileSystem(**self._fs_options)
        except ManifestError:
            raise
        except TypeError as exc:
            # An option s3fs does not know; only its name is repeated.
            failure = options_refused("s3fs", exc)
        except Exception as exc:
            failure = BackendConfigurationError(
                f"cannot set up the S3 client for {self.root} ({describe(exc, self._secrets)}); "
                "check the storage options"
            )
        # Raised outside the handler, so that the original is not even the context.
        raise failure

    @property
    def _fs(self) -> Any:
        """This process's s3fs client (opened again on first use after a fork)."""
        return self._process_fs.get()

    # --- request plumbing (the only place that talks to S3) -----------------------------

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, full_key: str | None) -> str:
        return f"s3://{self.bucket}/{full_key}" if full_key else f"s3://{self.bucket}"

    async def _client(self) -> Any:
        try:
            await self._fs.set_session()
            return await self._fs.get_s3(self.bucket)
        except TypeError as exc:
            # s3fs hands unknown options to botocore only when it first connects.
            failure = options_refused("s3fs/botocore", exc)
        raise failure

    def _request(
        self,
        method: str,
        full_key: str | None,
        *,
        read_body: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Call ``method`` on s3fs's client, retrying transient failures.

        Raises ``botocore.exceptions.ClientError`` for non-retryable S3 errors (callers map
        them) and :class:`TransientStorageError` when retries run out.
        """

        async def attempt() -> dict[str, Any]:
            try:
                s3 = await self._client()
                call = getattr(s3, method)
                # Adds s3_additional_kwargs / RequestPayer like s3fs's own calls do.
                params = self._fs._get_s3_method_kwargs(call, Bucket=self.bucket, **kwargs)
                response: dict[str, Any] = await call(**params)
                if read_body:
                    async with response["Body"] as body:
                        response["Body"] = await body.read()
                return response
            except botocore.exceptions.ClientError as exc:
                code, status = _code(exc)
                retryable = status == 429 or (status >= 500 and status != 501)
                if retryable or code in _RETRYABLE_CODES:
                    raise Retryable(_describe(exc)) from None
                raise
            except (botocore.exceptions.ConnectTimeoutError, aiohttp.ConnectionTimeoutError):
                failure: ManifestError | Retryable = self.deadlines.connect_timed_out()
            except (botocore.exceptions.ReadTimeoutError, aiohttp.SocketTimeoutError):
                # The body of a GET is read here too, outside botocore's own handling.
                failure = self.deadlines.read_timed_out()
            except _RETRYABLE_EXCEPTIONS as exc:
                failure = Retryable(describe(exc, self._secrets))
            except ManifestError:
                raise
            except _CREDENTIAL_EXCEPTIONS as exc:
                failure = PermissionDeniedError(
                    f"no usable AWS credentials for {self._where(full_key)} "
                    f"({describe(exc, self._secrets)}); pass key/secret or profile in the "
                    "storage options, or configure the AWS environment"
                )
            except (
                botocore.exceptions.BotoCoreError,
                TypeError,
                ValueError,
                AttributeError,
                KeyError,
            ) as exc:
                failure = BackendConfigurationError(
                    f"the S3 client for {self.root} cannot send {method} "
                    f"({describe(exc, self._secrets)}); check the storage options"
                )
            except Exception as exc:
                failure = StorageError(
                    f"{method} on {self._where(full_key)} failed: {describe(exc, self._secrets)}"
                )
            # Raised outside the handler: an error from underneath may quote credentials,
            # so it is described above and never attached, not even as the context.
            raise failure

        return run(
            self._fs.loop,
            attempt,
            self.retry,
            f"{method} on {self._where(full_key)}",
            self.deadlines,
        )

    def _call(
        self, method: str, full_key: str | None, **kwargs: Any
    ) -> dict[str, Any] | botocore.exceptions.ClientError:
        """:meth:`_request`, with a non-retryable S3 error *returned* instead of raised.

        Our error for it must not be raised while the ClientError is being handled: it
        would become that error's ``__context__``, and botocore's text (and anything a
        gateway echoed into it) would ride along in every traceback.
        """
        try:
            return self._request(method, full_key, **kwargs)
        except botocore.exceptions.ClientError as exc:
            return exc

    def _fail(self, exc: botocore.exceptions.ClientError, full_key: str | None) -> NoReturn:
        """Map a non-retryable S3 error into our hierarchy (call it outside any handler)."""
        code, status = _code(exc)
        where = self._where(full_key)
        if code == "NoSuchBucket":
            raise BucketNotFoundError(
                f"bucket {self.bucket!r} does not exist (while accessing {where}); "
                "create it, or check the bucket name and the endpoint/region",
                self.bucket,
            ) from None
        if code == "NotImplemented" or status == 501:
            raise UnsupportedStoreError(
                f"the store answered 501 NotImplemented on {where}: it does not support a "
                "request this backend needs (conditional writes with If-Match / "
                "If-None-Match); use a store that supports them"
            ) from None
        if code in ("NoSuchKey", "NotFound") or status == 404:
            raise NotFoundError(f"no object at {where}") from None
        if code in _DENIED_CODES or status in (401, 403):
            raise PermissionDeniedError(
                f"access denied to {where} ({code or status}); check the credentials "
                f"and the policy of bucket {self.bucket!r}"
            ) from None
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed") or status == 301:
            raise StorageError(
                f"bucket {self.bucket!r} is in another region ({code or status}); set "
                "client_kwargs={'region_name': ...} or endpoint_url in the storage options"
            ) from None
        raise StorageError(f"S3 refused a request on {where}: {code or 'HTTP'} {status}") from None

    # --- the backend contract ----------------------------------------------------------

    def read(self, key: str) -> Blob:
        """Return the bytes under ``key`` and their token, from one ``GetObject``."""
        full = self._full(key)
        response = self._call("get_object", full, read_body=True, Key=full)
        if isinstance(response, botocore.exceptions.ClientError):
            self._fail(response, full)
        return Blob(bytes(response["Body"]), _token(response["ETag"], response.get("VersionId")))

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        """Store ``data`` under ``key`` atomically, honouring ``expect``; return its token.

        A conditional write first makes sure the store was checked (once per backend,
        see *Choosing the commit protocol*).

        :raises UnsupportedStoreError: the store does not enforce the conditions.
        """
        full = self._full(key)
        conditions: dict[str, str] = {}
        if expect is ABSENT:
            conditions["IfNoneMatch"] = "*"
        elif isinstance(expect, str):
            conditions["IfMatch"] = _etag_of(expect)
        if conditions:
            ensure_store_checked(self)
        # Unconditional writes are safe with either protocol; before the check, the
        # single PUT.
        if (self.commit or "put") == "put":
            return self._commit(full, expect, "put_object", Key=full, Body=data, **conditions)
        staged = staging_key(full)
        try:
            staging = self._call("put_object", staged, Key=staged, Body=data)
            if isinstance(staging, botocore.exceptions.ClientError):
                self._fail(staging, full)
            # Note on tokens: the ETag of a (single-part) copy is the MD5 of its bytes, so
            # replacing an object by identical bytes keeps the ETag (the VersionId in the
            # token still changes on versioned buckets). That cannot lose an update: an
            # If-Match on an unchanged ETag means the stored bytes are exactly the bytes
            # the writer merged against. And the manifest layer stamps a new
            # ``updated_at`` on every save, so consecutive saves never store equal bytes.
            return self._commit(
                full,
                expect,
                "copy_object",
                Key=full,
                CopySource={"Bucket": self.bucket, "Key": staged},
                **conditions,
            )
        finally:
            self._discard(staged)

    def _commit(self, full: str, expect: Expect, method: str, **kwargs: Any) -> str:
        where = self._where(full)
        response = self._call(method, full, **kwargs)
        if isinstance(response, botocore.exceptions.ClientError):
            code, status = _code(response)
            if code in _CONFLICT_CODES or status == 412:
                if expect is ABSENT:
                    raise AlreadyExistsError(f"{where} already exists")
                raise ConflictError(f"{where} changed since it was read")
            if code == "NoSuchKey" and isinstance(expect, str):
                raise ConflictError(f"{where} was deleted since it was read")
            if code == "NoSuchKey" and method == "copy_object":
                raise StorageError(
                    f"the staged copy for {where} vanished before it was committed "
                    "(was cleanup_staged running?); save again"
                )
            self._fail(response, full)
        etag = response.get("CopyObjectResult", {}).get("ETag") or response.get("ETag")
        if not etag:
            raise StorageError(f"S3 committed {where} but returned no ETag")
        version_id = response.get("VersionId")
        if method == "copy_object" and version_id and version_id != "null":
            self._note_versioning()
        return _token(str(etag), version_id)

    def _note_versioning(self) -> None:
        if self._versioning_noted:
            return
        self._versioning_noted = True
        logger.info(
            "bucket %r has versioning enabled: in commit mode 'copy' every save keeps the "
            "staged object as a noncurrent version plus a delete marker, and "
            "cleanup_staged() cannot see or remove those (it lists current objects only); "
            "expire noncurrent versions and delete markers with a lifecycle rule, or set "
            "etl_manifests_commit='put'",
            self.bucket,
        )

    def _discard(self, staged: str) -> None:
        """Best-effort removal of a staged object; a leftover is harmless and cleanable."""
        try:
            self._request("delete_object", staged, Key=staged)
        except (botocore.exceptions.ClientError, StorageError) as exc:
            if isinstance(exc, botocore.exceptions.ClientError) and _code(exc)[0] in (
                "NoSuchBucket",
                "NoSuchKey",
            ):
                return  # nothing was staged
            logger.warning(
                "could not delete staged object %s (%s); remove it with Manifest.cleanup_staged()",
                self._where(staged),
                _describe(exc, self._secrets),
            )

    def delete(self, key: str) -> None:
        """Remove ``key`` (one ``DeleteObject``); a missing key is not an error."""
        full = self._full(key)
        response = self._call("delete_object", full, Key=full)
        if isinstance(response, botocore.exceptions.ClientError):
            if _code(response)[0] == "NoSuchKey":
                return
            self._fail(response, full)
        if response.get("DeleteMarker") and is_staging_key(key):
            self._note_versioning()  # cleanup_staged() is deleting into a versioned bucket

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (``ListObjectsV2``, paginated), sorted."""
        base = f"{self.prefix}/" if self.prefix else ""
        full_prefix = base + prefix
        found: list[ObjectInfo] = []
        token: str | None = None
        while True:
            extra: dict[str, Any] = {"ContinuationToken": token} if token else {}
            page = self._call("list_objects_v2", full_prefix or None, Prefix=full_prefix, **extra)
            if isinstance(page, botocore.exceptions.ClientError):
                self._fail(page, full_prefix or None)
            for item in page.get("Contents", []):
                name = str(item["Key"])
                if name.startswith(base):
                    found.append(
                        ObjectInfo(name[len(base) :], item.get("Size"), item.get("LastModified"))
                    )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        return sorted(found, key=lambda info: info.key)

    def close(self) -> None:
        """Close s3fs's client and its connections; a later call reconnects."""
        fs = self._process_fs.instance
        creator = getattr(fs, "_s3creator", None)
        if creator is None:
            return
        fs._s3 = None
        fs._s3creator = None
        try:
            sync(fs.loop, creator.__aexit__, None, None, None, timeout=5)
        except Exception as exc:  # closing is best effort
            logger.debug("closing the S3 client failed: %s", _describe(exc, self._secrets))


def _deadlines(options: dict[str, Any], config_kwargs: dict[str, Any]) -> Deadlines:
    """Take the timeout options out of ``options`` and put them into botocore's config.

    botocore's own ``connect_timeout`` / ``read_timeout`` in ``config_kwargs`` count as
    the same options when ours are not given, so messages name the timeouts in force.
    """
    names = ((CONNECT_TIMEOUT_OPTION, "connect_timeout"), (READ_TIMEOUT_OPTION, "read_timeout"))
    for ours, botocores in names:
        if ours not in options and botocores in config_kwargs:
            options[ours] = config_kwargs[botocores]
    deadlines = pop_deadlines(options)
    config_kwargs["connect_timeout"] = deadlines.connect
    config_kwargs["read_timeout"] = deadlines.read
    return deadlines


def _describe(exc: BaseException, secrets: frozenset[str] = frozenset()) -> str:
    """A short, credential-free description of an error."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code, status = _code(exc)
        return f"{code or 'HTTP'} {status}".strip()
    if isinstance(exc, StorageError):
        return str(exc)
    return describe(exc, secrets)
