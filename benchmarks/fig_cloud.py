"""Figure 9 (``--cloud``): commits and loads on S3 (moto) and GCS (emulator), counted.

Per store, on a manifest of N records (its snapshot uploaded first, uncounted):

* one checkpoint cycle of the default policy (1,010 single-record commits from 100k
  records; the last one starts the background checkpoint, which is waited for):
  requests and bytes uploaded per commit, averaged over the cycle with the checkpoint
  in it, and bytes as a share of the snapshot's size;
* just before the commit that starts the checkpoint, the log is as long as the default
  policy lets it grow: a fresh ``Manifest.load()`` then is counted and timed against
  the load of the same snapshot with an empty log (alternated rounds).

Counts are exact (taken at the counting proxy); emulator wall times are shown but say
little about a real store.
"""

from __future__ import annotations

import statistics
import time

from _cloud import Counts, Store, running_store
from _common import Row, Table, alternated, mib, ms
from _data import KEY, Record, fresh_inputs, open_manifest, snapshot_bytes
from fig_commit import wait_for_checkpoints
from fig_log_load import longest_log

from etl_manifests.model import Manifest


def _commit_counted(store: Store, manifest: Manifest, params: Record) -> tuple[Counts, float]:
    """One ``add_record`` and any checkpoint it starts: what the proxy saw, and the time."""
    mark = store.counter.mark()
    start = time.perf_counter()
    manifest.add_record(params)
    wait_for_checkpoints()
    took = time.perf_counter() - start
    return store.counter.since(mark), took


def cloud_cycle(table: Table, store: Store, data: bytes, n: int, rounds: int) -> None:
    cycle = longest_log(n)
    store.backend("log").write(KEY, data)
    store.backend("alone").write(KEY, data)
    manifest = open_manifest(store.backend("log"))
    inputs = iter(fresh_inputs(cycle, tag=40))
    counts: list[Counts] = []
    times: list[float] = []
    for _ in range(cycle - 1):
        c, t = _commit_counted(store, manifest, next(inputs))
        counts.append(c)
        times.append(t)

    # The log is as long as it gets: a reader's load now, against the snapshot alone.
    loads: dict[str, Counts] = {}

    def load(prefix: str) -> None:
        mark = store.counter.mark()
        open_manifest(store.backend(prefix))
        loads.setdefault(prefix, store.counter.since(mark))

    pair = alternated(rounds, lambda: load("log"), lambda: load("alone"))

    last, took = _commit_counted(store, manifest, next(inputs))
    counts.append(last)
    times.append(took)

    title = store.title
    total_requests = sum(len(c.requests) for c in counts)
    uploaded = sum(c.uploaded for c in counts)
    # A commit in the middle of the cycle: no checkpoint, no store check (the first
    # commit of a manifest object also runs the store capability check).
    plain = counts[cycle // 2]
    first = counts[0]
    per = uploaded / cycle
    table.add(
        Row(
            f"{title}: requests per commit, {cycle:,} commits + 1 checkpoint",
            f"{total_requests / cycle:.2f}",
            f"{len(plain.requests)} ({plain.kinds_text()}) for one plain commit",
            note=f"the first commit also ran the store capability check: "
            f"{len(first.requests)} requests ({first.kinds_text()}).",
        )
    )
    table.add(
        Row(
            f"{title}: bytes uploaded per commit (same {cycle:,})",
            f"{per:,.0f} B",
            f"snapshot {mib(len(data))}; {plain.uploaded:,} B for one plain commit",
            per / len(data),
            0.01,
            note="request bodies received by the proxy, checkpoint included (its "
            f"snapshot upload: {last.uploaded:,} B in {len(last.requests)} requests: "
            f"{last.kinds_text()}).",
        )
    )
    table.add(
        Row(
            f"{title}: commit wall time on the emulator, median / average",
            f"{ms(statistics.median(times))} / {ms(sum(times) / len(times))}",
        )
    )
    with_log, alone = loads["log"], loads["alone"]
    table.add(
        Row(
            f"{title}: load, snapshot + {cycle - 1:,} entries",
            f"{len(with_log.requests):,} requests, {ms(pair.ours_median)}",
            f"{len(alone.requests)} requests, {ms(pair.base_median)} snapshot alone",
            pair.ratio,
            note=f"requests: {with_log.kinds_text()}; entries read 16 at a time. "
            f"Per-round time ratios {pair.spread()}.",
        )
    )


def fig_cloud(table: Table, n: int, rounds: int) -> None:
    table.section(f"9. S3 and GCS: commits and loads on a manifest of {n:,} records (exact counts)")
    data = snapshot_bytes(n)
    for name in ("s3", "gcs"):
        with running_store(name) as store:
            cloud_cycle(table, store, data, n, rounds)
