"""``minga secret set|list|rm|rotate``: the secrets replicas get in their environment.

Kept encrypted in minga's home (``.minga/`` beside the spec unless MINGA_HOME is set); a value
is read from stdin (hidden when typed) or a file, never from the command line, where ``ps`` and
the shell's history would keep it. No command prints a value.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from minga.errors import UsageError
from minga.security import SecretStore
from minga.spec import home_dir

__all__ = ["secret_list", "secret_rm", "secret_rotate", "secret_set"]

SpecFile = Annotated[Path, typer.Option("--file", "-f", help="the system spec (its home keeps the secrets)")]
DEFAULT_FILE = Path("minga.yaml")
Name = Annotated[str, typer.Argument(help="the secret's name, as minga.yaml's `{secret: NAME}` names it")]


def _value(from_file: Path | None) -> bytes:
    if from_file is not None:
        try:
            return from_file.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {from_file}: {exc.strerror}") from None
    if sys.stdin.isatty():
        return getpass.getpass("value (not shown): ").encode()
    data = sys.stdin.buffer.read()
    return data[:-1] if data.endswith(b"\n") else data  # `echo x |` adds a newline nobody meant


def secret_set(
    name: Name,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="read the value from this file instead of stdin")
    ] = None,
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Store a secret (the value from stdin, or --from-file), encrypted in minga's home."""
    value = _value(from_file)
    if not value:
        raise UsageError(f"the value of {name} is empty: pipe it on stdin or give --from-file")
    SecretStore(home_dir(file)).set(name, value)
    typer.echo(f"secret {name} set ({len(value)} bytes); replicas started from now on get it")


def secret_list(file: SpecFile = DEFAULT_FILE) -> None:
    """List the secrets kept: names, sizes and when each was set, never the values."""
    infos = SecretStore(home_dir(file)).infos()
    if not infos:
        typer.echo("no secret kept: `minga secret set NAME` stores one")
    for info in infos:
        typer.echo(f"{info.name}\t{info.size} bytes\t{info.updated}")


def secret_rm(name: Name, file: SpecFile = DEFAULT_FILE) -> None:
    """Forget a secret."""
    SecretStore(home_dir(file)).remove(name)
    typer.echo(f"secret {name} removed")


def secret_rotate(file: SpecFile = DEFAULT_FILE) -> None:
    """Re-encrypt every secret under a new key (the values stay the same)."""
    count = SecretStore(home_dir(file)).rotate()
    typer.echo(f"{count} secret(s) re-encrypted under a new key")
