"""mkdocs hooks: the checks that make ``mkdocs build --strict`` fail on missing docs.

- Every public class, function, method and property of the package, and every name in
  ``etl_manifests.__all__``, must have a docstring (a module attribute may use a ``#:``
  comment instead).
- Every name in ``etl_manifests.__all__`` must be rendered by the API reference page.
- The home page is the README, inserted here with its links to this site made relative,
  so that mkdocs checks them like any other link (the README itself uses absolute URLs,
  which also work on the package index).

Each problem is logged as a warning, which ``--strict`` turns into a failed build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.pages import Page
from sphinx_roles import documented_roots

log = get_plugin_logger("checks")

README_MARKER = "<!-- readme -->"


def on_pre_build(config: MkDocsConfig, **_: Any) -> None:
    """Check docstrings and the API reference's coverage before anything is rendered."""
    src = Path(config.config_file_path).parent / "src"
    package = griffe.load("etl_manifests", search_paths=[str(src)], resolve_aliases=True)
    exported = list(package.exports or [])
    seen: set[str] = set()
    for name in exported:
        member = package[name]
        obj = member.final_target if member.is_alias else member
        if not name.startswith("__") and not _documented(obj):
            log.warning(f"etl_manifests.{name} has no docstring")
        _check_members(obj, seen)
    roots = documented_roots()
    for name in exported:
        member = package[name]
        path = (member.final_target if member.is_alias else member).path
        rendered = f"etl_manifests.{name}" in roots or any(
            path.startswith(f"{root}.") for root in roots
        )
        if not rendered and not name.startswith("__"):
            log.warning(f"etl_manifests.{name} is not in the API reference (docs/reference.md)")


def _documented(obj: griffe.Object) -> bool:
    if obj.docstring is not None and obj.docstring.value.strip():
        return True
    if obj.is_attribute and obj.lineno is not None and obj.parent is obj.module:
        return obj.module.lines[obj.lineno - 2].lstrip().startswith("#:")
    return False


def _check_members(obj: griffe.Object, seen: set[str]) -> None:
    if obj.path in seen or not (obj.is_class or obj.is_module):
        return
    seen.add(obj.path)
    for name, member in obj.members.items():
        if name.startswith("_") or member.is_alias:
            continue
        if (member.is_class or member.is_function) and not _documented(member):
            log.warning(f"{member.path} has no docstring")
        _check_members(member, seen)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **_: Any) -> str:
    """Insert the README into the home page, its links to this site made relative."""
    if README_MARKER not in markdown:
        return markdown
    readme = (Path(config.config_file_path).parent / "README.md").read_text(encoding="utf-8")
    site = re.escape(str(config.site_url))

    def relative(match: re.Match[str]) -> str:
        page_path, anchor = match.group(1).rstrip("/"), match.group(2) or ""
        return f"]({page_path or 'index'}.md{anchor})"

    readme = re.sub(rf"\]\({site}([\w/-]*)(#[\w-]+)?\)", relative, readme)
    return markdown.replace(README_MARKER, readme)
