"""No credential ever reaches a message, a repr or a log line.

Recognisable secrets are planted (AWS key id, secret key and session token; a GCS access
token and a service-account dict with a real private key; an Azure account key and a SAS
token signed with it; passwords in URLs), then a corpus of bad-input and fault cases
runs: malformed settings, text that is not valid Unicode, options the clients cannot
use, unreachable endpoints, 403s and 500s injected by the harness proxy, roots with
credentials in them. Then every backend talks to a hostile endpoint (``_hostile.py``)
that echoes each request, headers and query, into its 403, 500 and 400 answers, into a
302's ``Location``, or resets the connection.

Every case must end in an error from our hierarchy, and every text it produced is
searched for the planted secrets, as given and percent-encoded (and, behind the hostile
endpoint, for every signature and token the requests carried): the error's ``str``,
``repr`` and ``args``, those of every exception attached to it (as cause *or* context),
the whole formatted traceback, the error's pickle, every log record of the
``etl_manifests`` loggers and of the root logger (captured at DEBUG), every warning, and
the reprs and strs of the objects involved.

The libraries underneath log credentials themselves; the last tests pin that down for
botocore and azure-core, because the documentation warns about it.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

import pytest

from conftest import record
from etl_manifests import ETLConfig, ManifestManager, open_backend
from etl_manifests.errors import ManifestError
from etl_manifests.testing import GcsServer, S3Server

from ._hostile import MODES, HostileServer

pytestmark = pytest.mark.torture

AWS_KEY = "AKIAPLANTEDKEY000001"
AWS_SECRET = "planted/Aws+Secret=Key0123456789abcdefXYZ"
AWS_SESSION = "PlantedSessionToken//FQoGZXIvYXdzEJr+planted0token"
GCS_TOKEN = "ya29.planted-gcs-access-token-0123456789"
URL_PASSWORD = "PlantedUrlPassw0rd"
PRIVATE_KEY_ID = "plantedprivatekeyid0123456789abcdef"
DEAD = "http://127.0.0.1:1"  # nothing listens on port 1

FAST = {"etl_manifests_retries": 2, "etl_manifests_retry_base": 0.001}


def _private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


PRIVATE_KEY = _private_key()
# Any line of the key's base64 body would betray it; one from the middle is searched for.
PRIVATE_KEY_LINE = PRIVATE_KEY.splitlines()[5]

SECRETS = (AWS_KEY, AWS_SECRET, AWS_SESSION, GCS_TOKEN, URL_PASSWORD, PRIVATE_KEY_ID)


def _service_account(token_uri: str, **overrides: Any) -> dict[str, Any]:
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": PRIVATE_KEY_ID,
        "private_key": PRIVATE_KEY,
        "client_email": "etl@test-project.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    info.update(overrides)
    return info


def _aws(endpoint_url: str) -> dict[str, Any]:
    return {
        "key": AWS_KEY,
        "secret": AWS_SECRET,
        "token": AWS_SESSION,
        "client_kwargs": {"endpoint_url": endpoint_url, "region_name": "us-east-1"},
        **FAST,
    }


def _with_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://planted-user:{URL_PASSWORD}@{rest}"


# --- the corpus ---------------------------------------------------------------------------


@dataclass
class Env:
    """What a case may use: monkeypatch, a scratch folder, and the emulators on demand."""

    request: pytest.FixtureRequest
    monkeypatch: pytest.MonkeyPatch
    tmp_path: Path
    objects: list[object] = field(default_factory=list)  # whose reprs are searched too

    @property
    def s3(self) -> S3Server:
        server: S3Server = self.request.getfixturevalue("s3_server")
        return server

    @property
    def gcs(self) -> GcsServer:
        server: GcsServer = self.request.getfixturevalue("gcs_server")
        return server

    def s3_bucket(self) -> str:
        bucket: str = self.request.getfixturevalue("s3_bucket")
        return bucket

    def gcs_bucket(self) -> str:
        bucket: str = self.request.getfixturevalue("gcs_bucket")
        return bucket

    def manager(self, root: str, options: dict[str, Any] | None) -> ManifestManager:
        manager = ManifestManager(root, "1.0.0", storage_options=options)
        self.objects.append(manager)
        self.objects.append(manager.backend)
        return manager

    def use(self, root: str, options: dict[str, Any] | None) -> None:
        """Open a manager, load the extractor and add a record: each step may fail."""
        manifest = self.manager(root, options).extractor
        self.objects.append(manifest)
        manifest.add_record(record(1))


Case = Callable[[Env], None]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(function: Case) -> Case:
        CASES[name] = function
        return function

    return register


# Malformed settings.


@case("settings: storage options env is a JSON string")
def _(env: Env) -> None:
    env.monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", json.dumps(f"token={GCS_TOKEN}"))
    ETLConfig()


@case("settings: storage options env is a JSON list")
def _(env: Env) -> None:
    env.monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", json.dumps([AWS_KEY, AWS_SECRET]))
    ETLConfig()


@case("settings: storage options env is not JSON")
def _(env: Env) -> None:
    env.monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", f'{{"secret": "{AWS_SECRET}"')
    ETLConfig()


@case("settings: storage options in .env are not JSON")
def _(env: Env) -> None:
    env.monkeypatch.chdir(env.tmp_path)
    env.monkeypatch.delenv("ETL_MANIFESTS_STORAGE_OPTIONS", raising=False)
    Path(".env").write_text(f"ETL_MANIFESTS_STORAGE_OPTIONS={{'token': '{GCS_TOKEN}'}}\n")
    ETLConfig()


@case("settings: manager reads a malformed storage options env")
def _(env: Env) -> None:
    env.monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", json.dumps([GCS_TOKEN]))
    ManifestManager(str(env.tmp_path / "m"), "1.0.0")


@case("settings: storage options argument of the wrong type")
def _(env: Env) -> None:
    ETLConfig(storage_options=f"key={AWS_KEY}&secret={AWS_SECRET}")  # type: ignore[arg-type]


@case("settings: version argument of the wrong type, secret beside it")
def _(env: Env) -> None:
    ETLConfig(version=[AWS_SECRET], storage_options={"secret": AWS_SECRET})  # type: ignore[arg-type]


@case("settings: credentials in manifests_dir, endpoint unreachable")
def _(env: Env) -> None:
    config = ETLConfig(
        manifests_dir=f"s3://{AWS_KEY}:{AWS_SECRET}@bucket/prefix?token={AWS_SESSION}",
        storage_options=_aws(DEAD),
    )
    env.objects.append(config)  # its repr and str are searched too
    env.use(config.get_manifests_dir(), config.storage_options)


@case("settings: lone surrogate in a storage option from the environment")
def _(env: Env) -> None:
    # json.dumps writes it as the escape \udc80: valid JSON that decodes to invalid text.
    options = {"secret": AWS_SECRET + "\udc80", "key": AWS_KEY}
    env.monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", json.dumps(options))
    ETLConfig()


# GCS: credentials gcsfs cannot use, endpoints that do not answer.


@case("gcs: raw token, token-info endpoint unreachable")
def _(env: Env) -> None:
    # gcsfs checks a raw token with Google's token-info endpoint, the token in the URL.
    # A dead proxy makes that fail the same way everywhere, and keeps the token local.
    env.monkeypatch.setenv("HTTPS_PROXY", DEAD)
    env.monkeypatch.setenv("https_proxy", DEAD)
    env.monkeypatch.delenv("NO_PROXY", raising=False)
    env.monkeypatch.delenv("no_proxy", raising=False)
    env.monkeypatch.delenv("FETCH_RAW_TOKEN_EXPIRY", raising=False)
    env.manager("gs://bucket/prefix", {"token": GCS_TOKEN, "endpoint_url": DEAD, **FAST})


@case("gcs: service account, token endpoint unreachable (password in its URL)")
def _(env: Env) -> None:
    token = _service_account(_with_password(DEAD) + "/token")
    options = {**env.gcs.storage_options, "token": token, **FAST}
    env.use(f"gs://{env.gcs_bucket()}/prefix", options)


@case("gcs: service account, token endpoint answers 404")
def _(env: Env) -> None:
    token = _service_account(env.gcs.endpoint_url + "/no-such-token-endpoint")
    options = {**env.gcs.storage_options, "token": token, **FAST}
    env.use(f"gs://{env.gcs_bucket()}/prefix", options)


@case("gcs: service-account dict without client_email")
def _(env: Env) -> None:
    token = _service_account(DEAD)
    del token["client_email"]
    env.manager("gs://bucket/prefix", {"token": token, "endpoint_url": DEAD, **FAST})


@case("gcs: service-account dict with a broken private key")
def _(env: Env) -> None:
    broken = PRIVATE_KEY.replace(PRIVATE_KEY_LINE, PRIVATE_KEY_LINE[::-1])
    token = _service_account(DEAD, private_key=broken)
    env.manager("gs://bucket/prefix", {"token": token, "endpoint_url": DEAD, **FAST})


@case("gcs: token of the wrong type")
def _(env: Env) -> None:
    env.manager("gs://bucket/prefix", {"token": [GCS_TOKEN], "endpoint_url": DEAD, **FAST})


@case("gcs: credentials object, 403 from the proxy")
def _(env: Env) -> None:
    from google.oauth2.credentials import Credentials

    options = {**env.gcs.storage_options, "token": Credentials(GCS_TOKEN), **FAST}
    root = f"gs://{env.gcs_bucket()}/prefix"
    env.gcs.faults.add(status=403, times=None)
    env.use(root, options)


@case("gcs: credentials object, 403 on the upload only")
def _(env: Env) -> None:
    from google.oauth2.credentials import Credentials

    options = {**env.gcs.storage_options, "token": Credentials(GCS_TOKEN), **FAST}
    root = f"gs://{env.gcs_bucket()}/prefix"
    env.gcs.faults.add(method="POST", path_regex=r"^/upload/", status=403, times=None)
    env.use(root, options)


@case("gcs: credentials object, endpoint unreachable (password in its URL)")
def _(env: Env) -> None:
    from google.oauth2.credentials import Credentials

    options = {"token": Credentials(GCS_TOKEN), "endpoint_url": _with_password(DEAD), **FAST}
    env.use("gs://bucket/prefix", options)


@case("gcs: persistent 503")
def _(env: Env) -> None:
    from google.oauth2.credentials import Credentials

    options = {**env.gcs.storage_options, "token": Credentials(GCS_TOKEN), **FAST}
    root = f"gs://{env.gcs_bucket()}/prefix"
    env.gcs.faults.add(status=503, times=None)
    env.use(root, options)


@case("gcs: credentials in the root URL, bucket missing")
def _(env: Env) -> None:
    root = _with_password(f"gs://missing-{uuid.uuid4().hex[:12]}/prefix")
    env.use(root, {**env.gcs.storage_options, **FAST})


# S3: options the client cannot use, endpoints that do not answer, refusals.


@case("s3: endpoint unreachable (password in its URL)")
def _(env: Env) -> None:
    env.use("s3://bucket/prefix", _aws(_with_password(DEAD)))


@case("s3: 403 from the proxy on every request")
def _(env: Env) -> None:
    root = f"s3://{env.s3_bucket()}/prefix"
    env.s3.faults.add(status=403, times=None)
    env.use(root, _aws(env.s3.endpoint_url))


@case("s3: 403 on the commit only")
def _(env: Env) -> None:
    root = f"s3://{env.s3_bucket()}/prefix"
    env.s3.faults.add(method="PUT", header="x-amz-copy-source", status=403, times=None)
    env.use(root, _aws(env.s3.endpoint_url))


@case("s3: persistent 500, staged object not deleted")
def _(env: Env) -> None:
    root = f"s3://{env.s3_bucket()}/prefix"
    env.s3.faults.add(method="DELETE", status=500, times=None)
    env.s3.faults.add(method="PUT", header="x-amz-copy-source", status=500, times=None)
    env.use(root, _aws(env.s3.endpoint_url))


@case("s3: connection resets")
def _(env: Env) -> None:
    root = f"s3://{env.s3_bucket()}/prefix"
    env.s3.faults.add(action="reset", times=None)
    env.use(root, _aws(env.s3.endpoint_url))


@case("s3: unknown s3fs option holding a secret")
def _(env: Env) -> None:
    env.use(f"s3://{env.s3_bucket()}/prefix", {**_aws(env.s3.endpoint_url), "bogus": AWS_SECRET})


@case("s3: client_kwargs of the wrong type")
def _(env: Env) -> None:
    env.use("s3://bucket/prefix", {**_aws(DEAD), "client_kwargs": _with_password(DEAD)})


@case("s3: endpoint that is not a URL")
def _(env: Env) -> None:
    env.use("s3://bucket/prefix", _aws(f"planted-user:{URL_PASSWORD}@not a url"))


@case("s3: retry option holding a secret")
def _(env: Env) -> None:
    env.use("s3://bucket/prefix", {**_aws(DEAD), "etl_manifests_retry_base": AWS_SECRET})


@case("s3: bad commit mode")
def _(env: Env) -> None:
    env.use("s3://bucket/prefix", {**_aws(DEAD), "etl_manifests_commit": AWS_SECRET})


@case("s3: credentials in the root URL, bucket missing")
def _(env: Env) -> None:
    root = f"s3://{AWS_KEY}:{AWS_SECRET}@missing-{uuid.uuid4().hex[:12]}/prefix"
    env.use(root, _aws(env.s3.endpoint_url))


@case("s3: lone surrogate in the secret passed in code")
def _(env: Env) -> None:
    env.use("s3://bucket/prefix", {**_aws(DEAD), "secret": AWS_SECRET + "\udc80"})


@case("gcs: lone surrogate in the token passed in code")
def _(env: Env) -> None:
    env.manager("gs://bucket/prefix", {"token": GCS_TOKEN + "\udc80", "endpoint_url": DEAD})


# Roots.


@case("root: unknown scheme with credentials")
def _(env: Env) -> None:
    env.use(_with_password("nosuchscheme://host/path"), {"secret": AWS_SECRET})


@case("root: memory root with credentials, then another root")
def _(env: Env) -> None:
    env.use(_with_password(f"memory://secrets-{uuid.uuid4().hex}"), {"token": GCS_TOKEN})
    env.manager(_with_password("memory://other"), {"token": GCS_TOKEN})


@case("root: open_backend on a root the backend rejects")
def _(env: Env) -> None:
    open_backend(_with_password("s3:///no-bucket"), {"secret": AWS_SECRET})


# --- the search ---------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception reachable from it as a cause or a context."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _texts(exc: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(exc))]
    for each in _chain(exc):
        texts += [str(each), repr(each), repr(each.args)]
    try:
        # What crosses a process boundary (multiprocessing, dask) is the pickle.
        texts.append(pickle.dumps(exc).decode("latin-1"))
    except Exception as failure:
        texts.append(f"<cannot pickle: {type(failure).__name__}>")
    return texts


def _forms(secret: str) -> set[str]:
    """``secret`` as given and as it travels in a URL (percent-encoded either way)."""
    return {secret, quote(secret, safe=""), quote_plus(secret, safe="")}


def _leaks(texts: list[str], extra: tuple[str, ...] = ()) -> list[str]:
    # Any case: a value lower-cased on its way into a message is still a leak.
    found = []
    forms = {
        form.lower() for secret in (*SECRETS, PRIVATE_KEY_LINE, *extra) for form in _forms(secret)
    }
    for text in texts:
        for form in forms:
            if form in text.lower():
                found.append(f"{form[:12]}... in: {text[:400]}")
    return found


SEARCHED: dict[str, int] = {"cases": 0, "texts": 0}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if SEARCHED["cases"]:
        print(
            f"\n[secrets] {SEARCHED['cases']} cases, {SEARCHED['texts']} texts searched "
            "(messages, args, chained errors, tracebacks, pickles, log lines, warnings, "
            "reprs and strs): 0 leaks"
        )


@pytest.fixture
def env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    monkeypatch.delenv("ETL_MANIFESTS_STORAGE_OPTIONS", raising=False)
    return Env(request, monkeypatch, tmp_path)


def _search(
    run: Callable[[], None],
    env: Env,
    caplog: pytest.LogCaptureFixture,
    extra: Callable[[], tuple[str, ...]] = tuple,
) -> BaseException:
    """Run ``run``, which must fail; search all it left behind for the planted secrets
    and for those ``extra`` names once it has run."""
    caplog.set_level(logging.DEBUG)  # the root logger: everything that propagates
    caplog.set_level(logging.DEBUG, logger="etl_manifests")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Exception) as info:  # noqa: PT011 - the type is checked below
            run()
    error = info.value
    texts = _texts(error)
    texts += [repr(obj) for obj in env.objects]
    texts += [str(obj) for obj in env.objects]
    texts += [str(w.message) for w in caught]
    ours = [r for r in caplog.records if r.name == "root" or r.name.startswith("etl_manifests")]
    for log in ours:
        texts.append(log.getMessage())
        if log.exc_info and log.exc_info[1] is not None:
            texts += _texts(log.exc_info[1])
    leaks = _leaks(texts, extra())
    assert not leaks, leaks
    SEARCHED["cases"] += 1
    SEARCHED["texts"] += len(texts)
    assert isinstance(error, ManifestError), (
        f"untyped {type(error).__name__}: {_texts(error)[0][-600:]}"
    )
    return error


@pytest.mark.parametrize("name", list(CASES))
def test_no_secret_in_any_message_repr_or_log_line(
    name: str, env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    _search(lambda: CASES[name](env), env, caplog)


# --- a hostile endpoint: every error repeats the request -----------------------------------

AZURE_ACCOUNT = "plantedaccount"
AZURE_KEY = base64.b64encode(b"planted-azure-account-key-0123456789abcdef").decode()
AZURE_CONTAINER = "manifests"


def _azure_sas() -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        AZURE_ACCOUNT,
        AZURE_CONTAINER,
        account_key=AZURE_KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=datetime(2099, 1, 1, tzinfo=UTC),
    )


def _azure_secrets() -> tuple[str, ...]:
    sas = _azure_sas()
    return (AZURE_KEY, sas, parse_qs(sas)["sig"][0])


def _hostile_options(backend: str, url: str) -> tuple[str, dict[str, Any]]:
    """The root and storage options that point ``backend`` at the hostile endpoint."""
    if backend == "s3":
        return "s3://bucket/prefix", _aws(url)
    if backend == "gcs":
        from google.oauth2.credentials import Credentials

        return "gs://bucket/prefix", {"token": Credentials(GCS_TOKEN), "endpoint_url": url, **FAST}
    if backend == "gcs-service-account":
        # The token request goes to the hostile endpoint too, with the signed assertion.
        token = _service_account(url + "/token")
        return "gs://bucket/prefix", {"token": token, "endpoint_url": url, **FAST}
    endpoint = f"{url}/{AZURE_ACCOUNT}"
    if backend == "azure-key":
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};"
            f"AccountKey={AZURE_KEY};BlobEndpoint={endpoint}"
        )
    else:
        connection = f"BlobEndpoint={endpoint};SharedAccessSignature={_azure_sas()}"
    return f"az://{AZURE_CONTAINER}/prefix", {"connection_string": connection, **FAST}


HOSTILE_BACKENDS = ("s3", "gcs", "gcs-service-account", "azure-key", "azure-sas")
#: What each hostile case does: open a manager and add a record (loading first), or
#: write one object straight through the backend (the write path, without a load).
HOSTILE_ACTIONS = ("manager", "write")


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


@pytest.mark.parametrize("action", HOSTILE_ACTIONS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend", HOSTILE_BACKENDS)
def test_no_secret_from_an_endpoint_that_echoes_the_request(
    backend: str,
    mode: str,
    action: str,
    env: Env,
    hostile_server: HostileServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hostile_server.mode = mode
    before = hostile_server.requests
    root, options = _hostile_options(backend, hostile_server.url)
    planted = _azure_secrets() if backend.startswith("azure") else ()

    def run() -> None:
        if action == "manager":
            env.use(root, options)
            return
        store = open_backend(root, options)
        env.objects.append(store)
        store.write("extractor_v1.0.0.json", b"{}")

    # Besides what was planted: every signature and token the requests carried.
    _search(run, env, caplog, lambda: (*planted, *hostile_server.credentials))
    # The endpoint was reached and saw credentials: the echo had something to betray.
    assert hostile_server.requests > before
    assert hostile_server.credentials


def test_the_corpus_reaches_every_kind_of_failure() -> None:
    # Keep the corpus honest: settings, both clouds, faults and roots are all in it.
    kinds = {name.split(":")[0] for name in CASES}
    assert kinds == {"settings", "gcs", "s3", "root"}
    assert len(CASES) >= 25


def test_botocore_itself_logs_credentials_at_debug(
    s3_server: S3Server, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    # docs/guarantees.md warns that DEBUG logging of botocore prints credentials; this
    # pins that down (if it fails, botocore stopped doing it: update the docs).
    caplog.set_level(logging.DEBUG)
    manager = ManifestManager(
        f"s3://{s3_bucket}/prefix", "1.0.0", storage_options=_aws(s3_server.endpoint_url)
    )
    manager.extractor.add_record(record(1))
    theirs = [
        r.getMessage() for r in caplog.records if r.name.startswith(("botocore", "aiobotocore"))
    ]
    assert any(AWS_SESSION in text for text in theirs)
    assert any(AWS_KEY in text for text in theirs)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("etl_manifests")]
    assert not _leaks(ours)


def test_azure_core_itself_logs_an_echoed_request_id_at_info(
    hostile_server: HostileServer, caplog: pytest.LogCaptureFixture
) -> None:
    # docs/guarantees.md warns that azure-core logs x-ms-request-id as received, so a
    # server echoing the request there gets the SAS signature into azure-core's INFO
    # line; this pins that down (if it fails, azure-core stopped doing it: update the
    # docs). Our own loggers stay clean.
    caplog.set_level(logging.INFO)
    hostile_server.mode = "403"
    root, options = _hostile_options("azure-sas", hostile_server.url)
    with pytest.raises(ManifestError):
        open_backend(root, options).read("extractor_v1.0.0.json")
    signature = parse_qs(_azure_sas())["sig"][0]
    theirs = [r.getMessage() for r in caplog.records if r.name.startswith("azure")]
    assert any(quote(signature, safe="") in text for text in theirs)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("etl_manifests")]
    assert not _leaks(ours, _azure_secrets())
