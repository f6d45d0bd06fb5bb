"""Run by test_sqlite_processes.py in separate processes (not a test module).

``once DB EXPECT GO``: print ``ready``, wait until the file GO exists, then write once
with ``expect`` (``absent`` or a version token) and print ``won`` or ``lost``.

``increment DB N``: add 1 to the integer stored under ``counter`` N times, each by a
read followed by a conditional write, retrying on conflict; print the conflicts seen.
"""

from __future__ import annotations

import os
import sys
import time

from etl_manifests.errors import ConflictError, NotFoundError
from etl_manifests.storage import ABSENT, Expect

from etl_manifests_sqlite.backend import SQLiteBackend


def once(db: str, expect_arg: str, go: str) -> None:
    backend = SQLiteBackend(f"sqlite://{db}", {})
    expect: Expect = ABSENT if expect_arg == "absent" else expect_arg
    backend.list()  # open the connection before the start signal
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.0005)
    try:
        backend.write("race.json", f"writer {os.getpid()}".encode(), expect=expect)
    except ConflictError:
        print("lost", flush=True)
    else:
        print("won", flush=True)


def increment(db: str, times: int) -> None:
    backend = SQLiteBackend(f"sqlite://{db}", {})
    conflicts = 0
    expect: Expect
    for _ in range(times):
        while True:
            try:
                blob = backend.read("counter")
                value, expect = int(blob.data), blob.version
            except NotFoundError:
                value, expect = 0, ABSENT
            try:
                backend.write("counter", str(value + 1).encode(), expect=expect)
                break
            except ConflictError:
                conflicts += 1
    print(conflicts, flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "once":
        once(*args)
    else:
        increment(args[0], int(args[1]))
