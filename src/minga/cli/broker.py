"""``minga broker``: run the embedded NATS-protocol broker in the foreground.

Clients reconnect to a restarted broker at once, so this command starts lean: its options are
parsed with :mod:`argparse` and it imports neither typer nor rich (``minga.cli.main`` sends
``minga broker ...`` here directly), nor JetStream unless it is asked for.

Signals, as nats-server's: SIGTERM and SIGINT shut down at once (flushing what is queued);
SIGUSR2 enters lame-duck mode (stop accepting, close the clients spread over
``--lame-duck-duration``), then shuts down.

Secrets never come on the command line, where ``ps`` shows them to every local user: the token
and the password are read from ``MINGA_BROKER_TOKEN`` / ``MINGA_BROKER_PASSWORD`` or from a file
(``--token-file``, ``--password-file``).

``-c FILE`` reads the configuration from a file in a subset of nats-server's syntax (see
:mod:`minga.broker._conffile` and docs/broker.md), so that one file runs either server; in the
file, ``$NAME`` takes a secret from the environment. With ``-c``, the listening, authentication
and TLS options come from the file only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from minga.broker import (
    AuthConfig,
    Broker,
    BrokerConfig,
    BrokerExtension,
    BrokerTimeouts,
    TLSConfig,
    load_config_file,
)
from minga.broker.storage import FsyncPolicy
from minga.errors import UsageError

if TYPE_CHECKING:
    from minga.broker.jetstream import JetStream

__all__ = ["broker_config", "jetstream_extension", "main", "parser", "run_broker"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line, as every user mistake gets, rather than argparse's usage block
        raise UsageError(f"{message} (see minga broker --help)")


def parser() -> argparse.ArgumentParser:
    """The command's options (``minga broker --help``); a wrong option raises :class:`~minga.errors.UsageError`."""
    p = _Parser(
        prog="minga broker",
        description="Run the embedded NATS-protocol broker until SIGTERM or Ctrl-C; SIGUSR2 enters lame-duck mode.",
    )
    p.add_argument(
        "-c", "--config", type=Path, help="Read the configuration from FILE (nats-server syntax, see docs/broker.md)."
    )
    p.add_argument("--host", help="Address to listen on (loopback unless told).")
    p.add_argument("--port", type=int, help="Client port (0: any free port; default 4222).")
    p.add_argument("--token", help=argparse.SUPPRESS)  # refused: visible in `ps`
    p.add_argument("--token-file", type=Path, help="Require the token in this file (or set MINGA_BROKER_TOKEN).")
    p.add_argument("--user", help="Require this user (with a password).")
    p.add_argument("--password", help=argparse.SUPPRESS)  # refused: visible in `ps`
    p.add_argument(
        "--password-file", type=Path, help="The user's password, in this file (or set MINGA_BROKER_PASSWORD)."
    )
    p.add_argument("--tls-cert", type=Path, help="Serve TLS with this certificate (PEM).")
    p.add_argument("--tls-key", type=Path, help="The private key of --tls-cert (PEM).")
    p.add_argument("--tls-ca", type=Path, help="Require client certificates signed by this CA.")
    p.add_argument("--monitor-port", type=int, help="Serve /varz and /connz on this port.")
    p.add_argument("--store", type=Path, help="Enable JetStream, keeping streams in this directory.")
    p.add_argument(
        "--jetstream", action="store_true", help="Enable JetStream in memory only (nothing survives a restart)."
    )
    p.add_argument(
        "--fsync",
        type=FsyncPolicy,
        choices=list(FsyncPolicy),
        default=FsyncPolicy.ALWAYS,
        help="When the file store syncs: before each publish ack (always), every --sync-interval, or never.",
    )
    p.add_argument("--sync-interval", type=float, default=120.0, help="Seconds between fsyncs under --fsync interval.")
    p.add_argument(
        "--lame-duck-duration",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="Lame-duck mode (SIGUSR2) closes the clients spread over this many seconds (default 120).",
    )
    p.add_argument(
        "--lame-duck-grace-period",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="Lame-duck mode closes no client during the first SECONDS (default 10).",
    )
    return p


def main(argv: Sequence[str]) -> None:
    """Parse ``argv`` (the arguments after ``minga broker``) and serve until told to stop.

    Raises :class:`~minga.errors.UsageError` when the options are wrong or the port is taken.
    """
    args = parser().parse_args(list(argv))
    token = _secret("token", args.token, args.token_file, "MINGA_BROKER_TOKEN")
    password = _secret("password", args.password, args.password_file, "MINGA_BROKER_PASSWORD")
    store = args.store
    if args.config is not None:
        given = [
            flag
            for flag, value in (
                ("--host", args.host), ("--port", args.port), ("--user", args.user), ("--tls-cert", args.tls_cert),
                ("--tls-key", args.tls_key), ("--tls-ca", args.tls_ca), ("--monitor-port", args.monitor_port),
                ("--token-file/MINGA_BROKER_TOKEN", token), ("--password-file/MINGA_BROKER_PASSWORD", password),
                ("--store", args.store),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"{', '.join(given)} cannot be combined with -c: set them in {args.config}")
        from_file = load_config_file(args.config)
        config, store = from_file.broker, from_file.store_dir
    else:
        config = broker_config(
            args.host or "127.0.0.1", 4222 if args.port is None else args.port, token, args.user, password,
            args.tls_cert, args.tls_key, args.tls_ca, args.monitor_port,
        )
    config.timeouts = BrokerTimeouts(
        lame_duck_duration=args.lame_duck_duration, lame_duck_grace=args.lame_duck_grace_period
    )
    # Extensions (JetStream...) add their options above and append themselves here.
    extensions: list[BrokerExtension] = []
    js = jetstream_extension(store, args.jetstream, args.fsync, args.sync_interval)
    if js is not None:
        extensions.append(js)
    asyncio.run(run_broker(config, extensions))


def _secret(name: str, given: str | None, file: Path | None, env: str) -> str | None:
    """The secret ``name`` from ``file`` or the environment; UsageError when it came on the command line."""
    if given is not None:
        raise UsageError(f"--{name} on the command line is visible in `ps`: set {env} or use --{name}-file FILE")
    if file is None:
        return os.environ.get(env) or None
    try:
        return file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None


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
    # imported only when asked for: a broker without JetStream starts some 40 ms sooner
    from minga.broker.jetstream import JetStream, JetStreamConfig

    return JetStream(JetStreamConfig(store_dir=store, fsync=fsync, sync_interval=sync_interval))


async def run_broker(config: BrokerConfig, extensions: list[BrokerExtension]) -> None:
    """Serve until SIGTERM/SIGINT (shut down now) or SIGUSR2 (lame-duck mode, then shut down)."""
    loop = asyncio.get_running_loop()
    server = Broker(config, extensions)
    done = asyncio.Event()
    lame_duck: list[asyncio.Task[None]] = []

    def on_stop() -> None:
        done.set()

    def on_lame_duck() -> None:
        if not lame_duck:
            _say("entering lame duck mode")
            lame_duck.append(loop.create_task(server.lame_duck()))
            lame_duck[0].add_done_callback(lambda _: done.set())

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop)
    loop.add_signal_handler(signal.SIGUSR2, on_lame_duck)
    await server.start()
    where = server.url
    if server.monitor_port is not None:
        where += f", monitoring on http://{config.host}:{server.monitor_port}/varz"
    _say(f"minga broker listening on {where}")
    try:
        await done.wait()
    finally:
        _say("shutting down")
        await server.stop()
        for task in lame_duck:
            await task


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
