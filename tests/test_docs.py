"""The READMEs are package descriptions on the index too: their links must work there.

A relative link works on the repository's web view but is broken on the package index,
so every link is an absolute URL, to the documentation site or to the repository declared
in pyproject's [project.urls], and names a page or file that exists here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
URLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
SITE = URLS["Documentation"]
REPO = URLS["Repository"]
READMES = [
    "README.md",
    "plugins/etl-manifests-sqlite/README.md",
    "plugins/etl-manifests-azure/README.md",
]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def links(readme: str) -> list[str]:
    return _LINK.findall((ROOT / readme).read_text())


@pytest.mark.parametrize("readme", READMES)
def test_readme_links_are_absolute_urls_to_the_site_or_the_repository(readme: str) -> None:
    found = links(readme)
    assert found
    for url in found:
        assert url.startswith((SITE, REPO)), f"{readme}: {url} is not under {SITE} or {REPO}"


@pytest.mark.parametrize("readme", READMES)
def test_repository_links_name_existing_paths(readme: str) -> None:
    for url in links(readme):
        if url.startswith((f"{REPO}/blob/main/", f"{REPO}/tree/main/")):
            path = url.split("/main/", 1)[1]
            assert (ROOT / path).exists(), f"{readme}: {url} names no file in the repository"


@pytest.mark.parametrize("readme", READMES)
def test_site_links_name_existing_pages(readme: str) -> None:
    for url in links(readme):
        if url.startswith(SITE):
            page = url[len(SITE) :].split("#", 1)[0].rstrip("/") or "index"
            assert (ROOT / "docs" / f"{page}.md").is_file(), f"{readme}: no page for {url}"


def test_docs_site_url_is_the_one_declared_in_pyproject() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    assert f"site_url: {SITE}\n" in config
    assert f"repo_url: {REPO}\n" in config
