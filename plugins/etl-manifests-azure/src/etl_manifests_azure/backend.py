"""Azure Blob Storage backend: ``az://container/prefix`` and ``abfs://container/prefix``.

Root URLs and storage options follow adlfs (see :mod:`etl_manifests_azure._root` and
:mod:`etl_manifests_azure._options`); requests go through azure-storage-blob's synchronous
``BlobServiceClient``.

What a caller may rely on:

Version tokens
    A token is the blob's ETag. Azure assigns a new ETag on every write, also when the
    bytes are the same, so tokens are exact.

Commit protocol
    A body of at most ``etl_manifests_max_single_put`` bytes (64 MiB) is one *Put Blob*
    request, carrying ``If-Match: <etag>`` to replace, ``If-None-Match: *`` to create, no
    condition for an unconditional write. Azure checks the condition and swaps in the new
    blob as one step: readers see the old blob or the new one, never a part, and of two
    writers holding the same ETag exactly one succeeds. ``412 ConditionNotMet`` raises
    :class:`~etl_manifests.errors.ConflictError`; a create that finds a blob gets ``409
    BlobAlreadyExists`` and raises :class:`~etl_manifests.errors.AlreadyExistsError`.

    A larger body goes as blocks: *Put Block* for each ``etl_manifests_block_size`` (8 MiB)
    piece, then one *Put Block List* that carries the same condition and makes the blocks
    the blob's content in one step. The staged blocks are invisible (nobody can read or
    list a blob's uncommitted blocks), so nothing needs cleaning up: Azure discards them
    at the blob's next commit, or after a week. If another writer's commit discards them
    first, the write stages its blocks again.

    Requests per save: 1 (Put Blob), or one per block + 1 on the block path.

Loads
    One GET returns the bytes and the ETag of exactly those bytes. (Blobs over 256 MiB
    continue in ranged GETs that the SDK pins to the first response's ETag.)

Retries
    Transient failures are retried in exactly one place, :mod:`etl_manifests_azure._retry`
    (azure-core's retry policy is switched off), then raise
    :class:`~etl_manifests.errors.TransientStorageError`. If the response to a conditional
    write is lost and the retry finds the first attempt landed, the retry fails its
    condition and raises ``ConflictError``; the manifest layer then reloads (finding its
    own write) and merges, so nothing is lost or doubled.

Deadlines
    Each attempt waits at most ``connection_timeout`` (5 s) for a connection and
    ``read_timeout`` (30 s) for the next bytes of an answer; a request with all its
    attempts and pauses gives up within ``etl_manifests_operation_timeout`` (120 s) with
    :class:`~etl_manifests.errors.TransientStorageError`, also against an endpoint that
    accepts connections and never answers. (For a listing, the request is the whole
    listing; each of its pages gets the timeouts left when the attempt began.)

Errors
    A missing key raises :class:`~etl_manifests.errors.NotFoundError`; a missing container
    raises :class:`~etl_manifests.errors.BucketNotFoundError` naming it (never "no
    manifest yet"). 401/403 raise :class:`~etl_manifests.errors.PermissionDeniedError`,
    501 :class:`~etl_manifests.errors.UnsupportedStoreError`. No message, ``repr`` or log
    line holds an account key, SAS token or connection string.

Forked processes
    A child forked from a process that used the backend opens its own HTTP connections
    (``etl_manifests.register_after_fork``).
"""

from __future__ import annotations

import base64
import functools
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobClient, BlobServiceClient, BlobType
from etl_manifests import register_after_fork
from etl_manifests.errors import (
    AlreadyExistsError,
    ConflictError,
    StorageError,
)
from etl_manifests.storage import ABSENT, Blob, Expect, ObjectInfo, StorageBackend

from ._errors import error_code, translate
from ._options import Settings, read_options
from ._redact import install_sas_redaction
from ._retry import Budget, Limits, Retry, call, logger
from ._root import AzureRoot, parse_root

__all__ = ["MAX_BLOCKS", "AzureBackend"]

#: Azure's limit on the committed blocks of one blob.
MAX_BLOCKS = 50_000

_T = TypeVar("_T")


class AzureBackend(StorageBackend):
    """Blobs under ``az://container/prefix``; see the module docstring for the protocol.

    Safe to share between threads. After :meth:`close`, the next operation opens a new
    client, so a closed backend stays usable.
    """

    def __init__(self, root: str, storage_options: Mapping[str, Any] | None = None) -> None:
        """Parse ``root`` and ``storage_options``; nothing is sent until the first operation.

        :raises BackendConfigurationError: the root or an option is invalid, or no storage
            account can be determined.
        """
        install_sas_redaction()
        self._root: AzureRoot = parse_root(root)
        self._settings: Settings = read_options(storage_options, self._root.account_name)
        self._limits = Limits(
            self._settings.connect_timeout,
            self._settings.read_timeout,
            self._settings.operation_timeout,
        )
        self.root = self._root.url
        #: The container holding the blobs.
        self.container = self._root.container
        #: The storage account (for messages).
        self.account = self._settings.connection.account
        self._lock = threading.Lock()
        self._service: BlobServiceClient | None = None
        self._inherited: list[BlobServiceClient] = []
        register_after_fork(self, AzureBackend._after_fork)

    def _after_fork(self) -> None:
        # In a forked child. Its HTTP connections are the parent's sockets: keep the
        # parent's client referenced (closing it here would close them under the parent)
        # and open a new one on first use. A thread that did not survive the fork may have
        # held the lock.
        self._lock = threading.Lock()
        if self._service is not None:
            self._inherited.append(self._service)
            self._service = None

    def __repr__(self) -> str:
        return f"AzureBackend({self.root!r})"

    # --- the contract ----------------------------------------------------------------

    def read(self, key: str) -> Blob:
        """Return the bytes under ``key`` and their ETag, from one GET.

        :raises NotFoundError: no blob at ``key`` (``BucketNotFoundError``: no
            container).
        """
        client = self._blob(key)

        def attempt(budget: Budget) -> Blob:
            try:
                download = client.download_blob(
                    max_concurrency=1,
                    # The SDK's downloader sends a GET whose body broke off again, up to
                    # 3 GETs in all, 1 s apart: they share this attempt's time.
                    **self._call_options(budget, requests=3),
                )
                data = download.readall()
            except ResourceModifiedError:
                # Only a read of several ranges can meet this: the blob changed between
                # them. Start over rather than mix two versions.
                raise Retry("the blob changed while being read") from None
            return Blob(data, str(download.properties.etag))

        try:
            return self._run("GET", key, attempt)
        except AzureError as exc:
            failure = self._translate(exc, key)
        raise failure

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        """Store ``data`` under ``key`` with one conditional commit; return the new ETag.

        :raises AlreadyExistsError: ``expect`` is ``ABSENT`` and a blob exists.
        :raises ConflictError: ``expect`` is an ETag and the blob changed or is gone.
        """
        data = bytes(data)
        conditions = _conditions(expect)
        try:
            result = self._commit(key, data, conditions)
        except AzureError as exc:
            failure = self._write_error(exc, key, expect)
        else:
            etag = result.get("etag")
            if not etag:
                raise StorageError(f"Azure stored {self.url(key)} but returned no ETag")
            return str(etag)
        raise failure

    def _commit(self, key: str, data: bytes, conditions: dict[str, Any]) -> dict[str, Any]:
        """One Put Blob, or the block path for a body larger than one Put Blob takes."""
        if len(data) > self._settings.max_single_put:
            return self._write_blocks(key, data, conditions)
        client = self._blob(key)
        return self._run(
            "PUT",
            key,
            lambda budget: client.upload_blob(
                data,
                blob_type=BlobType.BLOCKBLOB,
                length=len(data),
                overwrite=True,
                **conditions,
                **self._call_options(budget),
            ),
        )

    def delete(self, key: str) -> None:
        """Remove ``key`` (one DELETE); a missing blob is not an error."""
        client = self._blob(key)
        try:
            self._run(
                "DELETE",
                key,
                lambda budget: client.delete_blob(**self._call_options(budget)),
            )
            return
        except AzureError as exc:
            if isinstance(exc, ResourceNotFoundError) and error_code(exc) == "BlobNotFound":
                return
            failure = self._translate(exc, key)
        raise failure

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Blobs whose key starts with ``prefix``, sorted by key, with sizes and times.

        Staged blocks of unfinished block writes are not blobs and are not listed.
        """
        base = f"{self._root.prefix}/" if self._root.prefix else ""
        container = self._service_client().get_container_client(self.container)

        def attempt(budget: Budget) -> list[ObjectInfo]:
            # A listing that fails midway is restarted from its first page.
            return [
                ObjectInfo(item.name[len(base) :], item.size, item.last_modified)
                for item in container.list_blobs(
                    name_starts_with=base + prefix, **self._call_options(budget)
                )
                if item.name.startswith(base)
            ]

        try:
            found = self._run("LIST", prefix, attempt)
        except AzureError as exc:
            failure = self._translate(exc, prefix)
        else:
            return sorted(found, key=lambda info: info.key)
        raise failure

    def close(self) -> None:
        """Close the HTTP session; the next operation opens a new one."""
        with self._lock:
            service, self._service = self._service, None
        if service is not None:
            service.close()

    # --- the block path ----------------------------------------------------------------

    def _write_blocks(self, key: str, data: bytes, conditions: dict[str, Any]) -> dict[str, Any]:
        """Put Block for each piece, then Put Block List carrying ``conditions``."""
        size = self._settings.block_size
        count = -(-len(data) // size)
        if count > MAX_BLOCKS:
            raise StorageError(
                f"{self.url(key)}: {len(data)} bytes would take {count} blocks of {size} bytes, "
                f"more than Azure's {MAX_BLOCKS}; raise the etl_manifests_block_size option"
            )
        client = self._blob(key)
        policy = self._settings.retry
        for round_ in range(1, policy.max_attempts + 1):
            # Block ids must have one length per blob; a fresh write id keeps this writer's
            # blocks apart from those of any other writer staging on the same blob.
            write_id = uuid.uuid4().hex
            blocks = []
            for index in range(count):
                block_id = base64.b64encode(f"{write_id}-{index:05d}".encode()).decode()
                piece = data[index * size : (index + 1) * size]
                stage = functools.partial(self._stage_block, client, block_id, piece)
                self._run(f"PUT block {index + 1}/{count} of", key, stage)
                blocks.append(BlobBlock(block_id=block_id))

            commit = functools.partial(self._commit_blocks, client, blocks, conditions)
            try:
                return self._run("PUT block list of", key, commit)
            except AzureError as exc:
                # Another writer's commit to this blob discards every uncommitted block,
                # ours included (on Azure a Put Blob or a delete does too): stage again.
                if error_code(exc) != "InvalidBlockList" or round_ >= policy.max_attempts:
                    raise
                logger.debug(
                    "staged blocks for %s were discarded by another writer; staging again",
                    self.url(key),
                )
                time.sleep(policy.delay(round_))
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit_blocks(
        self,
        client: BlobClient,
        blocks: Sequence[BlobBlock],
        conditions: dict[str, Any],
        budget: Budget,
    ) -> dict[str, Any]:
        """One Put Block List attempt: make ``blocks`` the blob, if ``conditions`` hold."""
        result: dict[str, Any] = client.commit_block_list(
            [*blocks], **conditions, **self._call_options(budget)
        )
        return result

    def _stage_block(self, client: BlobClient, block_id: str, piece: bytes, budget: Budget) -> None:
        """One Put Block attempt: stage ``piece`` under ``block_id``."""
        client.stage_block(block_id, piece, length=len(piece), **self._call_options(budget))

    # --- plumbing ----------------------------------------------------------------------

    def _service_client(self) -> BlobServiceClient:
        with self._lock:
            if self._service is None:
                self._service = self._settings.connection.client()
            return self._service

    def _blob(self, key: str) -> BlobClient:
        return self._service_client().get_blob_client(self.container, self._root.blob_name(key))

    def _run(self, method: str, key: str, attempt: Callable[[Budget], _T]) -> _T:
        """One request through the retry loop; SDK errors reach the caller untranslated."""
        return call(self._settings.retry, self._limits, f"{method} {self.url(key)}", attempt)

    def _call_options(self, budget: Budget, requests: int = 1) -> dict[str, Any]:
        """Keywords for one SDK call: the server-side timeout, and socket timeouts that
        fit the attempt's ``budget`` (see :meth:`Budget.transport`)."""
        return {"timeout": self._settings.timeout, **budget.transport(requests)}

    def _write_error(self, exc: AzureError, key: str, expect: Expect) -> Exception:
        """What a failed write means: a conflict if its condition failed, else a storage error."""
        where = self.url(key)
        if isinstance(exc, ResourceModifiedError):  # 412 ConditionNotMet
            if expect is ABSENT:
                return AlreadyExistsError(f"{where} already exists")
            return ConflictError(f"{where} changed since it was read")
        code = error_code(exc)
        if isinstance(exc, ResourceExistsError) and code == "BlobAlreadyExists":
            return AlreadyExistsError(f"{where} already exists")
        if isinstance(exc, ResourceNotFoundError) and code == "BlobNotFound":
            return ConflictError(f"{where} was deleted since it was read")
        return self._translate(exc, key)

    def _translate(self, exc: AzureError, key: str) -> StorageError:
        # Callers raise the result after leaving the SDK error's handler, so that the SDK
        # error (whose text may quote a signed URL) is not attached as the context.
        return translate(exc, where=self.url(key), container=self.container, account=self.account)


def _conditions(expect: Expect) -> dict[str, Any]:
    """azure-storage-blob keywords for ``If-None-Match: *`` or ``If-Match: <etag>``."""
    if expect is ABSENT:
        return {"match_condition": MatchConditions.IfMissing}
    if isinstance(expect, str):
        return {"etag": expect, "match_condition": MatchConditions.IfNotModified}
    return {}
