"""Storage options, read the way adlfs reads them, and the client built from them.

The options a user already passes to adlfs (``fsspec.open("az://...", **options)``) mean
the same here, with the same environment-variable fallbacks and the same precedence:

* ``connection_string`` (``AZURE_STORAGE_CONNECTION_STRING``): used alone when given;
* ``account_name`` (``AZURE_STORAGE_ACCOUNT_NAME``), or the account of an
  ``abfs://container@ACCOUNT.dfs.core.windows.net`` root;
* ``account_key`` (``AZURE_STORAGE_ACCOUNT_KEY``): shared key;
* ``sas_token`` (``AZURE_STORAGE_SAS_TOKEN``): with or without the leading ``?``;
* ``credential``: an account key or SAS string, ``AzureNamedKeyCredential``,
  ``AzureSasCredential``, or a *synchronous* ``TokenCredential``;
* ``client_id``, ``client_secret``, ``tenant_id`` (``AZURE_STORAGE_CLIENT_ID``, ...): a
  service principal;
* ``anon`` (``AZURE_STORAGE_ANON``): no credentials (a public container);
* ``account_host``: ``https://<account_host>`` instead of the account's default endpoint.

With none of them and ``anon`` false, ``azure.identity.DefaultAzureCredential`` is used
(managed identity, ``az login``, environment), as adlfs does.
``connection_timeout`` (default 5) and ``read_timeout`` (default 30), in seconds, bound
each attempt: establishing a connection, and each wait for the next bytes of an answer;
``timeout`` (whole seconds) is the server-side timeout of every request. adlfs options that only
shape adlfs's own file objects (``blocksize``, ``max_concurrency``, caching and listing
options) are accepted and have no effect. Any other name is refused, so a typo is caught.

Options of this backend (they start with ``etl_manifests_``):

``etl_manifests_retries`` / ``etl_manifests_retry_base``
    attempts per request on transient failures, and the first back-off (see ``_retry``);
``etl_manifests_operation_timeout``
    seconds one request may take with all its attempts and back-off pauses (120);
``etl_manifests_max_single_put``
    bodies up to this many bytes are one Put Blob, larger ones go as blocks (64 MiB);
``etl_manifests_block_size``
    bytes per staged block on the block path (8 MiB).

Secrets live only in the private attributes of :class:`Connection`; its ``repr`` and every
message built here name the account and the kind of authentication, never a value.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.storage.blob import BlobServiceClient
from etl_manifests import RetryPolicy
from etl_manifests.errors import BackendConfigurationError

from . import __version__
from ._retry import OPERATION_TIMEOUT_OPTION, pop_retry_policy

__all__ = [
    "BLOCK_SIZE_OPTION",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_SINGLE_PUT",
    "DEFAULT_OPERATION_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "MAX_SINGLE_PUT_OPTION",
    "OPERATION_TIMEOUT_OPTION",
    "Connection",
    "Settings",
    "read_options",
]

MAX_SINGLE_PUT_OPTION: Final = "etl_manifests_max_single_put"
BLOCK_SIZE_OPTION: Final = "etl_manifests_block_size"
DEFAULT_MAX_SINGLE_PUT: Final = 64 * 2**20
DEFAULT_BLOCK_SIZE: Final = 8 * 2**20
# The SDK's own defaults (20 s to connect, 60 s per read) let one attempt against an
# endpoint that never answers take a minute; these match the built-in backends.
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
DEFAULT_READ_TIMEOUT: Final = 30.0
DEFAULT_OPERATION_TIMEOUT: Final = 120.0
# Azure's limits: one Put Blob carries at most 5000 MiB, one Put Block at most 4000 MiB.
_PUT_BLOB_LIMIT: Final = 5000 * 2**20
_PUT_BLOCK_LIMIT: Final = 4000 * 2**20
# Reads ask for this much in their first (normally only) GET, so that a manifest arrives in
# one response together with its ETag. Larger blobs continue in ranged GETs that the SDK
# pins to that ETag.
_SINGLE_GET: Final = 256 * 2**20

_ENV: Final = {
    "account_name": "AZURE_STORAGE_ACCOUNT_NAME",
    "account_key": "AZURE_STORAGE_ACCOUNT_KEY",
    "connection_string": "AZURE_STORAGE_CONNECTION_STRING",
    "sas_token": "AZURE_STORAGE_SAS_TOKEN",
    "client_id": "AZURE_STORAGE_CLIENT_ID",
    "client_secret": "AZURE_STORAGE_CLIENT_SECRET",
    "tenant_id": "AZURE_STORAGE_TENANT_ID",
}
_HONOURED: Final = frozenset(
    {
        *_ENV,
        "credential",
        "anon",
        "account_host",
        "location_mode",
        "timeout",
        "connection_timeout",
        "read_timeout",
    }
)
# adlfs options about adlfs's own buffered files, caches and listings.
_NO_EFFECT: Final = frozenset(
    {
        "blocksize",
        "max_concurrency",
        "default_fill_cache",
        "default_cache_type",
        "version_aware",
        "assume_container_exists",
        "use_listings_cache",
        "listings_expiry_time",
        "max_paths",
        "skip_instance_cache",
    }
)
_OURS: Final = frozenset(
    {
        "etl_manifests_retries",
        "etl_manifests_retry_base",
        MAX_SINGLE_PUT_OPTION,
        BLOCK_SIZE_OPTION,
        OPERATION_TIMEOUT_OPTION,
    }
)
_FALSE_WORDS: Final = ("false", "0", "f", "")


class Connection:
    """How to reach one storage account: endpoint and credentials, never shown.

    :attr:`account` and :attr:`auth` are safe to print; the secrets are private.
    """

    def __init__(
        self,
        *,
        account: str,
        auth: str,
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: Any = None,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        #: The storage account name (or the endpoint's host when it names none).
        self.account = account
        #: The kind of authentication, e.g. ``"account key"`` (never a value).
        self.auth = auth
        self._connection_string = connection_string
        self._account_url = account_url
        self._credential = credential
        self._client_kwargs = dict(client_kwargs or {})

    def __repr__(self) -> str:
        return f"Connection(account={self.account!r}, auth={self.auth!r})"

    def client(self) -> BlobServiceClient:
        """A new synchronous client; azure-core's own retries are switched off in it.

        :raises BackendConfigurationError: the connection string is malformed.
        """
        kwargs = {
            **self._client_kwargs,
            # Retrying happens in exactly one place, this backend's retry loop (_retry.py):
            # a second, hidden layer would multiply attempts and blur the back-off.
            "retry_total": 0,
            "max_single_get_size": _SINGLE_GET,
            "max_chunk_get_size": _SINGLE_GET,
            "user_agent": f"etl-manifests-azure/{__version__}",
        }
        try:
            if self._connection_string is not None:
                return BlobServiceClient.from_connection_string(
                    self._connection_string, credential=self._credential, **kwargs
                )
            assert self._account_url is not None
            return BlobServiceClient(self._account_url, credential=self._credential, **kwargs)
        except ValueError:
            what = "connection_string" if self._connection_string else "credential"
        # The SDK's message may quote what it was given: say what is wrong without it, and
        # raise outside the handler, so that the SDK's error is not even the context.
        raise BackendConfigurationError(
            f"the Azure client refused the {what} storage option for account "
            f"{self.account!r}; copy the connection string or key whole from the storage "
            "account's 'Access keys' page"
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the backend needs from its storage options."""

    connection: Connection
    retry: RetryPolicy
    max_single_put: int
    block_size: int
    #: Server-side timeout of each request in seconds, or ``None`` for the service default.
    timeout: int | None
    #: Seconds an attempt waits for a connection, and for the next bytes of an answer.
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    #: Seconds one request may take with all its attempts and back-off pauses.
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT


def read_options(options: Mapping[str, Any] | None, url_account: str | None) -> Settings:
    """Read ``options`` (adlfs's names and ours) and the environment into :class:`Settings`.

    :param url_account: the account named by the root URL, if any.
    :raises BackendConfigurationError: unknown options, bad values, or no way to name
        the account.
    """
    opts = dict(options or {})
    unknown = sorted(set(opts) - _HONOURED - _NO_EFFECT - _OURS)
    if unknown:
        raise BackendConfigurationError(
            f"unknown storage option(s) {unknown} for the Azure backend; it accepts adlfs's "
            f"options ({', '.join(sorted(_HONOURED))}) and {', '.join(sorted(_OURS))}"
        )
    retry = pop_retry_policy(opts)
    max_single_put = _size(opts, MAX_SINGLE_PUT_OPTION, DEFAULT_MAX_SINGLE_PUT, 1, _PUT_BLOB_LIMIT)
    block_size = _size(opts, BLOCK_SIZE_OPTION, DEFAULT_BLOCK_SIZE, 1, _PUT_BLOCK_LIMIT)
    if opts.get("location_mode", "primary") != "primary":
        raise BackendConfigurationError(
            "location_mode must be 'primary': the secondary endpoint lags behind the primary, "
            "so a read there could return a version older than the one a writer just committed"
        )
    timeout = _seconds(opts, "timeout")
    connect_timeout = _duration(opts, "connection_timeout", DEFAULT_CONNECT_TIMEOUT)
    read_timeout = _duration(opts, "read_timeout", DEFAULT_READ_TIMEOUT)
    operation_timeout = _duration(opts, OPERATION_TIMEOUT_OPTION, DEFAULT_OPERATION_TIMEOUT)
    client_kwargs = {"connection_timeout": connect_timeout, "read_timeout": read_timeout}
    connection = _connection(opts, url_account, client_kwargs)
    return Settings(
        connection,
        retry,
        max_single_put,
        block_size,
        timeout,
        connect_timeout,
        read_timeout,
        operation_timeout,
    )


def _connection(
    opts: Mapping[str, Any], url_account: str | None, client_kwargs: Mapping[str, Any]
) -> Connection:
    """adlfs's precedence: connection string; else account + credential, key, SAS, service
    principal, anonymous, or DefaultAzureCredential."""

    def get(name: str) -> Any:
        value = opts.get(name)
        if value is None and name in _ENV:
            value = os.environ.get(_ENV[name]) or None
        return value

    anon = opts.get("anon")
    if anon is None:
        anon = os.environ.get("AZURE_STORAGE_ANON", "false")
    if isinstance(anon, str):  # from the environment, or a JSON string
        anon = anon.strip().lower() not in _FALSE_WORDS
    credential = opts.get("credential")
    _check_credential(credential)

    connection_string = get("connection_string")
    if connection_string is not None:
        # As in adlfs, a connection string is used alone: it carries its own key or SAS.
        return Connection(
            account=_account_of(str(connection_string), url_account),
            auth="connection string",
            connection_string=str(connection_string),
            client_kwargs=client_kwargs,
        )

    account = get("account_name")
    if account is not None and url_account is not None and account != url_account:
        raise BackendConfigurationError(
            f"the root names storage account {url_account!r} but the account_name option "
            f"says {account!r}; drop one of them"
        )
    account = account or url_account
    if not account:
        raise BackendConfigurationError(
            "the Azure backend needs a storage account: set the account_name (or "
            "connection_string) storage option, AZURE_STORAGE_ACCOUNT_NAME, or use a root "
            "like abfs://container@ACCOUNT.dfs.core.windows.net/prefix"
        )
    host = opts.get("account_host") or f"{account}.blob.core.windows.net"
    url = f"https://{host}"
    auth: str
    if credential is not None:
        auth = "credential"
    elif (key := get("account_key")) is not None:
        credential, auth = AzureNamedKeyCredential(str(account), str(key)), "account key"
    elif (sas := get("sas_token")) is not None:
        credential, auth = AzureSasCredential(str(sas).lstrip("?")), "SAS token"
    elif (client_id := get("client_id")) is not None:
        from azure.identity import ClientSecretCredential

        credential = ClientSecretCredential(
            tenant_id=str(get("tenant_id")),
            client_id=str(client_id),
            client_secret=str(get("client_secret")),
        )
        auth = "service principal"
    elif anon:
        auth = "anonymous"
    else:
        from azure.identity import DefaultAzureCredential

        credential, auth = DefaultAzureCredential(), "DefaultAzureCredential"
    return Connection(
        account=str(account),
        auth=auth,
        account_url=url,
        credential=credential,
        client_kwargs=client_kwargs,
    )


def _check_credential(credential: Any) -> None:
    get_token = getattr(credential, "get_token", None)
    if get_token is not None and inspect.iscoroutinefunction(get_token):
        raise BackendConfigurationError(
            "the credential storage option is an asynchronous credential; this backend "
            "needs a synchronous one (azure.identity.DefaultAzureCredential, not "
            "azure.identity.aio.DefaultAzureCredential)"
        )
    allowed = (str, dict, AzureNamedKeyCredential, AzureSasCredential)
    if credential is not None and get_token is None and not isinstance(credential, allowed):
        raise BackendConfigurationError(
            f"the credential storage option is a {type(credential).__name__}; pass an account "
            "key or SAS token string, an AzureNamedKeyCredential, an AzureSasCredential or a "
            "TokenCredential"
        )


def _account_of(connection_string: str, url_account: str | None) -> str:
    """The AccountName in a connection string, for messages only (no other field is read)."""
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "accountname" and value:
            return value.strip()
    return url_account or "(from the connection string)"


def _size(opts: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = opts.pop(name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = low - 1
    if not low <= value <= high:
        raise BackendConfigurationError(
            f"the {name} storage option must be a number of bytes from {low} to {high}"
        )
    return value


def _duration(opts: Mapping[str, Any], name: str, default: float) -> float:
    """A positive number of seconds (fractions allowed) from ``opts``, or ``default``."""
    raw = opts.get(name)
    if raw is None:
        return default
    value = math.nan
    if not isinstance(raw, bool):
        with contextlib.suppress(TypeError, ValueError):
            value = float(raw)
    if not (value > 0 and math.isfinite(value)):
        raise BackendConfigurationError(
            f"the {name} storage option must be a positive number of seconds"
        )
    return value


def _seconds(opts: Mapping[str, Any], name: str) -> int | None:
    raw = opts.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value <= 0:
        raise BackendConfigurationError(f"the {name} storage option must be whole seconds > 0")
    return value
