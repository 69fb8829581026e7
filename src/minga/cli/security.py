"""``minga audit [-f]`` and ``minga token``: the refusals recorded, and the token for the dashboard.

Both read minga's home (``.minga/`` beside the spec unless MINGA_HOME is set), as ``minga logs``
does: the files there are the owner's alone (0600 in a 0700 directory).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from minga.errors import UsageError
from minga.security import AuditRecord, Credentials, follow_audit, read_audit
from minga.spec import home_dir

__all__ = ["audit", "token"]

SpecFile = Annotated[Path, typer.Option("--file", help="the system spec")]
DEFAULT_FILE = Path("minga.yaml")

console = Console(highlight=False, soft_wrap=True)


def _print(record: AuditRecord, as_json: bool) -> None:
    if as_json:
        typer.echo(record.to_json())
        return
    console.print(
        f"{record.at}  [red]{escape(record.area)}[/]  {escape(record.who)}@{escape(record.source)}  "
        f"{escape(record.what)}: {escape(record.why)}"
    )


def audit(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new records")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON record per line")] = False,
    limit: Annotated[int, typer.Option(help="how many of the latest records to print")] = 100,
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Print the refusals recorded: who was refused, from where, what they tried, why and when."""
    home = home_dir(file)
    records = read_audit(home)
    if not records and not follow:
        console.print(f"no refusal recorded under {home}")
        return
    for record in records[-limit:] if limit > 0 else records:
        _print(record, as_json)
    if not follow:
        return

    async def tail() -> None:
        async for record in follow_audit(home):
            _print(record, as_json)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail())


def token(
    read_only: Annotated[
        bool, typer.Option("--read-only", help="the read-only token instead of the admin one")
    ] = False,
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Print the token that logs in to the dashboard (asked for once, then kept in a cookie)."""
    home = home_dir(file)
    path = Credentials.file(home)
    if not path.exists():
        raise UsageError(f"no credentials under {home}: `minga up` creates them")
    creds = Credentials.load(path)
    typer.echo(creds.read if read_only else creds.admin)
