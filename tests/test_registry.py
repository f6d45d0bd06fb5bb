"""The plugin seam: backends registered through pluggy, chosen by URL scheme."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from etl_manifests import (
    BackendRegistrationError,
    ManifestManager,
    MissingDependencyError,
    UnknownSchemeError,
    hookimpl,
)
from etl_manifests.backends.local import LocalBackend
from etl_manifests.backends.memory import MemoryBackend
from etl_manifests.registry import BackendRegistry, get_plugin_manager, get_registry, split_scheme
from etl_manifests.storage import StorageBackend


@pytest.mark.parametrize(
    ("root", "scheme"),
    [
        ("/data/manifests", "file"),
        ("relative/dir", "file"),
        ("file:///data", "file"),
        ("C:\\data", "file"),
        ("s3://bucket/p", "s3"),
        ("GS://bucket", "gs"),
        ("memory://x", "memory"),
    ],
)
def test_scheme_of_a_root(root: str, scheme: str) -> None:
    assert split_scheme(root)[0] == scheme


def test_plain_paths_and_file_urls_use_the_local_backend(tmp_path: Path) -> None:
    assert isinstance(get_registry().open(str(tmp_path)), LocalBackend)
    assert isinstance(get_registry().open(f"file://{tmp_path}"), LocalBackend)


def test_memory_scheme_uses_the_memory_backend() -> None:
    assert isinstance(get_registry().open("memory://x"), MemoryBackend)


def test_builtin_backends_are_registered_as_plugins() -> None:
    names = {get_plugin_manager().get_name(p) for p in get_plugin_manager().get_plugins()}
    assert {"etl_manifests.backends.local", "etl_manifests.backends.s3"} <= names


def test_unknown_scheme_lists_known_schemes() -> None:
    with pytest.raises(UnknownSchemeError, match=r"known schemes: .*file://.*memory://.*s3://"):
        ManifestManager("ftp://host/dir", "1")


def test_unknown_scheme_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="plugin"):
        get_registry().open("ftp://host/dir")


def test_known_scheme_without_backend_suggests_the_extra() -> None:
    registry = BackendRegistry()
    with pytest.raises(UnknownSchemeError, match=r"etl-manifests\[s3\]"):
        registry.open("s3://bucket")


def test_missing_dependency_names_the_pip_command() -> None:
    registry = BackendRegistry()
    registry.register("zz", "no_such_pkg.backend:B", requires="no_such_pkg", extra="zz")
    hint = r"pip install 'etl-manifests\[zz\]'"
    with pytest.raises(MissingDependencyError, match=hint) as info:
        registry.open("zz://bucket")
    assert isinstance(info.value, ImportError)


def test_missing_s3fs_raises_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    # Make `import s3fs` fail exactly as it does where s3fs is not installed.
    monkeypatch.setitem(sys.modules, "s3fs", None)
    monkeypatch.delitem(sys.modules, "etl_manifests.backends.s3._backend", raising=False)
    registry = BackendRegistry()
    registry.register(
        "s3", "etl_manifests.backends.s3._backend:S3Backend", requires="s3fs", extra="s3"
    )
    with pytest.raises(MissingDependencyError, match=r"pip install 'etl-manifests\[s3\]'"):
        registry.open("s3://bucket/prefix")


@pytest.mark.parametrize(
    ("scheme", "module", "requires", "extra", "absent"),
    [
        ("s3", "s3._backend:S3Backend", "s3fs", "s3", ["s3fs", "aiohttp", "botocore"]),
        ("gs", "gcs._backend:GCSBackend", "gcsfs", "gcs", ["gcsfs", "aiohttp", "google"]),
    ],
)
def test_install_without_the_extra_gets_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
    module: str,
    requires: str,
    extra: str,
    absent: list[str],
) -> None:
    # As after `pip install etl-manifests`: none of the extra's packages is there, and the
    # backend module imports some of them before the one it is registered as requiring.
    for name in [n for n in sys.modules if n.split(".")[0] in absent]:
        monkeypatch.delitem(sys.modules, name)
    for name in absent:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(
        sys.modules, f"etl_manifests.backends.{module.split(':')[0]}", raising=False
    )
    registry = BackendRegistry()
    registry.register(scheme, f"etl_manifests.backends.{module}", requires=requires, extra=extra)
    with pytest.raises(MissingDependencyError, match=rf"pip install 'etl-manifests\[{extra}\]'"):
        registry.open(f"{scheme}://bucket/prefix")


def _factory(root: str, options: Mapping[str, Any]) -> StorageBackend:
    return MemoryBackend(root.replace("custom://", "memory://"), options)


def test_two_claims_on_one_scheme_are_an_error() -> None:
    registry = BackendRegistry()
    registry.register("custom", _factory)
    with pytest.raises(BackendRegistrationError, match="replace=True"):
        registry.register("custom", _factory)


def test_replace_wins_regardless_of_order() -> None:
    def other(root: str, options: Mapping[str, Any]) -> StorageBackend:
        return LocalBackend("/tmp", options)

    for order in ((other, True), (_factory, False)), ((_factory, False), (other, True)):
        registry = BackendRegistry()
        for factory, replace in order:
            registry.register("custom", factory, replace=replace)
        assert registry.schemes["custom"] is other


def test_schemes_view_is_read_only() -> None:
    with pytest.raises(TypeError):
        get_registry().schemes["x"] = _factory  # type: ignore[index]


def test_malformed_registrations_are_refused() -> None:
    registry = BackendRegistry()
    with pytest.raises(BackendRegistrationError):
        registry.register("not a scheme", _factory)
    with pytest.raises(BackendRegistrationError):
        registry.register("ok", "no_colon_here")
    with pytest.raises(BackendRegistrationError):
        registry.register((), _factory)


class _Plugin:
    @hookimpl
    def register_backends(self, register: Any) -> None:
        register("custom", _factory)


def test_a_registered_plugin_provides_a_scheme() -> None:
    from etl_manifests import registry as module

    pm = get_plugin_manager()
    plugin = _Plugin()
    pm.register(plugin)
    module._registry = None  # refill from the hook with the new plugin
    try:
        manager = ManifestManager("custom://shop", "1")
        manager.extractor.add_record({"checksum": "0" * 64, "filename": "a", "filepath": "/a"})
        assert MemoryBackend("memory://shop", {}).read("extractor_v1.json").data
    finally:
        pm.unregister(plugin)
        module._registry = None


def _install_fake_distribution(
    site: Path, name: str, entry_points: str, modules: dict[str, str]
) -> None:
    """Lay out an installed distribution (dist-info + modules) in a folder on sys.path."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[etl_manifests]\n{entry_points}\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Any:
    from etl_manifests import registry as module

    monkeypatch.delenv("ETL_MANIFESTS_PLUGINS", raising=False)
    module.reset_plugins()
    yield module
    module.reset_plugins()


def _install_memory_plugin(site: Path, scheme: str) -> None:
    """An installed plugin, entry point named ``scheme``, serving ``scheme://`` from memory."""
    module = f"fake_plugin_{scheme}"
    _install_fake_distribution(
        site,
        f"etl_manifests_{scheme}",
        f"{scheme} = {module}",
        {
            module: (
                "from etl_manifests import hookimpl\n"
                "from etl_manifests.backends.memory import MemoryBackend\n"
                "@hookimpl\n"
                "def register_backends(register):\n"
                f"    register({scheme!r}, MemoryBackend)\n"
            )
        },
    )


def test_entry_point_plugin_is_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_plugins: Any
) -> None:
    _install_memory_plugin(tmp_path, "fake")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(fresh_plugins.open_backend("fake://x"), MemoryBackend)


@pytest.mark.parametrize(("selected", "loaded"), [("", False), ("other", False), ("fake2", True)])
def test_plugins_env_var_selects_entry_points(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_plugins: Any,
    selected: str,
    loaded: bool,
) -> None:
    _install_memory_plugin(tmp_path, "fake2")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("ETL_MANIFESTS_PLUGINS", selected)
    if loaded:
        assert isinstance(fresh_plugins.open_backend("fake2://x"), MemoryBackend)
    else:
        with pytest.raises(UnknownSchemeError):
            fresh_plugins.open_backend("fake2://x")
    assert isinstance(fresh_plugins.open_backend("memory://x"), MemoryBackend)


def test_broken_plugin_does_not_break_other_backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_plugins: Any
) -> None:
    _install_fake_distribution(
        tmp_path,
        "etl_manifests_broken",
        "broken = broken_plugin",
        {"broken_plugin": "raise RuntimeError('plugin bug')\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(fresh_plugins.open_backend(str(tmp_path)), LocalBackend)
    assert any("broken" in e and "plugin bug" in e for e in fresh_plugins.plugin_errors())
    with pytest.raises(UnknownSchemeError, match="plugin bug"):
        fresh_plugins.open_backend("broken://x")


def test_factory_name_typo_is_a_registration_error() -> None:
    registry = BackendRegistry()
    registry.register("typo", "etl_manifests.backends.memory:MemoryBackendd")
    with pytest.raises(BackendRegistrationError, match="MemoryBackendd"):
        registry.open("typo://x")
