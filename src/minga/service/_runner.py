"""``python -m minga.service MODULE:Class``: one replica as its own process.

Reads ``MINGA_NATS_URL`` (default ``nats://127.0.0.1:4222``), ``MINGA_SERVICE`` (the
service's name on the bus; default: the class's ``name``), ``MINGA_INSTANCE`` (default:
``<service>-<random>``), ``MINGA_HTTP_PORT`` (default: a free port), ``MINGA_GRACE``
(seconds a stop waits for in-flight work, default 10), ``MINGA_LEAVE_DELAY`` (seconds a
stopping replica keeps serving after it deregistered, default 0.25) and ``MINGA_DISCOVERY_URL`` (the
control plane, to register with, renewing a lease of ``MINGA_DISCOVERY_TTL`` seconds, default 5). Logs JSON lines to stdout. SIGTERM or SIGINT stop
the replica in order (see :mod:`minga.service._container`); a second one kills it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping

from minga.bus import Bus
from minga.discovery import replica_registrar
from minga.errors import MingaError, UsageError
from minga.service._container import DEFAULT_LEAVE_DELAY, Registrar, ServiceContainer
from minga.service._logging import configure_logging
from minga.service._service import Service

__all__ = ["load_service", "main", "serve"]

log = logging.getLogger("minga.service")

RegistrarFactory = Callable[[str, Mapping[str, str]], Registrar]
"""Makes the registrar for a discovery URL and the replica's environment (default:
:func:`minga.discovery.replica_registrar`)."""


def load_service(target: str) -> type[Service]:
    """The Service subclass named by ``module:Class``; UsageError when it is not one."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UsageError(f"expected MODULE:Class, got {target!r} (for example shop.inventory:Inventory)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    found = getattr(module, attr, None)
    if not (isinstance(found, type) and issubclass(found, Service)):
        raise UsageError(f"{target} is not a minga Service class")
    return found


def _http_port(env: Mapping[str, str]) -> int:
    raw = env.get("MINGA_HTTP_PORT", "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or not 0 <= int(raw) < 65536:
        raise UsageError(f"MINGA_HTTP_PORT must be a port number, got {raw!r}")
    return int(raw)


async def serve(
    service: type[Service],
    env: Mapping[str, str] | None = None,
    *,
    registrar_factory: RegistrarFactory | None = replica_registrar,
) -> int:
    """Run one replica until SIGTERM or SIGINT; return the process exit status (0 after a clean stop)."""
    env = dict(os.environ) if env is None else env
    container_name = env.get("MINGA_SERVICE") or service.name
    url = env.get("MINGA_NATS_URL") or "nats://127.0.0.1:4222"
    try:
        grace = float(env.get("MINGA_GRACE") or 10)
    except ValueError:
        raise UsageError(f"MINGA_GRACE must be seconds, got {env['MINGA_GRACE']!r}") from None
    try:
        leave_delay = float(env.get("MINGA_LEAVE_DELAY") or DEFAULT_LEAVE_DELAY)
    except ValueError:
        raise UsageError(f"MINGA_LEAVE_DELAY must be seconds, got {env['MINGA_LEAVE_DELAY']!r}") from None
    registrar: Registrar | None = None
    discovery = env.get("MINGA_DISCOVERY_URL")
    if discovery and registrar_factory is not None:
        registrar = registrar_factory(discovery, env)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main_task = asyncio.current_task()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            stop.set()
        elif main_task is not None:
            main_task.cancel()  # a second signal: no more grace

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        async with Bus(url, name=env.get("MINGA_INSTANCE") or container_name, grace=grace) as bus:
            container = ServiceContainer(
                service,
                bus,
                name=container_name,
                instance=env.get("MINGA_INSTANCE") or None,
                config=env,
                http_port=_http_port(env),
                registrar=registrar,
                grace=grace,
                leave_delay=leave_delay,
            )
            if discovery and registrar is None:
                log.warning(
                    "MINGA_DISCOVERY_URL is set but no discovery client is available; not registering"
                )
            await container.start()
            try:
                await stop.wait()
                await container.stop()
            except asyncio.CancelledError:
                await container.kill()
                return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


def main(
    argv: list[str] | None = None, *, registrar_factory: RegistrarFactory | None = replica_registrar
) -> int:
    """Entry point of ``python -m minga.service MODULE:Class``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m minga.service MODULE:Class", file=sys.stderr)
        return 2
    env = dict(os.environ)
    try:
        service = load_service(args[0])
        name = env.get("MINGA_SERVICE") or service.name or "service"
        configure_logging(name, env.get("MINGA_INSTANCE") or name, level=env.get("MINGA_LOG_LEVEL", "INFO"))
        return asyncio.run(serve(service, env, registrar_factory=registrar_factory))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MingaError as exc:
        log.error("%s", exc)
        return 1
