"""``minga broker``: run the embedded NATS-protocol broker in the foreground.

Secrets never come on the command line, where ``ps`` shows them to every local user: the token
and the password are read from ``MINGA_BROKER_TOKEN`` / ``MINGA_BROKER_PASSWORD`` or from a file
(``--token-file``, ``--password-file``).
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from minga.broker import AuthConfig, Broker, BrokerConfig, BrokerExtension, TLSConfig
from minga.broker.jetstream import JetStream, JetStreamConfig
from minga.broker.storage import FsyncPolicy
from minga.errors import UsageError

__all__ = ["broker", "jetstream_extension", "run_broker"]

console = Console(stderr=True)


def _secret(ctx: typer.Context, name: str, value: str | None, file: Path | None, env: str) -> str | None:
    """The secret ``name`` from the environment or ``file``; UsageError when it came on the command line."""
    source = ctx.get_parameter_source(name)
    if value is not None and source is not None and source.name == "COMMANDLINE":
        flag = name.replace("_", "-")
        raise UsageError(f"--{flag} on the command line is visible in `ps`: set {env} or use --{flag}-file FILE")
    if file is None:
        return value
    try:
        return file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None


def broker(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback unless told).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Client port (0: any free port).")] = 4222,
    token: Annotated[
        str | None, typer.Option("--token", envvar="MINGA_BROKER_TOKEN", help="Require this token (from the environment).")
    ] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="Require the token in this file.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Require this user (with a password).")] = None,
    password: Annotated[
        str | None, typer.Option("--password", envvar="MINGA_BROKER_PASSWORD", help="The user's password (from the environment).")
    ] = None,
    password_file: Annotated[Path | None, typer.Option("--password-file", help="The user's password, in this file.")] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="Serve TLS with this certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="The private key of --tls-cert (PEM).")] = None,
    tls_ca: Annotated[Path | None, typer.Option("--tls-ca", help="Require client certificates signed by this CA.")] = None,
    monitor_port: Annotated[int | None, typer.Option("--monitor-port", help="Serve /varz and /connz on this port.")] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="Enable JetStream, keeping streams in this directory.")
    ] = None,
    jetstream: Annotated[
        bool, typer.Option("--jetstream", help="Enable JetStream in memory only (nothing survives a restart).")
    ] = False,
    fsync: Annotated[
        FsyncPolicy,
        typer.Option("--fsync", help="When the file store syncs: before each publish ack (always), every --sync-interval, or never."),
    ] = FsyncPolicy.ALWAYS,
    sync_interval: Annotated[
        float, typer.Option("--sync-interval", help="Seconds between fsyncs under --fsync interval.")
    ] = 120.0,
) -> None:
    """Run the embedded NATS-protocol broker until SIGTERM or Ctrl-C."""
    token = _secret(ctx, "token", token, token_file, "MINGA_BROKER_TOKEN")
    password = _secret(ctx, "password", password, password_file, "MINGA_BROKER_PASSWORD")
    config = broker_config(host, port, token, user, password, tls_cert, tls_key, tls_ca, monitor_port)
    # Extensions (JetStream...) add their options above and append themselves here.
    extensions: list[BrokerExtension] = []
    js = jetstream_extension(store, jetstream, fsync, sync_interval)
    if js is not None:
        extensions.append(js)
    asyncio.run(run_broker(config, extensions))


def broker_config(
    host: str,
    port: int,
    token: str | None,
    user: str | None,
    password: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    monitor_port: int | None,
) -> BrokerConfig:
    """Check the command's options and turn them into a :class:`BrokerConfig` (UsageError when wrong)."""
    auth = None
    if token is not None or user is not None or password is not None:
        auth = AuthConfig(token=token, user=user, password=password)
    tls = None
    if tls_cert is not None or tls_key is not None or tls_ca is not None:
        if tls_cert is None or tls_key is None:
            raise UsageError("TLS needs both --tls-cert and --tls-key")
        for path in (tls_cert, tls_key, tls_ca):
            if path is not None and not path.is_file():
                raise UsageError(f"{path}: no such file")
        tls = TLSConfig(cert=tls_cert, key=tls_key, ca=tls_ca)
    return BrokerConfig(host=host, port=port, auth=auth, tls=tls, monitor_port=monitor_port)


def jetstream_extension(
    store: Path | None, memory_only: bool, fsync: FsyncPolicy, sync_interval: float
) -> JetStream | None:
    """The JetStream extension the options ask for, or None (UsageError when they contradict)."""
    if store is not None and memory_only:
        raise UsageError("--store keeps JetStream on disk and --jetstream in memory: give one of them")
    if sync_interval <= 0:
        raise UsageError("--sync-interval must be a positive number of seconds")
    if store is None and not memory_only:
        return None
    if store is not None and store.exists() and not store.is_dir():
        raise UsageError(f"{store}: not a directory")
    return JetStream(JetStreamConfig(store_dir=store, fsync=fsync, sync_interval=sync_interval))


async def run_broker(config: BrokerConfig, extensions: list[BrokerExtension]) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully (lame-duck notice, flush, close)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = Broker(config, extensions)
    await server.start()
    where = f"{server.url}"
    if server.monitor_port is not None:
        where += f", monitoring on http://{config.host}:{server.monitor_port}/varz"
    console.print(f"[bold green]minga broker[/] listening on {where}", highlight=False)
    try:
        await stop.wait()
    finally:
        console.print("shutting down", highlight=False)
        await server.stop()
