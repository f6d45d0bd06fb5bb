"""Playing a store that ignores write conditions on some operations.

Real stores differ: some ignore ``If-Match`` on CopyObject, some ignore every condition.
With :attr:`ConditionalProxy.ignore_conditions` set, the proxy strips the conditions of
those operations and forwards the write unconditionally, so the library's store
capability check can be tested against every combination.
"""

from __future__ import annotations

from . import _gcs, _s3
from ._http import Dialect, Exchange

#: Operations whose write conditions :attr:`ConditionalProxy.ignore_conditions` can
#: switch off, per dialect (S3 API names; GCS ``insert`` is any upload).
IGNORABLE_OPERATIONS: dict[str, frozenset[str]] = {
    "s3": frozenset({"PutObject", "CopyObject"}),
    "gcs": frozenset({"insert"}),
}
_S3_CONDITION_HEADERS = frozenset({"if-match", "if-none-match"})
_GCS_CONDITION_PARAMS = frozenset(
    {
        "ifGenerationMatch",
        "ifGenerationNotMatch",
        "ifMetagenerationMatch",
        "ifMetagenerationNotMatch",
    }
)


def operation(dialect: Dialect, ex: Exchange) -> str | None:
    """The write operation a request is, in :data:`IGNORABLE_OPERATIONS` terms, or None."""
    if dialect == "gcs":
        return "insert" if ex.method == "POST" and _gcs.UPLOAD_RE.match(ex.path) else None
    parts = ex.path.lstrip("/").split("/", 1)
    if ex.method != "PUT" or len(parts) != 2 or not parts[1] or set(ex.params) & _s3.SUBRESOURCES:
        return None
    return "CopyObject" if "x-amz-copy-source" in ex.headers else "PutObject"


def strip_conditions(dialect: Dialect, ex: Exchange) -> None:
    """Make the upstream receive ``ex`` without its write conditions."""
    if dialect == "s3":
        ex.drop_headers = ex.drop_headers | _S3_CONDITION_HEADERS
        return
    path, _, query = (ex.forward_url or f"{ex.path}?{ex.query}").partition("?")
    kept = [
        part
        for part in query.split("&")
        if part and part.split("=", 1)[0] not in _GCS_CONDITION_PARAMS
    ]
    ex.forward_url = path + ("?" + "&".join(kept) if kept else "")
