"""The ``minga`` command line: one module per command group, assembled in :mod:`minga.cli.app`."""

from minga.cli.app import app, main

__all__ = ["app", "main"]
