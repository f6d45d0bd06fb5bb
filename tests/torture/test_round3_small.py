"""Reliability, round three (the smaller items): each test here failed before its fix.

What ``show`` writes to a terminal, empty and invalid settings on the command line,
strict record fields, recording something that is not a file, permission errors of the
store check, snapshots that are symbolic links, and the checkpoint policy of the command
line.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli_support import cli, json_of
from conftest import checksum, record
from etl_manifests import (
    CheckpointPolicy,
    ConflictError,
    InvalidRecordError,
    Manifest,
    NotAFileError,
    NotFoundError,
    PermissionDeniedError,
    check_store,
    open_backend,
)
from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.cli.output import visible
from etl_manifests.storage import PROBE_MARKER, Expect, staging_key
from etl_manifests.testing import S3Server
from etl_manifests.tools import record_file
from torture._support import KEY

pytestmark = pytest.mark.torture


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no ETL_MANIFESTS_* settings: the defaults apply."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ETL_MANIFESTS_") and name != "ETL_MANIFESTS_PLUGINS":
            monkeypatch.delenv(name)
    return tmp_path


def _manifest(root: Path, **kwargs: Any) -> Manifest:
    return Manifest("extractor", "1.0.0", open_backend(str(root)), **kwargs)


# --- show writes no control characters and no markup to the terminal -----------------

# Each would act on a terminal: clear the screen, set the window title, a C1 CSI, a bell,
# a line feed that breaks the row, and rich markup and emoji codes.
HOSTILE = {
    "filename": "a\x1b[2Jb[bold red]x[/]:smile:.csv",
    "filepath": "/data/\x1b]0;owned\x07/c\x9b31m.csv",
    "etag": "e\r\ntag",
    "content_type": "text/\x1b[31mcsv",
    "last_modified_server": "Tue\x00, 01 Dec 2026",
}
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\x00", "\r")


@pytest.fixture
def hostile(workdir: Path) -> dict[str, Any]:
    stored = _manifest(workdir / "manifests").add_record(record(1, **HOSTILE))
    return stored.model_dump(mode="json")


def test_show_table_escapes_control_characters_and_markup(hostile: dict[str, Any]) -> None:
    result = cli("show")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert not [c for c in RAW_CONTROLS if c in out], repr(out)
    assert "a\\x1b[2Jb[bold red]x[/]:smile:.csv" in out  # shown as written, escaped
    assert "/data/\\x1b]0;owned\\x07/c\\x9b31m.csv" in out


def test_show_table_escapes_even_when_colour_is_forced(hostile: dict[str, Any]) -> None:
    out = cli("show", env={"FORCE_COLOR": "1", "TERM": "xterm-256color"}).stdout
    assert "\x1b[2J" not in out
    assert "\x1b]0;" not in out
    assert "\x9b" not in out
    assert "\x07" not in out


def test_show_csv_escapes_control_characters(hostile: dict[str, Any]) -> None:
    result = cli("show", "--csv")
    assert result.exit_code == 0, result.stderr
    assert not [c for c in RAW_CONTROLS if c in result.stdout], repr(result.stdout)
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert row["filename"] == "a\\x1b[2Jb[bold red]x[/]:smile:.csv"
    assert row["etag"] == "e\\r\\ntag"
    assert row["last_modified_server"] == "Tue\\x00, 01 Dec 2026"


def test_visible_escapes_what_reorders_or_breaks_a_line() -> None:
    text = "a\u202eb\u2066c\u2028d\te\x7ff\x85g\\h"
    assert visible(text) == "a\\u202eb\\u2066c\\u2028d\\te\\x7ff\\x85g\\h"
    assert visible("day_1.csv ünïcode 😄") == "day_1.csv ünïcode 😄"


def test_show_json_keeps_the_exact_values(hostile: dict[str, Any]) -> None:
    (row,) = json_of(cli("show", "--json"))
    assert row == hostile


def test_stats_and_ls_escape_what_records_and_roots_hold(
    hostile: dict[str, Any], workdir: Path
) -> None:
    stats = cli("stats").stdout
    assert "\x1b" not in stats
    assert "text/\\x1b[31mcsv" in stats
    odd_root = workdir / "[red]r\x1bx"
    # Nothing there: said on stderr, with exit code 3.
    result = cli("ls", "--root", str(odd_root))
    assert result.exit_code == 3
    listing = result.stderr
    assert "\x1b" not in listing
    assert "no manifests under" in listing
    assert "[red]r\\x1bx" in listing


def test_verify_table_escapes_the_paths_it_reports(hostile: dict[str, Any]) -> None:
    result = cli("verify")
    assert result.exit_code == 1  # the recorded file does not exist
    assert not [c for c in RAW_CONTROLS if c in result.stdout], repr(result.stdout)
    assert "/data/\\x1b]0;owned\\x07/c\\x9b31m.csv" in result.stdout


def test_an_error_line_escapes_what_it_quotes(workdir: Path) -> None:
    result = cli("record", "gone\x1b[2J\x9b.csv")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "\x1b" not in result.stderr
    assert "\x9b" not in result.stderr
    assert "gone\\x1b[2J\\x9b.csv" in result.stderr


# --- the command line: an empty version, a bad process list --------------------------


def test_show_with_an_empty_etl_version_is_a_usage_error(workdir: Path) -> None:
    _manifest(workdir / "manifests").add_record(record(1))
    result = cli("show", "-e", "")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "ETL version ''" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ETL_MANIFESTS_PROCESSES", "ok,Bad Name", "'Bad Name' cannot name a process"),
        ("ETL_MANIFESTS_CHECKPOINT", '{"every": 0}', "ETL_MANIFESTS_CHECKPOINT"),
    ],
)
def test_an_invalid_setting_is_a_usage_error(
    workdir: Path, variable: str, value: str, message: str
) -> None:
    result = cli("show", env={variable: value})
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "Value error" not in result.stderr


# --- record fields: NUL in filename, strict int and bool --------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"filename": "a\x00b.csv"},
        {"content_length_bytes": True},
        {"content_length_bytes": "12"},
        {"content_length_bytes": 12.0},
        {"is_verified": "yes"},
        {"is_verified": 1},
    ],
)
def test_loosely_typed_fields_are_refused(tmp_path: Path, overrides: dict[str, Any]) -> None:
    manifest = _manifest(tmp_path)
    with pytest.raises(InvalidRecordError, match=next(iter(overrides))):
        manifest.add_record(record(1, **overrides))
    assert len(manifest) == 0
    assert not list(tmp_path.iterdir())


def test_stored_documents_of_earlier_formats_still_load(tmp_path: Path) -> None:
    full = {
        "checksum": checksum(1),
        "filename": "a.csv",
        "filepath": "/data/a.csv",
        "etl_version": "1.0.0",
        "is_verified": True,
        "etag": '"abc"',
        "content_type": "text/csv",
        "last_modified_server": "Tue, 01 Dec 2026 00:00:00 GMT",
        "content_length_bytes": 12,
        "updated_at": "2026-12-01T00:00:00Z",
    }
    sparse = {"checksum": checksum(2), "filename": "b", "filepath": "/b", "etl_version": "1"}
    for format_version in (1, 2):
        meta = {
            "format_version": format_version,
            "process": "extractor",
            "etl_version": "1.0.0",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-02T00:00:00Z",
            "revision": 3,
        }
        records = {checksum(1): full, checksum(2): sparse}
        (tmp_path / KEY).write_bytes(orjson.dumps({"metadata": meta, "records": records}))
        manifest = _manifest(tmp_path)
        one, two = manifest.records[checksum(1)], manifest.records[checksum(2)]
        assert (one.content_length_bytes, one.is_verified) == (12, True)
        assert (two.content_length_bytes, two.is_verified) == (None, False)


# --- recording something that is not a regular file --------------------------------------


@contextlib.contextmanager
def _fifo(path: Path) -> Iterator[Path]:
    """A FIFO with a writer waiting to feed it (so that a reader would not block)."""
    os.mkfifo(path)

    def feed() -> None:
        with contextlib.suppress(OSError), open(path, "wb") as f:
            f.write(b"from a pipe")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        yield path
    finally:
        # Release a writer still waiting for a reader.
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(5)


@contextlib.contextmanager
def _special(kind: str, tmp_path: Path) -> Iterator[Path]:
    if kind == "device":
        yield Path("/dev/null")
    elif kind == "fifo":
        with _fifo(tmp_path / "pipe") as path:
            yield path
    elif kind == "socket":
        path = tmp_path / "sock"
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path))
            yield path
    else:
        path = tmp_path / "folder"
        path.mkdir()
        yield path


@pytest.mark.parametrize("kind", ["device", "fifo", "socket", "directory"])
def test_record_file_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    manifest = _manifest(tmp_path / "manifests")
    with _special(kind, tmp_path) as path, pytest.raises(NotAFileError) as info:
        record_file(manifest, str(path))
    assert isinstance(info.value, NotFoundError)  # as a folder always was
    assert str(path) in str(info.value)
    assert "regular file" in str(info.value)
    assert len(manifest) == 0
    assert not (tmp_path / "manifests").exists()


def test_record_command_refuses_a_device(workdir: Path) -> None:
    (workdir / "a.csv").write_bytes(b"a")
    result = cli("record", "a.csv", "/dev/null")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "/dev/null" in result.stderr
    assert "regular file" in result.stderr
    assert not (workdir / "manifests").exists()


# --- permission errors of the store check name the manifest, not the probe ----------------


@contextlib.contextmanager
def _immutable(folder: Path) -> Iterator[None]:
    """Nothing can be created in ``folder``, even by root."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None:
        pytest.skip("as root, an unwritable folder needs chattr, which is not installed")
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"this filesystem has no immutable attribute: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_unwritable_local_root_is_named_not_the_probe(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    root.mkdir()
    manifest = _manifest(root)
    with _immutable(root), pytest.raises(PermissionDeniedError) as info:
        manifest.add_record(record(1))
    message = str(info.value)
    assert PROBE_MARKER not in message
    assert str(root / KEY) in message
    assert "permissions" in message
    assert list(root.iterdir()) == []
    assert len(manifest) == 0  # refused before any entry was written: nothing to settle
    assert not manifest.dirty


def test_an_unwritable_local_root_in_the_cli_is_named(workdir: Path) -> None:
    (workdir / "manifests").mkdir()
    (workdir / "a.csv").write_bytes(b"a")
    with _immutable(workdir / "manifests"):
        result = cli("record", "a.csv")
    assert result.exit_code == 1
    assert PROBE_MARKER not in result.stderr
    assert str(workdir / "manifests" / KEY) in result.stderr


@pytest.mark.s3
def test_access_denied_to_the_probe_names_the_root_and_manifest(
    s3_server: S3Server, s3_bucket: str
) -> None:
    root = f"s3://{s3_bucket}/manifests"
    s3_server.faults.add(method="PUT", path_regex=PROBE_MARKER, status=403, times=None)
    backend = open_backend(root, s3_server.storage_options)
    with pytest.raises(PermissionDeniedError) as checked:
        check_store(backend)
    assert PROBE_MARKER not in str(checked.value)
    assert root in str(checked.value)
    manifest = Manifest("extractor", "1.0.0", open_backend(root, s3_server.storage_options))
    with pytest.raises(PermissionDeniedError) as saved:
        manifest.add_record(record(1))
    assert PROBE_MARKER not in str(saved.value)
    assert f"{root}/{KEY}" in str(saved.value)
    assert "credentials" in str(saved.value)  # the backend's advice is kept


class _DeniedBelowRoot(MemoryBackend):
    """Refuses writes below its root the way object stores word it, naming the key a
    write used: the probe's own, its staged copy's, or a local lock file beside it."""

    def __init__(self, named: str) -> None:
        super().__init__("memory://denied")
        self.named = named

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        shown = {"key": key, "staged": staging_key(key), "lock": f".{key}.lock"}[self.named]
        raise PermissionDeniedError(f"access denied to {self.url(shown)}; check the policy")


@pytest.mark.parametrize("named", ["key", "staged", "lock"])
def test_a_refused_probe_is_reported_for_the_root(named: str) -> None:
    backend = _DeniedBelowRoot(named)
    with pytest.raises(PermissionDeniedError) as info:
        check_store(backend)
    message = str(info.value)
    assert PROBE_MARKER not in message
    assert "staged" not in message
    assert message.startswith(f"access denied to {backend.root}; check the policy")


# --- a snapshot that is a symbolic link stays one ------------------------------------------

INLINE = CheckpointPolicy.after_every_commit()


@pytest.mark.parametrize("relative", [False, True])
def test_a_symlinked_snapshot_is_written_through(tmp_path: Path, relative: bool) -> None:
    root, elsewhere = tmp_path / "manifests", tmp_path / "shared"
    elsewhere.mkdir()
    _manifest(root, checkpoint=INLINE).add_record(record(1))
    target = elsewhere / KEY
    shutil.move(root / KEY, target)
    (root / KEY).symlink_to(os.path.relpath(target, root) if relative else target)
    manifest = _manifest(root, checkpoint=INLINE)
    manifest.add_record(record(2))
    manifest.compact()
    assert (root / KEY).is_symlink()
    assert (root / KEY).resolve() == target.resolve()
    document = json.loads(target.read_bytes())
    assert set(document["records"]) == {checksum(1), checksum(2)}
    assert set(_manifest(root).records) == {checksum(1), checksum(2)}
    leftovers = [p.name for p in (*root.iterdir(), *elsewhere.iterdir()) if ".staged-" in p.name]
    assert leftovers == []


def test_a_link_to_a_snapshot_not_written_yet_gets_it(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "manifests", tmp_path / "shared"
    root.mkdir()
    elsewhere.mkdir()
    (root / KEY).symlink_to(elsewhere / KEY)
    _manifest(root, checkpoint=INLINE).add_record(record(1))
    assert (root / KEY).is_symlink()
    assert list(json.loads((elsewhere / KEY).read_bytes())["records"]) == [checksum(1)]


def test_a_symlinked_key_keeps_conditional_writes(tmp_path: Path) -> None:
    backend = open_backend(str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    (tmp_path / "real.json").write_bytes(b"one")
    (tmp_path / "root" / "m.json").symlink_to(tmp_path / "real.json")
    token = backend.read("m.json").version
    newer = backend.write("m.json", b"two", expect=token)
    assert (tmp_path / "root" / "m.json").is_symlink()
    assert (tmp_path / "real.json").read_bytes() == b"two"
    assert backend.read("m.json").version == newer
    with pytest.raises(ConflictError, match="changed since it was read"):
        backend.write("m.json", b"three", expect=token)
    assert (tmp_path / "real.json").read_bytes() == b"two"


# --- the command line honours ETL_MANIFESTS_CHECKPOINT -------------------------------------


def test_cli_commits_follow_the_checkpoint_setting(workdir: Path) -> None:
    (workdir / "a.csv").write_bytes(b"a")
    env = {"ETL_MANIFESTS_CHECKPOINT": '{"every": 1, "size_ratio": 0, "inline": true}'}
    assert cli("record", "a.csv", env=env).exit_code == 0
    document = json.loads((workdir / "manifests" / KEY).read_bytes())
    assert len(document["records"]) == 1
