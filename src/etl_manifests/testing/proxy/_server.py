"""A loopback reverse proxy that adds atomic conditional writes and fault injection.

Neither moto nor gcp-storage-emulator enforces write preconditions atomically
(moto checks ``If-Match``/``If-None-Match`` and then writes in a second step;
the GCS emulator ignores ``ifGenerationMatch`` entirely), yet the code under test
relies on exactly those preconditions.  :class:`ConditionalProxy` sits in front
of one emulator and:

* serialises every write and delete of one object behind a per-object lock,
  and evaluates the request's preconditions against the upstream object while
  holding that lock, answering with the real service's documented error
  (S3 ``412 PreconditionFailed`` / ``404 NoSuchKey``, GCS ``412 conditionNotMet``)
  instead of forwarding when they do not hold;
* adds the ``x-goog-generation`` / ``x-goog-metageneration`` headers that real
  GCS returns on media downloads (the emulator omits them), read under the
  same lock as the bytes so the two always agree;
* applies :class:`FaultRule` s (connection resets, error statuses, delays, and
  "the write landed but the response was lost") added through
  :attr:`ConditionalProxy.faults`;
* on request, plays a store that ignores write conditions on some operations
  (:attr:`ConditionalProxy.ignore_conditions`): it then strips the conditions and
  forwards the write unconditionally, so the library's store capability check can be
  tested against every combination real stores show.

Everything else is forwarded unchanged, keeping the client's ``Host`` and
signature headers.  Request bodies are buffered (they are small documents);
responses to requests that need no lock are streamed.

GCS media uploads (``uploadType=media``) are sent to the emulator as the
equivalent multipart upload, because the emulator JSON-decodes media bodies
sent as ``application/json`` and crashes on empty ones; clients see the real
service's behaviour (bytes stored verbatim, ``metageneration`` 1).

Limits: S3 path-style addressing only; S3 multi-object delete (``POST ?delete``)
and GCS resumable uploads and batch requests are forwarded without locking or
precondition checks; S3 ``If-None-Match`` is only enforced for ``*``.
"""

from __future__ import annotations

import contextlib
import email.parser
import http.client
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = [
    "IGNORABLE_OPERATIONS",
    "ConditionalProxy",
    "Dialect",
    "FaultAction",
    "FaultRule",
    "FaultRules",
]

Dialect = Literal["s3", "gcs"]
FaultAction = Literal["reset", "status", "delay", "drop_response"]

_FAULT_ACTIONS: frozenset[str] = frozenset({"reset", "status", "delay", "drop_response"})

# Hop-by-hop headers (RFC 9110 section 7.6.1) plus the framing headers the proxy
# re-derives itself because it de-chunks request bodies and re-frames responses.
_HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)

_UPSTREAM_TIMEOUT_S = 60.0
_STREAM_CHUNK = 64 * 1024


# --------------------------------------------------------------------------- faults


@dataclass(eq=False)
class FaultRule:
    """One fault to inject into matching requests.

    A request matches when every given criterion matches: ``method`` (exact,
    case-insensitive), ``path_regex`` (``re.search`` on the raw, still
    percent-encoded path without the query string), ``query_regex``
    (``re.search`` on the raw query string, ``""`` when absent) and ``header``
    (a request header name that must be present).  ``None`` means "any".

    Actions:

    ``"reset"``
        Read the request, then abort the connection with a TCP RST and no
        response.  Nothing is forwarded unless ``after_forward`` is true.
    ``"status"``
        Answer ``status`` with a plausible S3 XML / GCS JSON error body.
        Nothing is forwarded unless ``after_forward`` is true, in which case
        the request reaches the emulator and its real response is replaced.
    ``"delay"``
        Sleep ``delay`` seconds, then forward normally; with ``after_forward``
        the sleep happens after the upstream answered and before relaying it.
    ``"drop_response"``
        Forward the request (so a write lands upstream), then reset the
        connection instead of relaying the response; same as ``"reset"`` with
        ``after_forward=True``.

    A rule fires at most ``times`` times (``None`` = unlimited); ``fired``
    counts how often it did.  Rules are evaluated in insertion order and only
    the first matching rule with budget left fires for a request.
    """

    method: str | None = None
    path_regex: str | None = None
    header: str | None = None
    query_regex: str | None = None
    action: FaultAction = "status"
    status: int = 503
    delay: float = 0.0
    times: int | None = 1
    after_forward: bool = False
    fired: int = 0
    _path_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _query_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in _FAULT_ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}")
        if self.action == "drop_response":
            self.after_forward = True
        self._path_re = re.compile(self.path_regex) if self.path_regex is not None else None
        self._query_re = re.compile(self.query_regex) if self.query_regex is not None else None

    @property
    def exhausted(self) -> bool:
        """True once the rule has fired ``times`` times."""
        return self.times is not None and self.fired >= self.times

    def matches(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> bool:
        """Whether a request with these raw attributes matches the rule's criteria."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self._path_re is not None and not self._path_re.search(path):
            return False
        if self._query_re is not None and not self._query_re.search(query):
            return False
        return self.header is None or self.header.lower() in headers


class FaultRules:
    """Thread-safe, ordered list of :class:`FaultRule` s consulted for every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        header: str | None = None,
        query_regex: str | None = None,
        action: FaultAction = "status",
        status: int = 503,
        delay: float = 0.0,
        times: int | None = 1,
        after_forward: bool = False,
    ) -> FaultRule:
        """Append a rule (see :class:`FaultRule` for the semantics) and return it."""
        rule = FaultRule(
            method=method,
            path_regex=path_regex,
            header=header,
            query_regex=query_regex,
            action=action,
            status=status,
            delay=delay,
            times=times,
            after_forward=after_forward,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule; requests already past rule selection are unaffected."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        """A snapshot of the current rules, in evaluation order."""
        with self._lock:
            return list(self._rules)

    def take(
        self, method: str, path: str, query: str, headers: Mapping[str, str]
    ) -> FaultRule | None:
        """Select the rule that fires for this request, counting the firing atomically."""
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted and rule.matches(method, path, query, headers):
                    rule.fired += 1
                    return rule
        return None


# ---------------------------------------------------------------- upstream plumbing


class _UpstreamConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` with Nagle disabled: requests are tiny and latency-bound."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass
class _Response:
    """A fully buffered HTTP response."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


class _Reset(Exception):
    """Raised inside the handler to abort the client connection with an RST."""


class _KeyLocks:
    """One lock per object identity; the table only grows, which is fine for a test run."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    @contextlib.contextmanager
    def hold(self, key: tuple[str, str]) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield


# ---------------------------------------------------------------- dialect policies


@dataclass
class _Plan:
    """What the proxy must do around forwarding one request.

    ``lock_key`` is the object the request writes (or, for GCS media downloads,
    reads); ``check`` runs under that lock before forwarding and returns an error
    response to send instead, or ``None`` to forward; ``decorate`` may amend the
    upstream response (still under the lock).
    """

    lock_key: tuple[str, str] | None = None
    check: Callable[[_Exchange], _Response | None] | None = None
    decorate: Callable[[_Exchange, _Response], None] | None = None


@dataclass
class _Exchange:
    """A request as seen by the policies, plus a way to talk to the upstream."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    upstream: Callable[[str, str, list[tuple[str, str]]], _Response]
    # The object the plan locked, and values a check hands to its decorator.
    target: tuple[str, str] = ("", "")
    notes: dict[str, str] = field(default_factory=dict)
    # Set by a plan that must send the upstream something other than the request.
    forward_url: str | None = None
    forward_body: bytes | None = None
    forward_content_type: str | None = None
    # Request headers (lower-case) not to forward.
    drop_headers: frozenset[str] = frozenset()

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _s3_error(
    status: int, code: str, message: str, extra: Mapping[str, str] | None = None
) -> _Response:
    parts = [f"<Code>{code}</Code>", f"<Message>{_xml_escape(message)}</Message>"]
    parts += [f"<{k}>{_xml_escape(v)}</{k}>" for k, v in (extra or {}).items()]
    request_id = uuid.uuid4().hex[:16].upper()
    parts += [f"<RequestId>{request_id}</RequestId>", "<HostId>harness-proxy</HostId>"]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>"
    ).encode()
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    return _Response(status, http.client.responses.get(status, "Error"), headers, body)


def _gcs_error(status: int, reason: str, message: str, **extra: str) -> _Response:
    detail = {"message": message, "domain": "global", "reason": reason, **extra}
    payload = {"error": {"code": status, "message": message, "errors": [detail]}}
    body = json.dumps(payload).encode()
    headers = [("Content-Type", "application/json; charset=UTF-8")]
    return _Response(status, http.client.responses.get(status, "Error"), headers, body)


_S3_FAULT_CODES: dict[int, tuple[str, str]] = {
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

_GCS_FAULT_CODES: dict[int, tuple[str, str]] = {
    500: ("internalError", "Internal Error"),
    502: ("badGateway", "Bad Gateway"),
    503: ("backendError", "Backend Error"),
    429: ("rateLimitExceeded", "The total number of changes to the object exceeds the rate limit."),
    403: ("forbidden", "Forbidden"),
    501: ("notImplemented", "Not Implemented"),
}


def _s3_fault(status: int) -> _Response:
    code, message = _S3_FAULT_CODES.get(status, ("ServiceUnavailable", "Injected fault."))
    return _s3_error(status, code, message)


def _gcs_fault(status: int) -> _Response:
    reason, message = _GCS_FAULT_CODES.get(status, ("backendError", "Injected fault."))
    return _gcs_error(status, reason, message)


_S3_PRECONDITION_MSG = "At least one of the pre-conditions you specified did not hold"
# PUT/DELETE sub-resources that do not replace the object's bytes and so are not
# subject to (and must not be blocked by) object-level preconditions.
_S3_SUBRESOURCES: frozenset[str] = frozenset(
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


def _s3_plan(ex: _Exchange) -> _Plan:
    """Writes to one S3 object: PutObject, CopyObject, CompleteMultipartUpload, DeleteObject."""
    parts = ex.path.lstrip("/").split("/", 1)
    if len(parts) != 2 or not parts[1]:
        return _Plan()  # bucket-level or service-level request
    bucket, raw_key = parts
    params = ex.params
    is_complete = ex.method == "POST" and set(params) == {"uploadId"}
    is_write = ex.method in ("PUT", "DELETE") and not (set(params) & _S3_SUBRESOURCES)
    if not (is_write or is_complete):
        return _Plan()
    key = (bucket, unquote(raw_key))
    if_match = ex.headers.get("if-match")
    if_none_match = ex.headers.get("if-none-match") if ex.method != "DELETE" else None
    if if_none_match is not None and if_none_match.strip() != "*":
        if_none_match = None  # S3 only defines If-None-Match: * for writes
    if if_match is None and if_none_match is None:
        return _Plan(lock_key=key)

    def check(ex: _Exchange) -> _Response | None:
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
                return _s3_error(
                    404, "NoSuchKey", "The specified key does not exist.", {"Key": key[1]}
                )
            wanted = _etags(if_match)
            if "*" not in wanted and current not in wanted:
                return _s3_error(
                    412, "PreconditionFailed", _S3_PRECONDITION_MSG, {"Condition": "If-Match"}
                )
        if if_none_match is not None and current is not None:
            return _s3_error(
                412, "PreconditionFailed", _S3_PRECONDITION_MSG, {"Condition": "If-None-Match"}
            )
        return None

    return _Plan(lock_key=key, check=check)


_GCS_PRECONDITION_MSG = "At least one of the pre-conditions you specified did not hold."
_GCS_API = r"(?:/storage/v1)?"
_GCS_UPLOAD_RE = re.compile(rf"^(?:/upload)?{_GCS_API}/b/(?P<bucket>[^/]+)/o$")
_GCS_DEST_RE = re.compile(
    rf"^{_GCS_API}/b/[^/]+/o/.+/(?:copyTo|rewriteTo)/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$"
)
_GCS_COMPOSE_RE = re.compile(rf"^{_GCS_API}/b/(?P<bucket>[^/]+)/o/(?P<name>.+)/compose$")
_GCS_OBJECT_SUFFIX_RE = re.compile(r"/(?:acl|restore|copyTo|rewriteTo|compose)(?:/|$)")
_GCS_OBJECT_RE = re.compile(rf"^{_GCS_API}/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$")
_GCS_DOWNLOAD_RE = re.compile(r"^/download/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$")


def _multipart_name(ex: _Exchange) -> str | None:
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


def _media_as_multipart(ex: _Exchange) -> None:
    """Re-express a media upload as the equivalent multipart upload for the emulator.

    The emulator JSON-decodes media bodies sent as ``application/json`` (storing
    a dict instead of the bytes, or crashing on non-JSON) and crashes on empty
    bodies; its multipart path stores the bytes verbatim in both cases.
    """
    content_type = ex.headers.get("content-type") or "application/octet-stream"
    boundary = f"harness-{uuid.uuid4().hex}"
    # Empty metadata: the name stays in the query, the content type comes from the
    # media part, and any metadata would make the emulator bump metageneration to 2.
    meta = b"{}"
    ex.forward_body = b"".join(
        [
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
            meta,
            f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode(),
            ex.body,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    ex.forward_content_type = f'multipart/related; boundary="{boundary}"'
    ex.forward_url = (
        ex.path + "?" + re.sub(r"(^|&)uploadType=media", r"\1uploadType=multipart", ex.query)
    )


def _gcs_precondition_failed() -> _Response:
    return _gcs_error(
        412, "conditionNotMet", _GCS_PRECONDITION_MSG, locationType="header", location="If-Match"
    )


def _gcs_meta(ex: _Exchange, bucket: str, name: str) -> dict[str, str] | None:
    """The emulator's current object resource, or ``None`` if the object is absent."""
    path = f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}"
    resp = ex.upstream("GET", path, [("Host", ex.headers.get("host", "localhost"))])
    if resp.status != 200:
        return None
    meta = json.loads(resp.body)
    return meta if isinstance(meta, dict) else None


def _gcs_write_check(creates: bool) -> Callable[[_Exchange], _Response | None]:
    """Evaluate GCS generation preconditions on a write of the locked object.

    ``creates`` is true for requests that produce a new generation (uploads,
    copies, compose): on those a non-zero ``ifGenerationMatch`` against a missing
    object is a 412; on DELETE/PATCH it is a 404, as on the real service.
    """

    def check(ex: _Exchange) -> _Response | None:
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
            return _gcs_error(404, "notFound", msg)
        generation = str(meta.get("generation"))
        if if_gen is not None and if_gen != generation:
            return failed
        if if_not_gen is not None and if_not_gen == generation:
            return failed
        if if_metagen is not None and if_metagen != str(meta.get("metageneration")):
            return failed
        return None

    return check


def _gcs_download_check(ex: _Exchange) -> _Response | None:
    bucket, name = ex.target
    meta = _gcs_meta(ex, bucket, name)
    if meta is None:
        return None  # the emulator answers 404 itself
    generation = str(meta.get("generation"))
    # Stash for _gcs_download_decorate; the lock keeps it in step with the bytes.
    ex.notes["generation"] = generation
    ex.notes["metageneration"] = str(meta.get("metageneration"))
    wanted = ex.param("generation")
    if wanted is not None and wanted != generation:
        # The emulator keeps only the live generation; real GCS answers 404 for
        # a generation it does not hold.
        return _gcs_error(404, "notFound", f"No such object: {bucket}/{name}")
    if_gen = ex.param("ifGenerationMatch")
    if if_gen is not None and if_gen != generation:
        return _gcs_precondition_failed()
    return None


def _gcs_download_decorate(ex: _Exchange, resp: _Response) -> None:
    if resp.status not in (200, 206) or "generation" not in ex.notes:
        return
    if resp.header("x-goog-generation") is None:
        resp.headers.append(("x-goog-generation", ex.notes["generation"]))
    if resp.header("x-goog-metageneration") is None:
        resp.headers.append(("x-goog-metageneration", ex.notes["metageneration"]))


def _gcs_plan(ex: _Exchange) -> _Plan:
    """Uploads, copies, compose, DELETE/PATCH of objects, and media downloads."""
    path, method = ex.path, ex.method
    target: tuple[str, str] | None = None
    creates = False
    download = False
    if method == "POST" and (m := _GCS_UPLOAD_RE.match(path)):
        upload_type = ex.param("uploadType")
        name = ex.param("name")
        if upload_type == "multipart":
            name = name or _multipart_name(ex)
        elif upload_type != "media":
            name = None  # resumable uploads are not locked (see the module notes)
        if name is not None:
            target, creates = (unquote(m["bucket"]), name), True
            if upload_type == "media" and "content-encoding" not in ex.headers:
                _media_as_multipart(ex)
    elif method == "POST" and (m := _GCS_DEST_RE.match(path) or _GCS_COMPOSE_RE.match(path)):
        target, creates = (unquote(m["bucket"]), unquote(m["name"])), True
    elif method == "GET" and (m := _GCS_DOWNLOAD_RE.match(path)):
        target, download = (unquote(m["bucket"]), unquote(m["name"])), True
    elif (
        (m := _GCS_OBJECT_RE.match(path))
        and not _GCS_OBJECT_SUFFIX_RE.search(m["name"])
        and (
            method in ("DELETE", "PATCH", "PUT") or (method == "GET" and ex.param("alt") == "media")
        )
    ):
        target = (unquote(m["bucket"]), unquote(m["name"]))
        download = method == "GET"
    if target is None:
        return _Plan()
    ex.target = target
    if download:
        return _Plan(lock_key=target, check=_gcs_download_check, decorate=_gcs_download_decorate)
    return _Plan(lock_key=target, check=_gcs_write_check(creates))


# ------------------------------------------------- stores that ignore conditions

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


def _operation(dialect: Dialect, ex: _Exchange) -> str | None:
    """The write operation a request is, in :data:`IGNORABLE_OPERATIONS` terms, or None."""
    if dialect == "gcs":
        return "insert" if ex.method == "POST" and _GCS_UPLOAD_RE.match(ex.path) else None
    parts = ex.path.lstrip("/").split("/", 1)
    if ex.method != "PUT" or len(parts) != 2 or not parts[1] or set(ex.params) & _S3_SUBRESOURCES:
        return None
    return "CopyObject" if "x-amz-copy-source" in ex.headers else "PutObject"


def _strip_conditions(dialect: Dialect, ex: _Exchange) -> None:
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


# ------------------------------------------------------------------------ the proxy


def _reason(status: int) -> str:
    return http.client.responses.get(status, "Unknown")


class _ProxyServer(ThreadingHTTPServer):
    """Threading server bound to one :class:`ConditionalProxy`."""

    daemon_threads = True
    # The default backlog of 5 makes bursts of concurrent clients wait for SYN
    # retransmits (a full second each); tests routinely open 16+ at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], proxy: ConditionalProxy) -> None:
        self.proxy = proxy
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # Client disconnects and injected resets are routine here; stay quiet.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        # One persistent upstream connection per client connection: no pool to
        # manage and no ephemeral-port churn under load.
        self._conn: _UpstreamConnection | None = None

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if self._conn is not None:
            self._conn.close()

    def log_message(self, format: str, *args: object) -> None:
        return

    # -- request handling ------------------------------------------------------

    def _serve(self) -> None:
        proxy = self.server.proxy
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        raw_path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        ex = _Exchange(self.command, raw_path, query, headers, body, self._upstream_buffered)
        rule = proxy.faults.take(self.command, raw_path, query, headers)
        head = self.command == "HEAD"
        try:
            if rule is not None and not rule.after_forward:
                if rule.action == "reset":
                    raise _Reset
                if rule.action == "status":
                    self._send(proxy._fault_response(rule.status), head)
                    return
                if rule.action == "delay":
                    time.sleep(rule.delay)
            plan = proxy._plan(ex)
            if plan.lock_key is None and (rule is None or not rule.after_forward):
                self._forward_streaming(ex)
                return
            resp = self._forward_planned(ex, plan)
            if rule is not None and rule.after_forward:
                if rule.action in ("reset", "drop_response"):
                    raise _Reset
                if rule.action == "status":
                    resp = proxy._fault_response(rule.status)
                elif rule.action == "delay":
                    time.sleep(rule.delay)
            self._send(resp, head)
        except _Reset:
            self._reset()
        except (OSError, http.client.HTTPException):
            # Upstream unreachable or hung up mid-exchange: answer like a gateway.
            self._drop_upstream()
            with contextlib.suppress(OSError):
                self._send(proxy._fault_response(502), head)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Discard trailers up to the terminating blank line.
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length else b""

    def _forward_planned(self, ex: _Exchange, plan: _Plan) -> _Response:
        assert plan.lock_key is not None or plan.check is None
        locks = self.server.proxy._locks
        with locks.hold(plan.lock_key) if plan.lock_key else contextlib.nullcontext():
            if plan.check is not None:
                refusal = plan.check(ex)
                if refusal is not None:
                    return refusal
            resp = self._upstream_buffered(
                ex.method,
                ex.forward_url or self.path,
                self._forward_headers(ex),
                ex.body if ex.forward_body is None else ex.forward_body,
            )
            if plan.decorate is not None:
                plan.decorate(ex, resp)
            return resp

    def _forward_streaming(self, ex: _Exchange) -> None:
        with self.server.proxy._upstream_slot():
            upstream = self._upstream_open(ex.method, self.path, self._forward_headers(ex), ex.body)
            length = upstream.getheader("Content-Length")
            no_body = ex.method == "HEAD" or upstream.status in (204, 304)
            chunked = not no_body and length is None
            extra = [("Transfer-Encoding", "chunked")] if chunked else []
            if length is not None:
                extra.append(("Content-Length", length))
            self.wfile.write(
                self._head_bytes(upstream.status, upstream.reason, upstream.getheaders(), extra)
            )
            if no_body:
                upstream.read()
                return
            while block := upstream.read1(_STREAM_CHUNK):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")

    def _forward_headers(self, ex: _Exchange) -> list[tuple[str, str]]:
        listed = {
            token.strip().lower()
            for token in self.headers.get("Connection", "").split(",")
            if token.strip()
        }
        out = [
            (name, value)
            for name, value in self.headers.items()
            if name.lower() not in _HOP_BY_HOP and name.lower() not in listed
        ]
        if ex.drop_headers:
            out = [(k, v) for k, v in out if k.lower() not in ex.drop_headers]
        if ex.forward_content_type is not None:
            out = [(k, v) for k, v in out if k.lower() != "content-type"]
            out.append(("Content-Type", ex.forward_content_type))
        body = ex.body if ex.forward_body is None else ex.forward_body
        if body or ex.method in ("POST", "PUT", "PATCH"):
            out.append(("Content-Length", str(len(body))))
        return out

    # -- upstream --------------------------------------------------------------

    def _drop_upstream(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _upstream_open(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> http.client.HTTPResponse:
        proxy = self.server.proxy
        for attempt in range(2):
            if self._conn is None:
                self._conn = _UpstreamConnection(
                    proxy._upstream_host, proxy._upstream_port, timeout=_UPSTREAM_TIMEOUT_S
                )
            reused = self._conn.sock is not None
            try:
                self._conn.putrequest(method, url, skip_host=True, skip_accept_encoding=True)
                if not any(name.lower() == "host" for name, _ in headers):
                    self._conn.putheader("Host", proxy._upstream_netloc)
                for name, value in headers:
                    self._conn.putheader(name, value)
                self._conn.endheaders(body or None)
                return self._conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive upstream connection may have been closed while idle;
                # retry once on a fresh one.  Fresh-connection failures are real.
                self._drop_upstream()
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    def _upstream_buffered(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> _Response:
        with self.server.proxy._upstream_slot():
            resp = self._upstream_open(method, url, headers, body)
            data = resp.read()
        return _Response(resp.status, resp.reason, resp.getheaders(), data)

    # -- downstream ------------------------------------------------------------

    def _head_bytes(
        self,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        extra: list[tuple[str, str]],
    ) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason or _reason(status)}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_BY_HOP]
        lines += [f"{k}: {v}" for k, v in extra]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, resp: _Response, head: bool) -> None:
        extra: list[tuple[str, str]] = []
        body = resp.body
        if head:
            # A HEAD answer describes the body it would have had.
            length = resp.header("Content-Length")
            extra.append(("Content-Length", length if length is not None else str(len(body))))
            body = b""
        elif resp.status not in (204, 304):
            extra.append(("Content-Length", str(len(body))))
        # One write: avoids the Nagle/delayed-ACK stall of header-then-body sends.
        self.wfile.write(self._head_bytes(resp.status, resp.reason, resp.headers, extra) + body)

    def _reset(self) -> None:
        """Abort the client connection with a TCP RST and no response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # rfile holds a reference to the socket; drop it so close() is real.
            self.rfile.close()
            self.connection.close()


class ConditionalProxy:
    """A threaded HTTP reverse proxy in front of one S3 or GCS emulator.

    ``dialect`` selects the precondition rules and error formats (``"s3"`` or
    ``"gcs"``).  The proxy listens on ``host`` (loopback only) and ``port``
    (``0`` picks a free one); :attr:`endpoint_url` is what clients should use.
    ``max_upstream_connections`` bounds simultaneous upstream exchanges, for
    emulators with a single-threaded server and a tiny listen backlog.

    Guarantees callers may rely on:

    * every write/delete of one object (and, for GCS, every media download) is
      serialised, and its preconditions are checked against the upstream under
      the same lock, so of N concurrent conditional writes expecting the same
      state exactly one can succeed;
    * requests that are not object writes are forwarded unchanged;
    * :attr:`faults` rules apply to every request, before any precondition check.
    """

    def __init__(
        self,
        upstream_url: str,
        dialect: Dialect,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_upstream_connections: int | None = None,
    ) -> None:
        if dialect not in ("s3", "gcs"):
            raise ValueError(f"unknown dialect {dialect!r}")
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream_url!r}")
        self.upstream_url = upstream_url.rstrip("/")
        self.dialect: Dialect = dialect
        self.faults = FaultRules()
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port
        self._upstream_netloc = parts.netloc
        self._locks = _KeyLocks()
        self._slots: threading.BoundedSemaphore | None = (
            threading.BoundedSemaphore(max_upstream_connections)
            if max_upstream_connections
            else None
        )
        self._dialect_plan: Callable[[_Exchange], _Plan] = (
            _s3_plan if dialect == "s3" else _gcs_plan
        )
        self._ignore_conditions: frozenset[str] = frozenset()
        self._fault_response: Callable[[int], _Response] = (
            _s3_fault if dialect == "s3" else _gcs_fault
        )
        self._server = _ProxyServer((host, port), self)
        self._thread: threading.Thread | None = None

    @property
    def ignore_conditions(self) -> frozenset[str]:
        """Operations whose write conditions the proxy ignores (empty: enforce all).

        Names come from :data:`IGNORABLE_OPERATIONS` for the proxy's dialect. For those
        operations the proxy neither checks the conditions nor lets the emulator see
        them (moto would check PutObject's itself): the write lands unconditionally,
        as on a store that ignores them. Changing it affects requests that start after.
        """
        return self._ignore_conditions

    @ignore_conditions.setter
    def ignore_conditions(self, operations: frozenset[str] | set[str]) -> None:
        unknown = set(operations) - IGNORABLE_OPERATIONS[self.dialect]
        if unknown:
            raise ValueError(f"cannot ignore conditions on {sorted(unknown)} ({self.dialect})")
        self._ignore_conditions = frozenset(operations)

    def _plan(self, ex: _Exchange) -> _Plan:
        plan = self._dialect_plan(ex)
        ignored = self._ignore_conditions
        if ignored and _operation(self.dialect, ex) in ignored:
            _strip_conditions(self.dialect, ex)
            # Still serialised per object, like every write; just never refused.
            return _Plan(lock_key=plan.lock_key)
        return plan

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the proxy (valid once constructed)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _upstream_slot(self) -> contextlib.AbstractContextManager[object]:
        return self._slots if self._slots is not None else contextlib.nullcontext()

    def start(self) -> ConditionalProxy:
        """Start serving on a daemon thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.dialect}-proxy",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and close the listening socket (idempotent)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ConditionalProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
