"""URL scheme -> storage backend, filled by the ``register_backends`` plugin hook.

Plugins are loaded once, on first use: the built-in default plugins, then every
``etl_manifests`` entry point. Set ``ETL_MANIFESTS_PLUGINS`` to a comma-separated list of
entry-point names to load only those (an empty value loads none of them); built-in
backends are always available.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

import pluggy

from . import hookspecs
from ._forksafe import register_after_fork, renewed
from ._redact import describe, redact_url, secret_values
from ._warn import did_you_mean, warn_once
from .errors import (
    BackendConfigurationError,
    BackendRegistrationError,
    ManifestError,
    MissingDependencyError,
    UnknownSchemeError,
)
from .storage import BackendFactory, StorageBackend

__all__ = [
    "BackendRegistry",
    "get_plugin_manager",
    "get_registry",
    "normalise_root",
    "open_backend",
    "plugin_errors",
    "redact_root",
    "reset_plugins",
    "split_scheme",
    "unencodable_option",
    "unencodable_option_error",
]

ENTRY_POINT_GROUP = "etl_manifests"
PLUGINS_ENV = "ETL_MANIFESTS_PLUGINS"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "etl_manifests.backends.local",
    "etl_manifests.backends.memory",
    "etl_manifests.backends.s3",
    "etl_manifests.backends.gcs",
)

# Where a user who installed the package from an index reads the documentation.
_DOCUMENTATION = "https://etl-manifests.github.io/etl-manifests/plugins/"

# What to install for schemes commonly asked for, so an unknown-scheme error can help.
_INSTALL_HINTS: dict[str, str] = {
    "s3": "pip install 'etl-manifests[s3]'",
    "s3a": "pip install 'etl-manifests[s3]'",
    "gs": "pip install 'etl-manifests[gcs]'",
    "gcs": "pip install 'etl-manifests[gcs]'",
}

# RFC 3986 scheme syntax, lower-cased; one letter is a Windows drive, not a scheme.
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")


def split_scheme(root: str) -> tuple[str, str]:
    """Return ``(scheme, root)``; a plain path has the scheme ``"file"``."""
    match = _SCHEME_RE.match(root)
    if match is None:
        return "file", root
    return match.group(1).lower(), root


def unencodable_option(options: Mapping[str, Any], prefix: str = "") -> str | None:
    """The name of the first option in ``options`` whose text cannot be sent anywhere.

    A string holding a lone surrogate (``"\\udc80"`` in JSON is valid, and decodes to
    one) cannot be encoded as UTF-8, so every client library fails on it deep inside,
    with an error whose arguments repeat the whole string. Nested names are dotted
    (``client_kwargs.endpoint_url``), list items indexed (``token[0]``); ``None`` when
    every string is valid text.
    """
    for name, value in options.items():
        label = f"{prefix}{_printable(str(name))}"
        if not _encodable(str(name)):
            return label
        found = _unencodable_value(value, label)
        if found is not None:
            return found
    return None


def _unencodable_value(value: Any, label: str) -> str | None:
    if isinstance(value, str):
        return None if _encodable(value) else label
    if isinstance(value, Mapping):
        return unencodable_option(value, f"{label}.")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _unencodable_value(item, f"{label}[{index}]")
            if found is not None:
                return found
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(name: str) -> str:
    # An option *name* is no secret, but a surrogate in it would break printing the message.
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def unencodable_option_error(name: str, where: str = "") -> BackendConfigurationError:
    """Our error for the option :func:`unencodable_option` found; ``where`` says whence."""
    return BackendConfigurationError(
        f"the storage option {name!r}{where} holds text that is not valid Unicode (a lone "
        "surrogate, such as a \\udc80 escape in JSON or a file name decoded with "
        "surrogateescape), which no client can send; fix that value. The value is not "
        "shown because it may hold credentials."
    )


# Anything that starts like a URL ("s3:", "memory:"); it is never taken for a local path.
_URL_SHAPED = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+):")


def redact_root(root: str) -> str:
    """``root`` without credentials (for messages); see :func:`._redact.redact_url`."""
    return redact_url(root)


def normalise_root(root: str | os.PathLike[str]) -> str:
    """The canonical form of a manifests root: an absolute local path, or a URL.

    A URL keeps its scheme and loses trailing slashes; ``file:///`` is the folder ``/``.
    Anything shaped like a URL (a scheme of two or more characters and a colon) is never
    taken for a local path, so a root whose bucket came from an unset variable cannot
    silently become a folder named ``s3:`` in the working directory.

    :raises BackendConfigurationError: the root is empty, is only a scheme (``s3://``,
        ``memory://``), names no location (``file://``), or looks like a URL without
        ``//`` (``s3:bucket``, or ``s3:/bucket`` from ``pathlib.Path("s3://bucket")``).
    """
    try:
        text = os.fspath(root)
    except TypeError:
        raise BackendConfigurationError(
            f"the manifests root must be a path or a URL string, not {type(root).__name__}"
        ) from None
    if not isinstance(text, str):
        raise BackendConfigurationError("the manifests root must be a str path, not bytes")
    if not text.strip():
        raise BackendConfigurationError(
            "the manifests root is empty (is the variable that should set it unset?); "
            "give a folder such as ./manifests or a URL such as s3://bucket/manifests"
        )
    match = _URL_SHAPED.match(text)
    if match is None:
        return os.path.abspath(os.path.expanduser(text))
    scheme, rest = match.group(1), text[match.end() :]
    shown = redact_root(text)
    if not rest.startswith("//"):
        hint = (
            "; pathlib.Path() collapses '//', so pass URLs as strings"
            if rest.startswith("/")
            else ""
        )
        raise BackendConfigurationError(
            f"the manifests root {shown!r} looks like a {scheme}: URL but has no '//' after "
            f"the scheme; write {scheme}://... (or ./{text} for a local folder of that "
            f"name){hint}"
        )
    rest = rest[2:]
    if scheme.lower() == "file":
        if not rest:
            raise BackendConfigurationError(
                f"the manifests root {shown!r} names no folder; write file:///absolute/path"
            )
        return f"{scheme}://{rest.rstrip('/') or '/'}"
    location = rest.split("?", 1)[0].split("#", 1)[0]
    if not location.strip("/"):
        raise BackendConfigurationError(
            f"the manifests root {shown!r} is only a scheme: it names no bucket or location "
            f"(was it built from a variable that is unset?); write {scheme}://bucket/prefix "
            f"or the form the {scheme}:// backend documents. Nothing was written"
        )
    return f"{scheme}://{rest.rstrip('/')}"


@dataclass(frozen=True)
class _Entry:
    factory: BackendFactory | str
    requires: str | None
    extra: str | None
    replace: bool


class BackendRegistry:
    """Maps URL schemes to backend factories. Thread-safe."""

    def __init__(self) -> None:
        self._claims: dict[str, list[_Entry]] = {}
        self._resolved: dict[str, _Entry] = {}
        self._loaded: dict[str, BackendFactory] = {}
        self._lock = threading.Lock()
        register_after_fork(self, BackendRegistry._after_fork)

    def _after_fork(self) -> None:
        self._lock = renewed(self._lock)

    def register(
        self,
        schemes: str | Sequence[str],
        factory: BackendFactory | str,
        *,
        requires: str | None = None,
        extra: str | None = None,
        replace: bool = False,
    ) -> None:
        """Register ``factory`` for ``schemes``; see :class:`hookspecs.RegisterBackend`.

        Claims are order-independent: one claim with ``replace=True`` beats any number of
        plain claims; two plain claims (or two replacing claims) on one scheme are an error.
        """
        names = (schemes,) if isinstance(schemes, str) else tuple(schemes)
        if not names:
            raise BackendRegistrationError("register() needs at least one URL scheme")
        if isinstance(factory, str) and ":" not in factory:
            raise BackendRegistrationError(
                f"backend factory {factory!r} must be 'package.module:Name' or a callable"
            )
        entry = _Entry(factory, requires, extra, replace)
        with self._lock:
            for name in names:
                scheme = name.lower()
                if not re.fullmatch(r"[a-z][a-z0-9+.-]+", scheme):
                    raise BackendRegistrationError(f"{name!r} is not a valid URL scheme")
                claims = [*self._claims.get(scheme, []), entry]
                self._resolved[scheme] = self._winner(scheme, claims)
                self._claims[scheme] = claims
                self._loaded.pop(scheme, None)

    @staticmethod
    def _winner(scheme: str, claims: list[_Entry]) -> _Entry:
        replacing = [c for c in claims if c.replace]
        if len(replacing) > 1 or (not replacing and len(claims) > 1):
            raise BackendRegistrationError(
                f"two plugins register the {scheme}:// scheme; uninstall one, or have the "
                "one that should win register with replace=True"
            )
        return replacing[0] if replacing else claims[0]

    @property
    def schemes(self) -> Mapping[str, BackendFactory | str]:
        """A read-only view: scheme -> registered factory (or its import string)."""
        return MappingProxyType({k: v.factory for k, v in self._resolved.items()})

    def factory(self, scheme: str) -> BackendFactory:
        """Return the factory for ``scheme``, importing it on first use."""
        scheme = scheme.lower()
        with self._lock:
            if scheme in self._loaded:
                return self._loaded[scheme]
            entry = self._resolved.get(scheme)
        if entry is None:
            known = ", ".join(f"{s}://" for s in sorted(self._resolved))
            broken = "".join(f"; {failure}" for failure in _plugin_errors)
            hint = _INSTALL_HINTS.get(scheme)
            advice = (
                f"install its backend with: {hint}"
                if hint
                else "install a plugin that provides it (the Plugins page of "
                f"{_DOCUMENTATION} says how one is made)"
            )
            raise UnknownSchemeError(
                f"no storage backend for {scheme}://{did_you_mean(scheme, self._resolved)}; "
                f"known schemes: {known}; {advice}{broken}"
            )
        loaded = _import_factory(scheme, entry)
        with self._lock:
            self._loaded[scheme] = loaded
        return loaded

    def open(self, root: str, storage_options: Mapping[str, Any] | None = None) -> StorageBackend:
        """Open the backend for ``root`` (a path or URL) with ``storage_options``.

        :raises BackendConfigurationError: see :func:`normalise_root`; or an option holds
            text that is not valid Unicode (:func:`unencodable_option`), named in the
            message, before the backend sees it.

        Errors from this library pass through. Anything else the backend's factory raises
        (a plugin's, or a library's underneath) becomes a
        :class:`~etl_manifests.errors.BackendConfigurationError` whose message keeps the
        original's type and scrubbed text, without credentials and without chaining it.
        """
        scheme, root = split_scheme(normalise_root(root))
        factory = self.factory(scheme)
        options = dict(storage_options or {})
        unencodable = unencodable_option(options)
        if unencodable is not None:
            raise unencodable_option_error(unencodable)
        try:
            return factory(root, options)
        except ManifestError:
            raise
        except Exception as exc:
            failure = describe(exc, secret_values(storage_options))
        # Raised outside the handler so that the original is not even the context.
        raise BackendConfigurationError(
            f"cannot open the {scheme}:// backend for {redact_url(root)}: {failure}; "
            "check the root URL and the storage options"
        )


def _import_factory(scheme: str, entry: _Entry) -> BackendFactory:
    if not isinstance(entry.factory, str):
        return entry.factory
    module_name, _, attr = entry.factory.partition(":")
    # Checked before importing: the backend module may import other packages of its
    # extra first (aiohttp, botocore), whose absence would otherwise surface as a bare
    # ModuleNotFoundError instead of the install hint.
    if entry.requires and importlib.util.find_spec(entry.requires.split(".")[0]) is None:
        raise MissingDependencyError(scheme, entry.requires, entry.extra)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        required = (entry.requires or "").split(".")[0]
        if missing and missing != required and missing in (module_name.split(".")[0], __package__):
            # The backend's own package is missing or broken: not a dependency problem.
            raise
        # Anything else the backend imports (its requirement, or one of that package's
        # own dependencies, such as aiohttp or botocore for s3fs) is a missing dependency.
        raise MissingDependencyError(
            scheme, entry.requires or missing or module_name, entry.extra, missing or None
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise BackendRegistrationError(
            f"the {scheme}:// backend is registered as {entry.factory!r}, but {module_name} "
            f"has no callable {attr!r}; the plugin providing it is broken or outdated"
        )
    return cast(BackendFactory, factory)


_lock = threading.Lock()
_plugin_manager: pluggy.PluginManager | None = None
_registry: BackendRegistry | None = None
_plugin_errors: list[str] = []


def _renew_lock() -> None:
    global _lock
    _lock = renewed(_lock)


if hasattr(os, "register_at_fork"):
    # A thread that did not survive a fork may have been loading the plugins.
    os.register_at_fork(after_in_child=_renew_lock)


def plugin_errors() -> list[str]:
    """Why installed plugins failed to load (they are skipped; other backends still work)."""
    get_registry()
    return list(_plugin_errors)


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    selected = os.environ.get(PLUGINS_ENV)
    wanted = None if selected is None else {n.strip() for n in selected.split(",") if n.strip()}
    installed = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    _warn_unknown_plugins(wanted or set(), {ep.name for ep in installed})
    for ep in installed:
        if (wanted is not None and ep.name not in wanted) or pm.get_plugin(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            # One broken plugin must not take every other backend down with it.
            _plugin_errors.append(
                f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
            )


def _warn_unknown_plugins(wanted: set[str], installed: set[str]) -> None:
    """A :class:`SettingWarning` for each name in ``ETL_MANIFESTS_PLUGINS`` that no
    installed plugin has: it selects nothing, and a misspelling should not pass unseen."""
    for name in sorted(wanted - installed - set(DEFAULT_PLUGINS)):
        listed = ", ".join(sorted(installed)) or "none"
        warn_once(
            f"{PLUGINS_ENV} names {name!r}, which is not an installed plugin"
            f"{did_you_mean(name, installed)}; installed plugins: {listed} "
            "(etl-manifests plugins lists them)",
            stacklevel=5,
        )


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with default and entry-point plugins loaded once."""
    global _plugin_manager
    with _lock:
        if _plugin_manager is None:
            pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
            pm.add_hookspecs(hookspecs)
            _plugin_errors.clear()
            for name in DEFAULT_PLUGINS:
                pm.register(importlib.import_module(name), name=name)
            _load_entry_points(pm)
            _plugin_manager = pm
        return _plugin_manager


def get_registry() -> BackendRegistry:
    """The process-wide registry, filled by every plugin's ``register_backends`` hook."""
    global _registry
    pm = get_plugin_manager()
    with _lock:
        if _registry is None:
            registry = BackendRegistry()
            for impl in pm.hook.register_backends.get_hookimpls():
                try:
                    impl.function(register=registry.register)
                except ManifestError:
                    raise  # a scheme conflict is the user's to resolve, not to hide
                except Exception as exc:
                    _plugin_errors.append(
                        f"plugin {impl.plugin_name!r} failed to register its backends: "
                        f"{type(exc).__name__}: {exc}"
                    )
            _registry = registry
        return _registry


def reset_plugins() -> None:
    """Forget loaded plugins and registrations; the next use loads them again (for tests)."""
    global _plugin_manager, _registry
    with _lock:
        _plugin_manager = None
        _registry = None


def open_backend(root: str, storage_options: Mapping[str, Any] | None = None) -> StorageBackend:
    """Open the registered backend for ``root``'s URL scheme."""
    return get_registry().open(root, storage_options)
