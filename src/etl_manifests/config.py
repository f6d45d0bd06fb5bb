"""``ETLConfig``: settings from the environment (prefix ``ETL_MANIFESTS_``) or a ``.env``.

=================================  =========================================================
variable                           meaning
=================================  =========================================================
``ETL_MANIFESTS_VERSION``          the ETL version (part of each manifest's file name)
``ETL_MANIFESTS_MANIFESTS_DIR``    manifests root: a path, ``file://``, ``s3://bucket/prefix``,
                                   ``gs://bucket/prefix``, or any scheme a plugin adds
``ETL_MANIFESTS_STORAGE_OPTIONS``  JSON object passed to the backend (fsspec-style options:
                                   ``endpoint_url``, ``key``/``secret``, ``token``, ...)
``ETL_MANIFESTS_CHECKPOINT``       JSON object of :class:`CheckpointPolicy` fields, e.g.
                                   ``{"every": 1, "size_ratio": 0, "inline": true}``
=================================  =========================================================

A value that cannot be used raises :class:`~etl_manifests.errors.ConfigurationError`
(:class:`~etl_manifests.errors.BackendConfigurationError` for the storage options) naming
the variable and what is wrong, never quoting the value, which may hold credentials.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from .errors import BackendConfigurationError, ConfigurationError
from .policy import CheckpointPolicy
from .registry import normalise_root

__all__ = ["ETLConfig"]

_PREFIX = "ETL_MANIFESTS_"
# pydantic-settings names the field only in its message.
_SETTINGS_FIELD = re.compile(r'field "([^"]+)"(?: from source "([^"]+)")?')
_SOURCES = {"EnvSettingsSource": "the environment", "DotEnvSettingsSource": "the .env file"}
_EXPECTED = {
    "storage_options": 'a JSON object such as {"endpoint_url": "https://...", "key": "..."}',
    "version": "a version string such as 1.0.0",
    "manifests_dir": "a path or a URL such as s3://bucket/prefix",
    "checkpoint": 'a JSON object of CheckpointPolicy fields such as {"every": 100}',
}


class ETLConfig(BaseSettings):
    """Where manifests live and which ETL version writes them.

    ``storage_options`` may hold credentials, so it is left out of ``repr``.
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

    def __init__(self, **values: Any) -> None:
        """Read the settings; keyword arguments override the environment.

        :raises ConfigurationError: a setting is invalid (the message names it, not its
            value); :class:`BackendConfigurationError` when it is the storage options,
            for example ``ETL_MANIFESTS_STORAGE_OPTIONS`` that is not a JSON object.
        """
        try:
            super().__init__(**values)
        except ValidationError as exc:
            failure = _invalid_setting(exc)
        except SettingsError as exc:
            failure = _unparsable_setting(exc)
        else:
            return
        # Raised outside the handler, so neither pydantic's error nor the JSON decoder's
        # (which keeps the whole input) is attached as the context.
        raise failure

    def get_manifests_dir(self) -> str:
        """The manifests root: a URL without trailing slashes, or a local path made absolute.

        :raises BackendConfigurationError: the root is empty, only a scheme (``s3://``
            from ``s3://${BUCKET}`` with ``BUCKET`` unset), or a URL without ``//``; such
            roots are never taken for a local folder.
        """
        return normalise_root(self.manifests_dir)


def _error_class(field: str) -> type[ConfigurationError]:
    return BackendConfigurationError if field == "storage_options" else ConfigurationError


def _invalid_setting(exc: ValidationError) -> ConfigurationError:
    problems = []
    fields = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        top = str(error["loc"][0]) if error["loc"] else field
        fields.append(top)
        expected = _EXPECTED.get(top)
        problems.append(
            f"{field} ({_PREFIX}{top.upper()}): {error['msg']}"
            + (f"; it must be {expected}" if expected else "")
        )
    return _error_class("storage_options" if "storage_options" in fields else "")(
        "invalid etl-manifests setting: "
        + "; ".join(problems)
        + ". The value is not shown because it may hold credentials."
    )


def _unparsable_setting(exc: SettingsError) -> ConfigurationError:
    match = _SETTINGS_FIELD.search(str(exc))
    field = match.group(1) if match else "settings"
    source = _SOURCES.get(match.group(2) or "", "the settings") if match else "the settings"
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
