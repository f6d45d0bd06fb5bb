"""The ``etl-manifests`` command line (``pip install 'etl-manifests[cli]'``).

Run it as ``etl-manifests`` or ``python -m etl_manifests``. One module per command group
(:mod:`.inspect`, :mod:`.transfer`, :mod:`.verify`, :mod:`.maintenance`); :mod:`.app`
assembles them and adds the commands of plugins (the ``register_commands`` hook).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_CLI_PACKAGES = {"typer", "rich", "click"}


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and exit.

    Ctrl-C at any point after the package is imported ends it with one line and exit
    code 130, never a traceback.
    """
    try:
        sys.exit(_main(argv))
    except KeyboardInterrupt:
        sys.stderr.write("etl-manifests: error: interrupted\n")
        sys.exit(130)


def _main(argv: Sequence[str] | None) -> int:
    try:
        from .app import run
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _CLI_PACKAGES:
            raise
        sys.stderr.write(
            f"etl-manifests: error: the command line needs the {exc.name!r} package, which "
            "is not installed; install it with: pip install 'etl-manifests[cli]'\n"
        )
        return 2
    return run(argv)
