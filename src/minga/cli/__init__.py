"""The ``minga`` command line: one module per command group, assembled in :mod:`minga.cli._app`.

:func:`main` hands ``minga broker`` straight to :mod:`minga.cli.broker`, which starts without
typer and rich: a restarted broker must accept its clients' reconnections within a fraction of
a second, and those two take longer than that to import.
"""

from __future__ import annotations

import importlib
import sys
import typing

from minga import errors as _errors

if typing.TYPE_CHECKING:
    from minga.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``minga`` console script.

    A :class:`~minga.errors.UsageError` (a user's mistake) is printed as one line and exits with
    status 2; any other :class:`~minga.errors.MingaError` exits with 1.
    """
    if sys.argv[1:2] == ["broker"]:
        from minga.cli import broker  # the lean path: see the module docstring

        try:
            broker.main(sys.argv[2:])
        except _errors.UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        except _errors.MingaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        return
    from minga.cli._app import main as run_app

    run_app()


def __getattr__(name: str) -> typing.Any:
    if name == "app":
        # the command is looked up on first use, so that `minga broker` never imports typer; the module
        # is private (_app), so importing it binds no package attribute that would hide this one
        module = importlib.import_module("minga.cli._app")
        globals()["app"] = module.app
        return module.app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
