"""Root URLs and storage options, read the way adlfs reads them (no network needed)."""

from __future__ import annotations

from typing import Any

import pytest
from etl_manifests.errors import BackendConfigurationError

from etl_manifests_azure._options import read_options
from etl_manifests_azure._root import parse_root
from etl_manifests_azure.backend import AzureBackend

KEY = "a2V5LW9mLXRoZS1hY2NvdW50"
ENV_NAMES = (
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_ID",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_STORAGE_TENANT_ID",
    "AZURE_STORAGE_ANON",
)


@pytest.fixture(autouse=True)
def _no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


# --- roots -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root", "container", "prefix", "account"),
    [
        ("az://box/manifests", "box", "manifests", None),
        ("AZ://box", "box", "", None),
        ("abfs://box/a/b/", "box", "a/b", None),
        ("abfss://box/a", "box", "a", None),
        ("abfs://box@acct.dfs.core.windows.net/a/b", "box", "a/b", "acct"),
        ("abfs://acct.dfs.core.windows.net/box/a", "box", "a", "acct"),
        ("az://$root/a", "$root", "a", None),
    ],
)
def test_roots_are_read_as_adlfs_reads_them(
    root: str, container: str, prefix: str, account: str | None
) -> None:
    parsed = parse_root(root)
    assert (parsed.container, parsed.prefix, parsed.account_name) == (container, prefix, account)


def test_the_root_is_normalised_without_host_or_account() -> None:
    backend = AzureBackend("abfs://box@acct.dfs.core.windows.net/a/b/", {"account_key": KEY})
    assert backend.root == "abfs://box/a/b"
    assert backend.url("m.json") == "abfs://box/a/b/m.json"
    assert repr(backend) == "AzureBackend('abfs://box/a/b')"
    assert backend.account == "acct"


@pytest.mark.parametrize(
    "root",
    ["s3://box/a", "az://", "az:///a", "az://Box/a", "az://ab/a", "az://a--b/x", "az://-ab/x"],
)
def test_bad_roots_are_refused(root: str) -> None:
    with pytest.raises(BackendConfigurationError, match=r"root|container"):
        parse_root(root)


def test_a_query_string_is_refused_without_being_echoed() -> None:
    with pytest.raises(BackendConfigurationError, match="sas_token") as info:
        parse_root("az://box/a?sv=2020&sig=PLANTEDSIGNATURE")
    assert "PLANTEDSIGNATURE" not in str(info.value)


# --- options -----------------------------------------------------------------------------


def _auth(options: dict[str, Any], url_account: str | None = None) -> str:
    return read_options(options, url_account).connection.auth


def test_adlfs_precedence_of_credentials() -> None:
    conn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + KEY
    assert _auth({"connection_string": conn, "account_key": KEY}) == "connection string"
    assert _auth({"account_name": "acct", "credential": KEY, "account_key": KEY}) == "credential"
    assert _auth({"account_name": "acct", "account_key": KEY, "sas_token": "sv=1"}) == "account key"
    assert _auth({"account_name": "acct", "sas_token": "?sv=1&sig=x"}) == "SAS token"
    principal = {"account_name": "acct", "client_id": "i", "client_secret": "s", "tenant_id": "t"}
    assert _auth(principal) == "service principal"
    assert _auth({"account_name": "acct", "anon": True}) == "anonymous"
    assert _auth({"account_name": "acct"}) == "DefaultAzureCredential"


def test_environment_fallbacks_are_adlfs_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "envacct")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", KEY)
    settings = read_options({}, None)
    assert (settings.connection.account, settings.connection.auth) == ("envacct", "account key")
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_KEY")
    monkeypatch.setenv("AZURE_STORAGE_ANON", "true")
    assert _auth({}) == "anonymous"


def test_anon_may_be_a_string_as_in_the_environment() -> None:
    assert _auth({"account_name": "acct", "anon": "false"}) == "DefaultAzureCredential"
    assert _auth({"account_name": "acct", "anon": "True"}) == "anonymous"


def test_the_account_may_come_from_the_root() -> None:
    settings = read_options({"account_key": KEY}, "fromurl")
    assert settings.connection.account == "fromurl"


def test_conflicting_accounts_are_refused() -> None:
    with pytest.raises(BackendConfigurationError, match="drop one"):
        read_options({"account_name": "one", "account_key": KEY}, "two")


def test_no_account_at_all_is_refused_with_the_ways_to_name_one() -> None:
    with pytest.raises(BackendConfigurationError, match=r"account_name.*connection_string"):
        read_options({"account_key": KEY}, None)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(BackendConfigurationError, match="acount_key") as info:
        read_options({"account_name": "acct", "acount_key": KEY}, None)
    assert KEY not in str(info.value)


def test_adlfs_options_without_meaning_here_are_accepted() -> None:
    options = {"account_name": "acct", "anon": True, "blocksize": 2**20, "max_concurrency": 4}
    assert _auth(options) == "anonymous"


def test_the_secondary_location_is_refused() -> None:
    with pytest.raises(BackendConfigurationError, match="primary"):
        read_options({"account_name": "acct", "anon": True, "location_mode": "secondary"}, None)


def test_an_async_credential_is_refused() -> None:
    class AsyncCredential:
        async def get_token(self, *scopes: str) -> object:
            raise NotImplementedError

    with pytest.raises(BackendConfigurationError, match="synchronous"):
        read_options({"account_name": "acct", "credential": AsyncCredential()}, None)


def test_a_credential_of_an_unknown_type_is_refused() -> None:
    with pytest.raises(BackendConfigurationError, match="int"):
        read_options({"account_name": "acct", "credential": 42}, None)


@pytest.mark.parametrize(
    "options",
    [
        {"etl_manifests_max_single_put": 0},
        {"etl_manifests_block_size": "big"},
        {"etl_manifests_block_size": 5000 * 2**20},
        {"etl_manifests_retries": 0},
        {"etl_manifests_retry_base": -1},
        {"timeout": 0},
        {"read_timeout": "soon"},
    ],
)
def test_bad_values_of_our_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(BackendConfigurationError):
        read_options({"account_name": "acct", "anon": True, **options}, None)


def test_our_options_are_read() -> None:
    settings = read_options(
        {
            "account_name": "acct",
            "anon": True,
            "etl_manifests_max_single_put": 1000,
            "etl_manifests_block_size": 300,
            "etl_manifests_retries": 2,
            "timeout": 30,
        },
        None,
    )
    assert (settings.max_single_put, settings.block_size) == (1000, 300)
    assert settings.retry.max_attempts == 2
    assert settings.timeout == 30


def test_a_malformed_connection_string_is_refused_without_being_echoed() -> None:
    backend = AzureBackend("az://box/a", {"connection_string": f"AccountKey{KEY};nonsense"})
    with pytest.raises(BackendConfigurationError, match="connection_string") as info:
        backend.read("m.json")
    assert KEY not in str(info.value)
    assert info.value.__cause__ is None
    # Not even as the context: the SDK's ValueError quotes the connection string.
    assert info.value.__context__ is None
