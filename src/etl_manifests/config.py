"""``ETLConfig``: settings from code, the environment (prefix ``ETL_MANIFESTS_``) or a ``.env``.

Each setting comes from the first of these that has it:

1. an argument in code: ``ETLConfig(version="2.0.0")``;
2. the environment variable ``ETL_MANIFESTS_<NAME>`` (the name in any case);
3. a line ``ETL_MANIFESTS_<NAME>=...`` in the file ``.env`` in the working directory, read
   (if it exists) each time an ``ETLConfig`` is created, including the one a
   ``ManifestManager`` creates for its defaults;
4. the default.

:func:`setting_sources` says which of them each value came from.

=================================  =========================================================
variable                           meaning
=================================  =========================================================
``ETL_MANIFESTS_VERSION``          the ETL version (part of each manifest's file name)
``ETL_MANIFESTS_MANIFESTS_DIR``    manifests root: a path, ``file://``, ``local://``,
                                   ``s3://bucket/prefix``, ``gs://bucket/prefix``,
                                   ``memory://name``, or any scheme a plugin adds
``ETL_MANIFESTS_STORAGE_OPTIONS``  JSON object passed to the backend (fsspec-style options:
                                   ``endpoint_url``, ``key``/``secret``, ``token``, ...)
``ETL_MANIFESTS_PROCESSES``        comma-separated process names the pipeline declares
                                   besides ``extractor``, ``transformer`` and ``loader``
``ETL_MANIFESTS_CHECKPOINT``       JSON object of :class:`CheckpointPolicy` fields, e.g.
                                   ``{"every": 1, "size_ratio": 0, "inline": true}``
=================================  =========================================================

A value that cannot be used raises :class:`~etl_manifests.errors.ConfigurationError`
(:class:`~etl_manifests.errors.BackendConfigurationError` for the storage options) naming
the variable and where it was found, never quoting the value, which may hold credentials
(only a process name that breaks the naming rule is quoted, to say which one).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from ._redact import redact_url
from ._warn import did_you_mean, warn_once
from .errors import BackendConfigurationError, ConfigurationError
from .policy import CheckpointPolicy
from .process import validate_process_name
from .registry import normalise_root, unencodable_option, unencodable_option_error

__all__ = ["KNOWN_VARIABLES", "ETLConfig", "setting_sources"]

ENV_PREFIX = "ETL_MANIFESTS_"
_PREFIX = ENV_PREFIX
# pydantic-settings names the field only in its message.
_SETTINGS_FIELD = re.compile(r'field "([^"]+)"(?: from source "([^"]+)")?')
_SOURCES = {"EnvSettingsSource": "the environment", "DotEnvSettingsSource": "the .env file"}
_EXPECTED = {
    "storage_options": 'a JSON object such as {"endpoint_url": "https://...", "key": "..."}',
    "version": "a version string such as 1.0.0",
    "manifests_dir": "a path or a URL such as s3://bucket/prefix",
    "checkpoint": 'a JSON object of CheckpointPolicy fields such as {"every": 100}',
    "processes": "comma-separated process names such as noaa_download,noaa_parse",
}


class ETLConfig(BaseSettings):
    """Where manifests live, which ETL version writes them and which processes exist.

    ``storage_options`` may hold credentials, so it is left out of ``repr`` and ``str``;
    so are the user information and credential-like query parameters of
    ``manifests_dir`` (``s3://KEY:SECRET@bucket/m`` is shown as ``s3://***@bucket/m``).
    """

    model_config = SettingsConfigDict(
        env_prefix=_PREFIX,
        env_file=".env",
        extra="ignore",
        # Settings may hold credentials: never echo a value back in an error.
        hide_input_in_errors=True,
    )

    version: str = "1.0.0"
    """The ETL version; manifests are named ``{process}_v{version}.json``."""
    manifests_dir: str = "manifests"
    """Root of the manifests: a local path (relative to the working directory) or a URL."""
    storage_options: dict[str, Any] = Field(default_factory=dict, repr=False)
    """Options for the storage backend, passed through to s3fs / gcsfs / plugins."""
    checkpoint: CheckpointPolicy = Field(default_factory=CheckpointPolicy)
    """When the commit log is folded into the snapshot, and how long folded entries stay."""
    processes: Annotated[tuple[str, ...], NoDecode] = ()
    """Process names declared besides the :class:`~etl_manifests.ETLProcess` members; in
    the environment a comma-separated list (``noaa_download,noaa_parse``)."""

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        """Read the settings; keyword arguments override the environment.

        :raises ConfigurationError: a setting is invalid (the message names it, not its
            value); :class:`BackendConfigurationError` when it is the storage options,
            for example ``ETL_MANIFESTS_STORAGE_OPTIONS`` that is not a JSON object, or
            one whose text is not valid Unicode (a lone surrogate; the message names the
            option).
        """
        _warn_unknown_variables(values)
        failure: ConfigurationError | None
        try:
            super().__init__(**values)
        except ValidationError as exc:
            failure = _invalid_setting(exc)
        except SettingsError as exc:
            failure = _unparsable_setting(exc, _env_files(values))
        else:
            self._sources = _find_sources(values)
            failure = self._unencodable_storage_option(values)
            if failure is None:
                return
        # Raised outside the handler, so neither pydantic's error nor the JSON decoder's
        # (which keeps the whole input) is attached as the context.
        raise failure

    def _unencodable_storage_option(self, values: Mapping[str, Any]) -> ConfigurationError | None:
        """The error for storage options holding invalid text, naming the option and where."""
        # pydantic-settings merges an argument with the environment's object, so the
        # option may have come from either; the argument is looked at first.
        given = values.get("storage_options")
        if isinstance(given, Mapping) and (name := unencodable_option(given)) is not None:
            return unencodable_option_error(name, " (in the storage_options argument)")
        name = unencodable_option(self.storage_options)
        if name is None:
            return None
        return unencodable_option_error(
            name, f" (in {_env_name('storage_options')}, from {_env_source()})"
        )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr() and str() name the root without the credentials a URL may carry
        # (s3://KEY:SECRET@bucket, ?token=...); storage_options are never shown.
        for name, value in super().__repr_args__():
            if name == "manifests_dir" and isinstance(value, str):
                value = redact_url(value)
            yield name, value

    @field_validator("processes", mode="before")
    @classmethod
    def _split_processes(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("processes")
    @classmethod
    def _check_processes(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(validate_process_name(name) for name in names))

    def get_manifests_dir(self) -> str:
        """The manifests root: a URL without trailing slashes, or a local path made absolute.

        :raises BackendConfigurationError: the root is empty, only a scheme (``s3://``
            from ``s3://${BUCKET}`` with ``BUCKET`` unset), or a URL without ``//``; such
            roots are never taken for a local folder.
        """
        return normalise_root(self.manifests_dir)


def _error_class(field: str) -> type[ConfigurationError]:
    return BackendConfigurationError if field == "storage_options" else ConfigurationError


# Settings whose messages may quote what was wrong: names, never credentials.
_QUOTED = frozenset({"processes"})


def _invalid_setting(exc: ValidationError) -> ConfigurationError:
    problems = []
    fields = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        top = str(error["loc"][0]) if error["loc"] else field
        fields.append(top)
        expected = _EXPECTED.get(top)
        problems.append(
            f"{field} ({_PREFIX}{top.upper()}): {_problem(error)}"
            + (f"; it must be {expected}" if expected else "")
        )
    hidden = (
        ""
        if _QUOTED.issuperset(fields)
        else " The value is not shown because it may hold credentials."
    )
    return _error_class("storage_options" if "storage_options" in fields else "")(
        "invalid etl-manifests setting: " + "; ".join(problems) + "." + hidden
    )


def _problem(error: Any) -> str:
    """What is wrong, in words: our own validators' message without pydantic's
    ``Value error,`` prefix."""
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    return str(error["msg"])


def _unparsable_setting(exc: SettingsError, env_files: list[Path]) -> ConfigurationError:
    match = _SETTINGS_FIELD.search(str(exc))
    field = match.group(1) if match else "settings"
    source_name = (match.group(2) or "") if match else ""
    if source_name.startswith("DotEnv"):
        source = f"the .env file {' or '.join(map(str, env_files))}"
    else:
        source = _SOURCES.get(source_name, "the settings")
    cause = exc.__cause__
    where = (
        f" ({cause.msg} at line {cause.lineno} column {cause.colno})"
        if isinstance(cause, json.JSONDecodeError)
        else ""
    )
    expected = _EXPECTED.get(field, "valid JSON")
    return _error_class(field)(
        f"{_PREFIX}{field.upper()} from {source} is not valid JSON{where}; set it to "
        f"{expected}. The value is not shown because it may hold credentials."
    )


def setting_sources(config: ETLConfig) -> dict[str, str]:
    """Where each of ``config``'s settings came from, by field name, for debug output.

    Each value is one of ``"argument"`` (passed in code), ``"environment variable
    ETL_MANIFESTS_<NAME>"``, ``"ETL_MANIFESTS_<NAME> in <absolute path of the .env
    file>"`` or ``"default"``, as found when ``config`` was created. Values themselves
    are not included (storage options may hold credentials).
    """
    return dict(config._sources)


def _env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _env_source() -> str:
    """Whence ``ETL_MANIFESTS_STORAGE_OPTIONS`` came, for a message (never its value)."""
    name = _env_name("storage_options")
    if name.lower() in {key.lower() for key in os.environ}:
        return "the environment"
    return "a .env file"


def _env_files(values: Mapping[str, Any]) -> list[Path]:
    """The ``.env`` files pydantic-settings reads for these constructor arguments."""
    files = values.get("_env_file", ETLConfig.model_config.get("env_file"))
    if files is None:
        return []
    if isinstance(files, str | os.PathLike):
        files = [files]
    return [Path(f).expanduser().absolute() for f in files]


def _warn_unknown_variables(values: Mapping[str, Any]) -> None:
    """A :class:`SettingWarning` for each ``ETL_MANIFESTS_*`` name in the environment or
    the ``.env`` files that nothing reads: a misspelt name is otherwise silently ignored."""
    found = {name.upper(): "the environment" for name in os.environ}
    for path in _env_files(values):
        if path.is_file():
            found.update(
                {k.upper(): str(path) for k in dotenv_values(path) if k.upper() not in found}
            )
    for name, where in sorted(found.items()):
        if name.startswith(ENV_PREFIX) and name not in KNOWN_VARIABLES:
            warn_once(
                f"{name} (in {where}) is not a setting of etl-manifests and has no effect"
                f"{did_you_mean(name, KNOWN_VARIABLES)}; the settings are "
                f"{', '.join(sorted(KNOWN_VARIABLES))}",
                stacklevel=4,
            )


def _find_sources(values: Mapping[str, Any]) -> dict[str, str]:
    # The same precedence as pydantic-settings: arguments, then the environment, then the
    # .env files (a later file wins), then defaults. Names match in any case, as there.
    environment = {name.lower() for name in os.environ}
    dotenv: dict[str, Path] = {}
    for path in _env_files(values):
        if path.is_file():
            dotenv.update(dict.fromkeys((k.lower() for k in dotenv_values(path)), path))
    sources = {}
    for field in ETLConfig.model_fields:
        env_name = _env_name(field)
        if field in values:
            sources[field] = "argument"
        elif env_name.lower() in environment:
            sources[field] = f"environment variable {env_name}"
        elif env_name.lower() in dotenv:
            sources[field] = f"{env_name} in {dotenv[env_name.lower()]}"
        else:
            sources[field] = "default"
    return sources


#: Every ``ETL_MANIFESTS_*`` variable something reads: :class:`ETLConfig`'s fields, the
#: command line's ``ETL_MANIFESTS_DEBUG`` and the registry's ``ETL_MANIFESTS_PLUGINS``.
KNOWN_VARIABLES: frozenset[str] = frozenset(
    {_env_name(field) for field in ETLConfig.model_fields}
    | {"ETL_MANIFESTS_DEBUG", "ETL_MANIFESTS_PLUGINS"}
)
