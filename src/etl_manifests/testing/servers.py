"""S3 and GCS emulators on loopback, each behind a :class:`ConditionalProxy`.

:func:`running_s3` starts moto's threaded server, :func:`running_gcs` the in-memory
gcp-storage-emulator, each on 127.0.0.1 on a port the OS chooses, behind a proxy that
enforces the write preconditions the emulator ignores (see :mod:`etl_manifests.testing.proxy`),
and stops both when the block ends. The pytest plugin's session fixtures use them; so can
scripts (the benchmarks pass a counting proxy class).

Clients must talk to ``endpoint_url`` (the proxy), never to ``upstream_url``, or the
precondition enforcement and fault injection are bypassed. ``proxy_class=None`` gives the
emulator as shipped (moto ignores conditions on CopyObject; the GCS emulator ignores
``ifGenerationMatch`` and sends no ``x-goog-generation``), for proving that a library
refuses what a store does not enforce.

The emulators come with the ``testing-s3`` and ``testing-gcs`` extras; without them the
``running_*`` functions raise :class:`ImportError` naming the extra to install.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .proxy import ConditionalProxy, FaultRules

__all__ = [
    "GCS_PROJECT",
    "GcsServer",
    "S3Server",
    "running_gcs",
    "running_s3",
    "unique_bucket_name",
]

GCS_PROJECT = "test-project"
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
_NO_PROXY = "this server has no proxy (a plain_*_server fixture): no fault rules"
# Variables that would redirect or re-credential AWS clients away from the emulator.
_AWS_ENV_UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE")


@dataclass(frozen=True)
class _Emulator:
    """An emulator on loopback and the proxy in front of it (``proxy`` None: plain)."""

    proxy: ConditionalProxy | None
    upstream_url: str

    @property
    def endpoint_url(self) -> str:
        """The proxy's URL (plain: the emulator's); point every client here."""
        return self.proxy.endpoint_url if self.proxy else self.upstream_url

    @property
    def faults(self) -> FaultRules:
        """Fault rules applied by the proxy to every request."""
        if self.proxy is None:
            raise RuntimeError(_NO_PROXY)
        return self.proxy.faults

    def reset_proxy(self) -> None:
        """Clear the fault rules and enforce every condition again (plain: nothing)."""
        if self.proxy is not None:
            self.proxy.faults.clear()
            self.proxy.ignore_conditions = frozenset()


@dataclass(frozen=True)
class S3Server(_Emulator):
    """A running moto server and the proxy in front of it (``proxy`` None: plain moto)."""

    @property
    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` that route through the proxy."""
        return {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": "us-east-1"},
        }

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (raises on any error)."""
        self.client().create_bucket(Bucket=name)

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client on ``endpoint_url``; ``config`` goes to ``botocore.config.Config``."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, **config),
        )


@dataclass(frozen=True)
class GcsServer(_Emulator):
    """A running gcp-storage-emulator and the proxy in front of it (``proxy`` None: plain)."""

    project: str = GCS_PROJECT

    @property
    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments for ``gcsfs.GCSFileSystem`` that route through the proxy."""
        return {"endpoint_url": self.endpoint_url, "token": "anon", "project": self.project}

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` through the JSON API (raises on any non-2xx answer)."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/storage/v1/b?project={self.project}",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


def unique_bucket_name() -> str:
    """A new bucket name, lower-case and DNS-safe: valid on S3 and GCS."""
    return f"test-{uuid.uuid4().hex[:20]}"


@contextlib.contextmanager
def running_s3(
    proxy_class: type[ConditionalProxy] | None = ConditionalProxy,
) -> Iterator[S3Server]:
    """moto on a free loopback port behind a ``proxy_class`` proxy, for the block's length.

    The ``manifest_s3_server`` fixture uses it; so can scripts (the benchmarks pass a
    counting proxy). ``proxy_class=None``: no proxy, plain moto. While it runs, the ``AWS_*``
    variables point clients at dummy credentials.
    """
    ThreadedMotoServer = _need("moto.server", "moto[server]", "testing-s3").ThreadedMotoServer

    with pytest.MonkeyPatch.context() as mp:
        for name, value in _AWS_ENV.items():
            mp.setenv(name, value)
        for name in _AWS_ENV_UNSET:
            mp.delenv(name, raising=False)
        # moto's werkzeug server writes an access-log line per request to stderr
        # unless its logger is already quieter than INFO.
        werkzeug_log = logging.getLogger("werkzeug")
        mp.setattr(werkzeug_log, "level", max(werkzeug_log.level, logging.WARNING))
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        upstream = f"http://{host}:{port}"
        proxy = proxy_class(upstream, "s3").start() if proxy_class else None
        try:
            yield S3Server(proxy=proxy, upstream_url=upstream)
        finally:
            if proxy is not None:
                proxy.stop()
            try:
                urllib.request.urlopen(
                    urllib.request.Request(f"{upstream}/moto-api/reset", method="POST"),
                    timeout=10,
                ).close()
            finally:
                moto.stop()


def _need(module: str, package: str, extra: str) -> Any:
    """Import ``module``, or raise an ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"the {extra.removeprefix('testing-').upper()} emulator needs {package!r}, which "
            f"cannot be imported ({exc}); install it with: pip install 'etl-manifests[{extra}]'",
            name=exc.name,
        ) from exc


@contextlib.contextmanager
def running_gcs(
    proxy_class: type[ConditionalProxy] | None = ConditionalProxy,
) -> Iterator[GcsServer]:
    """The in-memory GCS emulator on a free loopback port behind a ``proxy_class`` proxy.

    The ``manifest_gcs_server`` fixture uses it; so can scripts (the benchmarks pass a counting
    proxy). ``proxy_class=None``: no proxy, the emulator as shipped. While it runs,
    ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` is set.
    """
    create_server = _need(
        "gcp_storage_emulator.server", "gcp-storage-emulator", "testing-gcs"
    ).create_server

    _refuse_experimental_gcsfs()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        emulator = create_server("127.0.0.1", 0, in_memory=True)
        emulator.start()
        try:
            # The emulator does not expose the port it bound; read it from its
            # HTTP server so port 0 (no race for a "free" port) can be used.
            port = emulator._api._httpd.server_address[1]
            upstream = f"http://127.0.0.1:{port}"
            # The emulator serves one request at a time with a listen backlog of 5;
            # more simultaneous connections would stall on SYN retransmits.
            proxy = (
                proxy_class(upstream, "gcs", max_upstream_connections=4).start()
                if proxy_class
                else None
            )
            try:
                yield GcsServer(proxy=proxy, upstream_url=upstream)
            finally:
                if proxy is not None:
                    proxy.stop()
        finally:
            emulator.stop()


def _refuse_experimental_gcsfs() -> None:
    """Fail at once if gcsfs chose its experimental file system when it was imported.

    gcsfs reads ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT`` once, at import; unless it is
    ``false``, every file operation first asks Google's servers for the bucket's type,
    and against an emulator each ask waits out a 60 s timeout. Failing here turns that
    silent wait (minutes per run) into an error naming the fix.
    """
    gcsfs = sys.modules.get("gcsfs")
    if gcsfs is not None and gcsfs.GCSFileSystem is not gcsfs.core.GCSFileSystem:
        raise RuntimeError(
            "gcsfs was imported before GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false was set, so "
            "its file system looks up bucket types on Google's servers (a 60 s timeout per "
            "call against the emulator); set the variable before anything imports gcsfs, "
            "for example at the top of your conftest.py: "
            "os.environ['GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT'] = 'false'"
        )
