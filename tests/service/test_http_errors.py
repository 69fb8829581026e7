"""A service that behaves like a shop: domain errors are 4xx with their message, unknown routes a
JSON 404 naming the routes, and state in a JetStream key-value bucket that every replica shares."""

from __future__ import annotations

import aiohttp

from minga import Service, http, rpc
from minga.errors import RemoteError
from minga.service import KeyValue
from minga.service._http import error_status
from minga.service.testing import ContainerFactory


class NotSold(Exception):
    pass


class Missing(LookupError):
    pass


class Counter(Service):
    name = "counter"
    http_errors = {NotSold: 422, LookupError: 404, "OutOfStock": 409}

    counts = KeyValue("counts")

    @http.post("/counts/{key}")
    async def bump(self, key: str) -> int:
        if key == "tobacco":
            raise NotSold(f"the shop does not sell {key}")
        value = (await self.counts.get(key) or 0) + 1
        await self.counts.put(key, value)
        return int(value)

    @http.get("/counts/{key}")
    async def show(self, key: str) -> int:
        value = await self.counts.get(key)
        if value is None:
            raise Missing(f"no count for {key!r}")  # a subclass of a mapped class
        return int(value)

    @http.get("/boom")
    async def boom(self) -> None:
        raise RuntimeError("a bug")

    @rpc
    async def noop(self) -> None:
        return None


async def test_domain_errors_are_4xx_and_unknown_routes_a_json_404(container_factory: ContainerFactory) -> None:
    async with (
        container_factory(Counter, http_port=0) as one,
        aiohttp.ClientSession(f"http://127.0.0.1:{one.http_port}") as web,
    ):
        async with web.post("/counts/tobacco") as r:
            assert r.status == 422
            assert await r.json() == {"error": {"type": "NotSold", "message": "the shop does not sell tobacco"}}
        async with web.get("/counts/nothing") as r:
            assert r.status == 404
            assert await r.json() == {"error": {"type": "Missing", "message": "no count for 'nothing'"}}
        async with web.get("/boom") as r:
            assert r.status == 500  # not mapped: a bug stays a 500
        async with web.post("/") as r:
            assert r.status == 404 and r.content_type == "application/json"
            error = (await r.json())["error"]
            assert error["message"] == "no route for POST /"
            assert {"POST /counts/{key}", "GET /counts/{key}", "GET /healthz"} <= set(error["routes"])
        async with web.delete("/counts/a") as r:
            assert r.status == 405 and "GET /counts/{key}" in (await r.json())["error"]["routes"]


async def test_a_key_value_bucket_is_shared_by_every_replica(container_factory: ContainerFactory) -> None:
    async with (
        container_factory(Counter, http_port=0) as one,
        container_factory(Counter, http_port=0) as two,
        aiohttp.ClientSession() as web,
    ):
        for _ in range(3):
            async with web.post(f"http://127.0.0.1:{one.http_port}/counts/tea") as r:
                assert r.status == 200
        async with web.get(f"http://127.0.0.1:{two.http_port}/counts/tea") as r:
            assert r.status == 200 and await r.json() == 3


def test_an_error_of_another_service_maps_by_its_remote_type() -> None:
    assert error_status(RemoteError("OutOfStock", "tea: 0 left"), Counter.http_errors) == 409
    assert error_status(RemoteError("KeyError", "x"), Counter.http_errors) is None
    assert error_status(Missing("x"), Counter.http_errors) == 404  # through its base class
