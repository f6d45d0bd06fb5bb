"""Azure SDK exceptions, classified and translated into etl-manifests' error hierarchy.

Nothing here formats an SDK exception's own text: a connection error's text can hold the
request URL, and with SAS authentication that URL holds the signature. Messages are built
from safe parts only (HTTP status, Azure error code, request id, container and key), and
translated errors are raised outside the handler of the SDK error, so no SDK text rides
along in a traceback, as the cause or as the context. The error code and the request id
come from the response, which a gateway in front of the store may fill with anything
(the request it refused, signature included): they are used only when they look like
what Azure sends (a word; a GUID-like id).
"""

from __future__ import annotations

import enum
import re
from typing import Final, Literal

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from etl_manifests.errors import (
    BucketNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    UnsupportedStoreError,
)

__all__ = ["describe", "error_code", "status_of", "timed_out", "transient_reason", "translate"]

# Throttling (503 ServerBusy, 500 OperationTimedOut), gateways, request timeouts.
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
# What Azure's error codes (ConditionNotMet) and request ids (a GUID) look like.
_CODE: Final = re.compile(r"[A-Za-z0-9]{1,64}")
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9-]{1,64}")


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK error that came with a response."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def error_code(exc: BaseException) -> str:
    """Azure's error code (``ConditionNotMet``, ``ContainerNotFound``...), or ``""``.

    ``""`` too when the response's code is not a plain word.
    """
    code = getattr(exc, "error_code", None)
    if isinstance(code, enum.Enum):
        code = code.value
    if not code:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        code = headers.get("x-ms-error-code", "")
    code = str(code or "")
    return code if _CODE.fullmatch(code) else ""


def describe(exc: BaseException) -> str:
    """A short, credential-free description: ``HTTP 503 ServerBusy, request id ...``."""
    status = status_of(exc)
    if status is None:
        return type(exc).__name__
    parts = [f"HTTP {status}"]
    if code := error_code(exc):
        parts.append(code)
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    request_id = str(headers.get("x-ms-request-id") or "")
    if _REQUEST_ID.fullmatch(request_id):
        return " ".join(parts) + f", request id {request_id}"
    return " ".join(parts)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors it wraps (azure-core's ``inner_exception``, ``__cause__``)."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 8 and current not in found:
        found.append(current)
        inner = getattr(current, "inner_exception", None)
        current = inner if isinstance(inner, BaseException) else current.__cause__
    return found


def timed_out(exc: BaseException) -> Literal["connect", "read"] | None:
    """Which of the transport's timeouts ``exc`` is (or wraps), if it is one."""
    for cause in _causes(exc):
        if isinstance(cause, ServiceRequestTimeoutError):
            return "connect"
        if isinstance(cause, ServiceResponseTimeoutError):
            return "read"
    return None


def transient_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is worth retrying, or ``None`` if it is not."""
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, IncompleteReadError)):
        return type(exc).__name__  # refused, reset, timed out, truncated body
    if isinstance(exc, HttpResponseError) and status_of(exc) in _TRANSIENT_STATUS:
        return describe(exc)
    if isinstance(exc, HttpResponseError) and status_of(exc) is None:
        # The downloader wraps a body that broke off (or stalled) three times in an
        # HttpResponseError without a response: as transient as what it wraps.
        for cause in _causes(exc)[1:]:
            if isinstance(cause, (ServiceRequestError, ServiceResponseError, IncompleteReadError)):
                return type(cause).__name__
    return None


def translate(exc: AzureError, *, where: str, container: str, account: str) -> StorageError:
    """The library error for a failure that is neither a conflict nor transient.

    :param where: the ``az://container/key`` being worked on, for the message.
    """
    status = status_of(exc)
    code = error_code(exc)
    if code == "ContainerNotFound" or (status == 404 and "Container" in code):
        # Never "no manifest yet": a missing container must stop the job.
        return BucketNotFoundError(
            f"container {container!r} does not exist in storage account {account!r} "
            f"(while accessing {where}); create it, or check the container and account names",
            bucket=container,
        )
    if status == 404:
        return NotFoundError(f"no object at {where}")
    if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
        if status is None:  # azure.identity found no credential to use
            return PermissionDeniedError(
                f"no usable Azure credentials for storage account {account!r} (while "
                f"accessing {where}): set the account_key, sas_token, connection_string or "
                "credential storage option, or sign in for DefaultAzureCredential "
                "(az login, a managed identity, or AZURE_* environment variables)"
            )
        return PermissionDeniedError(
            f"access denied to {where} ({describe(exc)}); check the credentials (account_key, "
            "sas_token, connection_string or credential storage options, and the SAS token's "
            f"permissions and expiry) and the role assignments of container {container!r}"
        )
    if status == 501:
        return UnsupportedStoreError(
            f"the store does not implement a request on {where} ({describe(exc)}); it cannot "
            "hold manifests safely, since saves depend on conditional writes"
        )
    return StorageError(f"Azure refused a request on {where}: {describe(exc)}")
