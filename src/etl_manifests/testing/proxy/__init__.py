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

Modules: :mod:`.faults` (fault rules), ``_s3`` and ``_gcs`` (each service's precondition
rules and error bodies), ``_gcs_emulator`` (the emulator workarounds), ``_ignore``
(playing a store that ignores conditions), ``_http`` and ``_server`` (the HTTP plumbing),
``_conditional`` (the proxy itself).
"""

from __future__ import annotations

from ._conditional import ConditionalProxy
from ._http import Dialect
from ._ignore import IGNORABLE_OPERATIONS
from .faults import FaultAction, FaultRule, FaultRules

__all__ = [
    "IGNORABLE_OPERATIONS",
    "ConditionalProxy",
    "Dialect",
    "FaultAction",
    "FaultRule",
    "FaultRules",
]
