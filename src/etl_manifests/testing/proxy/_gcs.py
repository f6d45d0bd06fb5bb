"""GCS generation-precondition rules: which requests write (or download) one object, and
Google's answers when ``ifGenerationMatch`` and its kin do not hold.

gcp-storage-emulator ignores every generation precondition; the proxy evaluates them
itself, under the object's lock, against the emulator's current object resource, and
answers as GCS documents (``412 conditionNotMet``, or ``404`` on DELETE/PATCH of a missing
object). Media downloads are locked too, so that the ``x-goog-generation`` header the
proxy adds (:mod:`._gcs_emulator`) always describes the bytes sent.
"""

from __future__ import annotations

import email.parser
import http.client
import json
import re
from collections.abc import Callable
from urllib.parse import quote, unquote

from ._gcs_emulator import add_generation_headers, media_as_multipart
from ._http import Exchange, Plan, Response


def error(status: int, reason: str, message: str, **extra: str) -> Response:
    """A GCS JSON error response."""
    detail = {"message": message, "domain": "global", "reason": reason, **extra}
    payload = {"error": {"code": status, "message": message, "errors": [detail]}}
    body = json.dumps(payload).encode()
    headers = [("Content-Type", "application/json; charset=UTF-8")]
    return Response(status, http.client.responses.get(status, "Error"), headers, body)


_FAULT_CODES: dict[int, tuple[str, str]] = {
    500: ("internalError", "Internal Error"),
    502: ("badGateway", "Bad Gateway"),
    503: ("backendError", "Backend Error"),
    429: ("rateLimitExceeded", "The total number of changes to the object exceeds the rate limit."),
    403: ("forbidden", "Forbidden"),
    501: ("notImplemented", "Not Implemented"),
}


def fault(status: int) -> Response:
    """The GCS error an injected ``status`` fault answers with."""
    reason, message = _FAULT_CODES.get(status, ("backendError", "Injected fault."))
    return error(status, reason, message)


_PRECONDITION_MSG = "At least one of the pre-conditions you specified did not hold."
_API = r"(?:/storage/v1)?"
UPLOAD_RE = re.compile(rf"^(?:/upload)?{_API}/b/(?P<bucket>[^/]+)/o$")
_DEST_RE = re.compile(
    rf"^{_API}/b/[^/]+/o/.+/(?:copyTo|rewriteTo)/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$"
)
_COMPOSE_RE = re.compile(rf"^{_API}/b/(?P<bucket>[^/]+)/o/(?P<name>.+)/compose$")
_OBJECT_SUFFIX_RE = re.compile(r"/(?:acl|restore|copyTo|rewriteTo|compose)(?:/|$)")
_OBJECT_RE = re.compile(rf"^{_API}/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$")
_DOWNLOAD_RE = re.compile(r"^/download/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$")


def _multipart_name(ex: Exchange) -> str | None:
    """The object name from the JSON metadata part of a multipart upload, if any."""
    content_type = ex.headers.get("content-type", "")
    if not content_type.startswith("multipart/"):
        return None
    header = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(header + ex.body)
    parts = message.get_payload()
    if not isinstance(parts, list) or not parts or isinstance(parts[0], str):
        return None
    raw = parts[0].get_payload(decode=True)
    try:
        meta = json.loads(raw) if isinstance(raw, bytes) and raw else {}
    except ValueError:
        return None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None


def _gcs_precondition_failed() -> Response:
    return error(
        412, "conditionNotMet", _PRECONDITION_MSG, locationType="header", location="If-Match"
    )


def _gcs_meta(ex: Exchange, bucket: str, name: str) -> dict[str, str] | None:
    """The emulator's current object resource, or ``None`` if the object is absent."""
    path = f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
    resp = ex.upstream("GET", path, [("Host", ex.headers.get("host", "localhost"))])
    if resp.status != 200:
        return None
    meta = json.loads(resp.body)
    return meta if isinstance(meta, dict) else None


def _gcs_write_check(creates: bool) -> Callable[[Exchange], Response | None]:
    """Evaluate GCS generation preconditions on a write of the locked object.

    ``creates`` is true for requests that produce a new generation (uploads,
    copies, compose): on those a non-zero ``ifGenerationMatch`` against a missing
    object is a 412; on DELETE/PATCH it is a 404, as on the real service.
    """

    def check(ex: Exchange) -> Response | None:
        if_gen = ex.param("ifGenerationMatch")
        if_not_gen = ex.param("ifGenerationNotMatch")
        if_metagen = ex.param("ifMetagenerationMatch")
        if if_gen is None and if_not_gen is None and if_metagen is None:
            return None
        bucket, name = ex.target
        meta = _gcs_meta(ex, bucket, name)
        failed = _gcs_precondition_failed()
        if meta is None:
            if if_gen == "0":
                return None
            if if_gen is None and if_metagen is None:
                return None  # only ifGenerationNotMatch: trivially true for a missing object
            if creates:
                return failed
            msg = f"No such object: {bucket}/{name}"
            return error(404, "notFound", msg)
        generation = str(meta.get("generation"))
        if if_gen is not None and if_gen != generation:
            return failed
        if if_not_gen is not None and if_not_gen == generation:
            return failed
        if if_metagen is not None and if_metagen != str(meta.get("metageneration")):
            return failed
        return None

    return check


def _gcs_download_check(ex: Exchange) -> Response | None:
    bucket, name = ex.target
    meta = _gcs_meta(ex, bucket, name)
    if meta is None:
        return None  # the emulator answers 404 itself
    generation = str(meta.get("generation"))
    # Stash for add_generation_headers; the lock keeps it in step with the bytes.
    ex.notes["generation"] = generation
    ex.notes["metageneration"] = str(meta.get("metageneration"))
    wanted = ex.param("generation")
    if wanted is not None and wanted != generation:
        # The emulator keeps only the live generation; real GCS answers 404 for
        # a generation it does not hold.
        return error(404, "notFound", f"No such object: {bucket}/{name}")
    if_gen = ex.param("ifGenerationMatch")
    if if_gen is not None and if_gen != generation:
        return _gcs_precondition_failed()
    return None


def plan(ex: Exchange) -> Plan:
    """Uploads, copies, compose, DELETE/PATCH of objects, and media downloads."""
    path, method = ex.path, ex.method
    target: tuple[str, str] | None = None
    creates = False
    download = False
    if method == "POST" and (m := UPLOAD_RE.match(path)):
        upload_type = ex.param("uploadType")
        name = ex.param("name")
        if upload_type == "multipart":
            name = name or _multipart_name(ex)
        elif upload_type != "media":
            name = None  # resumable uploads are not locked (see the module notes)
        if name is not None:
            target, creates = (unquote(m["bucket"]), name), True
            if upload_type == "media" and "content-encoding" not in ex.headers:
                media_as_multipart(ex)
    elif method == "POST" and (m := _DEST_RE.match(path) or _COMPOSE_RE.match(path)):
        target, creates = (unquote(m["bucket"]), unquote(m["name"])), True
    elif method == "GET" and (m := _DOWNLOAD_RE.match(path)):
        target, download = (unquote(m["bucket"]), unquote(m["name"])), True
    elif (
        (m := _OBJECT_RE.match(path))
        and not _OBJECT_SUFFIX_RE.search(m["name"])
        and (
            method in ("DELETE", "PATCH", "PUT") or (method == "GET" and ex.param("alt") == "media")
        )
    ):
        target = (unquote(m["bucket"]), unquote(m["name"]))
        download = method == "GET"
    if target is None:
        return Plan()
    ex.target = target
    if download:
        return Plan(lock_key=target, check=_gcs_download_check, decorate=add_generation_headers)
    return Plan(lock_key=target, check=_gcs_write_check(creates))
