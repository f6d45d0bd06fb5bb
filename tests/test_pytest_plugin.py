"""The pytest plugin (etl_manifests.testing.plugin) as a user meets it: test files in a
fresh folder, run by pytest, with the plugin loaded from its entry point."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from etl_manifests import ManifestManager

pytest_plugins = ["pytester"]

RECORD = """{"checksum": "ab" * 32, "filename": "a.gz", "filepath": "/data/a.gz"}"""


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=textwrap.dedent(source))
    return pytester.runpytest("-p", "no:randomly", *args)


@pytest.mark.parametrize(
    ("fixture", "scheme"),
    [
        ("manifest_manager", "memory://"),
        ("local_manifest_manager", "/"),
        ("s3_manifest_manager", "s3://"),
        ("gcs_manifest_manager", "gs://"),
    ],
)
def test_each_manager_fixture_gives_a_fresh_manager_on_its_store(
    pytester: pytest.Pytester, fixture: str, scheme: str
) -> None:
    # Two tests record the same file: each must start from an empty manifest, in
    # whichever order they run.
    result = run(
        pytester,
        f"""
        def test_first({fixture}):
            assert {fixture}.root_dir.startswith({scheme!r})
            assert len({fixture}.extractor) == 0
            {fixture}.extractor.add_record({RECORD})
            assert len({fixture}.extractor) == 1

        def test_second({fixture}):
            assert len({fixture}.extractor) == 0
            {fixture}.extractor.add_record({RECORD})
        """,
    )
    result.assert_outcomes(passed=2)
    assert ManifestManager.instance() is None


@pytest.mark.parametrize(
    "fixture",
    ["manifest_manager", "local_manifest_manager", "s3_manifest_manager", "gcs_manifest_manager"],
)
def test_the_singleton_is_reset_after_a_failing_test(
    pytester: pytest.Pytester, fixture: str
) -> None:
    result = run(
        pytester,
        f"""
        def test_fails({fixture}):
            {fixture}.extractor.add_record({RECORD})
            assert False, "the user's test fails"
        """,
    )
    result.assert_outcomes(failed=1)
    assert ManifestManager.instance() is None


def test_the_local_manager_writes_under_tmp_path(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        f"""
        def test_local(local_manifest_manager, tmp_path):
            local_manifest_manager.extractor.add_record({RECORD})
            assert local_manifest_manager.root_dir == str(tmp_path / "manifests")
            assert any((tmp_path / "manifests").rglob("*"))
        """,
    )
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("root", "scheme"), [("s3_manifest_root", "s3"), ("gcs_manifest_root", "gs")]
)
def test_a_root_is_a_new_bucket_behind_the_enforcing_proxy(
    pytester: pytest.Pytester, root: str, scheme: str
) -> None:
    server = "manifest_s3_server" if scheme == "s3" else "manifest_gcs_server"
    result = run(
        pytester,
        f"""
        import pytest
        from etl_manifests import ManifestManager
        from etl_manifests.testing import ManifestRoot

        buckets = []

        @pytest.mark.parametrize("n", [1, 2])
        def test_root(n, {root}, {server}):
            assert isinstance({root}, ManifestRoot)
            assert {root}.url == f"{scheme}://{{{root}.bucket}}/manifests"
            assert {server}.proxy is not None
            assert {root}.storage_options == {server}.storage_options
            buckets.append({root}.bucket)
            manager = {root}.manager(processes=["noaa"])
            manager.noaa.add_record({RECORD})
            ManifestManager.reset()
            assert "ab" * 32 in {root}.manager(processes=["noaa"]).noaa
            ManifestManager.reset()

        def test_buckets_differ():
            assert len(set(buckets)) == 2
        """,
    )
    result.assert_outcomes(passed=3)


def test_fault_rules_set_by_one_test_are_gone_in_the_next(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_sets_a_fault(s3_manifest_root, manifest_s3_server):
            manifest_s3_server.faults.add(method="PUT", status=503, times=None)

        def test_sees_none(s3_manifest_root, manifest_s3_server):
            assert manifest_s3_server.faults.rules == []
        """,
    )
    result.assert_outcomes(passed=2)


def test_the_marker_sets_the_managers_version_and_processes(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest

        @pytest.mark.manifests(etl_version="2.0.0", processes=["noaa_download"])
        def test_marked(manifest_manager):
            assert manifest_manager.etl_version == "2.0.0"
            assert "noaa_download" in manifest_manager.processes

        def test_unmarked(manifest_manager):
            assert manifest_manager.etl_version == "1.0.0"
        """,
        "--strict-markers",
    )
    result.assert_outcomes(passed=2)


def test_a_missing_emulator_names_the_extra_to_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if moto were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "moto.server", None)
    result = run(
        pytester,
        """
        def test_s3(s3_manifest_manager):
            pass
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pip install 'etl-manifests[[]testing-s3[]]'*"])


def test_the_fixtures_are_listed_and_can_be_turned_off(pytester: pytest.Pytester) -> None:
    listed = pytester.runpytest("--fixtures")
    for name in ("manifest_manager", "local_manifest_manager", "s3_manifest_root"):
        listed.stdout.fnmatch_lines([f"{name}*"])
    result = run(pytester, "def test_x(manifest_manager): pass", "-p", "no:etl_manifests")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'manifest_manager' not found*"])


def test_loading_the_plugin_imports_no_cloud_library() -> None:
    heavy = ["moto", "boto3", "botocore", "s3fs", "gcsfs", "gcp_storage_emulator", "aiohttp"]
    code = (
        "import sys, etl_manifests.testing.plugin\n"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
