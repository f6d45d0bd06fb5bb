"""The store capability check: prove that a store refuses the writes saves must not win.

Every save relies on two refusals by the store: a create (``expect=ABSENT``) over an
existing key, and a replace whose expected version is stale. A store that silently
accepts either lets two writers both "win", and the records of one of them are lost
without an error. Stores differ here (some S3-compatible stores ignore conditions on
CopyObject, or on every request, or answer ``501 NotImplemented``), so the library
never assumes: before a backend's first conditional write it runs this check once.

The check uses only the backend contract of :mod:`etl_manifests.storage` (``read``,
``write``, ``delete``), so it works for every backend, built-in or plugin. It writes one
probe object under a fresh key made by :func:`~etl_manifests.storage.probe_key`, below
the backend's root, and always deletes it again:

1. create the probe (``expect=ABSENT``);
2. create it again: must raise :class:`AlreadyExistsError` and leave the first bytes;
3. replace it with the token just read: must succeed;
4. replace it again with that now stale token: must raise :class:`ConflictError` and
   leave the bytes of step 3.

A backend with several ways to commit (the S3 backend: copy-then-delete or one
conditional PUT) names them through
:meth:`~etl_manifests.storage.StorageBackend.commit_modes`; the check probes each in
order and keeps the first the store enforces.

What the check cannot prove: that the store evaluates a condition *atomically* with the
write (one probe cannot race itself). It catches stores that ignore conditions, which is
how records were lost in practice.

Cost: one probe run per backend object, a handful of requests (see docs/backends.md).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace

from .errors import (
    AlreadyExistsError,
    ConflictError,
    PermissionDeniedError,
    StorageError,
    UnsupportedStoreError,
)
from .storage import ABSENT, PROBE_MARKER, STAGING_MARKER, Expect, StorageBackend, probe_key

__all__ = ["StoreReport", "check_store", "ensure_store_checked"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoreReport:
    """What the capability check found for one store (and one commit mode).

    ``create_refused``: a create over an existing key raised :class:`AlreadyExistsError`
    and the stored bytes stayed. ``stale_replace_refused``: a replace with a stale token
    raised :class:`ConflictError` and the stored bytes stayed. ``problems`` says in
    words what went wrong (empty when ``ok``). ``mode`` is the commit mode probed, for
    backends that have several; ``rejected`` holds the reports of the modes tried
    before it and refused.
    """

    root: str
    create_refused: bool
    stale_replace_refused: bool
    problems: tuple[str, ...] = ()
    mode: str | None = None
    rejected: tuple[StoreReport, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the store enforced every condition probed (for ``mode``)."""
        return self.create_refused and self.stale_replace_refused and not self.problems

    @property
    def description(self) -> str:
        """One paragraph for people: what was probed and what the store did."""
        if self.ok:
            text = (
                f"{self.root}{_mode_text(self.mode)}: conditional writes are enforced "
                "(a create over an existing key and a replace with a stale version "
                "were both refused)"
            )
            if self.rejected:
                text += "; not used: " + "; ".join(r._failure() for r in self.rejected)
            return text + "."
        failures = [r._failure() for r in (*self.rejected, self)]
        return f"{self.root} does not enforce conditional writes: " + "; ".join(failures) + "."

    def _failure(self) -> str:
        label = f"commit mode {self.mode!r}: " if self.mode else ""
        return label + ", ".join(self.problems or ("conditions not enforced",))


def _mode_text(mode: str | None) -> str:
    return f" (commit mode {mode!r})" if mode else ""


def check_store(backend: StorageBackend) -> StoreReport:
    """Probe whether ``backend``'s store enforces conditional writes; return the findings.

    Runs the probes now, even if the backend was checked before, and leaves the backend
    committing with the first mode that passed (for backends with several). A backend
    already checked keeps its mode: only that mode is probed again, so writes running
    meanwhile never switch protocol. A passing report is remembered for
    :func:`ensure_store_checked`; a failing one forgets any earlier success.

    :raises PermissionDeniedError: the store refused to let the probe be written or
        read; the message names the root, not the probe's hidden key.
    :raises StorageError: the store could not be probed at all (no bucket,
        unreachable); nothing is cached.
    """
    state = _state_of(backend)
    with state.lock:
        state.running = threading.get_ident()
        try:
            report = _select(backend, state.report.mode if state.report else None)
        finally:
            state.running = None
        state.report = report if report.ok else None
    if report.ok and report.rejected:
        logger.info("store check: %s", report.description)
    return report


def ensure_store_checked(backend: StorageBackend) -> None:
    """Make sure ``backend``'s store was checked (once per backend object) and passed.

    Call it before a conditional write. The first call runs :func:`check_store`; later
    calls return at once. Concurrent first calls wait for one check. A failed check is
    not remembered, so every later call checks again (and refuses again). Calls made by
    the check's own probe writes return at once.

    :raises UnsupportedStoreError: the store accepted a write it must refuse; names
        what it failed to enforce and what to do.
    :raises StorageError: the store could not be probed (see :func:`check_store`).
    """
    state = _state_of(backend)
    if state.report is not None or state.running == threading.get_ident():
        return
    with state.lock:
        if state.report is not None:
            return
        report = check_store(backend)
    if not report.ok:
        if report.mode is not None and not report.rejected:
            # Backends name only the configured mode when the user set one.
            remedy = (
                f"Only commit mode {report.mode!r}, the configured one, was tried: unset "
                "the mode to let the check pick one the store enforces, or use a store "
                "that honours conditional writes."
            )
        else:
            remedy = (
                "Use a store that honours conditional writes (If-Match / If-None-Match, "
                "or ifGenerationMatch)."
            )
        raise UnsupportedStoreError(
            f"{report.description} Saving there could silently lose records when several "
            f"writers commit at once, so nothing was written. {remedy} See 'Store "
            "capability check' in docs/backends.md.",
            report,
        )
    logger.debug("store check passed: %s", report.description)


# --- the probes -------------------------------------------------------------------------


def _select(backend: StorageBackend, keep: str | None) -> StoreReport:
    """Probe each candidate mode (or only ``keep``); the first passing report, else the last."""
    modes = (keep,) if keep is not None else backend.commit_modes()
    if not modes:
        return _probe(backend, None)
    rejected: list[StoreReport] = []
    report: StoreReport | None = None
    for mode in modes:
        backend.use_commit_mode(mode)
        report = _probe(backend, mode)
        if report.ok:
            break
        rejected.append(report)
    assert report is not None
    return replace(report, rejected=tuple(r for r in rejected if r is not report))


def _probe(backend: StorageBackend, mode: str | None) -> StoreReport:
    key = probe_key()
    nonce = uuid.uuid4().hex
    # Four distinct contents: stores that derive tokens from content (ETags) must see
    # different bytes at every step for a stale token to be stale.
    first, second, third, fourth = (f"{step} {nonce}\n".encode() for step in range(1, 5))
    where = backend.url(key)
    problems: list[str] = []
    create_refused = stale_refused = False
    try:
        try:
            _write_expected_to_land(backend, key, first, ABSENT)
        except ConflictError:
            problems.append("a create of a new key was refused")
        else:
            refusal = _refusal(lambda: backend.write(key, second, expect=ABSENT))
            stored = backend.read(key)
            create_refused = _judge_create(refusal, stored.data == first, problems)
            stale_refused = _probe_replace(backend, key, stored.version, third, fourth, problems)
    except UnsupportedStoreError as exc:
        problems.append(f"the store refused a conditional write as unsupported ({exc})")
    except PermissionDeniedError as exc:
        raise _denied(backend, exc) from exc
    finally:
        _remove(backend, key, where)
    return StoreReport(backend.root, create_refused, stale_refused, tuple(problems), mode)


# The probe's key in a backend's message, with a leading "/", the local lock file's dots
# and a staged copy's suffix, so that what is left names the root.
_PROBE_NAME = re.compile(
    rf"/?\.?{re.escape(PROBE_MARKER)}[0-9a-f]{{32}}"
    rf"(?:{re.escape(STAGING_MARKER)}[0-9a-f]{{32}}|\.lock)?"
)


def _denied(backend: StorageBackend, exc: PermissionDeniedError) -> PermissionDeniedError:
    """The refusal of a probe write or read, told about the root: the probe's hidden key
    is ours, and who reads the message knows the root (or the manifest) only."""
    detail = _PROBE_NAME.sub("", denial_text(exc))
    return reworded(
        exc,
        f"{detail} (found by the store check, which writes, reads and deletes one "
        f"object under {backend.root} before the first save there)",
    )


def denial_text(exc: PermissionDeniedError) -> str:
    """The message of ``exc`` without the ``[Errno N]`` that ``str`` puts before it."""
    return exc.strerror if exc.errno is not None and exc.strerror else str(exc)


def reworded(exc: PermissionDeniedError, message: str) -> PermissionDeniedError:
    """A :class:`PermissionDeniedError` like ``exc`` (same errno) saying ``message``."""
    if exc.errno is None:
        return PermissionDeniedError(message)
    return PermissionDeniedError(exc.errno, message)


def _judge_create(refusal: ConflictError | None, kept: bool, problems: list[str]) -> bool:
    """Was the create over the existing probe refused with AlreadyExistsError, bytes kept?"""
    if refusal is None:
        problems.append("a create over an existing key was accepted")
        return False
    if not isinstance(refusal, AlreadyExistsError):
        problems.append(
            f"a create over an existing key raised {type(refusal).__name__}, not AlreadyExistsError"
        )
        return False
    if not kept:
        problems.append("a refused create over an existing key still replaced its bytes")
        return False
    return True


def _probe_replace(
    backend: StorageBackend,
    key: str,
    current: str,
    newer: bytes,
    other: bytes,
    problems: list[str],
) -> bool:
    """Replace with the current token (accepted), then with it again (stale: refused)?"""
    try:
        token = _write_expected_to_land(backend, key, newer, current)
    except ConflictError:
        problems.append("a replace with the current version was refused")
        return False
    if token == current:
        problems.append("the version token did not change when the bytes did")
        return False
    refusal = _refusal(lambda: backend.write(key, other, expect=current))
    if refusal is None:
        problems.append("a replace with a stale version was accepted")
        return False
    if backend.read(key).data != newer:
        problems.append("a refused replace with a stale version still replaced the bytes")
        return False
    return True


def _write_expected_to_land(backend: StorageBackend, key: str, data: bytes, expect: Expect) -> str:
    """A probe write that must succeed; return its token.

    A backend that retried after a lost response sees its own first attempt and raises a
    conflict (documented behaviour, see storage.py). The probe key is ours alone, so
    finding our bytes there means the write landed.
    """
    try:
        return backend.write(key, data, expect=expect)
    except ConflictError:
        stored = backend.read(key)
        if stored.data != data:
            raise
        return stored.version


def _refusal(attempt: Callable[[], object]) -> ConflictError | None:
    """Run a write the store must refuse; return the conflict it raised, or ``None``."""
    try:
        attempt()
    except ConflictError as exc:
        return exc
    return None


def _remove(backend: StorageBackend, key: str, where: str) -> None:
    try:
        backend.delete(key)
    except StorageError as exc:
        # A leftover probe is a few bytes nobody reads; losing the check's verdict for
        # it would be worse.
        logger.warning(
            "could not delete the store-check probe %s (%s); delete it by hand", where, exc
        )


# --- once per backend object ------------------------------------------------------------


@dataclass(eq=False)
class _State:
    lock: threading.RLock
    keep: Callable[[], object]  # keeps the identity check honest (see _state_of)
    report: StoreReport | None = None
    running: int | None = None  # ident of the thread running the check


_states: dict[int, _State] = {}
# Re-entrant: creating a weakref.finalize can run the garbage collector, whose finalizer
# of another dead backend (_forget) then takes this lock again on the same thread.
_states_lock = threading.RLock()


def _state_of(backend: StorageBackend) -> _State:
    key = id(backend)
    with _states_lock:
        state = _states.get(key)
        if state is not None and state.keep() is backend:
            return state
        try:
            keep: Callable[[], object] = weakref.ref(backend)
            weakref.finalize(backend, _forget, key)
        except TypeError:
            # Not weak-referenceable: hold it, so its id is never reused by another object.
            keep = _constant(backend)
        state = _State(threading.RLock(), keep)
        _states[key] = state
        return state


def _constant(value: object) -> Callable[[], object]:
    return lambda: value


def _forget(key: int) -> None:
    with _states_lock:
        state = _states.get(key)
        if state is not None and state.keep() is None:
            del _states[key]


def _reset_after_fork() -> None:
    # A lock held by a thread of the parent stays held forever in the child; checking
    # again in the child costs one probe run and needs no lock from before the fork.
    global _states_lock
    _states_lock = threading.RLock()
    _states.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
