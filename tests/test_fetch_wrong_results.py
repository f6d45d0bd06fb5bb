"""Regression tests for the wrong results of fetch: confused files, misreported HTTP
failures, Ctrl-C, counts under concurrency, re-recording, credentials in errors, stdin
and control characters in file names."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest

from etl_manifests import (
    DestinationConflictError,
    InvalidNameError,
    ManifestManager,
    ManifestRecord,
    NotFoundError,
    PermissionDeniedError,
    TransferError,
    TransferRetry,
)
from etl_manifests.document import decode, encode
from etl_manifests.testing import FileServer
from etl_manifests.testing.http_files import running_file_server
from etl_manifests.tools import (
    Fetcher,
    FetchStatus,
    fetch,
    fetch_many,
    record_file,
    record_files,
    verify,
)
from tools_support import local_manifest, part_files, sha256

FAST = TransferRetry(attempts=3, base=0.01, cap=0.05, deadline=10)
SCRIPT = str(Path(sys.executable).with_name("etl-manifests"))


@pytest.fixture
def other_server() -> Iterator[FileServer]:
    """A second host (another port on the loopback)."""
    with running_file_server() as server:
        yield server


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --- 1. two files with the same name ---------------------------------------------------


def test_two_urls_with_one_file_name_land_apart_and_record_their_sources(
    tmp_path: Path, file_server: FileServer, other_server: FileServer
) -> None:
    one = file_server.add("day_1.csv", b"from a\n")
    two = other_server.add("x/day_1.csv", b"from b, longer\n")
    manifest = local_manifest(tmp_path / "manifests")
    report = fetch_many(manifest, [one, two], str(tmp_path / "dl"), retry=FAST)
    assert report.count(FetchStatus.DOWNLOADED) == 2
    assert _files(tmp_path / "dl") == ["day_1.csv", "x/day_1.csv"]
    stored = local_manifest(tmp_path / "manifests")
    assert {r.filepath: r.source for r in stored} == {
        str(tmp_path / "dl" / "day_1.csv"): one,
        str(tmp_path / "dl" / "x" / "day_1.csv"): two,
    }
    assert verify(stored, rehash=True).ok


def test_a_second_source_for_a_recorded_destination_is_refused_and_changes_nothing(
    tmp_path: Path, file_server: FileServer, other_server: FileServer
) -> None:
    # Same name, size and Last-Modified, other content, no ETag: before sources were
    # recorded, the second was "skipped" and never downloaded.
    file_server.etag = other_server.etag = False
    one = file_server.add("data.csv", b"aaaa")
    two = other_server.add("data.csv", b"bbbb")
    manifest = local_manifest(tmp_path / "manifests")
    assert fetch(manifest, one, str(tmp_path / "dl")).status is FetchStatus.DOWNLOADED
    revision = local_manifest(tmp_path / "manifests").metadata.revision
    with pytest.raises(DestinationConflictError) as caught:
        fetch(manifest, two, str(tmp_path / "dl"))
    assert one in str(caught.value)
    assert two in str(caught.value)
    assert caught.value.sources == [one, two]
    assert (tmp_path / "dl" / "data.csv").read_bytes() == b"aaaa"
    stored = local_manifest(tmp_path / "manifests")
    assert stored.metadata.revision == revision
    assert [r.checksum for r in stored] == [sha256(b"aaaa")]
    assert other_server.requests("GET", "data.csv") == 0


def test_a_naming_template_tells_hosts_apart(
    tmp_path: Path, file_server: FileServer, other_server: FileServer
) -> None:
    one = file_server.add("data.csv", b"aaaa")
    two = other_server.add("data.csv", b"bbbb")
    manifest = local_manifest(tmp_path / "manifests")
    report = fetch_many(manifest, [one, two], str(tmp_path / "dl"), naming="{host}/{path}")
    assert report.count(FetchStatus.DOWNLOADED) == 2
    assert len(_files(tmp_path / "dl")) == 2


def test_fetch_many_refuses_two_urls_for_one_destination_before_downloading(
    tmp_path: Path, file_server: FileServer, other_server: FileServer
) -> None:
    one = file_server.add("data.csv", b"aaaa")
    two = other_server.add("data.csv", b"bbbb")
    report = fetch_many(local_manifest(tmp_path / "m"), [one, two], str(tmp_path / "dl"))
    assert [r.status for r in report.results] == [FetchStatus.DOWNLOADED, FetchStatus.FAILED]
    assert "would both be downloaded to" in (report.results[1].error or "")
    assert other_server.requests("GET", "data.csv") == 0
    assert (tmp_path / "dl" / "data.csv").read_bytes() == b"aaaa"


def test_a_file_recorded_before_sources_were_kept_is_still_skipped(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.add("sub/day_1.csv", b"abc")
    manifest = local_manifest(tmp_path / "manifests")
    # As earlier releases recorded it: directly below dest, with the server's headers,
    # and no source.
    manifest.add_record(
        {
            "checksum": sha256(b"abc"),
            "filename": "day_1.csv",
            "filepath": str(tmp_path / "dl" / "day_1.csv"),
            "etag": f'"{sha256(b"abc")[:16]}"',
            "last_modified_server": formatdate(1_700_000_000, usegmt=True),
            "content_length_bytes": 3,
            "content_type": "application/octet-stream",
        }
    )
    result = fetch(manifest, url, str(tmp_path / "dl"))
    assert result.status is FetchStatus.SKIPPED
    assert file_server.requests("GET", "sub/day_1.csv") == 0


def test_a_snapshot_without_sources_loads_and_is_written_back_without_them(
    tmp_path: Path,
) -> None:
    # A format-2 snapshot as releases before sources wrote it.
    checksum = sha256(b"abc")
    old = (
        '{"metadata":{"format_version":2,"process":"extractor","etl_version":"1.0.0",'
        '"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z",'
        '"revision":1,"log_epoch":0,"log_clock":0,"log_start":1},"records":{"'
        + checksum
        + '":{"checksum":"'
        + checksum
        + '","filename":"a.csv","filepath":"/data/a.csv","etl_version":"1.0.0",'
        '"is_verified":false,"etag":null,"content_type":null,"last_modified_server":null,'
        '"content_length_bytes":3,"updated_at":"2026-01-01T00:00:00Z"}}}'
    ).encode()
    document = decode(old, "old.json")
    [row] = document.records.values()
    assert ManifestRecord.from_row(row).source is None
    assert encode(document.metadata, document.records) == old


# --- 2. HTTP failures --------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error"), [(404, NotFoundError), (410, NotFoundError)])
def test_not_found_statuses_are_not_found(
    tmp_path: Path, file_server: FileServer, status: int, error: type[Exception]
) -> None:
    url = file_server.add("a.csv", b"a")
    file_server.statuses["a.csv"] = status
    with pytest.raises(error, match=f"answered {status}"):
        fetch(local_manifest(tmp_path / "m"), url, str(tmp_path / "dl"), retry=FAST)


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_permission_denied(
    tmp_path: Path, file_server: FileServer, status: int
) -> None:
    url = file_server.add("a.csv", b"a")
    file_server.statuses["a.csv"] = status
    with pytest.raises(PermissionDeniedError, match=f"answered {status}") as caught:
        fetch(local_manifest(tmp_path / "m"), url, str(tmp_path / "dl"), retry=FAST)
    assert not isinstance(caught.value, NotFoundError)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_then_a_transfer_error_saying_what_the_server_answered(
    tmp_path: Path, file_server: FileServer, status: int
) -> None:
    url = file_server.add("a.csv", b"a")
    file_server.statuses["a.csv"] = status
    with pytest.raises(TransferError, match=f"answered {status}") as caught:
        fetch(local_manifest(tmp_path / "m"), url, str(tmp_path / "dl"), retry=FAST)
    assert not isinstance(caught.value, NotFoundError)
    assert caught.value.retryable
    assert caught.value.status == status
    # Nothing of this name is recorded, so no HEAD: one GET per try, three tries.
    assert file_server.requests("GET", "a.csv") == 3
    assert file_server.requests("HEAD", "a.csv") == 0
    assert len(local_manifest(tmp_path / "m")) == 0


def test_a_transient_failure_then_success_downloads_honouring_retry_after(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.add("a.csv", b"abc")
    file_server.failures["a.csv"] = [503, 503]  # the HEAD and the GET of the first try
    file_server.failure_headers["Retry-After"] = "1"
    started = time.monotonic()
    result = fetch(local_manifest(tmp_path / "m"), url, str(tmp_path / "dl"), retry=FAST)
    assert result.status is FetchStatus.DOWNLOADED
    assert time.monotonic() - started >= 1.0  # Retry-After, not FAST's 10 ms
    assert (tmp_path / "dl" / "a.csv").read_bytes() == b"abc"


def test_a_connection_reset_mid_body_is_retried(tmp_path: Path, file_server: FileServer) -> None:
    url = file_server.add("a.csv", b"x" * 100_000)
    file_server.resets["a.csv"] = 1
    result = fetch(local_manifest(tmp_path / "m"), url, str(tmp_path / "dl"), retry=FAST)
    assert result.status is FetchStatus.DOWNLOADED
    assert file_server.requests("GET", "a.csv") == 2
    assert part_files(tmp_path / "dl") == []


def test_a_refused_connection_is_a_transfer_error_not_not_found(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransferError, match="cannot connect") as caught:
        fetch(local_manifest(tmp_path), f"http://127.0.0.1:{port}/a.csv", str(tmp_path / "dl"))
    assert not isinstance(caught.value, NotFoundError)


# --- 3. Ctrl-C ---------------------------------------------------------------------------


def test_ctrl_c_stops_the_cli_fetch_within_a_second_keeping_what_landed(
    tmp_path: Path, file_server: FileServer, other_server: FileServer
) -> None:
    fast = [file_server.add(f"fast_{n}.csv", f"{n}".encode()) for n in range(2)]
    other_server.stall = 30.0  # half the body, then a long wait
    slow = [other_server.add(f"slow_{n}.csv", b"s" * 200_000) for n in range(10)]
    (tmp_path / "urls.txt").write_text("\n".join(fast + slow) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_MANIFESTS_")}
    proc = subprocess.Popen(
        [SCRIPT, "fetch", "-i", "urls.txt", "--dest", "dl", "--workers", "4"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "dl").glob(".slow_*.part-*"))) < 3:  # slow ones in flight
        assert time.monotonic() < deadline, "the slow downloads never started"
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    time.sleep(0.3)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # impatient: a second Ctrl-C changes nothing
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 2.5
    assert proc.returncode == 130, err
    assert "interrupted" in out + err
    assert "2 downloaded" in out
    assert "Traceback" not in err
    assert part_files(tmp_path / "dl") == []
    assert _files(tmp_path / "dl") == ["fast_0.csv", "fast_1.csv"]
    stored = Path(tmp_path / "manifests")
    manifest = ManifestManager(stored, "1.0.0").extractor
    assert sorted(r.filename for r in manifest) == ["fast_0.csv", "fast_1.csv"]


def test_fetch_many_interrupted_cancels_and_raises_keyboard_interrupt(
    tmp_path: Path, file_server: FileServer
) -> None:
    file_server.stall = 30.0
    urls = [file_server.add(f"{n}.csv", b"s" * 200_000) for n in range(6)]
    main = threading.get_ident()

    def interrupt_soon() -> None:
        while len(part_files(tmp_path / "dl")) < 2:
            time.sleep(0.02)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt_soon, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as caught:
        fetch_many(local_manifest(tmp_path / "m"), urls, str(tmp_path / "dl"), workers=2)
    assert time.monotonic() - started < 10
    assert part_files(tmp_path / "dl") == []
    assert caught.value.report.count(FetchStatus.DOWNLOADED) == 0  # type: ignore[attr-defined]
    assert len(local_manifest(tmp_path / "m")) == 0


# --- 4. counts under concurrency -------------------------------------------------------


def test_one_file_fetched_by_two_threads_at_once_is_downloaded_once(
    tmp_path: Path, file_server: FileServer
) -> None:
    url = file_server.add("a.csv", b"abc")
    file_server.get_delay = 0.3  # both downloads are under way before either lands
    manager = ManifestManager(tmp_path / "manifests", "1.0.0")
    fetcher = Fetcher(manager, str(tmp_path / "dl"))
    statuses: list[FetchStatus] = []
    threads = [threading.Thread(target=lambda: statuses.append(fetcher(url).status))]
    threads.append(threading.Thread(target=lambda: statuses.append(fetcher(url).status)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == sorted([FetchStatus.DOWNLOADED, FetchStatus.DUPLICATE])


# --- 5. re-recording an unchanged file ---------------------------------------------------


def test_re_recording_an_unchanged_file_keeps_its_flags_and_commits_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"abc")
    manifest = local_manifest(tmp_path / "manifests")
    record_file(manifest, str(path))
    verify(manifest)
    assert manifest.get(sha256(b"abc")).is_verified  # type: ignore[union-attr]
    commits = len(manifest.history())
    again = record_file(manifest, str(path))
    assert again.is_verified
    stored = local_manifest(tmp_path / "manifests")
    assert stored.get(sha256(b"abc")).is_verified  # type: ignore[union-attr]
    assert len(stored.history()) == commits


# --- 6. credentials in the exception chain ---------------------------------------------


def _secret_url(server: FileServer, name: str) -> str:
    return (
        server.url(name).replace("http://", "http://user:hunter2@")
        + "?X-Amz-Signature=deadbeefsig123&X-Amz-Credential=AKIAEXAMPLE"
    )


def _assert_clean(error: BaseException) -> None:
    text = "".join(traceback.format_exception(error))
    for secret in ("hunter2", "deadbeefsig123", "AKIAEXAMPLE"):
        assert secret not in text
        assert secret not in repr(error)
        assert secret not in repr(error.args)
    assert error.__cause__ is None
    assert error.__context__ is None
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)


@pytest.mark.parametrize("status", [404, 403, 503])
def test_errors_carry_no_credentials_and_pickle(
    tmp_path: Path, file_server: FileServer, status: int
) -> None:
    file_server.add("a.csv", b"a")
    file_server.statuses["a.csv"] = status
    with pytest.raises((NotFoundError, PermissionDeniedError, TransferError)) as caught:
        fetch(
            local_manifest(tmp_path),
            _secret_url(file_server, "a.csv"),
            str(tmp_path / "dl"),
            retry=FAST,
        )
    _assert_clean(caught.value)


def test_a_refused_connection_carries_no_credentials(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://user:hunter2@127.0.0.1:{port}/a.csv?X-Amz-Signature=deadbeefsig123"
    with pytest.raises(TransferError) as caught:
        fetch(local_manifest(tmp_path), url, str(tmp_path / "dl"), retry=FAST)
    _assert_clean(caught.value)


def test_the_recorded_source_has_no_credentials(tmp_path: Path, file_server: FileServer) -> None:
    file_server.add("a.csv", b"a")
    url = _secret_url(file_server, "a.csv")
    result = fetch(local_manifest(tmp_path / "m"), url, str(tmp_path / "dl"))
    [record] = list(local_manifest(tmp_path / "m"))
    assert record.source == file_server.url("a.csv")
    assert result.status is FetchStatus.DOWNLOADED


# --- (a) --from-file - reads stdin; (b) no control characters in file names --------------


def test_from_file_dash_reads_stdin(tmp_path: Path, file_server: FileServer) -> None:
    urls = [file_server.add(f"{n}.csv", f"{n}".encode()) for n in range(2)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_MANIFESTS_")}
    done = subprocess.run(
        [SCRIPT, "fetch", "--from-file", "-", "--dest", "dl"],
        input="\n".join(urls) + "\n",
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "2 downloaded" in done.stdout
    assert _files(tmp_path / "dl") == ["0.csv", "1.csv"]


@pytest.mark.parametrize("name", ["evil\x1b[2Jname.csv", "a\nb.csv", "sub\x07/a.csv"])
def test_a_file_name_with_control_characters_is_refused(
    tmp_path: Path, file_server: FileServer, name: str
) -> None:
    url = file_server.add(name, b"a")
    with pytest.raises(InvalidNameError, match="control characters"):
        fetch(local_manifest(tmp_path / "m"), url, str(tmp_path / "dl"))
    assert not (tmp_path / "dl").exists() or _files(tmp_path / "dl") == []
    report = fetch_many(local_manifest(tmp_path / "m"), [url], str(tmp_path / "dl"))
    assert report.results[0].status is FetchStatus.FAILED
    assert len(local_manifest(tmp_path / "m")) == 0


def _interrupt_after(seconds: float) -> None:
    main = threading.get_ident()

    def later() -> None:
        time.sleep(seconds)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=later, daemon=True).start()


def test_verify_and_record_stop_at_ctrl_c_without_waiting_for_reads_in_flight(
    tmp_path: Path, file_server: FileServer
) -> None:
    urls = [file_server.add(f"{n}.csv", b"v" * 200_000) for n in range(4)]
    manifest = local_manifest(tmp_path / "m")
    for url in urls:
        record_file(manifest, url)
    file_server.stall = 30.0
    for work in (
        lambda: verify(manifest, rehash=True, workers=2),
        lambda: record_files(manifest, urls, workers=2),
    ):
        _interrupt_after(0.5)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            work()
        assert time.monotonic() - started < 3
    assert not any(r.is_verified for r in local_manifest(tmp_path / "m"))
