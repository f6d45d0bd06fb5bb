"""What importing etl-manifests costs a fresh process, against ``python -c pass``.

    python benchmarks/import_time.py            # 7 alternated rounds
    python benchmarks/import_time.py --repeat 15

Each row starts new interpreters (the same one that runs this script): ours, then the
baseline (``python -c pass``; ``import pytest`` for the plugin), in alternated rounds;
it prints the medians and the median of the per-round ratios, with the targets:
``import etl_manifests`` within 5x, ``etl-manifests --help`` within 8x, and the pytest
plugin adding little to ``import pytest``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from _common import alternated, machine_info, ms

PASS = ["-c", "pass"]
# (case, its command, its baseline, target ratio)
CASES = [
    ("import etl_manifests", ["-c", "import etl_manifests"], PASS, 5.0),
    (
        "from etl_manifests import Manifest",
        ["-c", "from etl_manifests import Manifest"],
        PASS,
        None,
    ),
    # A pytest run has imported pytest already: the plugin's own cost is what it adds.
    (
        "the pytest plugin (vs import pytest)",
        ["-c", "import pytest, etl_manifests.testing.plugin"],
        ["-c", "import pytest"],
        1.3,
    ),
    ("etl-manifests --help", ["-m", "etl_manifests", "--help"], PASS, 8.0),
]


def run(args: list[str]) -> None:
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="alternated rounds per row")
    rounds = parser.parse_args().repeat
    print(machine_info())
    print(f"{'case':<38} {'ours':>9} {'baseline':>9} {'ratio':>7} {'target':>7}")
    for name, args, base, target in CASES:
        pair = alternated(rounds, lambda a=args: run(a), lambda b=base: run(b))
        goal = f"{target:g}x" if target else "-"
        print(
            f"{name:<38} {ms(pair.ours_median):>9} {ms(pair.base_median):>9} "
            f"{pair.ratio:>6.1f}x {goal:>7}"
        )


if __name__ == "__main__":
    main()
