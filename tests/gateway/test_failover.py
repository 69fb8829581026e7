"""Failover under load: the gateway, fed by the real registry, in front of three replica processes.

A load generator sends requests at a steady rate (bounded in count and time); replicas are
SIGKILLed or restarted one by one meanwhile. Every client request must succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from minga.discovery import DiscoveryClient, EmbeddedStore, Instance, InstanceCache, Registry
from minga.gateway import DiscoverySource, Gateway
from minga.spec import GatewaySpec, HealthCheckSpec, RouteSpec
from support import ServerProcess

pytestmark = pytest.mark.slow

RATE = 100  # requests per second
SPEC = GatewaySpec(port=0, routes=[RouteSpec(path="/api/shop", service="shop", strip_prefix=True)])
CHECK = HealthCheckSpec(http="/healthz", interval=0.2, timeout=0.15)


class Load:
    """Requests at a steady rate until stopped or ``limit`` seconds pass; every outcome is kept."""

    def __init__(self, http: aiohttp.ClientSession, url: str, limit: float) -> None:
        self.http = http
        self.url = url
        self.limit = limit
        self.outcomes: list[int | str] = []
        self._stop = asyncio.Event()

    async def _one(self) -> None:
        try:
            async with self.http.get(self.url, timeout=aiohttp.ClientTimeout(total=10)) as r:
                await r.read()
                self.outcomes.append(r.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.outcomes.append(type(exc).__name__)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with asyncio.TaskGroup() as tg:
            for i in range(int(self.limit * RATE)):
                if self._stop.is_set():
                    break
                delay = start + i / RATE - loop.time()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._stop.wait()
                tg.create_task(self._one())

    def stop(self) -> None:
        self._stop.set()

    @property
    def failures(self) -> list[int | str]:
        return [o for o in self.outcomes if o != 200]


@contextlib.asynccontextmanager
async def system(procs: list[ServerProcess]) -> AsyncIterator[tuple[Registry, InstanceCache, Gateway]]:
    async with (
        Registry(EmbeddedStore(), checks={"shop": CHECK}) as registry,
        DiscoveryClient(registry.store, close_store=False) as client,
    ):
        for i, proc in enumerate(procs):
            await registry.register(
                Instance(id=f"shop-{i}", service="shop", ports={"http": proc.port}), ttl=None
            )
        async with asyncio.timeout(5):
            await client.cache.wait_for(lambda c: len(c.candidates("shop")) == len(procs))
        async with Gateway(SPEC, DiscoverySource(client.cache)) as gateway:
            yield registry, client.cache, gateway


def attempts_to(gateway: Gateway, instance_id: str) -> int:
    """Attempts sent to one instance, as the metrics count them (by instance id)."""
    return sum(
        n for (_, upstream, _), n in gateway.metrics.upstream_requests.items() if upstream == instance_id
    )


async def test_sigkill_under_load_fails_no_request_and_the_dead_replica_leaves_within_a_second(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    procs = replicas("r0", "r1", "r2")
    victim = procs[1]
    async with system(procs) as (_, cache, gateway), aiohttp.ClientSession() as http:
        load = Load(http, f"{gateway.url}/api/shop/hello?ms=10", limit=10.0)
        runner = asyncio.create_task(load.run())
        await asyncio.sleep(3.0)
        await asyncio.to_thread(victim.kill)
        await asyncio.sleep(1.0)
        after_one_second = attempts_to(gateway, "shop-1")
        assert "shop-1" not in {i.id for i in cache.candidates("shop")}, "the registry dropped it"
        await runner
    assert len(load.outcomes) == 10 * RATE
    assert load.failures == [], f"{len(load.failures)} failed: {load.failures[:5]}"
    assert attempts_to(gateway, "shop-1") == after_one_second, "no request went to the dead replica after 1 s"
    assert attempts_to(gateway, "shop-0") > 200 and attempts_to(gateway, "shop-2") > 200


async def test_rolling_restart_of_every_replica_under_load_fails_no_request(
    replicas: Callable[..., list[ServerProcess]], make_replica: Callable[[str], ServerProcess]
) -> None:
    procs = replicas("r0", "r1", "r2")
    async with system(procs) as (registry, cache, gateway), aiohttp.ClientSession() as http:
        load = Load(http, f"{gateway.url}/api/shop/hello?ms=20", limit=15.0)
        runner = asyncio.create_task(load.run())
        await asyncio.sleep(1.0)
        news: list[ServerProcess] = []
        served_during: list[int] = []  # requests answered while each replica was being replaced
        for i, old in enumerate(procs):
            old_id = f"shop-{i}"
            before = len(load.outcomes)
            # take it out of routing first, let what it serves finish, then stop it
            await registry.deregister(old_id)
            async with asyncio.timeout(5):
                await cache.wait_for(lambda c, old_id=old_id: c.get(old_id) is None)
                await gateway.wait_idle(old_id)
            await asyncio.to_thread(old.stop)
            new = make_replica(f"r{i}-new")
            await asyncio.to_thread(new.start)
            await registry.register(
                Instance(id=f"shop-{i}-new", service="shop", ports={"http": new.port}), ttl=None
            )
            await asyncio.sleep(1.0)
            news.append(new)
            served_during.append(len(load.outcomes) - before)
        load.stop()
        await runner
    assert all(attempts_to(gateway, f"shop-{i}-new") > 0 for i in range(len(news))), (
        "the new replicas took traffic"
    )
    # the load ran through every replacement, not only before or after it
    assert all(n >= RATE // 2 for n in served_during), f"requests per replacement: {served_during}"
    assert load.failures == [], f"{len(load.failures)} failed: {load.failures[:5]}"
