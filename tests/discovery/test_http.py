"""The registry's HTTP API, the Prometheus http_sd endpoint, and DiscoveryClient through them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import support
from minga.discovery import (
    DiscoveryClient,
    EmbeddedStore,
    EtcdStore,
    HttpStore,
    Instance,
    Registry,
    registry_from_spec,
    serve_registry,
    store_from_spec,
)
from minga.errors import DiscoveryError, NoInstanceError
from minga.spec import parse_spec


def record(n: int, service: str = "orders", **kw: Any) -> dict[str, Any]:
    return Instance(id=f"{service}-{n}", service=service, **kw).model_dump(mode="json")


async def test_the_json_api(served_registry: tuple[Registry, str]) -> None:
    registry, url = served_registry
    async with aiohttp.ClientSession() as http:

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            async with http.request(method, url + path, json=body) as resp:
                return resp.status, await resp.json()

        assert await call(
            "PUT", "/instances/orders-1", {"instance": record(1, ports={"http": 81}), "ttl": 30}
        ) == (
            200,
            {
                "instance": record(1, ports={"http": 81})
                | {"started_at": (await registry.get("orders-1")).started_at}
            },  # type: ignore[union-attr]
        )
        await call("PUT", "/instances/orders-2", {"instance": record(2, ports={"http": 82})})
        await call(
            "PUT", "/instances/pay-1", {"instance": record(1, "pay", ports={"metrics": 91}), "ttl": None}
        )
        status, body = await call("GET", "/services")
        assert status == 200
        assert body["services"] == [
            {"name": "orders", "instances": 2, "passing": 2, "warning": 0, "critical": 0},
            {"name": "pay", "instances": 1, "passing": 1, "warning": 0, "critical": 0},
        ]
        assert (await call("PUT", "/instances/orders-2/health", {"health": "critical", "output": "gone"}))[
            0
        ] == 200
        status, body = await call("GET", "/services/orders?passing=1")
        assert [i["id"] for i in body["instances"]] == ["orders-1"]
        status, body = await call("GET", "/instances/orders-2")
        assert (body["health"], body["output"]) == ("critical", "gone")
        status, body = await call("GET", "/instances?service=pay")
        assert [i["id"] for i in body["instances"]] == ["pay-1"] and body["revision"] >= 3
        assert (await call("POST", "/instances/orders-1/renew"))[0] == 200
        updated = record(1, ports={"http": 81}, tags=["canary"])
        assert (await call("PATCH", "/instances/orders-1", {"instance": updated}))[0] == 200
        assert (await registry.get("orders-1")).tags == ["canary"]  # type: ignore[union-attr]
        assert (await call("DELETE", "/instances/orders-1"))[0] == 200

        # mistakes: one clear message each
        assert await call("DELETE", "/instances/orders-1") == (404, {"error": "no instance 'orders-1'"})
        assert await call("POST", "/instances/orders-1/renew") == (
            404,
            {"error": "no lease for 'orders-1': register again"},
        )
        status, body = await call("PUT", "/instances/x-1", {"instance": record(2)})
        assert status == 400 and body["error"] == "the path names 'x-1' but the record is 'orders-2'"
        status, body = await call("PUT", "/instances/x-1", {"instance": {"id": "x-1"}})
        assert status == 400 and body["error"].startswith("instance.service:")
        status, body = await call("PUT", "/instances/orders-2/health", {"health": "grim"})
        assert status == 400 and "expected passing, warning or critical" in body["error"]
        status, body = await call("PUT", "/instances/x-1", {"instance": record(1, "x"), "ttl": 0.1})
        assert status == 400 and "at least 0.5s" in body["error"]
        async with http.put(url + "/instances/x-1", data=b"{nope") as resp:
            assert resp.status == 400 and (await resp.json())["error"].startswith("invalid JSON")


async def test_prometheus_http_sd_targets(served_registry: tuple[Registry, str]) -> None:
    registry, url = served_registry
    await registry.register(
        Instance(
            id="orders-1", service="orders", version="1.2", ports={"http": 81, "metrics": 91}, tags=["a"]
        )
    )
    await registry.register(Instance(id="pay-1", service="pay", ports={"http": 82}))
    await registry.register(Instance(id="portless-1", service="portless"))
    async with aiohttp.ClientSession() as http, http.get(url + "/http_sd") as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        groups = await resp.json()
    assert groups == [
        {
            "targets": ["127.0.0.1:91"],
            "labels": {
                "service": "orders",
                "instance_id": "orders-1",
                "__meta_minga_service": "orders",
                "__meta_minga_instance": "orders-1",
                "__meta_minga_version": "1.2",
                "__meta_minga_health": "passing",
                "__meta_minga_tags": ",a,",
            },
        },
        {
            "targets": ["127.0.0.1:82"],
            "labels": {
                "service": "pay",
                "instance_id": "pay-1",
                "__meta_minga_service": "pay",
                "__meta_minga_instance": "pay-1",
                "__meta_minga_version": "",
                "__meta_minga_health": "passing",
                "__meta_minga_tags": "",
            },
        },
    ]


async def test_the_watch_stream_filters_by_service(served_registry: tuple[Registry, str]) -> None:
    registry, url = served_registry
    await registry.register(Instance(id="orders-1", service="orders"))
    async with aiohttp.ClientSession() as http, http.get(url + "/watch?service=pay") as resp:
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        first = await resp.content.readline()
        assert b'"snapshot"' in first and b"orders-1" not in first
        await registry.register(Instance(id="orders-2", service="orders"))
        await registry.register(Instance(id="pay-1", service="pay"))
        async with asyncio.timeout(2):
            line = await resp.content.readline()
        assert b'"pay-1"' in line and b'"kind": "put"' in line


async def test_a_watch_starts_on_a_registry_whose_snapshot_is_one_long_line() -> None:
    # a registry in memory (no file rewritten per change), served as the control plane serves it
    async with Registry(EmbeddedStore()) as registry, serve_registry(registry) as base:
        url = base + "/v1/discovery"
        padding = {"zone": "z" * 400}
        for n in range(3_000):  # over a megabyte of snapshot on one line
            await registry.register(Instance(id=f"orders-{n}", service="orders", host="127.0.0.1", metadata=padding))
        async with aiohttp.ClientSession() as http, http.get(url + "/watch") as resp:
            with pytest.raises(aiohttp.http_exceptions.LineTooLong):  # longer than aiohttp reads as one line
                await resp.content.readline()
        store = HttpStore(url)
        await store.open()
        try:
            async with store.watch() as watch:
                assert len(watch.snapshot.instances) == 3_000
                await registry.register(Instance(id="pay-1", service="pay"))
                async with asyncio.timeout(5):
                    event = await anext(aiter(watch))
                assert event.instance.id == "pay-1"
        finally:
            await store.close()


async def test_client_registers_renews_watches_and_deregisters(served_registry: tuple[Registry, str]) -> None:
    registry, url = served_registry
    await registry.register(Instance(id="inventory-1", service="inventory", ports={"http": 81}))
    root = url.removesuffix("/v1/discovery")  # the control plane's root URL works too
    async with DiscoveryClient(root) as client:
        assert [i.id for i in client.instances("inventory")] == ["inventory-1"]
        me = Instance(id="orders-1", service="orders", ports={"http": 80})
        await client.register(me, ttl=1)
        # renewed every ttl/3: still there well after the ttl
        await asyncio.sleep(1.6)
        assert await registry.get("orders-1") == me
        # a lease that was lost (e.g. the control plane restarted empty) is registered again
        async with registry.watch() as watch:
            await registry.deregister("orders-1")
            seen: list[str] = []
            async with asyncio.timeout(3):
                async for event in watch:
                    seen += [event.kind] if event.instance.id == "orders-1" else []
                    if seen == ["delete", "put"]:
                        break
        picker = client.picker("inventory", "p2c")
        with picker.request() as chosen:
            assert chosen.address == "127.0.0.1:81"
        await registry.mark_critical("inventory-1", "exited")
        async with asyncio.timeout(1):
            await client.cache.wait_for(lambda c: not c.candidates("inventory"))
        with pytest.raises(NoInstanceError):
            picker.pick()
        assert await client.deregister("orders-1") is True
        async with asyncio.timeout(1):
            await client.cache.wait_for(lambda c: c.get("orders-1") is None)
        assert await registry.get("orders-1") is None


async def test_client_reports_an_unreachable_control_plane() -> None:
    port = support.free_port()
    store = HttpStore(f"http://127.0.0.1:{port}/v1/discovery", timeout=1)
    await store.open()
    try:
        with pytest.raises(DiscoveryError, match=f"127.0.0.1:{port}"):
            await store.put(Instance(id="a-1", service="a"))
        assert HttpStore("http://127.0.0.1:1").url == "http://127.0.0.1:1/v1/discovery"
    finally:
        await store.close()
    with pytest.raises(DiscoveryError, match="not open"):
        await store.renew("a-1")


async def test_replicas_ride_through_a_control_plane_restart(tmp_path: Path) -> None:
    """The embedded store is reloaded from MINGA_HOME; clients reconnect their watch and keep renewing."""
    path = tmp_path / "home" / "registry.json"
    port = support.free_port()

    @contextlib.asynccontextmanager
    async def control_plane() -> AsyncIterator[Registry]:
        async with Registry(EmbeddedStore(path)) as registry, serve_registry(registry, port=port):
            yield registry

    first = control_plane()
    await first.__aenter__()
    async with DiscoveryClient(f"http://127.0.0.1:{port}") as client:
        await client.register(Instance(id="orders-1", service="orders"), ttl=1.5)
        await first.__aexit__(None, None, None)
        await asyncio.sleep(0.3)  # down for a moment: renewals and the watch fail meanwhile
        async with control_plane() as registry:
            assert await registry.get("orders-1") is not None  # reloaded from disk
            await registry.register(Instance(id="pay-1", service="pay"), ttl=None)
            async with asyncio.timeout(5):  # the client's watch reconnected
                await client.cache.wait_for(lambda c: c.get("pay-1") is not None)
            await asyncio.sleep(2.0)  # longer than the ttl: renewals reach the new control plane
            assert await registry.get("orders-1") is not None


async def test_the_registry_a_spec_asks_for(tmp_path: Path, etcd_url: str) -> None:
    spec = parse_spec(
        "services:\n"
        "  orders: {module: a:B, ports: [http], health: {http: /healthz}}\n"
        "  jobs: {module: a:C}\n"
        "discovery: {ttl: 2s}\n"
    )
    registry = registry_from_spec(spec, tmp_path)
    assert registry.default_ttl == 2.0
    assert isinstance(registry.store, EmbeddedStore) and registry.store.path == tmp_path / "registry.json"
    async with registry:
        await registry.register(Instance(id="jobs-1", service="jobs"))
    assert (tmp_path / "registry.json").exists()
    etcd_spec = parse_spec(f"discovery: {{url: {etcd_url}, prefix: /shop/}}\n")
    store = store_from_spec(etcd_spec.discovery, tmp_path)
    assert isinstance(store, EtcdStore) and (store.url, store.prefix) == (etcd_url, "/shop/")


async def test_an_unreachable_registry_is_a_clear_error() -> None:
    port = support.free_port()
    with pytest.raises(
        DiscoveryError, match=f"could not watch the registry .*127.0.0.1:{port}.* within 0.5s"
    ):
        async with DiscoveryClient(f"http://127.0.0.1:{port}", timeout=0.5):
            pass
    with pytest.raises(DiscoveryError, match=f"etcd at http://127.0.0.1:{port}"):
        async with Registry(EtcdStore(f"http://127.0.0.1:{port}", timeout=0.5)):
            pass


async def test_the_long_poll_answers_when_the_revision_passes_the_index(
    served_registry: tuple[Registry, str],
) -> None:
    registry, url = served_registry
    await registry.register(Instance(id="orders-1", service="orders"))
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/instances") as resp:
            index = (await resp.json())["revision"]
        # nothing newer: the answer waits out `wait`, then gives the same revision
        async with http.get(url + "/instances", params={"index": index, "wait": "0.2"}) as resp:
            assert (await resp.json())["revision"] == index
        # a change to another service does not answer a poll filtered on `pay`
        poll = asyncio.ensure_future(
            http.get(url + "/instances", params={"index": index, "wait": "5", "service": "pay"})
        )
        await asyncio.sleep(0.1)
        await registry.register(Instance(id="orders-2", service="orders"))
        await asyncio.sleep(0.1)
        assert not poll.done()
        await registry.register(Instance(id="pay-1", service="pay"))
        async with asyncio.timeout(2):
            resp = await poll
        body = await resp.json()
        resp.release()
        assert [i["id"] for i in body["instances"]] == ["pay-1"] and body["revision"] == index + 2
        async with http.get(url + "/instances", params={"index": "soon"}) as resp:
            assert resp.status == 400
