"""Work done by the process tests in separate processes (not a test module).

``python _azure_worker.py`` is a fork server: it imports etl-manifests and the Azure SDK
once, then reads commands on stdin, one per line, and answers one line each:

``start <race|add> <out file> <json args>``
    fork a worker process running that function; answer its pid;
``wait <pid>``
    wait for that worker to end; answer its exit status (``-9``: killed by SIGKILL).

Each worker is a real, separate OS process, started in milliseconds instead of the second
a fresh interpreter needs for its imports, which matters when a test restarts a writer
after every SIGKILL. A worker writes its progress as lines to its out file (flushed per
line) and, if it fails, ``error`` followed by the traceback.

``race(args, out)``: for each of ``args["rounds"]`` (``root``, ``options``, ``expect``:
``"absent"`` or a token, ``go``: a file name), open the backend, write ``ready``, wait
until the file ``go`` exists, write ``race.json`` once with ``expect`` and write ``won``
or ``lost``.

``add(args, out)``: open the extractor manifest on ``root`` with ``options`` through
``ManifestManager``, write ``ready``, then add records ``start``, ``start + 1``, ...
(``count`` of them, or until killed when it is ``None``), writing each record's checksum
right after its ``add_record`` returned.
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Any, TextIO

from etl_manifests import ManifestManager, RetryPolicy, open_backend
from etl_manifests.errors import ConflictError
from etl_manifests.storage import ABSENT, Expect

import etl_manifests_azure.backend  # noqa: F401 - imported here so that forks start warm


def checksum(n: int) -> str:
    return f"{n:064x}"


def record(n: int) -> dict[str, Any]:
    return {
        "checksum": checksum(n),
        "filename": f"file_{n}.gz",
        "filepath": f"/data/downloads/file_{n}.gz",
        "etag": f"etag-{n}",
        "content_length_bytes": n,
    }


def _say(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def _race(args: dict[str, Any], out: TextIO) -> None:
    for round_ in args["rounds"]:
        backend = open_backend(round_["root"], round_["options"])
        expect: Expect = ABSENT if round_["expect"] == "absent" else round_["expect"]
        backend.list()  # connect before the start signal
        _say(out, "ready")
        while not os.path.exists(round_["go"]):
            time.sleep(0.001)
        data = f"writer {os.getpid()} ".encode() * args["size"]
        try:
            backend.write("race.json", data, expect=expect)
        except ConflictError:
            _say(out, "lost")
        else:
            _say(out, "won")


def _add(args: dict[str, Any], out: TextIO) -> None:
    manager = ManifestManager(
        args["root"],
        "1.0.0",
        storage_options=args["options"],
        retry=RetryPolicy(max_attempts=500, base_delay=0.002, max_delay=0.2),
    )
    manifest = manager.extractor
    _say(out, "ready")
    n, stop = args["start"], None if args["count"] is None else args["start"] + args["count"]
    while stop is None or n < stop:
        manifest.add_record(record(n))
        _say(out, checksum(n))
        n += 1


def _serve() -> None:
    import json
    import random
    import sys

    work = {"race": _race, "add": _add}
    for command in sys.stdin:
        verb, _, rest = command.strip().partition(" ")
        if verb == "start":
            mode, out, raw = rest.split(" ", 2)
            pid = os.fork()
            if pid == 0:  # the worker
                random.seed()  # do not share the server's jitter sequence
                code = 0
                with open(out, "a", encoding="utf-8") as stream:
                    try:
                        work[mode](json.loads(raw), stream)
                    except BaseException:
                        _say(stream, "error\n" + traceback.format_exc())
                        code = 1
                os._exit(code)
            print(pid, flush=True)
        elif verb == "wait":
            _, status = os.waitpid(int(rest), 0)
            print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    _serve()
