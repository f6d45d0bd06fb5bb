"""Worker process of figure 8: commits (or bare creates) on command, and reports.

Run as ``python benchmarks/_worker.py '<json>'`` with ``root``, ``storage_options``,
``worker`` (its number) and ``entry_bytes`` (the size of a bare create's object). It
opens the manifest below ``root`` (loading its snapshot), prints ``ready``, then obeys
one command per line on stdin:

``ours COUNT``
    ``COUNT`` single-record ``add_record`` calls, records no other worker adds.
``bare COUNT``
    ``COUNT`` conditional creates (``write(key, data, expect=ABSENT)``) of new objects
    of ``entry_bytes`` bytes, on the same backend.
``quit``
    exit.

After each command it prints one JSON line: the operations done, wall-clock start and
end (``time.time()``, comparable across processes), each operation's latency, and its
backend's counts during the command (calls by kind, snapshot reads and writes).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cloud import CountingBackend
from _data import KEY, fresh_inputs, open_manifest

from etl_manifests.registry import open_backend
from etl_manifests.storage import ABSENT


def main(raw: str) -> None:
    args = json.loads(raw)
    worker: int = args["worker"]
    counting = CountingBackend(open_backend(args["root"], args["storage_options"]), KEY)
    manifest = open_manifest(counting)
    data = b"x" * int(args["entry_bytes"])
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for rounds, line in enumerate(sys.stdin):
        command = line.split()
        if not command or command[0] == "quit":
            break
        count = int(command[1])
        # Inputs made before the clock starts; a range no other worker or round uses.
        inputs = fresh_inputs(count, tag=100 + worker * 100 + rounds)
        calls = dict(counting.calls)
        reads, writes = counting.snapshot_reads, counting.snapshot_writes
        latencies = []
        start = time.time()
        if command[0] == "ours":
            for params in inputs:
                began = time.perf_counter()
                manifest.add_record(params)
                latencies.append(time.perf_counter() - began)
        else:
            for _ in range(count):
                key = f"bare/{worker:02d}-{uuid.uuid4().hex}.json"
                began = time.perf_counter()
                counting.write(key, data, expect=ABSENT)
                latencies.append(time.perf_counter() - began)
        end = time.time()
        stats = {
            "ops": count,
            "start": start,
            "end": end,
            "calls": {k: v - calls[k] for k, v in counting.calls.items()},
            "snapshot_reads": counting.snapshot_reads - reads,
            "snapshot_writes": counting.snapshot_writes - writes,
            "records": len(manifest),
            "latencies": latencies,
        }
        out.write(json.dumps(stats) + "\n")
        out.flush()
    counting.close()


if __name__ == "__main__":
    main(sys.argv[1])
