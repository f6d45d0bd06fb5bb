"""Conformance tests every storage backend must pass, built-in or third-party.

Subclass :class:`BackendConformance` in your plugin's tests and provide a ``backend``
fixture that returns a fresh, empty backend for each test::

    import pytest
    from etl_manifests.testing import BackendConformance
    from my_plugin import MyBackend

    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def backend(self, tmp_path):
            return MyBackend(f"my://{tmp_path}", {})

Every test method is inherited; run ``pytest`` as usual. Requires pytest.
"""

from __future__ import annotations

import threading

import pytest

from ..capability import check_store
from ..errors import AlreadyExistsError, ConflictError, NotFoundError
from ..storage import ABSENT, Blob, StorageBackend, is_staging_key, staging_key

__all__ = ["BackendConformance"]


class BackendConformance:
    """The backend contract of :mod:`etl_manifests.storage`, one behaviour per test."""

    #: Threads racing in the concurrency tests; lower it for slow remote stores.
    race_threads: int = 8

    @pytest.fixture
    def backend(self) -> StorageBackend:
        """Override: return (or yield) a fresh, empty backend."""
        raise NotImplementedError("subclasses provide a `backend` fixture")

    # --- read ------------------------------------------------------------------------

    def test_read_missing_raises_not_found(self, backend: StorageBackend) -> None:
        with pytest.raises(NotFoundError):
            backend.read("missing.json")

    def test_not_found_is_a_file_not_found_error(self, backend: StorageBackend) -> None:
        with pytest.raises(FileNotFoundError):
            backend.read("missing.json")

    def test_read_returns_written_bytes_and_token(self, backend: StorageBackend) -> None:
        token = backend.write("m.json", b'{"a": 1}')
        blob = backend.read("m.json")
        assert blob.data == b'{"a": 1}'
        assert blob.version == token

    def test_large_object_round_trips_intact(self, backend: StorageBackend) -> None:
        data = bytes(range(256)) * 20_000  # 5 MB, every byte value
        backend.write("big.json", data)
        assert backend.read("big.json").data == data

    def test_keys_may_contain_folders(self, backend: StorageBackend) -> None:
        backend.write("nested/deeper/m.json", b"x")
        assert backend.read("nested/deeper/m.json").data == b"x"

    # --- unconditional write ---------------------------------------------------------

    def test_unconditional_write_replaces(self, backend: StorageBackend) -> None:
        first = backend.write("m.json", b"one")
        second = backend.write("m.json", b"two")
        assert backend.read("m.json").data == b"two"
        assert second != first

    # --- create only -----------------------------------------------------------------

    def test_create_only_creates_when_absent(self, backend: StorageBackend) -> None:
        token = backend.write("m.json", b"new", expect=ABSENT)
        assert backend.read("m.json") == Blob(b"new", token)

    def test_create_only_over_existing_raises_already_exists(self, backend: StorageBackend) -> None:
        backend.write("m.json", b"old")
        with pytest.raises(AlreadyExistsError):
            backend.write("m.json", b"new", expect=ABSENT)
        assert backend.read("m.json").data == b"old"

    def test_already_exists_is_a_conflict(self, backend: StorageBackend) -> None:
        backend.write("m.json", b"old")
        with pytest.raises(ConflictError):
            backend.write("m.json", b"new", expect=ABSENT)

    # --- replace if unchanged ----------------------------------------------------------

    def test_conditional_write_with_current_token_replaces(self, backend: StorageBackend) -> None:
        token = backend.write("m.json", b"one")
        new_token = backend.write("m.json", b"two", expect=token)
        blob = backend.read("m.json")
        assert (blob.data, blob.version) == (b"two", new_token)
        assert new_token != token

    def test_conditional_write_with_stale_token_raises_conflict(
        self, backend: StorageBackend
    ) -> None:
        stale = backend.write("m.json", b"one")
        backend.write("m.json", b"two", expect=stale)
        with pytest.raises(ConflictError):
            backend.write("m.json", b"three", expect=stale)
        assert backend.read("m.json").data == b"two"

    def test_conditional_write_on_missing_key_raises_conflict(
        self, backend: StorageBackend
    ) -> None:
        token = backend.write("m.json", b"one")
        backend.delete("m.json")
        with pytest.raises(ConflictError):
            backend.write("m.json", b"two", expect=token)
        with pytest.raises(NotFoundError):
            backend.read("m.json")

    def test_token_read_matches_token_written(self, backend: StorageBackend) -> None:
        backend.write("m.json", b"one")
        token = backend.read("m.json").version
        backend.write("m.json", b"two", expect=token)
        assert backend.read("m.json").data == b"two"

    # --- races -----------------------------------------------------------------------

    def _race(self, backend: StorageBackend, expect_for: object) -> list[bool]:
        barrier = threading.Barrier(self.race_threads)
        results: list[bool] = []
        lock = threading.Lock()

        def attempt(n: int) -> None:
            barrier.wait()
            try:
                backend.write("race.json", f"writer {n}".encode(), expect=expect_for)  # type: ignore[arg-type]
                won = True
            except ConflictError:
                won = False
            with lock:
                results.append(won)

        threads = [threading.Thread(target=attempt, args=(n,)) for n in range(self.race_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def test_concurrent_creates_have_exactly_one_winner(self, backend: StorageBackend) -> None:
        results = self._race(backend, ABSENT)
        assert results.count(True) == 1
        assert backend.read("race.json").data.startswith(b"writer ")

    def test_concurrent_replaces_of_one_version_have_exactly_one_winner(
        self, backend: StorageBackend
    ) -> None:
        token = backend.write("race.json", b"start")
        results = self._race(backend, token)
        assert results.count(True) == 1
        assert backend.read("race.json").data != b"start"

    def test_reader_never_sees_a_partial_object(self, backend: StorageBackend) -> None:
        big_a, big_b = b"a" * 1_000_000, b"b" * 1_500_000
        backend.write("m.json", big_a)
        stop = threading.Event()
        seen: set[bytes] = set()

        def reader() -> None:
            while not stop.is_set():
                data = backend.read("m.json").data
                seen.add(data[:1] if data in (big_a, big_b) else b"partial")

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for n in range(10):
                backend.write("m.json", big_b if n % 2 == 0 else big_a)
        finally:
            stop.set()
            thread.join()
        assert b"partial" not in seen

    # --- housekeeping ------------------------------------------------------------------

    def test_delete_removes(self, backend: StorageBackend) -> None:
        backend.write("m.json", b"x")
        backend.delete("m.json")
        with pytest.raises(NotFoundError):
            backend.read("m.json")

    def test_delete_missing_is_not_an_error(self, backend: StorageBackend) -> None:
        backend.delete("never-written.json")

    def test_create_after_delete_succeeds(self, backend: StorageBackend) -> None:
        backend.write("m.json", b"x")
        backend.delete("m.json")
        backend.write("m.json", b"y", expect=ABSENT)
        assert backend.read("m.json").data == b"y"

    def test_list_filters_by_prefix(self, backend: StorageBackend) -> None:
        for key in ("extractor_v1.json", "loader_v1.json", "extractor_v2.json"):
            backend.write(key, b"{}")
        keys = [info.key for info in backend.list("extractor_")]
        assert sorted(keys) == ["extractor_v1.json", "extractor_v2.json"]

    def test_list_reports_sizes(self, backend: StorageBackend) -> None:
        backend.write("m.json", b"12345")
        (info,) = backend.list("m.json")
        assert info.size in (5, None)

    def test_list_shows_staged_objects_for_cleanup(self, backend: StorageBackend) -> None:
        staged = staging_key("m.json")
        backend.write(staged, b"leftover")
        assert any(is_staging_key(info.key, of="m.json") for info in backend.list("m.json"))

    def test_successful_writes_leave_no_staged_objects(self, backend: StorageBackend) -> None:
        token = backend.write("m.json", b"one", expect=ABSENT)
        backend.write("m.json", b"two", expect=token)
        with pytest.raises(ConflictError):
            backend.write("m.json", b"three", expect=token)
        assert [info.key for info in backend.list("")] == ["m.json"]

    # --- the store capability check -----------------------------------------------------

    def test_store_capability_check_passes(self, backend: StorageBackend) -> None:
        report = check_store(backend)
        assert report.ok, report.description

    def test_store_capability_check_leaves_no_objects(self, backend: StorageBackend) -> None:
        backend.write("m.json", b"kept")
        check_store(backend)
        assert [info.key for info in backend.list("")] == ["m.json"]
        assert backend.read("m.json").data == b"kept"
