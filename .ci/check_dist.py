"""Check what the built distributions hold: what a packager expects, and nothing stray.

Usage: python .ci/check_dist.py DIST_DIR. Exits non-zero naming every problem.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

# Per distribution: the top-level entries its sdist may hold, and files each must hold.
# (hatchling always adds the .gitignore, so that a wheel built from the sdist honours it.)
SDIST_TOP = {
    "etl_manifests": {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE", "mkdocs.yml",
                      "src", "tests", "docs", ".gitignore"},
    "etl_manifests_sqlite": {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE", "src",
                             "tests", ".gitignore"},
    "etl_manifests_azure": {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE", "src",
                            "tests", ".gitignore"},
}  # fmt: skip
SDIST_MUST = {
    "etl_manifests": {"LICENSE", "README.md", "src/etl_manifests/__init__.py",
                      "src/etl_manifests/py.typed", "tests/conftest.py",
                      "src/etl_manifests/testing/plugin.py", "docs/index.md",
                      "mkdocs.yml"},
    "etl_manifests_sqlite": {"LICENSE", "README.md", "src/etl_manifests_sqlite/plugin.py",
                             "src/etl_manifests_sqlite/py.typed"},
    "etl_manifests_azure": {"LICENSE", "README.md", "src/etl_manifests_azure/plugin.py",
                            "src/etl_manifests_azure/py.typed", "tests/conftest.py",
                            "tests/azurite/package.json", "tests/azurite/package-lock.json"},
}  # fmt: skip
WHEEL_MUST = {
    "etl_manifests": {
        "etl_manifests/__init__.py",
        "etl_manifests/py.typed",
        "etl_manifests/testing/plugin.py",
    },
    "etl_manifests_sqlite": {"etl_manifests_sqlite/plugin.py", "etl_manifests_sqlite/py.typed"},
    "etl_manifests_azure": {"etl_manifests_azure/plugin.py", "etl_manifests_azure/py.typed"},
}
STRAY = {
    "__pycache__", ".venv", ".git", ".mypy_cache", ".ruff_cache", ".hypothesis", "site",
    "node_modules",
}  # fmt: skip


def is_stray(name: str) -> bool:
    return name.endswith(".pyc") or not STRAY.isdisjoint(name.split("/"))


def check_sdist(path: Path, name: str) -> list[str]:
    with tarfile.open(path) as tar:
        # Every member sits under "{name}-{version}/".
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    problems = [f"{path.name}: stray {n}" for n in sorted(names) if is_stray(n)]
    top = {n.split("/", 1)[0] for n in names}
    problems += [f"{path.name}: unexpected top-level {t}" for t in sorted(top - SDIST_TOP[name])]
    problems += [f"{path.name}: missing {m}" for m in sorted(SDIST_MUST[name] - names)]
    return problems


def check_wheel(path: Path, name: str) -> list[str]:
    with zipfile.ZipFile(path) as whl:
        names = set(whl.namelist())
    problems = [f"{path.name}: stray {n}" for n in sorted(names) if is_stray(n)]
    problems += [f"{path.name}: missing {m}" for m in sorted(WHEEL_MUST[name] - names)]
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append(f"{path.name}: no LICENSE in its .dist-info")
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    problems += [f"{path.name}: unexpected top-level {t}" for t in sorted(tops - {name})]
    return problems


def main(dist: Path) -> int:
    problems: list[str] = []
    for name in SDIST_TOP:
        sdists = list(dist.glob(f"{name}-*.tar.gz"))
        wheels = list(dist.glob(f"{name}-*.whl"))
        if len(sdists) != 1 or len(wheels) != 1:
            problems.append(f"expected one sdist and one wheel of {name} in {dist}")
            continue
        problems += check_sdist(sdists[0], name) + check_wheel(wheels[0], name)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"check_dist: {len(problems)} problems in {sorted(p.name for p in dist.iterdir())}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
