from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

import support
from minga.discovery import (
    DiscoveryClient,
    EmbeddedStore,
    Health,
    Instance,
    InstanceCache,
    Registry,
    check_once,
)
from minga.errors import DiscoveryError
from minga.spec import HealthCheckSpec

ServeApp = Callable[[web.Application], Awaitable[str]]
FAST = HealthCheckSpec(http="/healthz", interval=0.1, timeout=0.1)


class Replica:
    """An HTTP server whose /healthz answers with ``status``."""

    def __init__(self) -> None:
        self.status = 200
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        self.app = app

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(status=self.status, text="ok" if self.status == 200 else "not ok")


async def _health_of(registry: Registry, instance_id: str, health: Health) -> Instance:
    async with asyncio.timeout(3):
        while True:
            got = await registry.get(instance_id)
            if got is not None and got.health is health:
                return got
            await asyncio.sleep(0.02)


async def test_active_http_checks_follow_the_replica(serve_app: ServeApp) -> None:
    replica = Replica()
    url = await serve_app(replica.app)
    port = int(url.rsplit(":", 1)[1])
    async with Registry(EmbeddedStore(), checks={"orders": FAST}) as registry:
        await registry.register(Instance(id="orders-1", service="orders", ports={"http": port}))
        replica.status = 500
        got = await _health_of(registry, "orders-1", Health.CRITICAL)
        assert got.output == "GET /healthz: 500"
        replica.status = 429
        await _health_of(registry, "orders-1", Health.WARNING)
        replica.status = 200
        got = await _health_of(registry, "orders-1", Health.PASSING)
        assert got.output == "GET /healthz: 200"


async def test_failures_in_a_row_before_critical_and_tcp_checks() -> None:
    closed = support.free_port()
    tcp = HealthCheckSpec(tcp=True, interval=0.1, timeout=0.1, failures=2)
    async with Registry(EmbeddedStore(), checks={"db": tcp}) as registry:
        await registry.register(Instance(id="db-1", service="db", ports={"http": closed}))
        got = await _health_of(registry, "db-1", Health.CRITICAL)
        assert "Connect" in got.output or "refused" in got.output


async def test_check_once_reports_a_missing_port_and_a_timeout(serve_app: ServeApp) -> None:
    import aiohttp

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response()

    app = web.Application()
    app.router.add_get("/healthz", slow)
    url = await serve_app(app)
    port = int(url.rsplit(":", 1)[1])
    async with aiohttp.ClientSession() as session:
        spec = HealthCheckSpec(http="/healthz", interval=1, timeout=0.1)
        health, output = await check_once(Instance(id="a", service="a", ports={"http": port}), spec, session)
        assert (health, output) == (Health.CRITICAL, "no answer within 0.1s")
        health, output = await check_once(Instance(id="a", service="a"), spec, session)
        assert (health, output) == (Health.CRITICAL, "the instance has no port named 'http'")


async def test_mark_critical_is_seen_at_once_and_sticks_until_registered_again(serve_app: ServeApp) -> None:
    replica = Replica()
    url = await serve_app(replica.app)
    port = int(url.rsplit(":", 1)[1])
    async with Registry(EmbeddedStore(), checks={"orders": FAST}) as registry:
        me = Instance(id="orders-1", service="orders", ports={"http": port})
        await registry.register(me)
        cache = InstanceCache()
        async with registry.watch() as watch:
            cache.reset(watch.snapshot)
            assert [i.id for i in cache.candidates("orders")] == ["orders-1"]
            assert await registry.mark_critical("orders-1", "exited with signal 9") is True
            event = await anext(aiter(watch))  # pushed by the store, no polling
            cache.apply(event)
            assert cache.candidates("orders") == []
            # the replica still answers its checks, yet stays critical: the supervisor saw it die
            await asyncio.sleep(0.35)
            got = await registry.get("orders-1")
            assert got is not None and (got.health, got.output) == (
                Health.CRITICAL,
                "exited with signal 9",
            )
        await registry.register(me)
        assert (await registry.instances("orders", passing_only=True))[0].id == "orders-1"
        assert await registry.mark_critical("nobody") is False


async def test_services_deregistration_and_bad_ttls() -> None:
    async with Registry(EmbeddedStore(), default_ttl=None) as registry:
        for n, service in enumerate(["orders", "orders", "inventory"]):
            await registry.register(Instance(id=f"{service}-{n}", service=service))
        services = await registry.services()
        assert {k: [i.id for i in v] for k, v in services.items()} == {
            "inventory": ["inventory-2"],
            "orders": ["orders-0", "orders-1"],
        }
        assert await registry.set_health("orders-0", Health.WARNING, "slow") is True
        assert [i.id for i in await registry.instances("orders", passing_only=True)] == ["orders-1"]
        assert await registry.deregister("orders-1") is True
        assert await registry.deregister("orders-1") is False
        with pytest.raises(DiscoveryError, match=r"at least 0\.5s"):
            await registry.register(Instance(id="x-1", service="x"), ttl=0.1)


async def test_the_embedded_store_survives_a_control_plane_restart(tmp_path: Path) -> None:
    path = tmp_path / "home" / "registry.json"
    async with Registry(EmbeddedStore(path)) as registry:
        await registry.register(Instance(id="orders-1", service="orders", ports={"http": 1}), ttl=None)
        await registry.register(Instance(id="orders-2", service="orders", restarts=3), ttl=1)
        await registry.mark_critical("orders-1", "exited")
    async with Registry(EmbeddedStore(path)) as registry:
        one = await registry.get("orders-1")
        two = await registry.get("orders-2")
        assert one is not None and one.health is Health.CRITICAL and one.ports == {"http": 1}
        assert two is not None and two.restarts == 3
        # the lease starts again with its full ttl: renewals keep it; without them it expires
        assert await registry.renew("orders-2") is True
        async with registry.watch() as watch, asyncio.timeout(3):
            event = await anext(aiter(watch))
        assert (event.kind, event.instance.id) == ("delete", "orders-2")
    async with Registry(EmbeddedStore(path)) as registry:
        assert [i.id for i in await registry.instances()] == ["orders-1"]


async def test_a_corrupt_registry_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    path.write_text("{not json")
    with pytest.raises(DiscoveryError, match="cannot load the registry"):
        async with Registry(EmbeddedStore(path)):
            pass


async def test_an_in_process_client_can_share_the_registry_store() -> None:
    store = EmbeddedStore()
    async with Registry(store, default_ttl=0.5) as registry:
        await registry.register(Instance(id="orders-1", service="orders"), ttl=None)
        async with DiscoveryClient(store, close_store=False) as client:
            assert [i.id for i in client.instances("orders")] == ["orders-1"]
            await registry.register(Instance(id="orders-2", service="orders"))  # default ttl: 0.5 s
            async with asyncio.timeout(1):
                await client.cache.wait_for(lambda c: c.get("orders-2") is not None)
            async with asyncio.timeout(3):  # not renewed: gone after its default ttl
                await client.cache.wait_for(lambda c: c.get("orders-2") is None)
        # the registry's store is still open after the client left
        assert [i.id for i in await registry.instances()] == ["orders-1"]
