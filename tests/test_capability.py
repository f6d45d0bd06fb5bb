"""The store capability check: what it proves, what it reports, and that it runs once.

Real backends (memory, local disk, the SQLite plugin) must pass. To prove that the check
catches each way a store can fail, ``_Store`` plays a store that gets one thing wrong:
it is the memory backend with one flaw switched on, standing in for a remote service
(the S3 and GCS backends are checked against real emulators in their own test files).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import etl_manifests
from etl_manifests import (
    ABSENT,
    AlreadyExistsError,
    ConflictError,
    PermissionDeniedError,
    StorageError,
    StoreReport,
    UnsupportedStoreError,
    check_store,
    ensure_store_checked,
)
from etl_manifests.backends.local import LocalBackend
from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.storage import Expect, StorageBackend, is_probe_key, probe_key


class _Store(MemoryBackend):
    """The memory backend with one flaw, like a remote store that gets one thing wrong."""

    def __init__(self, flaw: str | None = None) -> None:
        super().__init__(f"memory://{uuid.uuid4().hex}")
        self.flaw = flaw
        self.writes = 0
        self.deleted: list[str] = []
        self._lock = threading.Lock()

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        with self._lock:
            self.writes += 1
        flaw = self.flaw
        if flaw == "ignores create" and expect is ABSENT:
            expect = None
        if flaw == "ignores stale" and isinstance(expect, str):
            expect = None
        if flaw == "wrong error" and expect is ABSENT:
            try:
                return super().write(key, data, expect=expect)
            except AlreadyExistsError:
                raise ConflictError("exists") from None
        if flaw == "refuses after writing":
            token = super().write(key, data)
            if expect is ABSENT and self.writes > 1:
                raise AlreadyExistsError("refused (but written)")
            if isinstance(expect, str):
                raise ConflictError("refused (but written)")
            return token
        if flaw == "denied":
            raise PermissionDeniedError("no write access")
        return super().write(key, data, expect=expect)

    def delete(self, key: str) -> None:
        self.deleted.append(key)
        super().delete(key)


class _TwoModes(_Store):
    """A store reached in several ways; in modes named ``loose*`` it ignores conditions."""

    def __init__(self, modes: tuple[str, ...] = ("loose", "strict")) -> None:
        super().__init__()
        self.modes = modes
        self.switched: list[str] = []

    def commit_modes(self) -> tuple[str, ...]:
        return self.modes

    def use_commit_mode(self, mode: str) -> None:
        self.switched.append(mode)
        self.flaw = "loose" if mode.startswith("loose") else None

    def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
        if self.flaw == "loose":
            return MemoryBackend.write(self, key, data)
        return super().write(key, data, expect=expect)


@pytest.fixture(params=["memory", "local", "sqlite"])
def real_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    if request.param == "memory":
        yield MemoryBackend(f"memory://{uuid.uuid4().hex}")
    elif request.param == "local":
        yield LocalBackend(str(tmp_path / "manifests"))
    else:
        from etl_manifests_sqlite.backend import SQLiteBackend

        backend = SQLiteBackend(f"sqlite://{tmp_path}/state.db", {})
        yield backend
        backend.close()


# --- real backends pass, and nothing is left behind ---------------------------------------


def test_real_backends_pass(real_backend: StorageBackend) -> None:
    report = check_store(real_backend)
    assert report.ok, report.description
    assert report.create_refused
    assert report.stale_replace_refused
    assert report.problems == ()
    assert report.mode is None
    ensure_store_checked(real_backend)


def test_the_probe_is_removed_again(real_backend: StorageBackend) -> None:
    real_backend.write("m.json", b"kept")
    check_store(real_backend)
    assert [info.key for info in real_backend.list()] == ["m.json"]


def test_the_probe_leaves_no_file_on_local_disk(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    check_store(LocalBackend(str(root)))
    assert sorted(p.name for p in root.iterdir()) == []  # no probe, no lock file


def test_probe_keys_are_unique_and_recognisable() -> None:
    first, second = probe_key(), probe_key()
    assert first != second
    assert is_probe_key(first)
    assert is_probe_key(f"prefix/{second}")
    assert not is_probe_key("extractor_v1.0.0.json")
    assert not is_probe_key(first + ".staged-" + "0" * 32)


# --- each way a store can fail is caught --------------------------------------------------


def test_a_store_ignoring_create_conditions_fails() -> None:
    report = check_store(_Store("ignores create"))
    assert not report.ok
    assert not report.create_refused
    assert report.stale_replace_refused
    assert report.problems == ("a create over an existing key was accepted",)


def test_a_store_ignoring_stale_tokens_fails() -> None:
    report = check_store(_Store("ignores stale"))
    assert not report.ok
    assert report.create_refused
    assert not report.stale_replace_refused
    assert report.problems == ("a replace with a stale version was accepted",)


def test_a_create_refused_with_the_wrong_error_fails() -> None:
    report = check_store(_Store("wrong error"))
    assert not report.ok
    assert report.problems == (
        "a create over an existing key raised ConflictError, not AlreadyExistsError",
    )


def test_a_refusal_that_still_replaced_the_bytes_fails() -> None:
    report = check_store(_Store("refuses after writing"))
    assert not report.ok
    assert not report.create_refused
    assert not report.stale_replace_refused
    assert report.problems == (
        "a refused create over an existing key still replaced its bytes",
        "a refused replace with a stale version still replaced the bytes",
    )


def test_a_lost_response_during_the_probe_is_not_a_verdict() -> None:
    class LostFirstResponse(_Store):
        """The first create lands, but the caller sees the retry's conflict."""

        def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
            token = super().write(key, data, expect=expect)
            if self.writes == 1:
                raise AlreadyExistsError("the retry found the first attempt")
            return token

    assert check_store(LostFirstResponse()).ok


def test_storage_errors_propagate_and_are_not_remembered() -> None:
    store = _Store("denied")
    for _ in range(2):
        with pytest.raises(PermissionDeniedError):
            ensure_store_checked(store)
    store.flaw = None
    ensure_store_checked(store)


# --- ensure_store_checked ----------------------------------------------------------------


def test_ensure_raises_unsupported_store_error_naming_what_failed() -> None:
    store = _Store("ignores stale")
    with pytest.raises(UnsupportedStoreError) as caught:
        ensure_store_checked(store)
    message = str(caught.value)
    assert store.root in message
    assert "a replace with a stale version was accepted" in message
    assert "conditional writes" in message
    assert "docs/backends.md" in message
    assert isinstance(caught.value.report, StoreReport)
    assert not caught.value.report.ok


def test_unsupported_store_error_is_a_storage_error_and_not_implemented() -> None:
    assert issubclass(UnsupportedStoreError, StorageError)
    assert issubclass(UnsupportedStoreError, NotImplementedError)
    assert "UnsupportedStoreError" in etl_manifests.__all__
    assert "check_store" in etl_manifests.__all__
    assert "ensure_store_checked" in etl_manifests.__all__


def test_ensure_checks_once_per_backend_object() -> None:
    store = _Store()
    ensure_store_checked(store)
    probes = store.writes
    assert probes > 0
    ensure_store_checked(store)
    assert store.writes == probes
    other = _Store()
    ensure_store_checked(other)
    assert other.writes == probes  # a new backend object is checked on its own


def test_concurrent_first_calls_share_one_check() -> None:
    store = _Store()
    solo = _Store()
    ensure_store_checked(solo)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            ensure_store_checked(store)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.writes == solo.writes


def test_a_failed_check_is_run_again_and_can_pass_later() -> None:
    store = _Store("ignores create")
    with pytest.raises(UnsupportedStoreError):
        ensure_store_checked(store)
    failed_writes = store.writes
    with pytest.raises(UnsupportedStoreError):
        ensure_store_checked(store)
    assert store.writes == 2 * failed_writes  # checked again, not a cached verdict
    store.flaw = None
    ensure_store_checked(store)


def test_a_failing_on_demand_check_forgets_an_earlier_pass() -> None:
    store = _Store()
    ensure_store_checked(store)
    store.flaw = "ignores create"
    assert not check_store(store).ok
    with pytest.raises(UnsupportedStoreError):
        ensure_store_checked(store)


def test_writes_made_by_the_check_itself_do_not_recurse() -> None:
    class ChecksItself(_Store):
        """Like the S3 and GCS backends: every conditional write ensures the check."""

        def write(self, key: str, data: bytes, *, expect: Expect = None) -> str:
            if expect is not None:
                ensure_store_checked(self)
            return super().write(key, data, expect=expect)

    store = ChecksItself()
    store.write("m.json", b"x", expect=ABSENT)
    assert store.read("m.json").data == b"x"


# --- choosing a commit mode --------------------------------------------------------------


def test_the_first_enforced_mode_is_chosen_and_the_others_reported() -> None:
    store = _TwoModes()
    report = check_store(store)
    assert report.ok
    assert report.mode == "strict"
    assert store.switched == ["loose", "strict"]
    assert [r.mode for r in report.rejected] == ["loose"]
    assert not report.rejected[0].ok
    assert "'strict'" in report.description
    assert "not used" in report.description


def test_no_enforced_mode_raises_naming_every_mode() -> None:
    store = _TwoModes(modes=("loose", "loose2"))
    with pytest.raises(UnsupportedStoreError) as caught:
        ensure_store_checked(store)
    message = str(caught.value)
    assert "commit mode 'loose'" in message
    assert "commit mode 'loose2'" in message
    assert "Use a store that honours conditional writes" in message


def test_a_single_configured_mode_is_verified_not_trusted() -> None:
    store = _TwoModes(modes=("loose",))
    with pytest.raises(UnsupportedStoreError, match="the configured one, was tried: unset"):
        ensure_store_checked(store)


def test_checking_again_keeps_the_chosen_mode() -> None:
    store = _TwoModes()
    ensure_store_checked(store)
    store.switched.clear()
    report = check_store(store)
    assert report.ok
    assert report.mode == "strict"
    assert store.switched == ["strict"]  # writes in flight never switch protocol
