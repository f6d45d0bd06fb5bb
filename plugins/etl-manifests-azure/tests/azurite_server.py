"""Azurite, the Azure Storage emulator, on a free loopback port for the length of a block.

Azurite is the npm package pinned in ``tests/azurite/package-lock.json`` (3.35.0, the last
release that runs on Node 20), installed by the repository's set-up command::

    npm ci --prefix plugins/etl-manifests-azure/tests/azurite

It runs with ``--inMemoryPersistence`` in a temporary working directory (nothing persists),
``--loose`` (unsupported headers are ignored rather than refused) and
``--skipApiVersionCheck`` (the SDK may be newer than the emulator). Two accounts exist:
Azurite's documented development account and one whose key is random per run, so tests
can look for that key in messages and logs.

If Node or Azurite is missing, or Azurite does not start, :func:`running_azurite` raises
:class:`AzuriteUnavailable`; the fixtures turn that into a test *failure*, never a skip.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEV_ACCOUNT",
    "DEV_KEY",
    "SETUP_COMMAND",
    "AzuriteServer",
    "AzuriteUnavailable",
    "connection_string",
    "running_azurite",
]

HERE = Path(__file__).resolve().parent
INSTALL_DIR = HERE / "azurite"
SETUP_COMMAND = "npm ci --prefix plugins/etl-manifests-azure/tests/azurite"
#: Azurite's well-known development account (public, documented by Microsoft).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"listens on (http://127\.0\.0\.1:(\d+))")
_START_TIMEOUT_S = 60.0


class AzuriteUnavailable(RuntimeError):
    """Azurite could not be found or started; the message says how to fix it."""


def connection_string(endpoint: str, account: str, key: str) -> str:
    """A connection string for ``account`` at ``endpoint`` (``http://host:port``)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
        f"BlobEndpoint={endpoint}/{account};"
    )


@dataclass(frozen=True)
class AzuriteServer:
    """A running Azurite blob service."""

    endpoint: str
    #: A second account whose key is random for this run (for the secrets tests).
    secret_account: str
    secret_key: str
    log: Path

    def connection_string(self, account: str = DEV_ACCOUNT, endpoint: str | None = None) -> str:
        """Connection string of ``account``, optionally through another ``endpoint``."""
        key = DEV_KEY if account == DEV_ACCOUNT else self.secret_key
        return connection_string(endpoint or self.endpoint, account, key)

    def storage_options(self, endpoint: str | None = None, **extra: Any) -> dict[str, Any]:
        """Storage options for the development account, optionally through ``endpoint``."""
        return {"connection_string": self.connection_string(endpoint=endpoint), **extra}

    def create_container(self, account: str = DEV_ACCOUNT) -> str:
        """Create a uniquely named container and return its name."""
        from azure.storage.blob import BlobServiceClient

        name = f"t{uuid.uuid4().hex[:20]}"
        with BlobServiceClient.from_connection_string(self.connection_string(account)) as svc:
            svc.create_container(name)
        return name


def _command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        raise AzuriteUnavailable(
            "the Azure tests need Node.js (20 or newer) on PATH to run Azurite; install it, "
            f"then run: {SETUP_COMMAND}"
        )
    script = INSTALL_DIR / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    if not script.is_file():
        raise AzuriteUnavailable(
            f"Azurite is not installed in {INSTALL_DIR}; run the README's set-up command "
            f"(it includes: {SETUP_COMMAND})"
        )
    return [node, str(script)]


@contextlib.contextmanager
def running_azurite() -> Iterator[AzuriteServer]:
    """Start Azurite's blob service on 127.0.0.1 (port chosen by the OS), stop it after.

    :raises AzuriteUnavailable: Node or Azurite is missing, or Azurite did not start.
    """
    command = _command()
    secret_account = "etlplanted"
    secret_key = base64.b64encode(secrets.token_bytes(64)).decode()
    with tempfile.TemporaryDirectory(prefix="azurite-") as workspace:
        log = Path(workspace) / "azurite.log"
        env = {
            **os.environ,
            "AZURITE_ACCOUNTS": f"{DEV_ACCOUNT}:{DEV_KEY};{secret_account}:{secret_key}",
        }
        args = [
            *command,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--inMemoryPersistence",
            "--loose",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]
        with log.open("wb") as out:
            # The workspace is the working directory: whatever Azurite writes lands there.
            process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workspace
            )
        try:
            endpoint = _wait_for_port(process, log)
            yield AzuriteServer(endpoint, secret_account, secret_key, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_port(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if match := _LISTENING.search(text):
            return match.group(1)
        if process.poll() is not None:
            raise AzuriteUnavailable(
                f"Azurite exited with status {process.returncode} while starting:\n{text[-2000:]}"
            )
        time.sleep(0.05)
    raise AzuriteUnavailable(
        f"Azurite did not start within {_START_TIMEOUT_S:.0f}s:\n"
        + log.read_text(errors="replace")[-2000:]
    )
