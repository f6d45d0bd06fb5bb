"""Fetch at line rate: ``fetch_many`` and the CLI against asyncio + aiohttp.

Run alone: ``python benchmarks/fig_fetch.py`` (``--quick`` for smaller sizes).

A threaded HTTP server on 127.0.0.1 (``etl_manifests.testing.FileServer``: ``ETag``,
``Last-Modified``, requests counted per method) serves the files. The baseline does what
a careful hand-written downloader does for the same promise: asyncio + aiohttp, SHA-256
while streaming, then fsync, rename and an fsync of the folder; for the second pass,
the same HEAD requests and nothing else. Rounds alternate which side goes first;
the table shows medians (see ``_common.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import aiohttp
from _common import Pair, Row, Table, alternated, machine_info

from etl_manifests import Manifest, open_backend
from etl_manifests.testing import FileServer
from etl_manifests.tools import fetch_many

WORKERS = 8


def _manifest(root: Path) -> Manifest:
    return Manifest("extractor", "1.0.0", open_backend(str(root / "manifests")))


def _reset(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)


async def _download(session: aiohttp.ClientSession, url: str, dest: Path) -> None:
    target = dest / url.rsplit("/", 1)[-1]
    part = target.with_name(f".{target.name}.part")
    digest = hashlib.sha256()
    async with session.get(url) as response:
        response.raise_for_status()
        with open(part, "wb") as out:
            async for chunk in response.content.iter_chunked(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    os.replace(part, target)
    folder = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


async def _baseline(urls: list[str], dest: Path, head_only: bool) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    limit = asyncio.Semaphore(WORKERS)
    connector = aiohttp.TCPConnector(limit=WORKERS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str) -> None:
            async with limit:
                if head_only:
                    async with session.head(url) as response:
                        response.raise_for_status()
                else:
                    await _download(session, url, dest)

        await asyncio.gather(*(one(u) for u in urls))


def _cli(urls: list[str], root: Path) -> None:
    listing = root / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    env = {**os.environ, "ETL_MANIFESTS_MANIFESTS_DIR": str(root / "manifests")}
    options = ["--dest", str(root / "raw"), "--workers", str(WORKERS), "--naming", "{name}"]
    subprocess.run(
        [sys.executable, "-m", "etl_manifests", "fetch", "--from-file", str(listing), *options],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _ours(urls: list[str], root: Path) -> None:
    report = fetch_many(_manifest(root), urls, str(root / "raw"), workers=WORKERS, naming="{name}")
    report.raise_for_failures()


def _counted(
    server: FileServer, run: Callable[[], None], seen: dict[str, int]
) -> Callable[[], None]:
    """``run``, adding the HEAD and GET requests it made to ``seen``."""

    def counted() -> None:
        before = {m: server.requests(m) for m in ("HEAD", "GET")}
        run()
        for m, n in before.items():
            seen[m] = seen.get(m, 0) + server.requests(m) - n

    return counted


def _requests(ours: dict[str, int], base: dict[str, int], rounds: int) -> str:
    def per(seen: dict[str, int]) -> str:
        return f"{seen.get('HEAD', 0) // rounds} HEAD + {seen.get('GET', 0) // rounds} GET"

    return f"requests per run: ours {per(ours)}, baseline {per(base)}"


def _row(table: Table, what: str, pair: Pair, base: str, target: float, note: str) -> None:
    table.add(
        Row(
            what,
            f"{pair.ours_median:.2f} s",
            f"{base} {pair.base_median:.2f} s",
            pair.ratio,
            target,
            f"per-round ratios {pair.spread()}; {note}",
        )
    )


def fig_fetch(table: Table, small: int, big: int, big_mb: int, rounds: int) -> None:
    server = FileServer().start()
    work = Path(tempfile.mkdtemp(prefix="fig-fetch-"))
    try:
        blob = os.urandom(10 * 1024)
        small_urls = [server.add(f"s{i:05d}.bin", blob[:-8] + i.to_bytes(8)) for i in range(small)]
        ours_root, base_root = work / "ours", work / "base"

        def reset_both() -> None:
            _reset(ours_root)
            _reset(base_root)

        def ours_first() -> None:
            _ours(small_urls, ours_root)

        def base_first() -> None:
            asyncio.run(_baseline(small_urls, base_root / "raw", head_only=False))

        table.section(f"fetch at line rate ({WORKERS} workers, local HTTP server)")
        seen_o: dict[str, int] = {}
        seen_b: dict[str, int] = {}
        pair = alternated(
            rounds,
            _counted(server, ours_first, seen_o),
            _counted(server, base_first, seen_b),
            setup=reset_both,
        )
        note = _requests(seen_o, seen_b, rounds)
        _row(table, f"first pass, {small:,} x 10 KB", pair, "aiohttp+fsync", 1.3, note)

        # Second pass: everything recorded; ours HEADs each URL and skips it, from a
        # Manifest loaded anew each run (as a fresh process would).
        _reset(ours_root)
        _ours(small_urls, ours_root)

        def base_heads() -> None:
            asyncio.run(_baseline(small_urls, base_root / "raw", head_only=True))

        seen_o, seen_b = {}, {}
        pair = alternated(
            rounds, _counted(server, ours_first, seen_o), _counted(server, base_heads, seen_b)
        )
        note = _requests(seen_o, seen_b, rounds)
        _row(table, f"second pass, {small:,} recorded", pair, "aiohttp HEADs", 1.3, note)

        def cli_first() -> None:
            _cli(small_urls, ours_root)

        def lib_first() -> None:
            _ours(small_urls, base_root)

        pair = alternated(rounds, cli_first, lib_first, setup=reset_both)
        _row(
            table,
            f"CLI against the library, first pass, {small:,} x 10 KB",
            pair,
            "fetch_many",
            1.1,
            "the CLI pays one interpreter start and its imports",
        )

        big_blob = os.urandom(big_mb * 2**20)
        big_urls = [server.add(f"b{i:03d}.bin", big_blob[:-8] + i.to_bytes(8)) for i in range(big)]

        def ours_big() -> None:
            _ours(big_urls, ours_root)

        def base_big() -> None:
            asyncio.run(_baseline(big_urls, base_root / "raw", head_only=False))

        pair = alternated(rounds, ours_big, base_big, setup=reset_both)
        _row(table, f"{big} x {big_mb} MB, first pass", pair, "aiohttp+fsync", 1.1, "")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    small, big, big_mb, rounds = (200, 4, 16, 2) if quick else (1000, 8, 64, 3)
    table = Table()
    fig_fetch(table, small, big, big_mb, rounds)
    print(machine_info())
    print(
        f"sizes: {small:,} small files (the issue measured 2,000), {big} x {big_mb} MB "
        f"(the issue: 16 x 64 MB), {rounds} rounds, reduced to keep a run short on 2 cores"
    )
    print(table.render())


run: Callable[[list[str]], None] = main

if __name__ == "__main__":
    main(sys.argv[1:])
