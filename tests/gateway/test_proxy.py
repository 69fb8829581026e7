"""The gateway in front of real replica processes: routing, streaming, WebSocket, ids, metrics."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from minga.bus import TraceContext
from minga.gateway import Gateway, StaticSource
from minga.spec import GatewaySpec, GatewayTimeoutsSpec, RouteSpec
from support import ServerProcess


def gateway_spec(**overrides: object) -> GatewaySpec:
    routes = overrides.pop("routes", None) or [
        RouteSpec(path="/api/shop", service="shop", strip_prefix=True),
        RouteSpec(path="/raw", service="shop"),
    ]
    return GatewaySpec.model_validate({"port": 0, "routes": routes, **overrides})


def source_of(*procs: ServerProcess) -> StaticSource:
    return StaticSource({"shop": [f"127.0.0.1:{p.port}" for p in procs]})


async def test_routes_strip_the_prefix_and_inject_request_id_and_traceparent(
    replicas: Callable[..., list[ServerProcess]], caplog: pytest.LogCaptureFixture
) -> None:
    (a,) = replicas("a")
    caplog.set_level(logging.INFO, logger="minga.gateway.access")
    parent = TraceContext.new()
    async with Gateway(gateway_spec(), source_of(a)) as gw, aiohttp.ClientSession() as http:
        async with http.post(
            f"{gw.url}/api/shop/echo?x=1", data=b"hi", headers={"traceparent": parent.header()}
        ) as r:
            assert r.status == 200 and await r.read() == b"hi"
            assert r.headers["X-Seen-Path"] == "/echo?x=1"
            rid = r.headers["X-Request-ID"]
            assert len(rid) == 32 and r.headers["X-Seen-Request-ID"] == rid
            seen = TraceContext.parse(r.headers["X-Seen-Traceparent"])
            assert seen is not None and seen.trace_id == parent.trace_id and seen.span_id != parent.span_id
            assert r.headers["X-Seen-Forwarded-For"] == "127.0.0.1"
        async with http.get(f"{gw.url}/raw/../hello", headers={"X-Request-ID": "mine-1"}) as r:
            assert r.status == 404  # /raw/../hello is not under /raw once normalised by the client
        async with http.post(f"{gw.url}/api/shop/echo", headers={"X-Request-ID": "mine-1"}) as r:
            assert r.headers["X-Request-ID"] == "mine-1" == r.headers["X-Seen-Request-ID"]
            assert TraceContext.parse(r.headers["X-Seen-Traceparent"]) is not None
        async with http.get(f"{gw.url}/elsewhere") as r:
            assert r.status == 404 and r.content_type == "application/json"
            # the 404 says where to go: the paths the gateway routes
            assert (await r.json())["error"] == {
                "status": 404, "message": "no route for this path", "routes": ["/api/shop", "/raw"]
            }
    records = [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "minga.gateway.access"]
    first = records[0]
    assert first["method"] == "POST" and first["path"] == "/api/shop/echo?x=1" and first["status"] == 200
    assert first["route"] == "/api/shop" and first["upstream"] == f"127.0.0.1:{a.port}"
    assert first["request_id"] == rid and first["trace_id"] == parent.trace_id and first["attempts"] == 1


async def _parts(n: int, size: int) -> AsyncIterator[bytes]:
    for i in range(n):
        yield bytes([65 + i % 26]) * size
        await asyncio.sleep(0)


async def test_bodies_stream_both_ways_chunked_and_sized(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    (a,) = replicas("a")
    async with Gateway(gateway_spec(), source_of(a)) as gw, aiohttp.ClientSession() as http:
        async with http.post(f"{gw.url}/api/shop/echo", data=_parts(64, 32 * 1024)) as r:
            body = await r.read()
            assert r.status == 200 and len(body) == 64 * 32 * 1024 and r.headers["X-Seen-Chunked"] == "True"
            assert body[:1] == b"A" and body[-1:] == bytes([65 + 63 % 26])
        big = bytes(range(256)) * 3000  # 750 KiB with a Content-Length
        async with http.put(f"{gw.url}/api/shop/echo", data=big) as r:
            assert r.status == 200 and await r.read() == big
        async with http.get(f"{gw.url}/api/shop/stream") as r:
            assert r.headers.get("Transfer-Encoding") == "chunked"
            assert await r.read() == b"part0;part1;part2;"
        async with http.head(f"{gw.url}/api/shop/hello") as r:
            assert r.status == 200 and await r.read() == b""
        async with http.get(f"{gw.url}/api/shop/hello") as r:
            assert (await r.json()) == {"replica": "a"}


async def test_websocket_upgrades_pass_through(replicas: Callable[..., list[ServerProcess]]) -> None:
    (a,) = replicas("a")
    async with (
        Gateway(gateway_spec(), source_of(a)) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{gw.url}/api/shop/ws") as ws,
    ):
        for word in ("one", "two"):
            await ws.send_str(word)
            assert await ws.receive_str(timeout=5) == f"a:{word}"


async def test_keep_alive_pool_reuses_upstream_connections_and_p2c_spreads(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    a, b = replicas("a", "b")
    async with Gateway(gateway_spec(), source_of(a, b)) as gw, aiohttp.ClientSession() as http:

        async def one() -> str:
            async with http.get(f"{gw.url}/api/shop/hello?ms=5") as r:
                return str((await r.json())["replica"])

        seen = await asyncio.gather(*(one() for _ in range(200)))
        assert {"a", "b"} == set(seen) and min(seen.count("a"), seen.count("b")) > 40
        metrics = gw.metrics.render()
        idle = sum(s.pool.idle for s in gw._upstreams.values())
        assert 0 < idle <= 200
    assert 'minga_gateway_requests_total{route="/api/shop",code="200"} 200' in metrics
    assert (
        f'minga_gateway_upstream_requests_total{{route="/api/shop",upstream="127.0.0.1:{a.port}",outcome="ok"}}'
        in metrics
    )
    assert 'minga_gateway_request_duration_seconds_bucket{route="/api/shop",le="+Inf"} 200' in metrics


async def test_metrics_are_served_in_the_prometheus_format(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    (a,) = replicas("a")
    async with Gateway(gateway_spec(), source_of(a)) as gw, aiohttp.ClientSession() as http:
        async with http.get(f"{gw.url}/api/shop/hello"):
            pass
        async with http.get(f"{gw.url}/metrics") as r:
            text = await r.text()
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE minga_gateway_request_duration_seconds histogram" in text
    assert f'minga_gateway_upstream_outstanding{{upstream="127.0.0.1:{a.port}"}} 0' in text


async def test_response_timeout_answers_504_and_connect_failures_fail_over(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    (a,) = replicas("a")
    slow = RouteSpec(
        path="/api/shop", service="shop", strip_prefix=True, timeouts=GatewayTimeoutsSpec(response=0.3)
    )
    dead = "127.0.0.1:1"  # nothing listens on port 1
    source = StaticSource({"shop": [dead, f"127.0.0.1:{a.port}"]})
    async with Gateway(gateway_spec(routes=[slow]), source) as gw, aiohttp.ClientSession() as http:
        async with http.get(f"{gw.url}/api/shop/hello?ms=2000") as r:
            assert r.status == 504
        for _ in range(10):
            async with http.get(f"{gw.url}/api/shop/hello") as r:
                assert r.status == 200
        async with http.post(f"{gw.url}/api/shop/echo", data=b"x") as r:
            assert r.status == 200, "a connect failure is retried whatever the method"
    assert gw.metrics.retries.get(("/api/shop",), 0) >= 1


async def test_retries_only_idempotent_requests_when_the_connection_drops(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    a, b = replicas("a", "b")
    spec = gateway_spec(breaker={"failures": 1000})  # keep sending to `a`, however often it drops
    async with Gateway(spec, source_of(a, b)) as gw, aiohttp.ClientSession() as http:
        for _ in range(20):
            async with http.get(f"{gw.url}/api/shop/hello?drop=a") as r:
                assert r.status == 200 and (await r.json()) == {"replica": "b"}
        statuses = []
        for _ in range(20):
            async with http.post(f"{gw.url}/api/shop/echo?drop=a", data=b"once") as r:
                statuses.append(r.status)
    assert set(statuses) == {200, 502}, "a POST that may have been processed is not sent twice"
