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
=================================  =========================================================
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from .errors import ConfigurationError
from .process import validate_process_name

__all__ = ["ETLConfig", "setting_sources"]

ENV_PREFIX = "ETL_MANIFESTS_"


class ETLConfig(BaseSettings):
    """Where manifests live, which ETL version writes them and which processes exist.

    ``storage_options`` may hold credentials, so it is left out of ``repr``.

    :raises ConfigurationError: a JSON setting (``ETL_MANIFESTS_STORAGE_OPTIONS``) in the
        environment or the ``.env`` file is not valid JSON; the message names the variable
        and where it was found, never its value.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    version: str = "1.0.0"
    """The ETL version; manifests are named ``{process}_v{version}.json``."""
    manifests_dir: str = "manifests"
    """Root of the manifests: a local path (relative to the working directory) or a URL."""
    storage_options: dict[str, Any] = Field(default_factory=dict, repr=False)
    """Options for the storage backend, passed through to s3fs / gcsfs / plugins."""
    processes: Annotated[tuple[str, ...], NoDecode] = ()
    """Process names declared besides the :class:`~etl_manifests.ETLProcess` members; in
    the environment a comma-separated list (``noaa_download,noaa_parse``)."""

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    if not TYPE_CHECKING:
        # Defined only at run time, so that type checkers keep the typed signature that
        # pydantic derives from the fields.
        def __init__(self, **values: Any) -> None:
            try:
                super().__init__(**values)
            except SettingsError as exc:
                raise _configuration_error(exc, _env_files(values)) from None
            self._sources = _find_sources(values)

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
        """The manifests root: a URL as given, or a local path made absolute."""
        root = self.manifests_dir
        if "://" in root:
            return root
        return os.path.abspath(os.path.expanduser(root))


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


def _env_files(values: Mapping[str, Any]) -> list[Path]:
    """The ``.env`` files pydantic-settings reads for these constructor arguments."""
    files = values.get("_env_file", ETLConfig.model_config.get("env_file"))
    if files is None:
        return []
    if isinstance(files, str | os.PathLike):
        files = [files]
    return [Path(f).expanduser().absolute() for f in files]


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


_SETTINGS_ERROR = re.compile(r'field "(?P<field>\w+)" from source "(?P<source>\w+)"')


def _configuration_error(exc: SettingsError, env_files: list[Path]) -> ConfigurationError:
    """Our error for pydantic-settings' failure to decode a JSON setting.

    The value is never quoted: storage options hold credentials. Only the decoder's
    position is, which says where to look without showing what is there.
    """
    match = _SETTINGS_ERROR.search(str(exc))
    if match is None:
        return ConfigurationError(
            f"the etl-manifests settings cannot be read ({exc}); check the "
            f"{ENV_PREFIX}* environment variables and the .env file"
        )
    env_name = _env_name(match["field"])
    if match["source"].startswith("DotEnv"):
        where = f"{env_name} in the .env file {' or '.join(map(str, env_files))}"
    else:
        where = f"the environment variable {env_name}"
    cause = exc.__cause__
    position = ""
    if isinstance(cause, json.JSONDecodeError):
        position = f" ({cause.msg} at character {cause.pos})"
    return ConfigurationError(
        f"{where} is not valid JSON{position}; set it to a JSON object such as "
        '{"endpoint_url": "https://storage.example.com"}, or unset it. '
        "(Its value is not shown: it may hold credentials.)"
    )
