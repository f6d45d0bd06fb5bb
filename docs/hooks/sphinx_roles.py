"""Griffe extension: the docstrings' reST spellings, rendered as the API reference expects.

The docstrings are written for ``help()`` and IDEs, in reST: ``:class:`~etl_manifests.X```,
````literal````. mkdocstrings renders Markdown, so this extension rewrites them when the
package is loaded for the API reference:

- a role naming an object that the reference page renders becomes a cross-reference
  (``[`X`][etl_manifests.X]``), which ``mkdocs build --strict`` then checks; a role naming
  anything else (a builtin, a private helper) becomes inline code;
- ````literal```` becomes ```literal```, and a paragraph ending in ``::`` ends in ``:``;
- ``:raises A, B: text`` (one condition, several errors) becomes one field per error, as
  the Sphinx docstring parser takes one exception per field;
- a ``#:`` comment right above a module attribute becomes its docstring.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|data|exc|mod|obj):`(~?)([\w.]+)(?:\(\))?`")
_LITERAL = re.compile(r"``([^`]+)``")
_DIRECTIVE = re.compile(r"^::: ([\w.]+)\s*$", re.MULTILINE)

REFERENCE_PAGE = Path(__file__).resolve().parent.parent / "reference.md"


def documented_roots() -> list[str]:
    """The objects the reference page renders with ``::: path`` (members included)."""
    return _DIRECTIVE.findall(REFERENCE_PAGE.read_text(encoding="utf-8"))


class SphinxRoles(griffe.Extension):
    """Rewrite reST roles and literals in every docstring of the loaded package."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **_: Any) -> None:
        """Called by griffe once the package is loaded."""
        # canonical path of each rendered object -> the identifier it is rendered under
        anchors: dict[str, str] = {}
        for root in documented_roots():
            try:
                obj = loader.modules_collection[root]
            except KeyError:
                continue
            target = obj.final_target if obj.is_alias else obj
            anchors[target.path] = root
        for obj in _walk(pkg, set()):
            _comment_docstring(obj)
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj, obj.docstring.value, anchors, loader)


def _walk(obj: griffe.Object, seen: set[str]) -> list[griffe.Object]:
    if obj.path in seen:
        return []
    seen.add(obj.path)
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found += _walk(member, seen)
    return found


def _comment_docstring(obj: griffe.Object) -> None:
    if not obj.is_attribute or obj.docstring is not None or obj.lineno is None:
        return
    module = obj.module
    if obj.parent is not module:
        return
    lines = module.lines
    comments = []
    index = obj.lineno - 2
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        comments.insert(0, lines[index].lstrip()[2:].strip())
        index -= 1
    if comments:
        obj.docstring = griffe.Docstring(" ".join(comments), parent=obj)


def _rewrite(
    obj: griffe.Object, text: str, anchors: dict[str, str], loader: griffe.GriffeLoader
) -> str:
    def role(match: re.Match[str]) -> str:
        tilde, name = match.groups()
        display = name.rsplit(".", 1)[-1] if tilde else name
        identifier = _identifier(obj, name, anchors, loader)
        return f"[`{display}`][{identifier}]" if identifier else f"`{display}`"

    text = _split_raises(text)
    text = _ROLE.sub(role, text)
    text = _LITERAL.sub(r"`\1`", text)
    return re.sub(r"::$", ":", text, flags=re.MULTILINE)


_RAISES_MANY = re.compile(r"^(\s*):raises ([\w.]+(?:, [\w.]+)+):(.*)$")


def _split_raises(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        match = _RAISES_MANY.match(lines[index])
        if match is None:
            out.append(lines[index])
            index += 1
            continue
        indent, names, first = match.groups()
        index += 1
        rest = []
        # The field goes on over lines indented deeper than it.
        while index < len(lines) and lines[index].startswith(indent + " ") and lines[index].strip():
            rest.append(lines[index])
            index += 1
        for name in names.split(", "):
            out += [f"{indent}:raises {name}:{first}", *rest]
    return "\n".join(out)


def _identifier(
    obj: griffe.Object, name: str, anchors: dict[str, str], loader: griffe.GriffeLoader
) -> str | None:
    """The identifier ``name`` is rendered under, or None if the reference lacks it."""
    head, _, rest = name.partition(".")
    try:
        path = name if head == "etl_manifests" else obj.resolve(head) + (f".{rest}" if rest else "")
        target = loader.modules_collection[path]
    except (griffe.NameResolutionError, KeyError):
        return None
    if target.is_alias:
        try:
            target = target.final_target
        except griffe.AliasResolutionError:
            return None
    path = target.path
    # The longest rendered prefix: the object itself, or the class or module holding it.
    for canonical in sorted(anchors, key=len, reverse=True):
        if path == canonical or path.startswith(f"{canonical}."):
            if any(part.startswith("_") for part in path[len(canonical) :].split(".")):
                return None  # private members are filtered out of the page
            return anchors[canonical] + path[len(canonical) :]
    return None
