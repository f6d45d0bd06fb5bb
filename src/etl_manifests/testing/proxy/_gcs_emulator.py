"""Workarounds for gcp-storage-emulator's departures from GCS, so clients see the real
service's behaviour.

* It JSON-decodes media upload bodies sent as ``application/json`` (storing a dict
  instead of the bytes, or crashing on non-JSON) and crashes on empty bodies: media
  uploads are sent to it as the equivalent multipart upload.
* It omits the ``x-goog-generation`` / ``x-goog-metageneration`` headers real GCS sends
  on media downloads: they are added from the object resource read under the same lock
  as the bytes.
"""

from __future__ import annotations

import re
import uuid

from ._http import Exchange, Response


def media_as_multipart(ex: Exchange) -> None:
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


def add_generation_headers(ex: Exchange, resp: Response) -> None:
    """Add the generation headers a download check noted to a successful download."""
    if resp.status not in (200, 206) or "generation" not in ex.notes:
        return
    if resp.header("x-goog-generation") is None:
        resp.headers.append(("x-goog-generation", ex.notes["generation"]))
    if resp.header("x-goog-metageneration") is None:
        resp.headers.append(("x-goog-metageneration", ex.notes["metageneration"]))
