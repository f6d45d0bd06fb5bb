"""Figure 5: look-ups (``in``, ``get``, ``find``) against a plain dict, by manifest size.

Look-ups never touch storage: they read the in-memory view of snapshot + log, so the
commit log changes nothing here; the figure checks that it stays O(1).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence

from _common import Row, Table, alternated, label, ms, ns
from _data import Record, make_inputs, open_manifest

from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.model import Manifest

LOOKUPS = 100_000  # look-ups per timed run


def fig_lookups(table: Table, big: Manifest, sizes: Sequence[int], rounds: int) -> None:
    """``big`` holds at least records ``0 .. sizes[-1] - 1`` (figure 1's manifest)."""
    table.section(f"5. look-ups, time per call ({LOOKUPS:,} random hits per run)")
    rng = random.Random(5)
    per_size: dict[str, list[float]] = {w: [] for w in ("in", "get", "find", "dict", "dget", "pf")}
    for n in sizes:
        inputs = make_inputs(n)
        if n == sizes[-1]:
            manifest = big
        else:
            manifest = open_manifest(MemoryBackend(f"memory://bench-{uuid.uuid4().hex}"))
            manifest.add_records(inputs)
        plain = {r["checksum"]: r for r in inputs}
        by_name: dict[str, list[Record]] = {}
        for r in inputs:
            by_name.setdefault(r["filename"], []).append(r)
        picks = [inputs[rng.randrange(n)] for _ in range(LOOKUPS)]
        keys = [p["checksum"] for p in picks]
        names = [(p["filename"], p["etag"]) for p in picks]
        del inputs, picks

        def contains(keys: list[str] = keys, manifest: Manifest = manifest) -> None:
            for k in keys:
                _ = k in manifest

        def get(keys: list[str] = keys, manifest: Manifest = manifest) -> None:
            for k in keys:
                manifest.get(k)

        def dict_contains(keys: list[str] = keys, plain: dict[str, Record] = plain) -> None:
            for k in keys:
                _ = k in plain

        def dict_get(keys: list[str] = keys, plain: dict[str, Record] = plain) -> None:
            for k in keys:
                plain.get(k)

        first = time.perf_counter()
        manifest.find(names[0][0], etag=names[0][1])
        index_build = time.perf_counter() - first

        def find(names: list[tuple[str, str]] = names, manifest: Manifest = manifest) -> None:
            for name, etag in names:
                manifest.find(name, etag=etag)

        def plain_find(
            names: list[tuple[str, str]] = names, by_name: dict[str, list[Record]] = by_name
        ) -> None:
            for name, etag in names:
                _ = [r for r in by_name.get(name, ()) if r["etag"] == etag]

        sz = label(n)
        for what, base, ours_run, base_run, base_name in (
            ("in", "dict", contains, dict_contains, "key in dict"),
            ("get", "dget", get, dict_get, "dict.get(key)"),
            ("find", "pf", find, plain_find, "dict of lists + filter"),
        ):
            pair = alternated(rounds, ours_run, base_run)
            t_ours, t_base = pair.ours_median / LOOKUPS, pair.base_median / LOOKUPS
            per_size[what].append(t_ours)
            per_size[base].append(t_base)
            shown = {"in": "checksum in manifest", "get": "manifest.get(checksum)"}
            table.add(
                Row(
                    f"{shown.get(what, 'find(filename, etag=)')} @{sz}",
                    ns(t_ours),
                    f"{ns(t_base)} {base_name}",
                    pair.ratio,
                )
            )
        table.add(Row(f"first find() builds the name index @{sz}", ms(index_build)))
    if len(sizes) > 1:
        # A plain dict also slows down as it outgrows the CPU caches, so "flat" is judged
        # against the same baseline: ours may grow no faster than the dict it wraps.
        lo, hi = label(sizes[0]), label(sizes[-1])
        for what, base in (("in", "dict"), ("get", "dget"), ("find", "pf")):
            ours, flat = per_size[what], per_size[base]
            grow, base_grow = ours[-1] / ours[0], flat[-1] / flat[0]
            table.add(
                Row(
                    f"{what}: growth of per-call time @{lo} -> @{hi}",
                    f"x{grow:.2f} ({ours[0] * 1e9:,.0f} -> {ours[-1] * 1e9:,.0f} ns)",
                    f"x{base_grow:.2f} plain dict",
                    grow / base_grow,
                    2.0,
                    note=""
                    if what != "in"
                    else "O(1) check: the growth of our per-call time divided by the growth "
                    "of a plain dict's over the same sizes (cache misses slow both).",
                )
            )
