"""Root URLs: ``az://container/prefix`` and ``abfs://container/prefix``, as adlfs reads them.

The URL is split by adlfs's own ``AzureBlobFileSystem`` class methods, so every form adlfs
accepts means the same here, including the account-qualified ones:

* ``az://container/prefix``, ``abfs://container/prefix``, ``abfss://container/prefix``;
* ``abfs://container@account.dfs.core.windows.net/prefix`` (the account name comes from
  the host);
* ``abfs://account.dfs.core.windows.net/container/prefix``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from adlfs import AzureBlobFileSystem
from etl_manifests.errors import BackendConfigurationError

__all__ = ["SCHEMES", "AzureRoot", "parse_root"]

#: URL schemes this backend serves (adlfs's protocols).
SCHEMES: Final = ("az", "abfs", "abfss")

# Azure's rules: 3 to 63 characters, lower-case letters, digits and single hyphens, starting
# and ending with a letter or digit; "$root" and "$web" are the two special containers.
_CONTAINER_RE: Final = re.compile(r"[a-z0-9](?:-?[a-z0-9])*")
_SPECIAL_CONTAINERS: Final = frozenset({"$root", "$web"})


@dataclass(frozen=True, slots=True)
class AzureRoot:
    """A parsed root: container, key prefix and, if the URL named one, the account."""

    scheme: str
    container: str
    prefix: str
    account_name: str | None = None

    @property
    def url(self) -> str:
        """``scheme://container/prefix``: the root as shown in messages (no host, no secret)."""
        base = f"{self.scheme}://{self.container}"
        return f"{base}/{self.prefix}" if self.prefix else base

    def blob_name(self, key: str) -> str:
        """The blob name of ``key`` below the prefix."""
        return f"{self.prefix}/{key}" if self.prefix else key


def parse_root(root: str) -> AzureRoot:
    """Split an ``az://``/``abfs://``/``abfss://`` root URL.

    :raises BackendConfigurationError: another scheme, a query string, no container, or a
        container name Azure would refuse.
    """
    scheme, sep, rest = root.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise BackendConfigurationError(
            "an Azure root must look like az://container/prefix or abfs://container/prefix"
        )
    if "?" in rest or "#" in rest:
        # Never echo the URL: a query string here is most likely a SAS token.
        raise BackendConfigurationError(
            f"an {scheme}:// root takes no query string or fragment; pass a SAS token as the "
            "'sas_token' storage option"
        )
    # adlfs's own parsing, so that a root means here what it means to adlfs.
    path: str = AzureBlobFileSystem._strip_protocol(f"{scheme}://{rest}")
    from_url: dict[str, object] = AzureBlobFileSystem._get_kwargs_from_urls(f"{scheme}://{rest}")
    container, _, prefix = path.strip("/").partition("/")
    if not container:
        raise BackendConfigurationError(
            f"{scheme}://{rest} names no container; use {scheme}://container/prefix"
        )
    valid = _CONTAINER_RE.fullmatch(container) and 3 <= len(container) <= 63
    if not valid and container not in _SPECIAL_CONTAINERS:
        raise BackendConfigurationError(
            f"{container!r} is not a valid Azure container name: use 3 to 63 lower-case "
            "letters, digits and single hyphens, starting with a letter or digit"
        )
    account = from_url.get("account_name")
    return AzureRoot(
        scheme=scheme,
        container=container,
        prefix=prefix.strip("/"),
        account_name=str(account) if account else None,
    )
