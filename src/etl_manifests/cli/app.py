"""The ``etl-manifests`` application: built-in command groups, plugins' commands, and the
conventions every command shares.

* Results go to stdout; ``--json`` output there is plain JSON. Messages and progress go to
  stderr, progress only when stderr is a terminal.
* An error is one line on stderr naming the problem and what to do, with no traceback
  unless ``--debug`` (or ``ETL_MANIFESTS_DEBUG=1``) is given; under ``--json``, one JSON
  object ``{"error": {"kind", "message", "exit_code"}}`` (see :func:`error_kind`).
* Exit codes: 0 success; 1 the work failed (``verify`` found missing or changed files,
  a download failed, the store failed); 2 a usage error (bad option or argument,
  unusable root, ETL version or process, an invalid ``ETL_MANIFESTS_*`` setting, a
  missing optional package); 3 nothing found: the manifest named does not exist under
  the root at that ETL version (``show``, ``stats``, ``verify``, ...), selectors matched
  no record, or ``ls`` found no manifest; 130 interrupted.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from .. import __version__
from .. import errors as errors_module
from ..errors import (
    BackendRegistrationError,
    ConfigurationError,
    InvalidNameError,
    ManifestError,
    MissingDependencyError,
    NothingFoundError,
    SettingWarning,
    UnknownProcessError,
    UnknownSchemeError,
)
from ..registry import get_plugin_manager
from .output import visible

__all__ = ["BUILTIN_COMMANDS", "build_app", "error_kind", "run"]

PROG = "etl-manifests"
#: The exit code when there was nothing to act on (see the module's docstring).
NOTHING_FOUND = 3

#: Modules under :mod:`etl_manifests.cli` whose ``register(app)`` adds built-in commands.
BUILTIN_COMMANDS: tuple[str, ...] = (
    "inspect",
    "transfer",
    "verify",
    "maintenance",
    "log",
    "check_store",
    "roots",
    "repair",
)

# Errors that mean "the command was asked for something it cannot do as asked".
_USAGE_ERRORS = (
    InvalidNameError,
    UnknownProcessError,
    UnknownSchemeError,
    ConfigurationError,  # settings, and roots or storage options a backend cannot use
    BackendRegistrationError,
    MissingDependencyError,
)


def _click_class(name: str) -> type[Exception]:
    # typer vendors click in recent releases and re-exports only BadParameter; its bases
    # are the usage-error classes of whichever click typer runs on.
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


_UsageError = _click_class("UsageError")
_ClickException = _click_class("ClickException")


class _State:
    debug = False
    json = False  # --json given: errors are JSON objects on stderr too


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _fail(message: str, code: int, kind: str = "usage") -> int:
    if _State.json:
        # One JSON object on one line, so that automation reads it as it reads stdout.
        error = {"kind": kind, "message": _one_line(message), "exit_code": code}
        sys.stderr.write(json.dumps({"error": error}, ensure_ascii=False) + "\n")
        return code
    # Messages quote paths and names as given, which may hold terminal escapes.
    sys.stderr.write(f"{PROG}: error: {visible(_one_line(message))}\n")
    return code


def error_kind(exc: BaseException) -> str:
    """The ``kind`` of an error under ``--json``: the snake-case name of the nearest class
    of :mod:`etl_manifests.errors` it is (``NotFoundError`` -> ``not_found``,
    ``NothingFoundError`` -> ``nothing_found``), ``unexpected`` for any other error.
    The kinds follow the public error classes, so they are only ever added to."""
    for cls in type(exc).__mro__:
        if cls.__module__ == errors_module.__name__ and issubclass(cls, ManifestError):
            name = cls.__name__.removesuffix("Error") or "Manifest"
            return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return "unexpected"


def _wants_json(args: Sequence[str] | None) -> bool:
    argv = list(sys.argv[1:] if args is None else args)
    return "--json" in (argv[: argv.index("--")] if "--" in argv else argv)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    # A setting that has no effect is the user's to see as one line, like an error; other
    # warnings (from libraries) keep Python's form, which says where they came from.
    if issubclass(category, SettingWarning):
        sys.stderr.write(f"{PROG}: warning: {visible(_one_line(str(message)))}\n")
        return
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        yield


# Metavars for options whose name alone would not say what they take.
_METAVARS = {"etl_version": "VERSION", "workers": "N", "per_host": "N", "process": "NAME"}


class _Argument(TyperArgument):
    """An argument shown as ``PATH...`` (``[PATH]...`` when optional), without typer's
    Python type name or its braces around required ones."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return f"{name}..." if self.nargs != 1 else name

    def _rich_display_name(self) -> str:
        return f"{self.display_name_raw}..." if self.nargs != 1 else self.display_name_raw


class _Command(TyperCommand):
    """A command whose ``--help`` is shown as the flag it is, with no type."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


def _tidy_help(command: Any) -> None:
    """Help that names what a value is (``--root ROOT``, ``PATH...``), not its Python type
    (``<str>``, ``<list[str]>``); flags show no type; choices stay listed."""
    for param in getattr(command, "params", ()):
        if isinstance(param, TyperArgument) and param.name:
            if param.metavar is None:
                name = param.name.upper()
                param.metavar = name.removesuffix("S") if param.nargs != 1 else name
            param.__class__ = _Argument
        elif isinstance(param, TyperOption) and param.name and param.metavar is None:
            if param.is_flag:
                param.metavar = ""
            elif not param.type_descriptor.is_choice:
                param.metavar = _METAVARS.get(param.name, param.name.upper())
    if type(command) is TyperCommand:
        command.__class__ = _Command
    for sub in getattr(command, "commands", {}).values():
        _tidy_help(sub)


class _Group(TyperGroup):
    """Runs the command, turning every failure into one line and an exit code."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _tidy_help(self)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _State.debug = os.environ.get("ETL_MANIFESTS_DEBUG", "") not in ("", "0")
        _tidy_help(self)  # again: typer adds the completion options after construction
        with _warnings_as_lines():
            code = self._run(args, prog_name, complete_var, **extra)
        if standalone_mode:
            sys.stdout.flush()
            sys.exit(code)
        return code

    def _run(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        **extra: Any,
    ) -> int:
        _State.json = _wants_json(args)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            return result if isinstance(result, int) else 0
        except _UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                # No command: the help is the answer (typer has printed it already when it
                # renders help with rich); exit 2 as for any usage without a command.
                sys.stdout.write(exc.format_message())  # type: ignore[attr-defined]
                return 2
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else PROG
            message = exc.format_message().rstrip(".")  # type: ignore[attr-defined]
            # typer validates some values with pydantic, whose messages carry its prefix.
            message = message.replace("Value error, ", "")
            sep = " Run" if message.endswith("?") else "; run"
            return _fail(f"{message}{sep} '{where} --help' for usage", 2)
        except (typer.Abort, KeyboardInterrupt):
            return _fail("interrupted", 130, "interrupted")
        except _ClickException as exc:
            code: int = exc.exit_code  # type: ignore[attr-defined]
            return _fail(exc.format_message(), code, "command_line")  # type: ignore[attr-defined]
        except BrokenPipeError:
            return 1  # the reader went away (`| head`); nothing to say to it
        except _USAGE_ERRORS as exc:
            return self._error(exc, 2)
        except NothingFoundError as exc:
            return self._error(exc, NOTHING_FOUND)
        except ManifestError as exc:
            return self._error(exc, 1)
        except Exception as exc:
            return self._error(
                exc, 1, f"{type(exc).__name__}: {exc}; run again with --debug for the details"
            )

    @staticmethod
    def _error(exc: BaseException, code: int, message: str | None = None) -> int:
        if _State.debug:
            traceback.print_exception(exc, file=sys.stderr)
        return _fail(message or str(exc), code, error_kind(exc))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit()


def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of errors (or ETL_MANIFESTS_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Keep track of the files an ETL job downloaded: fetch, show, verify.

    Where the manifests are: --root, else $ETL_MANIFESTS_MANIFESTS_DIR, else ./manifests;
    which ETL version: --etl-version, else $ETL_MANIFESTS_VERSION, else 1.0.0.

    Example: `etl-manifests fetch https://example.org/day_1.csv --dest downloads`
    """
    _State.debug = _State.debug or debug


def build_app() -> typer.Typer:
    """A new application with the built-in commands and every plugin's commands."""
    app = typer.Typer(
        name=PROG,
        cls=_Group,
        add_completion=True,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    for name in BUILTIN_COMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(app)
    _add_plugin_commands(app)
    return app


def _add_plugin_commands(app: typer.Typer) -> None:
    for impl in get_plugin_manager().hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=app)
        except Exception as exc:
            # One broken plugin must not take the command line down with it.
            sys.stderr.write(
                f"{PROG}: warning: plugin {impl.plugin_name!r} failed to add its commands: "
                f"{type(exc).__name__}: {exc}; update or uninstall it\n"
            )


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    with _warnings_as_lines():  # loading the plugins may warn about ETL_MANIFESTS_PLUGINS
        command = typer.main.get_command(build_app())
    code: int = command.main(args=argv, prog_name=PROG, standalone_mode=False)
    return code
