"""Attacks through the path, performed against a real gateway and a real replica: each is
refused or normalised (never forwarded raw), and the legitimate path still works."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiohttp

from minga.gateway import Endpoint, Gateway, StaticSource
from minga.spec import GatewaySpec, RouteSpec
from support import ServerProcess


async def raw_get(
    url: str, target: str, method: str = "GET", body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` byte for byte (an HTTP client would normalise it first); status, headers, body."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode("latin-1") + body)
        async with asyncio.timeout(10):
            data = await reader.read(-1)
    finally:
        writer.close()
    top, _, payload = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, payload


async def seen_paths(http: aiohttp.ClientSession, proc: ServerProcess) -> list[str]:
    async with http.get(f"http://127.0.0.1:{proc.port}/stats") as r:
        return list((await r.json())["paths"])


def spec(*routes: RouteSpec) -> GatewaySpec:
    return GatewaySpec(
        port=0, routes=list(routes) or [RouteSpec(path="/api/shop", service="shop", strip_prefix=True)]
    )


async def test_dot_segments_are_resolved_before_routing_and_never_forwarded_raw(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    (a,) = replicas("a")
    source = StaticSource({"shop": [f"127.0.0.1:{a.port}"]})
    async with Gateway(spec(), source) as gw, aiohttp.ClientSession() as http:
        for target in (
            "/api/shop/../../etc/passwd",
            "/api/shop/%2e%2e/%2E%2e/etc/passwd",
            "/api/shop/.%2e/.%2e/etc/passwd",
        ):
            status, _, body = await raw_get(gw.url, target)
            # normalised to /etc/passwd, which no route serves
            assert status == 404, target
            assert json.loads(body)["error"]["message"] == "no route for this path"
        for target, why in (
            ("/api/shop/../../../etc/passwd", "the path climbs above the root with .."),
            (
                "/api/shop/..%2f..%2f..%2fetc/passwd",
                "an encoded slash or a backslash in the path is not routed",
            ),
            ("/api/shop/..%5c..%5cetc/passwd", "an encoded slash or a backslash in the path is not routed"),
            ("/api/shop/..\\..\\etc/passwd", "an encoded slash or a backslash in the path is not routed"),
            ("http://127.0.0.1/etc/passwd", "the request target must be a path starting with /"),
        ):
            status, headers, body = await raw_get(gw.url, target)
            assert status == 400 and headers["content-type"] == "application/json", target
            assert json.loads(body)["error"]["message"] == why
        assert await seen_paths(http, a) == [], "nothing reached the replica"
        # the legitimate path, written with dot segments and empty segments, is forwarded normalised
        status, headers, body = await raw_get(gw.url, "/api/shop//x/../echo?q=/../", "POST", b"hi")
        assert status == 200 and body == b"hi"
        assert headers["x-seen-path"] == "/echo?q=/../"
        status, _, _ = await raw_get(gw.url, "/api/shop/hello")
        assert status == 200
        assert await seen_paths(http, a) == ["/echo?q=/../", "/hello"]


async def test_a_replicas_own_endpoints_are_routed_only_when_the_route_exposes_them(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    (a,) = replicas("a")
    source = StaticSource({"shop": [f"127.0.0.1:{a.port}"], "ops": [f"127.0.0.1:{a.port}"]})
    routes = (
        RouteSpec(path="/api/shop", service="shop", strip_prefix=True),
        RouteSpec(path="/ops/shop", service="ops", strip_prefix=True, expose=["/healthz"]),
    )
    async with Gateway(spec(*routes), source) as gw, aiohttp.ClientSession() as http:
        for target in (
            "/api/shop/healthz",
            "/api/shop/metrics",
            "/api/shop/./metrics",
            "/api/shop//healthz",
            "/api/shop/%2e/healthz?x=1",
            "/api/shop/x/../metrics",
            "/ops/shop/metrics",  # exposes /healthz only
        ):
            status, _, body = await raw_get(gw.url, target)
            assert status == 404, target
            assert (
                json.loads(body)["error"]["message"]
                == "a replica's own /metrics and /healthz are not routed here"
            )
        assert await seen_paths(http, a) == []
        status, _, body = await raw_get(gw.url, "/ops/shop/healthz")
        assert status == 200 and body == b"ok"
        status, _, _ = await raw_get(gw.url, "/api/shop/hello")
        assert status == 200
        assert await seen_paths(http, a) == ["/healthz", "/hello"]


async def test_the_gateways_metrics_name_instances_not_their_addresses(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    (a,) = replicas("a")
    source = StaticSource({"shop": [Endpoint("shop-1", "127.0.0.1", a.port)]})
    async with Gateway(spec(), source) as gw, aiohttp.ClientSession() as http:
        async with http.get(f"{gw.url}/api/shop/hello") as r:
            assert r.status == 200
        async with http.get(f"{gw.url}/metrics") as r:
            text = await r.text()
    assert 'minga_gateway_upstream_requests_total{route="/api/shop",upstream="shop-1",outcome="ok"} 1' in text
    assert 'minga_gateway_upstream_outstanding{upstream="shop-1"} 0' in text
    assert str(a.port) not in text and "127.0.0.1" not in text
