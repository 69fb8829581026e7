"""Real minga services behind the gateway: replicas that register themselves and stop in order.

Each replica is ``python -m minga.service`` on a real nats-server, registering with the
registry over HTTP; a rolling restart sends SIGTERM to one replica after the other (its own
shutdown takes it out of discovery) while a steady load runs through the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

import support
from minga.discovery import DiscoveryClient, EmbeddedStore, Registry, serve_registry
from minga.gateway import DiscoverySource, Gateway
from minga.spec import GatewaySpec, RouteSpec

pytestmark = [pytest.mark.slow, pytest.mark.engine]

HERE = Path(__file__).parent
RATE = 100


@contextlib.asynccontextmanager
async def registry_over_http() -> AsyncIterator[tuple[Registry, str]]:
    async with Registry(EmbeddedStore()) as registry, serve_registry(registry) as url:
        yield registry, url


def service(tmp: Path, nats: str, discovery: str, n: int) -> support.ServerProcess:
    port = support.free_port()
    env = {
        "MINGA_NATS_URL": nats,
        "MINGA_DISCOVERY_URL": discovery,
        "MINGA_INSTANCE": f"hello-{n}",
        "MINGA_HTTP_PORT": str(port),
        "MINGA_GRACE": "5",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    argv = [sys.executable, "-m", "minga.service", "svc_hello:Hello"]
    return support.ServerProcess(argv, port, env=env, log=tmp / f"hello-{n}.log")


async def test_rolling_restart_of_minga_services_fails_no_request(tmp_path: Path) -> None:
    with support.running(support.nats_server(tmp_path)) as nats:
        nats_url = f"nats://127.0.0.1:{nats.port}"
        async with registry_over_http() as (registry, url):
            procs = [service(tmp_path, nats_url, url, n) for n in range(3)]
            try:
                for proc in procs:
                    await asyncio.to_thread(proc.start, 30.0)
                async with DiscoveryClient(registry.store, close_store=False) as client:
                    async with asyncio.timeout(20):
                        await client.cache.wait_for(lambda c: len(c.candidates("hello")) == 3)
                    spec = GatewaySpec(
                        port=0, routes=[RouteSpec(path="/api", service="hello", strip_prefix=True)]
                    )
                    async with (
                        Gateway(spec, DiscoverySource(client.cache)) as gw,
                        aiohttp.ClientSession() as http,
                    ):
                        outcomes: list[int | str] = []
                        served_during: list[int] = []  # requests answered while each replica was replaced
                        stop = asyncio.Event()

                        async def one() -> None:
                            try:
                                async with http.get(f"{gw.url}/api/hello?ms=20") as r:
                                    await r.read()
                                    outcomes.append(r.status)
                            except aiohttp.ClientError as exc:
                                outcomes.append(type(exc).__name__)

                        async def load() -> None:
                            async with asyncio.TaskGroup() as tg:
                                for _ in range(30 * RATE):  # bounded: stopped long before
                                    if stop.is_set():
                                        break
                                    tg.create_task(one())
                                    with contextlib.suppress(TimeoutError):
                                        async with asyncio.timeout(1 / RATE):
                                            await stop.wait()

                        loader = asyncio.create_task(load())
                        await asyncio.sleep(1.0)
                        for n, old in enumerate(list(procs)):
                            before = len(outcomes)
                            await asyncio.to_thread(old.stop, 10.0)
                            new = service(tmp_path, nats_url, url, n + 10)
                            procs.append(new)
                            await asyncio.to_thread(new.start, 30.0)
                            async with asyncio.timeout(20):
                                await client.cache.wait_for(
                                    lambda c, i=n + 10: c.get(f"hello-{i}") is not None
                                )
                            served_during.append(len(outcomes) - before)
                        await asyncio.sleep(0.5)
                        stop.set()
                        await loader
            finally:
                for proc in procs:
                    proc.kill()
    failures = [o for o in outcomes if o != 200]
    # the load ran through every replacement, not only before or after it
    assert len(served_during) == 3 and all(n >= 5 for n in served_during), served_during
    assert failures == [], f"{len(failures)} of {len(outcomes)} failed: {sorted(set(map(str, failures)))}"
