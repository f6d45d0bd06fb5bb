"""Smoke test of an installed wheel, run by .ci/packaging inside a fresh virtual environment.

Usage: python smoke_install.py KIND, KIND one of: core, s3, gcs, all, sqlite, azure, testing,
testing-s3, testing-gcs.
It must run from outside the repository, so that only the installed package is imported.
Prints one line per check and exits non-zero at the first failure.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import etl_manifests
from etl_manifests import ManifestManager, MissingDependencyError, open_backend

CHECKSUM = "ab" * 32
RECORD = {"checksum": CHECKSUM, "filename": "a.gz", "filepath": "/data/a.gz"}


def check(what: str, ok: bool) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        sys.exit(1)


def round_trip(root: str, options: dict[str, object]) -> None:
    ManifestManager.reset()
    manager = ManifestManager(root, "1.0.0", storage_options=options, processes=["smoke"])
    manager.smoke.add_record(RECORD)
    ManifestManager.reset()
    again = ManifestManager(root, "1.0.0", storage_options=options, processes=["smoke"])
    check(f"a record saved to {root.split('://')[0]} is read back", CHECKSUM in again.smoke)
    ManifestManager.reset()


def missing(scheme: str, extra: str) -> None:
    try:
        open_backend(f"{scheme}://bucket/prefix")
    except MissingDependencyError as exc:
        check(f"{scheme}:// without the extra says how to install it", extra in str(exc))
    else:
        check(f"{scheme}:// without the extra is refused", False)


def opens(scheme: str, options: dict[str, object]) -> None:
    backend = open_backend(f"{scheme}://bucket/prefix", options)
    check(f"{scheme}:// opens its backend", type(backend).__module__.startswith("etl_manifests"))
    backend.close()


# A user's test file: which fixtures each extra makes work.
USER_TESTS = {
    "testing": ["manifest_manager", "local_manifest_manager"],
    "testing-s3": ["s3_manifest_manager"],
    "testing-gcs": ["gcs_manifest_manager"],
}
FIXTURES = ["manifest_manager", "local_manifest_manager", "s3_manifest_root", "gcs_manifest_root"]


def pytest_plugin(kind: str) -> None:
    """The plugin loads by itself; its fixtures work where the extra's packages are."""
    with tempfile.TemporaryDirectory() as tmp:

        def pytest(*args: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
            return subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=600)

        listed = pytest("--fixtures").stdout
        check("pytest lists the plugin's fixtures", all(f in listed for f in FIXTURES))
        source = "".join(
            f"def test_{fixture}({fixture}):\n"
            f"    {fixture}.extractor.add_record({RECORD!r})\n"
            f"    assert {CHECKSUM!r} in {fixture}.extractor\n"
            for fixture in USER_TESTS[kind]
        )
        if kind == "testing":
            # Without the emulator extras, asking for one names the extra to install.
            source += "def test_s3(s3_manifest_manager):\n    pass\n"
        Path(tmp, "test_user.py").write_text(textwrap.dedent(source))
        done = pytest("-q", "test_user.py")
        passed = f"{len(USER_TESTS[kind])} passed"
        check(f"a user's test of {', '.join(USER_TESTS[kind])} passes", passed in done.stdout)
        if kind == "testing":
            check(
                "the S3 fixture without its extra names it",
                "pip install 'etl-manifests[testing-s3]'" in done.stdout,
            )


def main(kind: str) -> None:
    check(
        "the package is the installed one",
        "site-packages" in Path(etl_manifests.__file__).parts,
    )
    with tempfile.TemporaryDirectory() as tmp:
        round_trip(f"local://{tmp}/manifests", {})
    s3_options = {"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:9"}
    gcs_options = {"token": "anon", "project": "smoke"}
    if kind == "core":
        missing("s3", "etl-manifests[s3]")
        missing("gs", "etl-manifests[gcs]")
    if kind in ("s3", "all"):
        opens("s3", s3_options)
    if kind in ("gcs", "all"):
        opens("gs", gcs_options)
    if kind == "azure":
        # No emulator here (Azurite needs Node): the plugin is found, parses its root and
        # options, and refuses a typo without sending anything.
        backend = open_backend("az://box/prefix", {"account_name": "smoke", "anon": True})
        check("az:// opens the Azure plugin's backend", type(backend).__name__ == "AzureBackend")
        check("its root is normalised", backend.root == "az://box/prefix")
        try:
            open_backend("abfs://box/prefix", {"account_name": "smoke", "anon": True, "anno": 1})
        except ValueError as exc:
            check("an unknown Azure option is refused", "anno" in str(exc))
        else:
            check("an unknown Azure option is refused", False)
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            round_trip(f"sqlite:///{tmp}/state.db", {})
    if not kind.startswith("testing"):
        check("pytest is not installed", importlib.util.find_spec("pytest") is None)
    else:
        pytest_plugin(kind)
    if kind == "testing-s3":
        import boto3
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id="k",
                aws_secret_access_key="s",
                region_name="us-east-1",
            ).create_bucket(Bucket="smoke")
            round_trip("s3://smoke/manifests", {**s3_options, "endpoint_url": endpoint})
        finally:
            server.stop()


if __name__ == "__main__":
    main(sys.argv[1])
