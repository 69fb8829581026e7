"""``minga audit [-f]``, ``minga token`` and ``minga render nats-config``: the refusals recorded,
the token for the dashboard, and the bus permissions the spec implies, as a nats-server config.

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
from minga.security import AuditRecord, Credentials, follow_audit, read_audit, write_private
from minga.spec import home_dir, load_spec

__all__ = ["audit", "render_nats_config", "token"]

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


def password_variable(user: str) -> str:
    """The environment variable a rendered config takes ``user``'s password from: ``MINGA_BUS_PASSWORD_<USER>``."""
    return "MINGA_BUS_PASSWORD_" + "".join(c if c.isalnum() else "_" for c in user.upper())


def render_nats_config(
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the configuration")] = Path("nats.conf"),
    listen: Annotated[str, typer.Option(help="HOST:PORT the server listens on")] = "127.0.0.1:4222",
    store: Annotated[str | None, typer.Option(help="JetStream's store_dir (JetStream off without it)")] = None,
    file: SpecFile = DEFAULT_FILE,
) -> None:
    """Write a nats-server configuration (also read by ``minga broker -c``) with one user per replica.

    Each replica (``orders-1``...) may subscribe only to its own service's RPC subjects, its events
    and its queues, and may not administer JetStream; the user ``minga`` (the control plane) may do
    everything. Passwords are not in the file: each is ``$MINGA_BUS_PASSWORD_<USER>``, read from
    the server's environment.
    """
    # imported here: the service SDK (and the services' code) only for this command
    import sys

    from minga.broker import Permissions, render_conf
    from minga.service import bus_permissions, load_service

    spec = load_spec(file)
    base = file.resolve().parent
    users: list[tuple[str, str, Permissions | None]] = [("minga", "$" + password_variable("minga"), None)]
    for name, svc in spec.services.items():
        if svc.module is None:
            console.print(f"note: {name} runs a command, not a minga Service: its replicas get no bus user")
            continue
        path = str(base / svc.workdir) if svc.workdir else str(base)
        if path not in sys.path:
            sys.path.insert(0, path)
        permissions = bus_permissions(name, load_service(svc.module))
        for i in range(1, svc.replicas + 1):
            user = f"{name}-{i}"
            users.append((user, "$" + password_variable(user), permissions))
    write_private(output, render_conf(listen=listen, users=users, store_dir=store))
    console.print(f"wrote {output}: {len(users)} users, passwords from $MINGA_BUS_PASSWORD_<USER>")
