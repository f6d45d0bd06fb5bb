"""Reliability, round two: each test here failed on the release before the fix it guards.

Local version tokens on coarse-timestamp filesystems, roots that are only a scheme,
duplicate JSON keys, typed errors for bad input, the memory of the corrupt-file path,
missing optional dependencies, configuration objects, and messages that name the right
culprit.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import subprocess
import sys
import tomllib
import tracemalloc
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import checksum, record
from etl_manifests import (
    MAX_REVISION,
    BackendConfigurationError,
    ConflictError,
    CorruptManifestError,
    ETLConfig,
    InvalidNameError,
    InvalidRecordError,
    ManifestManager,
    PermissionDeniedError,
    RevisionLimitError,
    StorageError,
    UnknownFieldError,
    open_backend,
)
from etl_manifests.backends import local
from etl_manifests.backends.local import LocalBackend
from etl_manifests.document import decode
from torture._support import KEY, TESTS_DIR, Target

pytestmark = pytest.mark.torture


# --- local version tokens on coarse-timestamp filesystems ------------------------------


def _same_size_commits_keep_tokens_apart(backend: LocalBackend, rounds: int = 5) -> None:
    """A reader's token must go stale after two same-size commits, however fast they come.

    Two same-size versions written within one timestamp tick, on a filesystem that hands
    freed inode numbers out again, used to get the identity of the version before them.
    """
    backend.write("m.json", b"version-0")
    for n in range(rounds):
        held = backend.read("m.json")  # a reader that will write later
        first = backend.write("m.json", f"version-{n}a".encode()[:9], expect=held.version)
        second = backend.write("m.json", f"version-{n}b".encode()[:9], expect=first)
        assert len({held.version, first, second}) == 3
        with pytest.raises(ConflictError):
            backend.write("m.json", b"stale-one", expect=held.version)
        with pytest.raises(ConflictError):
            backend.write("m.json", b"stale-two", expect=first)
        assert backend.read("m.json") == local.Blob(f"version-{n}b".encode()[:9], second)


class _CoarseFilesystem(types.SimpleNamespace):
    """The ``os`` module as seen on a filesystem with whole-second mtimes that reuses a
    single inode number for every new file (the worst case of inode reuse)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_times: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def _coarse(st: os.stat_result) -> os.stat_result:
        _cls, (fields, extra) = st.__reduce__()  # type: ignore[misc]
        fields = list(fields)
        fields[1] = 1  # st_ino
        seconds = st.st_mtime_ns // 1_000_000_000
        fields[8] = seconds  # integer st_mtime
        extra = dict(extra, st_mtime=float(seconds), st_mtime_ns=seconds * 1_000_000_000)
        return os.stat_result(fields, extra)

    def stat(self, path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        return self._coarse(os.stat(path, *args, **kwargs))

    def fstat(self, fd: int) -> os.stat_result:
        return self._coarse(os.fstat(fd))

    def utime(self, path: Any, *args: Any, ns: tuple[int, int], **kwargs: Any) -> None:
        self.set_times.append(ns[1])
        whole = tuple(t // 1_000_000_000 * 1_000_000_000 for t in ns)
        os.utime(path, *args, ns=whole, **kwargs)


def test_tokens_differ_on_simulated_one_second_filesystem_with_inode_reuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coarse = _CoarseFilesystem()
    monkeypatch.setattr(local, "os", coarse)
    _same_size_commits_keep_tokens_apart(LocalBackend(str(tmp_path)))
    # The commits had to raise their mtimes by whole seconds to stay apart.
    assert any(t % 1_000_000_000 == 0 for t in coarse.set_times)


def test_filesystem_ignoring_set_mtimes_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    coarse = _CoarseFilesystem()
    coarse.utime = lambda path, *args, **kwargs: None  # type: ignore[method-assign]
    monkeypatch.setattr(local, "os", coarse)
    backend = LocalBackend(str(tmp_path))
    token = backend.write("m.json", b"one")
    with pytest.raises(local.StorageError, match="modification times"):
        backend.write("m.json", b"two", expect=token)
    assert backend.read("m.json").data == b"one"


@pytest.fixture
def coarse_ext4(tmp_path: Path) -> Iterator[Path]:
    """A loop-mounted ext4 with 128-byte inodes: mtimes kept to the second only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop filesystem needs root (CI runs as root)")
    if shutil.which("mkfs.ext4") is None or shutil.which("mount") is None:
        pytest.skip("mkfs.ext4 or mount is not installed")
    image, mountpoint = tmp_path / "ext4.img", tmp_path / "mnt"
    mountpoint.mkdir()
    with open(image, "wb") as f:
        f.truncate(64 * 2**20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-I", "128", str(image)], check=True)
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a loop device here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_tokens_differ_on_ext4_with_one_second_timestamps(coarse_ext4: Path) -> None:
    probe = coarse_ext4 / "probe"
    probe.write_bytes(b"")
    os.utime(probe, ns=(1_500_000_123, 1_500_000_123))
    assert probe.stat().st_mtime_ns == 1_000_000_000, "the filesystem keeps sub-second mtimes"
    _same_size_commits_keep_tokens_apart(LocalBackend(str(coarse_ext4 / "manifests")), rounds=10)


def test_create_only_writes_take_no_lock_file(tmp_path: Path) -> None:
    backend = LocalBackend(str(tmp_path))
    tokens = {backend.write(f"log/{n:08d}.json", b"{}", expect=local.ABSENT) for n in range(5)}
    assert len(tokens) == 5
    with pytest.raises(local.AlreadyExistsError):
        backend.write("log/00000003.json", b"{}", expect=local.ABSENT)
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == [
        f"{n:08d}.json" for n in range(5)
    ]
    # A create's token is a real version: a replace with it succeeds once.
    token = backend.write("m.json", b"one", expect=local.ABSENT)
    backend.write("m.json", b"two", expect=token)
    with pytest.raises(ConflictError):
        backend.write("m.json", b"three", expect=token)


# --- a root that is only a scheme never becomes a local folder -------------------------

SCHEME_ONLY = ["s3://", "gs://", "memory://", "sqlite://", "s3:///", "memory:///", "file://"]
NO_SLASHES = ["s3:bucket/prefix", "s3:/bucket/prefix", "memory:name"]


@pytest.mark.parametrize("root", SCHEME_ONLY + NO_SLASHES + ["", "  "])
def test_url_shaped_root_without_location_is_refused(
    root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BackendConfigurationError) as info:
        ManifestManager(root, "1.0.0")
    assert "root" in str(info.value)
    assert ManifestManager.instance() is None
    with pytest.raises(BackendConfigurationError):
        open_backend(root)
    monkeypatch.setenv("ETL_MANIFESTS_MANIFESTS_DIR", root)
    with pytest.raises(BackendConfigurationError):
        ETLConfig().get_manifests_dir()
    assert list(tmp_path.iterdir()) == []  # no folder named "s3:" (or anything else)


def test_scheme_only_root_from_an_unset_variable_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUCKET", raising=False)
    # What the shell makes of ETL_MANIFESTS_MANIFESTS_DIR="s3://${BUCKET}" with BUCKET unset.
    monkeypatch.setenv("ETL_MANIFESTS_MANIFESTS_DIR", "s3://" + os.environ.get("BUCKET", ""))
    with pytest.raises(BackendConfigurationError, match="only a scheme"):
        ManifestManager.from_config(ETLConfig()).extractor.add_record(record(1))
    assert list(tmp_path.iterdir()) == []


def test_file_url_of_the_root_folder_is_the_root_folder() -> None:
    assert ManifestManager("file:///", "1.0.0").backend.root == "/"
    assert open_backend("file:///tmp/").root == "/tmp"


def test_credentials_in_a_bucketless_root_are_not_echoed() -> None:
    for root in ("s3://user:hunter2@/prefix", "s3://user:hunter2@"):
        with pytest.raises(BackendConfigurationError) as info:
            ManifestManager(root, "1.0.0")
        assert "hunter2" not in str(info.value)


# --- duplicate JSON keys ---------------------------------------------------------------


def _stored(tmp_path: Path, n: int = 2) -> tuple[Target, str]:
    """A local target holding a valid manifest of ``n`` records, and its JSON text."""
    target = Target("local", str(tmp_path / "manifests"))
    manifest = target.manifest()
    manifest.add_records([record(i) for i in range(1, n + 1)])
    manifest.compact()  # every record in the snapshot, none left only in the log
    raw = target.raw_read()
    assert raw is not None
    return target, raw.decode()


def _record_text(text: str, n: int) -> str:
    doc = json.loads(text)
    return json.dumps(doc["records"][checksum(n)], separators=(",", ":"))


def _duplicates(text: str) -> dict[str, tuple[str, str]]:
    """Documents with one key twice, each with the word its error must name."""
    doc = json.loads(text)
    meta = json.dumps(doc["metadata"], separators=(",", ":"))
    rec1, rec2 = (_record_text(text, n) for n in (1, 2))
    return {
        "records twice, the second empty": (text[:-1] + ',"records":{}}', "records"),
        "records twice, pretty-printed": (text[:-1] + ',\n  "records" : {}\n}', "records"),
        "metadata twice": (text[:-1] + f',"metadata":{meta}}}', "metadata"),
        "a checksum twice": (
            text.replace(
                f'"{checksum(2)}":{rec2}', f'"{checksum(2)}":{rec2},"{checksum(2)}":{rec2}'
            ),
            checksum(2),
        ),
        "a field twice in a record": (
            text.replace(rec1, rec1[:-1] + ',"filename":"other.gz"}'),
            "filename",
        ),
        "a field twice, once escaped": (
            text.replace(rec1, rec1[:-1] + ',"file\\u006eame":"other.gz"}'),
            "filename",
        ),
        "a field twice in the metadata": (
            text.replace('"revision":', '"revision":7,"revision":'),
            "revision",
        ),
    }


def test_duplicate_keys_are_corrupt_and_never_overwritten(tmp_path: Path) -> None:
    target, text = _stored(tmp_path)
    for case, (bad, word) in _duplicates(text).items():
        assert json.loads(bad) is not None, case  # valid JSON: parsers accept it
        target.raw_write(bad.encode())
        with pytest.raises(CorruptManifestError) as info:
            target.manifest()
        assert "more than once" in str(info.value), case
        assert word in str(info.value), case
        for attempt in (
            lambda: target.manifest(load=False).add_record(record(3)),
            lambda: target.manifest(load=False).compact(),
        ):
            with contextlib.suppress(CorruptManifestError):
                attempt()
            assert target.raw_read() == bad.encode(), case


def test_unusual_but_valid_documents_still_load(tmp_path: Path) -> None:
    target, _ = _stored(tmp_path)
    odd = target.manifest()
    odd.add_records(
        [
            record(3, etag='W/"a:b"', filename='x":y.gz'),  # escaped quote, then a colon
            record(4, filename="ключ: значение.gz", content_type='text/plain; a="b:c"'),
        ]
    )
    odd.compact()
    raw = target.raw_read()
    assert raw is not None
    pretty = json.dumps(json.loads(raw), indent=2, ensure_ascii=True)
    spaced = pretty.replace('": ', '" :  ')
    for text in (raw.decode(), pretty, spaced):
        target.raw_write(text.encode())
        loaded = target.manifest()
        assert set(loaded.records) == {checksum(n) for n in range(1, 5)}
        assert loaded.get(checksum(3)).etag == 'W/"a:b"'  # type: ignore[union-attr]


def test_records_missing_optional_fields_get_defaults(tmp_path: Path) -> None:
    target, text = _stored(tmp_path, 1)
    doc = json.loads(text)
    row = doc["records"][checksum(1)]
    for name in ("etag", "content_type", "is_verified", "content_length_bytes"):
        del row[name]
    target.raw_write(json.dumps(doc).encode())
    loaded = target.manifest().get(checksum(1))
    assert loaded is not None
    assert (loaded.etag, loaded.is_verified, loaded.content_length_bytes) == (None, False, None)


# --- typed errors from bad input -------------------------------------------------------


@pytest.mark.parametrize("when", ["9999-12-31T23:30-01:00", "0001-01-01T00:30+01:00"])
def test_updated_at_beyond_the_datetime_range_in_utc_is_an_invalid_record(
    tmp_path: Path, when: str
) -> None:
    manifest = Target("local", str(tmp_path)).manifest()
    with pytest.raises(InvalidRecordError, match="updated_at"):
        manifest.add_record(record(1, updated_at=when))
    assert len(manifest) == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("field", ["revision", "log_epoch", "log_clock", "log_start"])
def test_metadata_counter_beyond_64_bits_is_corrupt(tmp_path: Path, field: str) -> None:
    target, text = _stored(tmp_path, 1)
    doc = json.loads(text)
    doc["metadata"][field] = 2**64
    bad = json.dumps(doc).encode()
    target.raw_write(bad)
    with pytest.raises(CorruptManifestError, match=field):
        target.manifest()
    assert target.raw_read() == bad


def test_revision_at_its_limit_refuses_the_next_checkpoint(tmp_path: Path) -> None:
    target, text = _stored(tmp_path, 1)
    doc = json.loads(text)
    doc["metadata"]["revision"] = MAX_REVISION
    at_limit = json.dumps(doc).encode()
    target.raw_write(at_limit)
    manifest = target.manifest()  # loads: the limit itself is a valid revision
    manifest.add_record(record(2))
    with pytest.raises(RevisionLimitError, match="revision"):
        manifest.compact()
    assert target.raw_read() == at_limit
    assert checksum(2) in manifest


@pytest.mark.parametrize("value", ["abc", -1, "nan", "inf", True, None, [5]])
def test_bad_lock_timeout_is_a_configuration_error(tmp_path: Path, value: object) -> None:
    with pytest.raises(BackendConfigurationError, match="lock_timeout"):
        open_backend(str(tmp_path), {"lock_timeout": value})


@pytest.mark.parametrize("value", [0, 2.5, "7"])
def test_good_lock_timeout_is_taken(tmp_path: Path, value: object) -> None:
    backend = open_backend(str(tmp_path), {"lock_timeout": value})
    assert isinstance(backend, LocalBackend)
    assert backend.lock_timeout == float(value)  # type: ignore[arg-type]


# An endpoint nobody listens on: these options must fail before any request is answered.
_NOWHERE = {"endpoint_url": "http://127.0.0.1:9", "etl_manifests_retries": 1}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"not_an_option": 1}, "not_an_option"),
        ({"client_kwargs": {"region": "eu-west-1"}}, "region"),
        ({"config_kwargs": {"bogus": 1}}, "bogus"),
        ({"key": 12345, "secret": "hunter2"}, "key"),
        ({"client_kwargs": "eu-west-1"}, "client_kwargs"),
    ],
)
def test_s3_options_refused_by_s3fs_are_a_configuration_error(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(BackendConfigurationError, match=named) as info:
        open_backend("s3://bucket/prefix", {**_NOWHERE, **options}).read("m.json")
    assert "hunter2" not in str(info.value)
    config = ETLConfig(manifests_dir="s3://bucket/prefix", storage_options={**_NOWHERE, **options})
    with pytest.raises(BackendConfigurationError):
        ManifestManager.from_config(config).get("extractor")


@pytest.mark.parametrize(
    "token",
    [
        {"type": "service_account", "private_key": "-----BEGIN hunter2"},
        {"type": "authorized_user", "client_secret": "hunter2"},
        {"client_email": "x@example.invalid"},
    ],
)
def test_malformed_gcs_credentials_dict_is_a_configuration_error(token: dict[str, str]) -> None:
    with pytest.raises(BackendConfigurationError, match="token") as info:
        open_backend("gs://bucket/prefix", {**_NOWHERE, "token": token})
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("version", [1, 1.0, None, b"1.0.0"])
def test_non_string_etl_version_is_an_invalid_name(tmp_path: Path, version: object) -> None:
    with pytest.raises(InvalidNameError, match="etl_version"):
        ManifestManager(tmp_path, version)  # type: ignore[arg-type]
    assert ManifestManager.instance() is None


def test_storage_options_that_are_no_mapping_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(BackendConfigurationError, match="storage_options"):
        ManifestManager(tmp_path, "1.0.0", storage_options='{"key": "x"}')  # type: ignore[arg-type]


# --- messages that name the right culprit -----------------------------------------------


@pytest.mark.parametrize(
    ("where", "name", "says"),
    [
        ("metadata", "shards", "newer release"),
        ("record", "content_sha1", "newer release"),
        ("record", "filenmae", "misspelling of 'filename'"),
        ("document", "Notes (by hand)", "not names etl-manifests writes"),
    ],
)
def test_unknown_field_is_named_with_its_likely_origin(
    tmp_path: Path, where: str, name: str, says: str
) -> None:
    target, text = _stored(tmp_path, 1)
    doc = json.loads(text)
    {"metadata": doc["metadata"], "record": doc["records"][checksum(1)], "document": doc}[where][
        name
    ] = 1
    bad = json.dumps(doc).encode()
    target.raw_write(bad)
    with pytest.raises(UnknownFieldError) as info:
        target.manifest()
    message = str(info.value)
    assert name in message
    assert says in message
    assert "move it aside" not in message
    assert info.value.newer_release == (says == "newer release")
    assert isinstance(info.value, CorruptManifestError)
    assert target.raw_read() == bad


def _committed(tmp_path: Path) -> tuple[Target, Path]:
    """A manifest whose snapshot exists, so that the next checkpoint replaces it (locked)."""
    target, _ = _stored(tmp_path, 1)
    return target, Path(target.root, f".{KEY}.lock")


def _replace_attempt(target: Target) -> StorageError:
    manifest = target.manifest()
    manifest.add_record(record(2))
    with pytest.raises(StorageError) as info:
        manifest.compact()
    return info.value


def test_lock_file_that_is_a_symlink_is_named(tmp_path: Path) -> None:
    target, lock = _committed(tmp_path)
    lock.unlink(missing_ok=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    lock.symlink_to(victim)
    before = target.raw_read()
    error = _replace_attempt(target)
    assert str(lock) in str(error)
    assert "symbolic link" in str(error)
    assert victim.read_bytes() == b"precious"
    assert target.raw_read() == before


def test_lock_file_that_is_a_folder_is_named(tmp_path: Path) -> None:
    target, lock = _committed(tmp_path)
    lock.unlink(missing_ok=True)
    lock.mkdir()
    before = target.raw_read()
    error = _replace_attempt(target)
    assert str(lock) in str(error)
    assert target.raw_read() == before


@contextlib.contextmanager
def _unwritable(path: Path) -> Iterator[None]:
    """``path`` cannot be opened for writing by this process, even as root."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    # Root ignores permission bits; the immutable attribute binds it too (EPERM).
    if shutil.which("chattr") is None:
        pytest.skip("as root, an unwritable file needs chattr, which is not installed")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"this filesystem has no immutable attribute: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_lock_file_without_write_permission_is_named(tmp_path: Path) -> None:
    target, lock = _committed(tmp_path)
    lock.touch()
    before = target.raw_read()
    with _unwritable(lock):
        error = _replace_attempt(target)
    assert isinstance(error, PermissionDeniedError)
    assert str(lock) in str(error)
    assert "permissions" in str(error)
    assert target.raw_read() == before


# --- a whole configuration object reaches the manager ------------------------------------


def test_from_config_keeps_options_set_in_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_MANIFESTS_STORAGE_OPTIONS", '{"lock_timeout": 99}')
    config = ETLConfig(manifests_dir=str(tmp_path), version="2.0.0")
    config.storage_options = {"lock_timeout": 7}  # set in code, after reading the environment
    manager = ManifestManager.from_config(config)
    assert (manager.root_dir, manager.etl_version) == (str(tmp_path), "2.0.0")
    assert manager.storage_options == {"lock_timeout": 7}
    assert manager.backend.lock_timeout == 7  # type: ignore[attr-defined]
    assert manager.checkpoint == config.checkpoint
    assert ManifestManager.from_config(config) is manager
    # The seed's form keeps working as before, and still reads the environment.
    ManifestManager.reset()
    seed = ManifestManager(root_dir=config.get_manifests_dir(), etl_version=config.version)
    assert seed.storage_options == {"lock_timeout": 99}


@pytest.mark.s3
def test_from_config_reaches_s3_with_options_set_in_code(
    s3_server: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ETL_MANIFESTS_STORAGE_OPTIONS", raising=False)
    config = ETLConfig(manifests_dir=f"s3://{s3_bucket}/cfg", storage_options={})
    config.storage_options.update(s3_server.storage_options)  # e.g. endpoint and keys from code
    ManifestManager.from_config(config).extractor.add_record(record(1))
    stored = open_backend(config.get_manifests_dir(), s3_server.storage_options).list("")
    assert stored


def test_readme_quick_start_runs(tmp_path: Path) -> None:
    readme = (TESTS_DIR.parent / "README.md").read_text()
    start = readme.index("## Quick start")
    code = readme[readme.index("```python\n", start) + 10 : readme.index("```\n", start)]
    assert "ManifestManager.from_config(config)" in code
    env = {**os.environ, "ETL_MANIFESTS_MANIFESTS_DIR": str(tmp_path / "m")}
    done = subprocess.run(
        [sys.executable, "-c", "records_of_this_run = []\n" + code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert open_backend(str(tmp_path / "m")).list("")


# --- an install without the cloud extras ------------------------------------------------

_WITHOUT_EXTRAS_SCRIPT = """
import importlib.util, json, sys, tempfile
from etl_manifests import ManifestManager, MissingDependencyError, open_backend

out = {"absent": [m for m in ("s3fs", "gcsfs", "aiohttp", "botocore", "aiobotocore")
                  if importlib.util.find_spec(m) is None]}
for root in ("s3://bucket/prefix", "gs://bucket/prefix"):
    try:
        open_backend(root)
        out[root] = "opened"
    except MissingDependencyError as exc:
        out[root] = {"message": str(exc), "command": exc.install_command,
                     "import_error": isinstance(exc, ImportError)}
    except Exception as exc:
        out[root] = f"{type(exc).__name__}: {exc}"
manager = ManifestManager(tempfile.mkdtemp(), "1.0.0")
manager.extractor.add_record({"checksum": "a" * 64, "filename": "a.gz", "filepath": "/a.gz"})
out["local"] = len(manager.extractor)
print(json.dumps(out))
"""


@pytest.mark.slow
def test_cloud_roots_without_the_extras_name_the_pip_command(tmp_path: Path) -> None:
    """A fresh venv with the library and only its core dependencies (no extras)."""
    pyproject = tomllib.loads((TESTS_DIR.parent / "pyproject.toml").read_text())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
        + pyproject["project"]["dependencies"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The library itself from this source tree, as an editable install would put it.
    Path(site, "etl_manifests_src.pth").write_text(str(TESTS_DIR.parent / "src") + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    ran = subprocess.run(
        [str(python), "-c", _WITHOUT_EXTRAS_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout)
    assert {"s3fs", "gcsfs", "aiohttp", "botocore"} <= set(out["absent"])
    for root, extra in (("s3://bucket/prefix", "s3"), ("gs://bucket/prefix", "gcs")):
        assert isinstance(out[root], dict), out[root]
        assert out[root]["command"] == f"pip install 'etl-manifests[{extra}]'"
        assert out[root]["command"] in out[root]["message"]
        assert out[root]["import_error"]
    assert out["local"] == 1


# --- the corrupt-file path stays within the load's memory target -------------------------

#: benchmarks/bench.py's target for the memory a load may take, as a multiple of the file.
LOAD_MEMORY_TARGET = 3.0


def _peak_of_failing_load(data: bytes) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        with pytest.raises(CorruptManifestError):
            decode(data, "extractor_v1.0.0.json")
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def test_corrupt_manifest_is_refused_within_the_loads_memory_target() -> None:
    rows = {
        checksum(n): {**record(n), "etl_version": "1.0.0", "updated_at": "2026-01-01T00:00:00Z"}
        for n in range(1, 20_001)
    }
    meta = {"process": "extractor", "etl_version": "1.0.0", "format_version": 2}
    good = json.dumps({"metadata": meta, "records": rows}, separators=(",", ":")).encode()
    corrupt = {
        "truncated": good[: len(good) * 9 // 10],
        "last record invalid": good[:-100] + good[-100:].replace(b'_bytes":', b'_bytes":-', 1),
        "newer format at the end": good[:-1].replace(b'"format_version":2', b'"fv":2')
        + b',"x":{"format_version":9}}',
    }
    for case, data in corrupt.items():
        peak = _peak_of_failing_load(data)
        assert peak <= LOAD_MEMORY_TARGET * len(data), f"{case}: {peak / len(data):.1f}x"
