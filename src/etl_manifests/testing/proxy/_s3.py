"""S3 precondition rules: which requests write one object, and AWS's answers when a
write's ``If-Match`` / ``If-None-Match`` do not hold.

moto checks ``If-Match`` / ``If-None-Match`` on PutObject and then writes in a second
step, and ignores them on CopyObject; the proxy evaluates them itself, under the
object's lock, and answers as S3 documents (``412 PreconditionFailed``, ``404 NoSuchKey``).
Only ``If-None-Match: *`` is enforced (S3 defines no other value for writes).
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Mapping
from urllib.parse import unquote

from ._http import Exchange, Plan, Response


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error(status: int, code: str, message: str, extra: Mapping[str, str] | None = None) -> Response:
    """An S3 XML error response."""
    parts = [f"<Code>{code}</Code>", f"<Message>{_xml_escape(message)}</Message>"]
    parts += [f"<{k}>{_xml_escape(v)}</{k}>" for k, v in (extra or {}).items()]
    request_id = uuid.uuid4().hex[:16].upper()
    parts += [f"<RequestId>{request_id}</RequestId>", "<HostId>harness-proxy</HostId>"]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>"
    ).encode()
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    return Response(status, http.client.responses.get(status, "Error"), headers, body)


_FAULT_CODES: dict[int, tuple[str, str]] = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
    400: (
        "RequestTimeout",
        "Your socket connection to the server was not read from or written "
        "to within the timeout period.",
    ),
    403: ("AccessDenied", "Access Denied"),
    429: ("SlowDown", "Please reduce your request rate."),
    501: (
        "NotImplemented",
        "A header you provided implies functionality that is not implemented.",
    ),
}


def fault(status: int) -> Response:
    """The S3 error an injected ``status`` fault answers with."""
    code, message = _FAULT_CODES.get(status, ("ServiceUnavailable", "Injected fault."))
    return error(status, code, message)


_PRECONDITION_MSG = "At least one of the pre-conditions you specified did not hold"
# PUT/DELETE sub-resources that do not replace the object's bytes and so are not
# subject to (and must not be blocked by) object-level preconditions.
SUBRESOURCES: frozenset[str] = frozenset(
    {
        "tagging",
        "acl",
        "retention",
        "legal-hold",
        "uploadId",
        "partNumber",
        "uploads",
        "restore",
        "torrent",
        "select",
        "attributes",
    }
)


def _etags(value: str) -> set[str]:
    # S3 ignores quoting of ETags in conditions; a list is tolerated for robustness.
    return {v.strip().strip('"') for v in value.split(",") if v.strip()}


def plan(ex: Exchange) -> Plan:
    """Writes to one S3 object: PutObject, CopyObject, CompleteMultipartUpload, DeleteObject."""
    parts = ex.path.lstrip("/").split("/", 1)
    if len(parts) != 2 or not parts[1]:
        return Plan()  # bucket-level or service-level request
    bucket, raw_key = parts
    params = ex.params
    is_complete = ex.method == "POST" and set(params) == {"uploadId"}
    is_write = ex.method in ("PUT", "DELETE") and not (set(params) & SUBRESOURCES)
    if not (is_write or is_complete):
        return Plan()
    key = (bucket, unquote(raw_key))
    if_match = ex.headers.get("if-match")
    if_none_match = ex.headers.get("if-none-match") if ex.method != "DELETE" else None
    if if_none_match is not None and if_none_match.strip() != "*":
        if_none_match = None  # S3 only defines If-None-Match: * for writes
    if if_match is None and if_none_match is None:
        return Plan(lock_key=key)

    def check(ex: Exchange) -> Response | None:
        head_headers = [
            (name, value)
            for name, value in ex.headers.items()
            if name in ("host", "authorization", "x-amz-date", "x-amz-security-token")
        ]
        head = ex.upstream("HEAD", "/" + ex.path.lstrip("/"), head_headers)
        if head.status == 200:
            current = (head.header("ETag") or "").strip().strip('"')
        elif head.status == 404:
            current = None
        else:
            return None  # cannot tell; let the emulator answer the real request
        if if_match is not None:
            if current is None:
                return error(404, "NoSuchKey", "The specified key does not exist.", {"Key": key[1]})
            wanted = _etags(if_match)
            if "*" not in wanted and current not in wanted:
                return error(
                    412, "PreconditionFailed", _PRECONDITION_MSG, {"Condition": "If-Match"}
                )
        if if_none_match is not None and current is not None:
            return error(
                412, "PreconditionFailed", _PRECONDITION_MSG, {"Condition": "If-None-Match"}
            )
        return None

    return Plan(lock_key=key, check=check)
