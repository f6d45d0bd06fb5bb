"""Hook specifications: how a plugin adds a storage backend or a command.

Quick start for plugin authors::

    # my_package/plugin.py
    from etl_manifests import hookimpl

    @hookimpl
    def register_backends(register):
        register("az", "my_package.backend:AzureBackend", requires="adlfs")

and in the plugin's ``pyproject.toml``::

    [project.entry-points.etl_manifests]
    azure = "my_package.plugin"

Then prove the backend keeps the contract by subclassing
:class:`etl_manifests.testing.BackendConformance` in the plugin's tests.
The built-in backends (local, memory, s3, gcs) are registered through this same hook.

A plugin adds ``etl-manifests`` commands the same way (typer)::

    @hookimpl
    def register_commands(cli):
        @cli.command()
        def hello(name: str) -> None:
            print(f"hello {name}")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import pluggy

from .storage import BackendFactory

if TYPE_CHECKING:
    import typer

__all__ = ["RegisterBackend", "hookimpl", "hookspec", "register_backends", "register_commands"]

#: Marks the hook specifications below.
hookspec = pluggy.HookspecMarker("etl_manifests")
#: Marks a plugin's implementation of a hook: ``@hookimpl def register_backends(register)``.
hookimpl = pluggy.HookimplMarker("etl_manifests")


class RegisterBackend(Protocol):
    """The callback passed to :func:`register_backends`."""

    def __call__(
        self,
        schemes: str | Sequence[str],
        factory: BackendFactory | str,
        *,
        requires: str | None = None,
        extra: str | None = None,
        replace: bool = False,
    ) -> None:
        """Register ``factory`` for the URL ``schemes`` (``"s3"`` or ``("gs", "gcs")``).

        :param factory: a callable ``factory(root, storage_options) -> StorageBackend``,
            or a ``"package.module:Name"`` string imported the first time the scheme is
            used, so that a plugin's heavy dependencies load only when needed.
        :param requires: the import name of the package the factory needs; if importing
            the factory fails for lack of it, the user gets a
            :class:`~etl_manifests.errors.MissingDependencyError` naming it.
        :param extra: the etl-manifests extra that installs ``requires`` (for the hint).
        :param replace: take over schemes another plugin already registered; without it
            a second claim on a scheme is a
            :class:`~etl_manifests.errors.BackendRegistrationError`.
        """


@hookspec
def register_backends(register: RegisterBackend) -> None:
    """Register storage backends by calling ``register`` once per backend.

    :param register: the :class:`RegisterBackend` callback.
    """


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add commands to the ``etl-manifests`` command line (``pip install 'etl-manifests[cli]'``).

    Called once each time the command line starts, after the built-in commands are in
    place. A plugin whose hook raises is skipped with a warning on stderr.

    :param cli: the :class:`typer.Typer` application; add commands with ``@cli.command()``.
    """
