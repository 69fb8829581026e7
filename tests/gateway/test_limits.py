"""Circuit breakers, rate limits, and clients that send too much, too slowly or nonsense."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from minga.gateway import BreakerState, Gateway, StaticSource
from minga.spec import GatewaySpec, RouteSpec
from support import ServerProcess

ROUTE = RouteSpec(path="/api/shop", service="shop", strip_prefix=True)


def spec(**fields: object) -> GatewaySpec:
    return GatewaySpec.model_validate({"port": 0, "routes": [ROUTE], **fields})


async def stats(http: aiohttp.ClientSession, proc: ServerProcess) -> int:
    async with http.get(f"http://127.0.0.1:{proc.port}/stats") as r:
        return int((await r.json())["requests"])


async def test_breaker_opens_on_a_failing_instance_and_a_probe_closes_it(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    a, b = replicas("a", "b")
    source = StaticSource({"shop": [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]})
    async with (
        Gateway(spec(breaker={"failures": 3, "open_for": "500ms"}), source) as gw,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(f"http://127.0.0.1:{a.port}/mode?status=503"):
            pass
        codes = []
        for _ in range(40):
            async with http.get(f"{gw.url}/api/shop/hello") as r:
                codes.append(r.status)
        a_id = f"127.0.0.1:{a.port}"
        assert gw.breaker_state(a_id) is BreakerState.OPEN
        assert codes.count(503) == 3, "three failures open the breaker; then only b answers"
        assert await stats(http, a) == 3
        # after open_for, one probe goes to a; it still fails, so the breaker reopens for longer
        await asyncio.sleep(0.6)
        for _ in range(10):
            async with http.get(f"{gw.url}/api/shop/hello"):
                pass
        assert await stats(http, a) == 4 and gw.breaker_state(a_id) is BreakerState.OPEN
        # a mends; the next probe (after the doubled wait) closes the breaker and a gets traffic again
        async with http.post(f"http://127.0.0.1:{a.port}/mode?status=200"):
            pass
        await asyncio.sleep(1.1)
        for _ in range(30):
            async with http.get(f"{gw.url}/api/shop/hello") as r:
                assert r.status == 200
        assert gw.breaker_state(a_id) is BreakerState.CLOSED and await stats(http, a) > 6
    text = gw.metrics.render()
    assert f'upstream="127.0.0.1:{a.port}",outcome="error"}} 4' in text


class ManualClock:
    """A clock that moves only when the test moves it: rate windows that no load can stretch."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limit_answers_429_with_retry_after_per_client_key(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    (a,) = replicas("a")
    limits = {"rate": {"rate": 2, "burst": 5, "key": "header:X-API-Key"}}
    source = StaticSource({"shop": [f"127.0.0.1:{a.port}"]})
    clock = ManualClock()
    async with Gateway(spec(limits=limits), source, clock=clock) as gw, aiohttp.ClientSession() as http:

        async def get(key: str | None) -> aiohttp.ClientResponse:
            headers = {"X-API-Key": key} if key else {}
            async with http.get(f"{gw.url}/api/shop/hello", headers=headers) as r:
                return r

        codes, retry_after = [], set()
        for _ in range(8):
            r = await get("k1")
            codes.append(r.status)
            if r.status == 429:
                retry_after.add(r.headers["Retry-After"])
        assert codes == [200] * 5 + [429] * 3 and retry_after == {"1"}
        assert (await get("k2")).status == 200, "another key has its own bucket"
        assert (await get(None)).status == 200, "no key: limited by address, a bucket of its own"
        clock.now += 0.4
        assert (await get("k1")).status == 429, "0.4 s at 2 per second is not a whole token yet"
        clock.now += 0.1
        assert (await get("k1")).status == 200, "tokens come back at the rate"
        assert (await get("k1")).status == 429, "one token came back, and it is spent"
        clock.now += 60
        assert [(await get("k1")).status for _ in range(6)] == [200] * 5 + [429], "a full burst, not more"
    assert gw.metrics.rate_limited[("/api/shop",)] == 6


async def _raw(port: int, data: bytes, *, read_timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(read_timeout):
            return await reader.read()  # until the gateway closes
    finally:
        writer.close()


async def test_malformed_oversized_and_slow_clients_are_bounded_without_hurting_others(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    (a,) = replicas("a")
    limits = {
        "max_body": 1024,
        "max_header": 2048,
        "header_timeout": "300ms",
        "body_timeout": "300ms",
        "idle_timeout": "500ms",
    }
    source = StaticSource({"shop": [f"127.0.0.1:{a.port}"]})
    async with Gateway(spec(limits=limits), source) as gw, aiohttp.ClientSession() as http:
        stop = asyncio.Event()
        good: list[int] = []

        async def well_behaved() -> None:
            while not stop.is_set():
                async with http.get(f"{gw.url}/api/shop/hello") as r:
                    good.append(r.status)
                await asyncio.sleep(0.01)

        bystander = asyncio.create_task(well_behaved())
        try:
            await _misbehave(gw.port)
        finally:
            stop.set()
            await bystander
    assert good and set(good) == {200}, "the well-behaved client never saw an error"
    assert len(good) > 20


async def _misbehave(port: int) -> None:
    bad = await _raw(port, b"GET /api/shop/hello HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400 ")
    bad = await _raw(port, b"NOT HTTP AT ALL\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400 ")
    huge = b"GET /api/shop/hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n"
    assert (await _raw(port, huge)).startswith(b"HTTP/1.1 431 ")
    big = b"POST /api/shop/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 100
    assert (await _raw(port, big)).startswith(b"HTTP/1.1 413 ")
    chunks = b"".join(b"100\r\n" + b"y" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
    chunked = b"POST /api/shop/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    assert (await _raw(port, chunked)).startswith(b"HTTP/1.1 413 ")
    slow_head = b"GET /api/shop/hello HTTP/1.1\r\nHost: x\r\n"  # never finishes its head
    assert (await _raw(port, slow_head)).startswith(b"HTTP/1.1 408 ")
    slow_body = b"POST /api/shop/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly-part"
    answer = await _raw(port, slow_body)
    assert answer.startswith(b"HTTP/1.1 408 ") or answer == b"", answer[:60]
    # a connection that says nothing is closed after the head timeout, one that idles after the idle one
    assert await _raw(port, b"") == b""
    idle = await _raw(port, b"GET /api/shop/hello HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.startswith(b"HTTP/1.1 200 ") and idle.endswith(b'{"replica": "a"}')
    ok = await _raw(port, b"GET /api/shop/hello HTTP/1.0\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in ok


async def test_a_client_that_leaves_mid_request_frees_the_slot_and_blames_no_instance(
    replicas: Callable[..., list[ServerProcess]],
) -> None:
    (a,) = replicas("a")
    source = StaticSource({"shop": [f"127.0.0.1:{a.port}"]})
    a_id = f"127.0.0.1:{a.port}"
    async with Gateway(spec(breaker={"failures": 1}), source) as gw, aiohttp.ClientSession() as http:
        # each twice: on a new upstream connection (a task), and on a pooled one (callbacks only)
        for path, warm in [
            (p, w) for p in ("/api/shop/hello?ms=500", "/api/shop/stream") for w in (False, True)
        ]:
            if warm:
                async with http.get(f"{gw.url}/api/shop/hello") as r:
                    assert r.status == 200
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            await writer.drain()
            async with asyncio.timeout(5):
                while gw.outstanding(a_id) == 0:  # noqa: ASYNC110 - the count has no event of its own
                    await asyncio.sleep(0.01)
            writer.close()
            async with asyncio.timeout(5):
                await gw.wait_idle(a_id)
            del reader
            assert gw.breaker_state(a_id) is BreakerState.CLOSED, (path, warm)
        async with http.get(f"{gw.url}/api/shop/hello") as r:
            assert r.status == 200
