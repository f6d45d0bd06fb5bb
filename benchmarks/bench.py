"""Benchmarks of etl-manifests against baselines measured in the same run.

Usage::

    python benchmarks/bench.py [--records N] [--repeat R] [--million] [--cloud]
                               [--only FIGURES] [--dir DIR]

Every figure is paired with a baseline doing the same job with plain dicts and
``orjson`` (no validation, no models), or with the storage primitive the library is built
on (a durable small-file create, a conditional create on an object store). Ours and the
baseline run in alternated rounds, and the medians are published (see ``_common.py``).
The figures live in one module per group:

=====  ==================  ============================================================
 1-4   ``fig_document``    load, compact (checkpoint), memory, batch commits
 5     ``fig_lookups``     ``in`` / ``get`` / ``find`` by manifest size
 6     ``fig_commit``      one ``add_record`` on local disk, checkpoints included
 7     ``fig_log_load``    load with the longest log the default policy allows
 8     ``fig_concurrent``  8 processes x 200 single-record commits vs bare creates
 9     ``fig_cloud``       requests and bytes uploaded per commit on S3 and GCS
=====  ==================  ============================================================

``--cloud`` runs 7 and 8 on S3 (moto) and GCS (gcp-storage-emulator) too, and adds 9;
the emulators run behind the test harness's proxy, subclassed to count every request
and byte (``_cloud.py``). ``--million`` adds figure 6 at 1,000,000 records. See
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# gcsfs reads this once, when first imported (here: when --cloud opens a gs:// root).
# Left at its default, gcsfs's file system asks Google's servers for each bucket's type
# (a 60 s timeout against the emulator), and the harness's running_gcs refuses to start.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

from _common import Table, machine_info
from _data import FRESH, check_snapshot, make_inputs

FIGURES = "123456789"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000, help="manifest size (100000)")
    parser.add_argument(
        "--repeat", type=int, default=5, help="alternated rounds per timing, median kept (5)"
    )
    parser.add_argument("--million", action="store_true", help="figure 6 at 1M records too")
    parser.add_argument("--cloud", action="store_true", help="S3/GCS: figures 7-9")
    parser.add_argument("--only", default=FIGURES, help="figures to run, e.g. 678 (all)")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args(argv)
    n: int = min(max(1_000, args.records), FRESH)
    rounds: int = max(1, args.repeat)
    only = set(args.only)

    print(machine_info())
    print(
        f"records={n:,} rounds={rounds} (alternated; medians; gc.collect() before each run)"
        f"{' +1M' if args.million else ''}{' +cloud' if args.cloud else ''}\n"
    )
    check_snapshot()
    work = Path(tempfile.mkdtemp(prefix="etl-manifests-bench-", dir=args.dir))
    started = time.perf_counter()
    table = Table()
    try:
        if only & set("12345"):
            import fig_document
            import fig_lookups

            big = fig_document.fig_load_compact(table, work, n, rounds)
            if "3" in only:
                fig_document.fig_memory(table, work, n)
            if "4" in only:
                fig_document.fig_batch(table, work, make_inputs(n), rounds)
            if "5" in only:
                sizes = sorted({s for s in (1_000, 10_000, 100_000) if s < n} | {n})
                fig_lookups.fig_lookups(table, big, sizes, rounds)
            del big
        if "6" in only:
            import fig_commit

            fig_commit.fig_commit(table, work, n, args.million)
        if "7" in only:
            import fig_log_load

            fig_log_load.fig_log_load(table, work, n, rounds)
        if "8" in only:
            import fig_concurrent

            fig_concurrent.fig_concurrent(table, work, n, rounds, cloud=args.cloud)
        if "9" in only and args.cloud:
            import fig_cloud

            fig_cloud.fig_cloud(table, n, min(rounds, 3))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table.render())
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
