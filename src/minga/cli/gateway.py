"""``minga gateway serve`` and ``minga gateway render haproxy``: the gateway outside the control plane.

Both read the routes from minga.yaml's ``gateway:`` section and the instances from the
registry: ``--discovery URL`` (a control plane, or its ``/v1/discovery``), else the control
plane that ``minga up`` runs for this spec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from minga.controlplane import read_state
from minga.discovery import DiscoveryClient, HttpStore
from minga.errors import UsageError
from minga.gateway import (
    DiscoverySource,
    Gateway,
    Haproxy,
    follow_registry,
    new_event_loop,
    render_haproxy,
    write_atomically,
)
from minga.security import AuditLog, read_token
from minga.spec import GatewaySpec, home_dir, load_spec

SpecFile = Annotated[Path, typer.Option("--file", "-f", help="the spec whose gateway: section to use")]
Discovery = Annotated[
    str | None, typer.Option("--discovery", help="the registry's URL (default: the running control plane's)")
]
Listen = Annotated[
    str | None, typer.Option("--listen", help="host:port (or a port) to listen on (default: the spec's)")
]


def _gateway_spec(file: Path) -> GatewaySpec:
    spec = load_spec(file)
    if spec.gateway is None or not spec.gateway.routes:
        raise UsageError(f"{file} has no `gateway:` section with routes: add `gateway: {{routes: [...]}}`")
    return spec.gateway


def _discovery_url(file: Path, discovery: str | None) -> str:
    if discovery:
        return discovery
    state = read_state(home_dir(file))
    assert state is not None  # read_state raises when no server runs
    return state.url


def _store(file: Path, url: str) -> HttpStore:
    """The registry at ``url``, reached with the token kept in the home of ``file``'s system."""
    return HttpStore(url, token=read_token(home_dir(file)))


def _listen(spec: GatewaySpec, listen: str | None) -> tuple[str, int]:
    if listen is None:
        return spec.host, spec.port
    host, sep, port = listen.rpartition(":")
    if not port.isdigit():
        raise UsageError(f"--listen takes host:port or a port, not {listen!r}")
    return (host.strip("[]") or spec.host) if sep else spec.host, int(port)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def serve(
    file: SpecFile = Path("minga.yaml"),
    discovery: Discovery = None,
    listen: Listen = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="print one JSON line per request on stderr")
    ] = False,
) -> None:
    """Run the minga gateway in this process, routing to the registry's healthy instances (Ctrl-C stops it)."""
    if access_log:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("minga.gateway.access")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    gateway_spec = _gateway_spec(file)
    host, port = _listen(gateway_spec, listen)
    gateway_spec = gateway_spec.model_copy(update={"host": host, "port": port})
    url = _discovery_url(file, discovery)

    async def main() -> None:
        async with (
            DiscoveryClient(_store(file, url)) as client,
            Gateway(
                gateway_spec,
                DiscoverySource(client.cache),
                audit=AuditLog.in_home(home_dir(file)),
                base=file.resolve().parent,
            ) as gw,
        ):
            typer.echo(f"gateway: {gw.url}", err=True)
            await _until_signalled()

    # the gateway's own process: on uvloop when installed (its I/O path is far cheaper per request)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())


def haproxy(
    file: SpecFile = Path("minga.yaml"),
    discovery: Discovery = None,
    listen: Listen = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the file")] = Path(
        "haproxy.cfg"
    ),
    watch: Annotated[bool, typer.Option("--watch", help="re-render on every registry change")] = False,
    run: Annotated[
        bool, typer.Option("--run", help="with --watch: run haproxy (master-worker) and reload it on change")
    ] = False,
) -> None:
    """Write an haproxy.cfg routing like the gateway to the registry's instances; --watch keeps it current."""
    gateway_spec = _gateway_spec(file)
    host, port = _listen(gateway_spec, listen)
    if run and not watch:
        raise UsageError("--run needs --watch: haproxy is reloaded as the registry changes")
    render_haproxy(gateway_spec, {}, host=host, port=port)  # refuses what haproxy would, before any wait
    url = _discovery_url(file, discovery)

    async def main() -> None:
        async with DiscoveryClient(_store(file, url)) as client:
            source = DiscoverySource(client.cache)
            if not watch:
                services = {r.service for r in gateway_spec.routes}
                text = render_haproxy(
                    gateway_spec, {s: source.endpoints(s) for s in services}, host=host, port=port
                )
                write_atomically(output, text)
                typer.echo(f"wrote {output}", err=True)
                return
            runner = Haproxy(output.resolve(), log=output.with_suffix(".log")) if run else None
            try:
                task = asyncio.create_task(
                    follow_registry(
                        gateway_spec,
                        source,
                        output,
                        haproxy=runner,
                        host=host,
                        port=port,
                        on_render=lambda _: typer.echo(f"wrote {output}", err=True),
                    )
                )
                await _until_signalled()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            finally:
                if runner is not None:
                    await runner.stop()

    asyncio.run(main())
