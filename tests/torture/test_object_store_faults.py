"""Faults injected at every step of a commit on S3 and GCS, through the harness proxy.

A commit creates one log entry (``write(expect=ABSENT)``) and reads its epoch's seal.
Steps of the entry's creation: S3 default commit mode (staging PUT, CopyObject, DELETE
of the staged key), S3 put mode (the conditional PUT), GCS (the conditional media
upload). Kinds: connection reset, 500, 503, slow response, forward-then-drop-response,
and forward-then-500 (the write landed, the client saw an error). Each once (retried to
success) and persistently.

After every case: a fresh reader holds the old records or the new ones, never a part;
the snapshot was not touched by the commit; the commit is unsettled (``dirty``)
after a failed commit and a later save succeeds once the faults are cleared; a lost
response neither duplicates the commit (one entry, one revision) nor loses it; and
``compact()`` then puts exactly the new records into the JSON file.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from conftest import checksum, record
from etl_manifests import Manifest, RetryPolicy
from etl_manifests.document import decode
from etl_manifests.errors import (
    ManifestError,
    StorageError,
    TransientStorageError,
)
from etl_manifests.testing import FaultRules, GcsServer, S3Server
from torture._support import KEY, LOG_PREFIX, Target, plain_json

pytestmark = pytest.mark.torture

BACKEND_RETRIES = {"etl_manifests_retries": 3, "etl_manifests_retry_base": 0.005}
SAVE_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)
NEW = 1000  # the record added while the fault is active
BASE = range(3)  # records committed before the fault

# Where each step's request can be recognised by the proxy.
STEPS: dict[str, dict[str, Any]] = {
    "s3-copy:stage-put": {"method": "PUT", "path_regex": r"\.staged-"},
    "s3-copy:copy": {"method": "PUT", "header": "x-amz-copy-source"},
    "s3-copy:delete-staged": {"method": "DELETE", "path_regex": r"\.staged-"},
    "s3-put:conditional-put": {
        "method": "PUT",
        "path_regex": re.escape(LOG_PREFIX) + r"[0-9]{10}/[0-9a-f]{16}-[0-9]+\.json$",
    },
    "gcs:conditional-upload": {"method": "POST", "path_regex": r"^/upload/"},
}
KINDS: dict[str, dict[str, Any]] = {
    "reset": {"action": "reset"},
    "500": {"action": "status", "status": 500},
    "503": {"action": "status", "status": 503},
    "slow": {"action": "delay", "delay": 0.25},
    "drop-response": {"action": "drop_response"},
    "500-after-landing": {"action": "status", "status": 500, "after_forward": True},
}
LANDS = {"drop-response", "500-after-landing"}  # the request reaches the store

FIRED: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if FIRED:
        print("\n[object-store-faults] faults injected, by backend:step and kind:")
        by_step: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        for label, n in sorted(FIRED.items()):
            step, kind, _mode = label.split("|")
            by_step[step] += n
            by_kind[kind] += n
        for step, n in sorted(by_step.items()):
            print(f"  step {step}: {n}")
        for kind, n in sorted(by_kind.items()):
            print(f"  kind {kind}: {n}")
        once = sum(n for k, n in FIRED.items() if k.endswith("|once"))
        print(
            f"  total {sum(FIRED.values())} (once-cases {once}, persistent-cases "
            f"{sum(FIRED.values()) - once}) in {len(FIRED)} cases; records lost 0"
        )


@dataclass
class Case:
    step: str
    kind: str
    persistent: bool

    @property
    def id(self) -> str:
        return f"{self.step}-{self.kind}-{'persistent' if self.persistent else 'once'}"


def _cases(prefix: str) -> list[Any]:
    return [
        pytest.param(Case(step, kind, persistent), id=Case(step, kind, persistent).id)
        for step in STEPS
        if step.startswith(prefix)
        for kind in KINDS
        for persistent in (False, True)
    ]


def _expected_failure(case: Case) -> type[ManifestError] | None:
    """What a save must raise under ``case`` (``None``: it must succeed)."""
    if not case.persistent or case.kind == "slow":
        return None
    if case.step == "s3-copy:delete-staged":
        return None  # removing the staged copy is best effort; the commit stands
    return TransientStorageError


def _run(target: Target, faults: FaultRules, case: Case) -> None:
    manifest: Manifest = target.manifest(retry=SAVE_RETRY)
    manifest.add_records([record(i) for i in BASE])
    old_raw = target.raw_read()
    assert old_raw is not None
    old_entries = set(target.entries())
    old = {checksum(i) for i in BASE}
    new = old | {checksum(NEW)}
    old_revision = manifest.metadata.revision

    rule = faults.add(**STEPS[case.step], **KINDS[case.kind], times=None if case.persistent else 1)
    error: ManifestError | None = None
    try:
        manifest.add_record(record(NEW))
    except ManifestError as exc:
        error = exc
    finally:
        faults.clear()
    FIRED[f"{case.step}|{case.kind}|{'persistent' if case.persistent else 'once'}"] += rule.fired
    assert rule.fired >= 1, "the fault never fired: the step was not recognised"

    expected = _expected_failure(case)
    if expected is None:
        assert error is None, f"save should have succeeded: {error!r}"
    else:
        assert type(error) is expected, f"expected {expected.__name__}, got {error!r}"
        message = str(error)
        assert LOG_PREFIX in message  # names the entry it could not create
        assert target.root.split("://")[1].split("/")[0] in message
        assert isinstance(error, StorageError)

    # Stored: the old records or the new ones, whole; the snapshot untouched (a commit
    # writes only its entry), and still a valid document.
    raw = target.raw_read()
    assert raw == old_raw
    plain_json(raw)
    stored = target.stored()
    assert stored in (old, new), sorted(stored)
    landed = set(target.entries()) - old_entries
    assert len(landed) <= 1  # never two entries for one commit
    commit_landed = case.kind in LANDS and not case.step.endswith("stage-put")
    if error is None or commit_landed:
        # Persistently lost answers to the commit itself: every retry's answer (the
        # precondition failure included) is lost too, so the commit fails although its
        # entry landed whole, in an open epoch, where every reader counts it.
        assert stored == new
        assert len(landed) == 1
    else:
        assert not landed  # nothing landed

    # Memory: after a failed commit the record is not shown (it may not be durable),
    # the commit is unsettled (dirty), and a later save (faults cleared) lands that same
    # entry; nothing duplicated, nothing lost.
    if error is not None:
        assert set(manifest.records) == old
        assert manifest.dirty
        manifest.save()
    assert set(manifest.records) == new
    assert not manifest.dirty
    assert len(set(target.entries()) - old_entries) == 1
    fresh = target.manifest()
    assert set(fresh.records) == new
    assert len(fresh) == len(new)
    assert fresh.metadata.revision == old_revision + 1
    assert fresh.records[checksum(NEW)] == manifest.records[checksum(NEW)]

    # Staged leftovers exist only when deleting them was what failed, and cleanup
    # removes them.
    staged = target.staged()
    if case.step == "s3-copy:delete-staged" and case.persistent and case.kind not in LANDS:
        if case.kind != "slow":
            assert len(staged) == 1
    else:
        assert staged == []
    assert manifest.cleanup_staged(min_age=timedelta(0)) == len(staged)
    assert target.staged() == []

    # The JSON file alone holds the new records once the log is folded into it.
    doc = target.compacted_json()
    assert set(doc["records"]) == new
    assert set(decode(target.raw_read() or b"", KEY).records) == new


@pytest.fixture
def s3_target(s3_server: S3Server, s3_bucket: str) -> Target:
    return Target(
        "s3",
        f"s3://{s3_bucket}/f-{uuid.uuid4().hex[:8]}",
        {**s3_server.storage_options, **BACKEND_RETRIES},
        s3_server.endpoint_url,
    )


@pytest.mark.s3
@pytest.mark.parametrize("case", _cases("s3-copy:"))
def test_s3_copy_mode(s3_server: S3Server, s3_target: Target, case: Case) -> None:
    _run(s3_target, s3_server.faults, case)


@pytest.mark.s3
@pytest.mark.parametrize("case", _cases("s3-put:"))
def test_s3_put_mode(s3_server: S3Server, s3_target: Target, case: Case) -> None:
    s3_target.storage_options["etl_manifests_commit"] = "put"
    _run(s3_target, s3_server.faults, case)


@pytest.mark.gcs
@pytest.mark.parametrize("case", _cases("gcs:"))
def test_gcs(gcs_server: GcsServer, gcs_bucket: str, case: Case) -> None:
    target = Target(
        "gcs",
        f"gs://{gcs_bucket}/f-{uuid.uuid4().hex[:8]}",
        {**gcs_server.storage_options, **BACKEND_RETRIES},
        gcs_server.endpoint_url,
    )
    _run(target, gcs_server.faults, case)
