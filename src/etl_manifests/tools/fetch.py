"""Download-if-new: the extract step of an ETL job in one call.

::

    from etl_manifests.tools import fetch_many

    report = fetch_many(manager.extractor, urls, "/data/raw", workers=8)
    report.raise_for_failures()

For each URL: ask the server for its headers (one HEAD; skipped for HTTP when nothing of
the file's name is recorded, as then only the GET's headers are needed); if the manifest
already has this exact file from this source at this destination (same source URL, same
``ETag`` / ``Last-Modified`` / size), skip it. Otherwise stream it to a temporary name beside the
destination while hashing it, and unless its SHA-256 is already recorded, move it into
place and record it with its source (one commit). When the server sends neither
``ETag`` nor ``Last-Modified``, only the checksum can tell, so the file is downloaded and
a copy whose checksum is recorded is discarded.

The destination keeps the URL's path below ``dest`` (``naming="{path}"``), so files of
one name in different folders stay apart; a URL whose destination is recorded from
another source is refused with :class:`DestinationConflictError` before anything is
written.

Many workers (threads here, processes or machines with :class:`Fetcher`) may fetch from
one list into one manifest: records are keyed by checksum, so a file is recorded once
however many fetch it. Each worker reads what the others recorded before each download
(:func:`fetch_many`: at most once a second, one read shared by its threads), so a file
is not downloaded again once it is recorded, and again just before recording, so a file
is never recorded twice.
"""

from __future__ import annotations

import contextlib
import enum
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from ..errors import (
    DestinationConflictError,
    InvalidNameError,
    InvalidRecordError,
    ManifestError,
    TransferError,
)
from ..model import Manifest
from ..process import ETLProcess
from ..record import ManifestRecord
from ..store import ManifestStore
from .files import (
    Cancelled,
    FileInfo,
    StorageOptions,
    TransferRetry,
    answers_get_headers,
    check_file_name,
    filesystem,
    http_date,
    no_secrets,
    open_get,
    open_stream,
    redact,
    remote_path,
    retrying,
    source_of,
    stat,
)
from .hashing import Digest, hash_stream
from .records import check_size, params_of
from .staging import StagedFile

__all__ = [
    "DEFAULT_NAMING",
    "FetchReport",
    "FetchResult",
    "FetchStatus",
    "Fetcher",
    "destination_name",
    "fetch",
    "fetch_many",
]

#: Where a download lands below ``dest``: the URL's path below its host or bucket.
DEFAULT_NAMING = "{path}"
#: Seconds an interrupted :func:`fetch_many` waits for downloads in flight to stop.
_CANCEL_GRACE = 1.0
#: How old the look at other writers' commits that :func:`fetch_many` decides to skip
#: on may be. Each look lists the log, whose cost grows with the entries since the last
#: checkpoint, so one look serves every URL of this window instead of one per URL.
_SKIP_REFRESH_SECONDS = 1.0


class FetchStatus(enum.StrEnum):
    """What :func:`fetch` did with one URL."""

    DOWNLOADED = "downloaded"
    """Downloaded, moved into place and recorded."""
    SKIPPED = "skipped"
    """The manifest has this exact file at this destination: nothing was downloaded."""
    DUPLICATE = "duplicate"
    """Downloaded, but a file with its checksum was already recorded; the copy was
    discarded and nothing was recorded."""
    FAILED = "failed"
    """Only in :func:`fetch_many` reports: the error is in ``FetchResult.error``."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome for one URL. Plain data: it pickles and converts to JSON."""

    url: str
    status: FetchStatus
    checksum: str | None = None
    """The file's SHA-256 (the recorded one when skipped)."""
    filepath: str | None = None
    """Where the file is (or was recorded)."""
    size: int | None = None
    """Bytes downloaded (0 when skipped)."""
    error: str | None = None
    """Why the URL failed (``FAILED`` only): the error's message, without credentials."""
    reason: str | None = None
    """Why it was skipped (which record matched, by which rule), or why it was a
    duplicate; ``None`` otherwise."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; the URL without credentials."""
        return {**asdict(self), "url": redact(self.url), "status": self.status.value}


@dataclass(frozen=True)
class FetchReport:
    """The outcome of :func:`fetch_many`: one result per distinct URL, in input order."""

    results: list[FetchResult] = field(default_factory=list)

    def count(self, status: FetchStatus) -> int:
        """How many URLs ended with ``status``."""
        return sum(r.status is status for r in self.results)

    @property
    def failed(self) -> list[FetchResult]:
        """The results of URLs that could not be fetched."""
        return [r for r in self.results if r.status is FetchStatus.FAILED]

    @property
    def ok(self) -> bool:
        """Whether every URL was downloaded, skipped or found to be a duplicate."""
        return not self.failed

    def raise_for_failures(self) -> None:
        """:raises TransferError: naming how many URLs failed and the first error."""
        if self.failed:
            first = self.failed[0]
            raise TransferError(
                f"{len(self.failed)} of {len(self.results)} downloads failed; the first: "
                f"{first.error} (the others are in report.failed); fetch again to retry them"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the counts per status and every result."""
        return {
            "counts": {s.value: self.count(s) for s in FetchStatus},
            "results": [r.to_dict() for r in self.results],
        }


def destination_name(url: str, naming: str = DEFAULT_NAMING, filename: str | None = None) -> str:
    """The path below ``dest`` where :func:`fetch` puts ``url``.

    :param naming: a template of ``{host}`` (host or bucket), ``{path}`` (the URL's path
        below it, decoded) and ``{name}`` (its last component), such as ``"{host}/{path}"``
        or ``"{name}"`` (all files in one folder, as before sources were recorded).
    :param filename: a plain name that replaces the template.
    :raises InvalidNameError: the result is not a relative path of plain names, or holds
        a control character (``%1b`` in a URL); nothing is created.
    """
    if filename is not None:
        check_file_name(filename)
        return filename
    host, path = remote_path(url)
    name = path.rsplit("/", 1)[-1]
    try:
        relative = naming.format(host=host, path=path, name=name)
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidNameError(
            f"naming template {naming!r} is not valid ({type(exc).__name__}: {exc}); use "
            "{host}, {path} and {name}, as in '{host}/{path}'"
        ) from None
    parts = relative.strip("/").split("/")
    for part in parts:
        check_file_name(part, what=f"path component (in {relative!r}, from {redact(url)})")
    return "/".join(parts)


@no_secrets
def fetch(
    manifest: Manifest,
    url: str,
    dest: str,
    *,
    filename: str | None = None,
    naming: str = DEFAULT_NAMING,
    storage_options: StorageOptions | None = None,
    retry: TransferRetry | None = None,
    refetch_missing: bool = False,
    force: bool = False,
) -> FetchResult:
    """Download ``url`` below the folder ``dest`` and record it, unless it is recorded.

    :param dest: a local folder (created if missing) or a URL prefix such as
        ``s3://bucket/raw``; the file lands at ``{dest}/{destination_name(url, naming)}``.
    :param filename: a plain name to store it under directly below ``dest``.
    :param naming: see :func:`destination_name`; default the URL's path.
    :param storage_options: fsspec options per URL scheme, for the source and the
        destination (``{"s3": {"endpoint_url": ...}}``).
    :param retry: how transient failures are tried again (default
        :data:`~etl_manifests.tools.files.DEFAULT_TRANSFER_RETRY`).
    :param refetch_missing: download a recorded file again if it is no longer at its
        recorded place (what ``verify`` reports as missing); it is put back there.
    :param force: download even if the file is recorded; bytes that are recorded at
        this destination are put back in place (not recorded twice).
    :raises NotFoundError: nothing at ``url`` (HTTP 404 or 410).
    :raises PermissionDeniedError: the server or store refused (HTTP 401 or 403).
    :raises TransferError: the download failed (after retries, for transient failures);
        nothing was recorded and no partial file is left under the destination's name.
    :raises DestinationConflictError: the destination is recorded from another source.
    :raises InvalidNameError: the destination name is not a safe relative path.

    No error raised carries a credential: not in its message, nor chained to it.
    """
    options = _Options(filename, naming, storage_options, retry, refetch_missing, force)
    return _fetch(manifest, url, dest, options)


@dataclass(frozen=True, slots=True)
class _Options:
    filename: str | None = None
    naming: str = DEFAULT_NAMING
    storage_options: StorageOptions | None = None
    retry: TransferRetry | None = None
    refetch_missing: bool = False
    force: bool = False


class _Run:
    """What the downloads of one :func:`fetch_many` share: the stop signal, and the
    temporary files being written (removed if their downloads do not stop in time)."""

    def __init__(
        self,
        per_host: int | None = None,
        on_bytes: Callable[[int, int], None] | None = None,
    ) -> None:
        self.on_bytes = on_bytes
        self.cancel = threading.Event()
        self._staged: set[StagedFile] = set()
        self._lock = threading.Lock()
        self._per_host = per_host
        self._hosts: dict[str, threading.Semaphore] = {}
        self._commits: _GroupCommit | None = None

    def commits(self, manifest: Manifest) -> _GroupCommit:
        """The group commit of this pass's landed files."""
        with self._lock:
            if self._commits is None:
                self._commits = _GroupCommit(manifest)
            return self._commits

    @contextlib.contextmanager
    def host_slot(self, url: str) -> Iterator[None]:
        """Hold one of the ``per_host`` places of ``url``'s host for the block."""
        if self._per_host is None:
            yield
            return
        host = remote_path(url)[0]
        with self._lock:
            slot = self._hosts.setdefault(host, threading.Semaphore(self._per_host))
        while not slot.acquire(timeout=0.1):
            self.check()  # an interrupted run stops waiting too
        try:
            yield
        finally:
            slot.release()

    @contextlib.contextmanager
    def tracking(self, staged: StagedFile) -> Iterator[StagedFile]:
        with self._lock:
            self._staged.add(staged)
        try:
            yield staged
        finally:
            with self._lock:
                self._staged.discard(staged)

    def check(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def abandon(self) -> None:
        """Remove the temporary files of downloads that did not stop."""
        with self._lock:
            left = list(self._staged)
        for staged in left:
            staged.discard()


class _Refresher:
    """``manifest.refresh()`` shared by the threads of one process.

    :meth:`fresh` returns once a refresh that STARTED after the call has completed, so
    the caller sees every commit that landed before it asked, as if it had refreshed
    itself; callers that ask while one refresh runs share the next one. :meth:`recent`
    accepts a refresh that started at most ``max_age`` seconds ago.
    """

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest
        self._cond = threading.Condition()
        self._started = 0  # the number of refreshes begun
        self._done = 0  # the last of them that completed
        self._done_at = -float("inf")  # when that one started (monotonic)
        self._running = False

    def fresh(self) -> None:
        """:raises: what ``Manifest.refresh()`` raises, to the thread that ran it (the
        threads that waited for it try again)."""
        with self._cond:
            self._until(self._started + 1)

    def recent(self, max_age: float) -> None:
        """Refresh unless a refresh that started at most ``max_age`` seconds ago completed;
        one running now will do too."""
        with self._cond:
            if time.monotonic() - self._done_at <= max_age:
                return
            self._until(self._started if self._running else self._started + 1)

    def _until(self, need: int) -> None:
        """Wait (holding the condition) until refresh number ``need`` has completed,
        running it if no other thread does."""
        while self._done < need:
            if self._running:
                self._cond.wait()
                continue
            self._started += 1
            mine, began = self._started, time.monotonic()
            self._running = True
            ok = False
            self._cond.release()
            try:
                self._manifest.refresh()
                ok = True
            finally:
                self._cond.acquire()
                self._running = False
                if ok:
                    self._done, self._done_at = mine, began
                self._cond.notify_all()


class _Landed:
    """One landed file waiting for the commit that records it."""

    __slots__ = ("done", "error", "params", "record")

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.done = False
        self.record: ManifestRecord | None = None
        self.error: Exception | None = None


class _GroupCommit:
    """Records of landed files, committed together: one log entry for every file that
    landed while the previous entry was being written (no timer: a file landing alone is
    committed at once). :meth:`add` returns only once the entry holding the record has
    landed, and raises what that commit raised, so each file is acknowledged only once
    it is durable.

    Only for the worker threads of one :func:`fetch_many`: the thread that writes an
    entry commits the others' records too, which must not join a transaction of its own.
    """

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest
        self._cond = threading.Condition()
        self._waiting: list[_Landed] = []
        self._writing = False

    def add(self, params: dict[str, Any]) -> ManifestRecord:
        mine = _Landed(params)
        with self._cond:
            self._waiting.append(mine)
            while not mine.done:
                if self._writing:
                    self._cond.wait()
                    continue
                group, self._waiting = self._waiting, []
                self._writing = True
                self._cond.release()
                try:
                    self._commit(group)
                finally:
                    self._cond.acquire()
                    self._writing = False
                    for landed in group:
                        landed.done = True
                    self._cond.notify_all()
        if mine.record is None:
            raise mine.error or ManifestError("the group commit recorded nothing")
        return mine.record

    def _commit(self, group: list[_Landed]) -> None:
        try:
            records = self._manifest.add_records([landed.params for landed in group])
        except InvalidRecordError as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            # One bad record must not fail the others: each alone, then.
            for landed in group:
                self._commit([landed])
            return
        except Exception as exc:  # the commit failed (or may have landed: see dirty)
            for landed in group:
                landed.error = exc
            return
        for landed, record in zip(group, records, strict=True):
            landed.record = record


_REFRESHERS: weakref.WeakKeyDictionary[Manifest, _Refresher] = weakref.WeakKeyDictionary()
_REFRESHERS_LOCK = threading.Lock()


def _refresher(manifest: Manifest) -> _Refresher:
    with _REFRESHERS_LOCK:
        found = _REFRESHERS.get(manifest)
        if found is None:
            found = _REFRESHERS[manifest] = _Refresher(manifest)
        return found


def _fetch(
    manifest: Manifest, url: str, dest: str, options: _Options, run: _Run | None = None
) -> FetchResult:
    cancel = run.cancel if run is not None else None
    relative = destination_name(url, options.naming, options.filename)
    fs, folder = filesystem(dest, options.storage_options)
    path = f"{folder.rstrip('/')}/{relative}"
    local = isinstance(fs, LocalFileSystem)
    target = path if local else f"{dest.rstrip('/')}/{relative}"
    source = source_of(url)

    # Other workers' new commits, so a file one of them recorded meanwhile is not
    # downloaded again. One fetch looks itself; a pass accepts a look shared by its
    # threads and at most _SKIP_REFRESH_SECONDS old (a file recorded within that window
    # is downloaded, then found a duplicate by the look in _land: never recorded twice).
    if run is None:
        _refresher(manifest).fresh()
    else:
        _refresher(manifest).recent(_SKIP_REFRESH_SECONDS)
    _refuse_collision(manifest, target, source)
    info: FileInfo | None = None
    restore = options.force
    if _needs_head(manifest, url, target, options):
        info = retrying(lambda: stat(url, options.storage_options), options.retry, cancel)
        # Releases before sources were recorded put every file directly below dest.
        legacy = None
        if options.filename is None and relative != info.filename:
            legacy = f"{(folder if local else dest).rstrip('/')}/{info.filename}"
        match = None if options.force else _recorded(manifest, info, target, source, legacy)
        if match is not None and not (
            options.refetch_missing and not _exists(match[0].filepath, options.storage_options)
        ):
            record, rule = match
            why = f"record {record.checksum[:12]} at {record.filepath}: {rule}"
            return FetchResult(
                url, FetchStatus.SKIPPED, record.checksum, record.filepath, 0, reason=why
            )
        restore = options.force or match is not None
    announced = False

    def attempt() -> FetchResult:
        nonlocal announced
        if run is not None:
            run.check()
        with contextlib.ExitStack() as stack:
            if info is None:  # the GET's own headers describe the file
                stream, got = stack.enter_context(open_get(url, options.storage_options))
            else:
                stream = stack.enter_context(open_stream(url, info.size, options.storage_options))
                got = info
            staged = stack.enter_context(StagedFile(fs, path, target))
            if run is not None:
                stack.enter_context(run.tracking(staged))
                if run.on_bytes is not None and got.size and not announced:
                    announced = True  # once, whatever the retries
                    run.on_bytes(0, got.size)
            sink = staged.write if run is None else _checked(staged.write, run)
            digest = hash_stream(stream, sink=sink)
            check_size(url, got, digest)
            return _land(
                manifest,
                staged,
                url,
                got,
                Digest(digest.checksum, digest.size),
                source,
                run,
                restore=restore,
            )

    return retrying(attempt, options.retry, cancel)


def _needs_head(manifest: Manifest, url: str, target: str, options: _Options) -> bool:
    """Whether to ask for ``url``'s headers before downloading it: only when a record
    could make it a skip (one of its name, here or where old releases put it). Otherwise
    an HTTP download is one GET, whose response headers are recorded; other stores are
    asked first, since their reads say less."""
    if not answers_get_headers(url):
        return True
    if options.force:
        return False  # nothing is skipped
    name = remote_path(url)[1].rsplit("/", 1)[-1]
    if not name:
        return True  # stat says why there is no file to fetch
    return bool(manifest.find(_name(target)) or manifest.find(name))


def _exists(location: str, storage_options: StorageOptions | None) -> bool:
    """Whether a file is at a record's ``filepath`` (an error asking counts as there:
    only a file known to be gone is fetched again)."""
    try:
        fs, path = filesystem(location, storage_options)
        return bool(fs.exists(path))
    except Exception:
        return True


def _checked(write: Callable[[bytes], None], run: _Run) -> Callable[[bytes], None]:
    on_bytes = run.on_bytes

    def sink(chunk: bytes) -> None:
        run.check()  # an interrupted run stops between chunks
        write(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk), 0)

    return sink


# Checksums being moved into place and recorded, per manifest object: a second thread
# of this process with the same bytes is told "duplicate" instead of recording them too.
_CLAIMS: weakref.WeakKeyDictionary[Manifest, set[str]] = weakref.WeakKeyDictionary()
_CLAIMS_LOCK = threading.Lock()


def _land(
    manifest: Manifest,
    staged: StagedFile,
    url: str,
    info: FileInfo,
    digest: Digest,
    source: str,
    run: _Run | None,
    *,
    restore: bool = False,
) -> FetchResult:
    """Move a hashed download into place and record it, unless its bytes are recorded
    (or being recorded by another thread): then discard it and say "duplicate" -- or,
    with ``restore``, if they are recorded at this very place, put them back there."""
    checksum, size = digest
    # Someone may have recorded these bytes while we downloaded: a look that began after
    # the download (shared with threads landing at the same time).
    _refresher(manifest).fresh()
    if restore:
        known = manifest.get(checksum)
        if known is not None and known.filepath == staged.url:
            if run is not None:
                run.check()
            staged.commit()  # the record already says these bytes are here
            return FetchResult(url, FetchStatus.DOWNLOADED, checksum, known.filepath, size)
    with _CLAIMS_LOCK:
        claims = _CLAIMS.setdefault(manifest, set())
        known = manifest.get(checksum)
        duplicate = known is not None or checksum in claims
        if not duplicate:
            claims.add(checksum)
    if duplicate:
        staged.discard()
        where = known.filepath if known is not None else None
        why = (
            f"these bytes are recorded at {where}"
            if where is not None
            else "another thread of this process is recording these bytes"
        )
        return FetchResult(url, FetchStatus.DUPLICATE, checksum, where, size, reason=why)
    try:
        _refuse_collision(manifest, staged.url, source)
        if run is not None:
            run.check()  # the last point where an interrupted run leaves nothing
        staged.commit()
        params = params_of(info, digest, location=staged.url)
        params = {**params, "filename": _name(staged.url), "source": source}
        # In a pass, one commit for the files that land together.
        commit = manifest.add_record if run is None else run.commits(manifest).add
        record = commit(params)
    finally:
        with _CLAIMS_LOCK:
            claims.discard(checksum)
    return FetchResult(url, FetchStatus.DOWNLOADED, record.checksum, record.filepath, size)


def _name(target: str) -> str:
    return target.rstrip("/").rsplit("/", 1)[-1]


def fetch_many(
    manifest: Manifest,
    urls: Iterable[str],
    dest: str,
    *,
    workers: int = 4,
    naming: str = DEFAULT_NAMING,
    storage_options: StorageOptions | None = None,
    retry: TransferRetry | None = None,
    refetch_missing: bool = False,
    force: bool = False,
    per_host: int | None = None,
    on_result: Callable[[FetchResult], None] | None = None,
    on_bytes: Callable[[int, int], None] | None = None,
) -> FetchReport:
    """:func:`fetch` every URL, at most ``workers`` at a time; failures do not stop the rest.

    A URL listed twice is fetched once. URLs whose destinations would be the same path
    fail with a :class:`DestinationConflictError` message (all but the first of them)
    before anything is downloaded. Each file is recorded as it lands, so a run killed
    halfway keeps what it downloaded: files that land while the previous commit is being
    written share the next one, and a file is reported downloaded only once the commit
    holding its record has landed (if that commit fails, so do its files).

    The threads share their looks at other writers' commits: a skip is decided on a look
    at most a second old (a file recorded within that second may be downloaded again,
    and is then a duplicate), and the look before recording starts after the download
    ended, so a file is never recorded twice.

    Interrupted (``KeyboardInterrupt`` in the calling thread): no further download starts,
    downloads in flight stop between chunks within about a second and leave no temporary
    file, files that landed stay recorded, and the ``KeyboardInterrupt`` is raised again
    with the results so far in its ``report`` attribute.

    :param refetch_missing: and ``force``: as for :func:`fetch`.
    :param per_host: at most this many requests to one host (with its port) or bucket at
        a time, whatever ``workers`` allows (polite to data providers); default no limit
        beyond ``workers``.
    :param on_result: called in the caller's thread with each result as it completes.
    :param on_bytes: called from the download threads as ``on_bytes(received,
        announced)``: ``announced`` the size a download expects when it starts (0 if the
        server announced none), ``received`` the bytes of each chunk as it arrives (for
        byte-level progress: bytes, rate, time left).
    :returns: a :class:`FetchReport`; call ``raise_for_failures()`` to turn failures into
        an exception.
    """
    unique = list(dict.fromkeys(urls))
    options = _Options(None, naming, storage_options, retry, refetch_missing, force)
    results: dict[str, FetchResult] = {}
    todo: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    done: queue.SimpleQueue[FetchResult] = queue.SimpleQueue()
    for url, failure in _conflicts(unique, dest, naming).items():
        results[url] = FetchResult(url, FetchStatus.FAILED, error=failure)
    pending = [url for url in unique if url not in results]
    for url in pending:
        todo.put(url)
    run = _Run(None if per_host is None else max(1, per_host), on_bytes)
    threads = [
        threading.Thread(target=_work, args=(manifest, dest, options, run, todo, done), daemon=True)
        for _ in range(min(max(1, workers), len(pending)))
    ]
    for _ in threads:
        todo.put(None)
    for thread in threads:
        thread.start()
    try:
        for url in unique:
            if url in results and on_result is not None:
                on_result(results[url])
        while len(results) < len(unique):
            try:
                result = done.get(timeout=0.2)
            except queue.Empty:
                continue
            results[result.url] = result
            if on_result is not None:
                on_result(result)
    except KeyboardInterrupt as interrupt:
        _stop(run, threads)
        while not done.empty():
            result = done.get()
            results[result.url] = result
        interrupt.report = FetchReport(  # type: ignore[attr-defined]
            [results[url] for url in unique if url in results]
        )
        raise
    return FetchReport([results[url] for url in unique])


def _stop(run: _Run, threads: list[threading.Thread]) -> None:
    """Cancel every download of ``run``; those that do not stop within the grace period
    are left to end on their own, their temporary files removed."""
    run.cancel.set()
    try:
        ends = time.monotonic() + _CANCEL_GRACE
        for thread in threads:
            thread.join(timeout=max(0.0, ends - time.monotonic()))
    finally:  # a second Ctrl-C cuts the wait short, not the clean-up
        run.abandon()


def _work(
    manifest: Manifest,
    dest: str,
    options: _Options,
    run: _Run,
    todo: queue.SimpleQueue[str | None],
    done: queue.SimpleQueue[FetchResult],
) -> None:
    while (url := todo.get()) is not None:
        if run.cancel.is_set():
            return
        try:
            with run.host_slot(url):
                result = _fetch(manifest, url, dest, options, run)
        except Cancelled:
            return
        except (ManifestError, OSError) as exc:
            result = FetchResult(url, FetchStatus.FAILED, error=str(exc))
        except Exception as exc:  # a bug must not hang the caller waiting for a result
            result = FetchResult(url, FetchStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        done.put(result)


def _conflicts(urls: list[str], dest: str, naming: str) -> dict[str, str]:
    """Errors for URLs that cannot be fetched: a destination that is not a safe name,
    or one that an earlier URL of the list already takes."""
    taken: dict[str, str] = {}
    errors: dict[str, str] = {}
    for url in urls:
        try:
            relative = destination_name(url, naming)
        except InvalidNameError as exc:
            errors[url] = str(exc)
            continue
        first = taken.setdefault(relative, url)
        if first != url:
            errors[url] = str(_conflict(f"{dest.rstrip('/')}/{relative}", first, url))
    return errors


def _conflict(path: str, first: str, second: str) -> DestinationConflictError:
    one, two = source_of(first), source_of(second)
    return DestinationConflictError(
        f"{redact(one)} and {redact(two)} would both be downloaded to {path}; nothing was "
        "written. Give a naming template that tells them apart (naming='{host}/{path}', "
        "--naming '{host}/{path}') or fetch them into different folders",
        path,
        [one, two],
    )


def _refuse_collision(manifest: Manifest, target: str, source: str) -> None:
    """Raise if ``target`` is recorded as downloaded from another source."""
    for record in manifest.find(_name(target)):
        if record.filepath == target and record.source not in (None, source):
            raise _conflict(target, record.source, source)


@dataclass(frozen=True)
class Fetcher:
    """:func:`fetch` as a picklable callable, for the workers of a cluster::

        futures = client.map(Fetcher(manager, "s3://bucket/raw"), urls)

    It carries the manager (which pickles as its settings and becomes the singleton of
    the worker's process) or a plain :class:`~etl_manifests.ManifestStore` (which
    pickles as its settings too), never an open manifest. Raises as :func:`fetch` does.
    """

    manager: ManifestStore
    dest: str
    process: ETLProcess | str = ETLProcess.EXTRACTOR
    storage_options: Mapping[str, Mapping[str, Any]] | None = None
    naming: str = DEFAULT_NAMING
    retry: TransferRetry | None = None
    refetch_missing: bool = False
    force: bool = False

    def __call__(self, url: str) -> FetchResult:
        manifest = self.manager.get(self.process)
        return fetch(
            manifest,
            url,
            self.dest,
            naming=self.naming,
            storage_options=self.storage_options,
            retry=self.retry,
            refetch_missing=self.refetch_missing,
            force=self.force,
        )


#: A ``Last-Modified`` has one-second resolution: a file rewritten within the second it
#: was recorded in may keep its date and size. Only a date this much older than the
#: record is trusted without an ETag.
_RACY_SECONDS = 1.0


def _recorded(
    manifest: Manifest, info: FileInfo, target: str, source: str, legacy: str | None
) -> tuple[ManifestRecord, str] | None:
    """The record of this exact file from ``source`` at ``target``, judged by the server's
    headers, and the rule that matched (see "Change detection" in docs/helpers.md). A
    record without a source (written before sources were kept) counts at ``target``,
    and at ``legacy``, where such releases put the file."""
    if info.etag is None and info.last_modified is None:
        return None  # only the checksum can tell; the caller downloads
    places = [(target, (source, None))] + ([(legacy, (None,))] if legacy is not None else [])
    for where, sources in places:
        for record in manifest.find(
            _name(where),
            etag=info.etag,
            last_modified_server=info.last_modified,
            content_length_bytes=info.size,
        ):
            if record.filepath != where or record.source not in sources:
                continue
            rule = _rule(info, record)
            if rule is not None:
                origin = "same source" if record.source else "recorded before sources were kept"
                return record, f"{origin}, {rule}"
    return None


def _rule(info: FileInfo, record: ManifestRecord) -> str | None:
    """Which header rule makes ``record`` this file, or ``None`` if the headers that
    match do not prove it (the caller downloads and the checksum decides)."""
    size = f"size {info.size}" if info.size is not None else "no size sent"
    strong = info.etag is not None and not info.etag.startswith("W/")
    if strong:
        return f"same strong ETag {info.etag}, {size}"
    if info.last_modified is None:
        return None  # a weak ETag alone says "equivalent", not "the same bytes"
    if _racy(info.last_modified, record):
        return None
    tag = f"same weak ETag {info.etag}, " if info.etag is not None else "no ETag, "
    return f"{tag}same Last-Modified {info.last_modified}, {size}"


def _racy(last_modified: str, record: ManifestRecord) -> bool:
    """Whether ``last_modified`` is too close to the record's time to prove anything."""
    when = http_date(last_modified)
    return when is None or (record.updated_at - when).total_seconds() < _RACY_SECONDS
