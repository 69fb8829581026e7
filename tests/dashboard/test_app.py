"""The dashboard's aiohttp app on its own, over a small source: assets from package data, the JSON
API, its 400s and 404s, and both event streams."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from minga.dashboard import ASSETS, DashboardSource, LogQuery, dashboard_app

LINES = [
    {"at": "2026-01-01T10:00:00+00:00", "service": "orders", "instance": "orders-1", "level": "info",
     "message": "placed order 1", "trace_id": "a" * 32, "fields": {"sku": "tea"}},
    {"at": "2026-01-01T10:00:01+00:00", "service": "payments", "instance": "payments-2", "level": "error",
     "message": "card declined", "trace_id": "a" * 32, "fields": {}},
]  # fmt: skip


class Fixed(DashboardSource):
    """A source with fixed contents; its tail yields what ``feed`` receives."""

    def __init__(self) -> None:
        super().__init__(refresh=0.2)
        self.feed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queries: list[LogQuery] = []

    def status(self) -> dict[str, Any]:
        return {"name": "t", "services": [{"name": "orders", "replicas": 1, "instances": [], "healthy": True}]}

    async def search_logs(self, query: LogQuery) -> list[dict[str, Any]]:
        self.queries.append(query)
        return [line for line in LINES if query.matches(line)]

    async def tail_logs(self, query: LogQuery) -> AsyncIterator[dict[str, Any]]:
        while True:
            line = await self.feed.get()
            if query.matches(line):
                yield line


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Fixed, web.AppRunner]]:
    source = Fixed()
    app = web.Application()
    app.add_subapp("/dashboard", dashboard_app(source))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/dashboard", source, runner
    finally:
        if runner.server is not None:
            await runner.cleanup()


async def test_every_asset_is_served_from_package_data_and_names_no_other_host(served: tuple[str, Fixed, web.AppRunner]) -> None:
    url, _, _ = served
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/") as r:
            assert r.status == 200 and r.content_type == "text/html"
            page = await r.text()
        for name in ASSETS:
            async with s.get(f"{url}/static/{name}") as r:
                assert r.status == 200, name
                body = await r.text()
            # no CDN, no font service: the only absolute URL allowed is the SVG namespace
            assert not [u for u in re.findall(r"https?://[^\s\"'`)]+", body) if "www.w3.org" not in u], name
        assert all(f"static/{n}" in page for n in ("app.css", "app.js", "charts.js"))
        async with s.get(url + "/static/secret.txt") as r:
            assert r.status == 404


async def test_log_search_filters_and_reports_bad_parameters(served: tuple[str, Fixed, web.AppRunner]) -> None:
    url, source, _ = served
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/api/logs", params={"q": "DECLINED", "level": "warning"}) as r:
            assert [line["instance"] for line in (await r.json())["lines"]] == ["payments-2"]
        async with s.get(url + "/api/logs", params={"q": "tea"}) as r:  # a field's value matches too
            assert [line["instance"] for line in (await r.json())["lines"]] == ["orders-1"]
        async with s.get(url + "/api/logs", params={"trace": "a" * 32, "since": "15m", "limit": "5"}) as r:
            assert r.status == 200
        query = source.queries[-1]
        assert query.limit == 5 and query.since is not None
        assert datetime.now(UTC) - query.since - timedelta(minutes=15) < timedelta(seconds=5)
        async with s.get(url + "/api/logs", params={"level": "loud"}) as r:
            assert r.status == 400 and "level must be one of" in (await r.json())["error"]
        async with s.get(url + "/api/logs", params={"since": "yesterday-ish"}) as r:
            assert r.status == 400 and "since" in (await r.json())["error"]
        async with s.get(url + "/api/services/nope") as r:
            assert r.status == 404
        async with s.get(url + "/api/traces/" + "b" * 32) as r:
            assert r.status == 404
        async with s.get(url + "/api/services/orders", params={"window": "60"}) as r:
            doc = await r.json()
            assert doc["service"]["name"] == "orders" and doc["metrics"]["series"] == {}


async def test_log_lines_come_newest_first_whatever_the_source_order(
    served: tuple[str, Fixed, web.AppRunner],
) -> None:
    url, _, _ = served  # the source gives LINES oldest first, as files are read
    async with aiohttp.ClientSession() as s, s.get(url + "/api/logs") as r:
        lines = (await r.json())["lines"]
    assert [line["message"] for line in lines] == ["card declined", "placed order 1"]


async def read_events(resp: aiohttp.ClientResponse, n: int) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    kind = ""
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            events.append((kind, line[6:]))
            if len(events) == n:
                break
    return events


async def test_event_streams_push_changes_and_tailed_lines(served: tuple[str, Fixed, web.AppRunner]) -> None:
    url, source, runner = served
    async with aiohttp.ClientSession() as s, asyncio.timeout(10):
        async with s.get(url + "/api/events") as events:
            assert events.headers["Content-Type"] == "text/event-stream"
            first = await read_events(events, 1)
            assert first[0][0] == "overview" and '"orders"' in first[0][1]
            source.notify_changed()
            assert (await read_events(events, 1))[0][0] == "overview"
        async with s.get(url + "/api/logs/tail", params={"service": "payments"}) as tail:
            for line in LINES:
                source.feed.put_nowait(line)
            got = await read_events(tail, 1)
            assert got[0][0] == "line" and '"payments-2"' in got[0][1]
        # a page left open must not hold up the server's shutdown: its stream ends
        async with s.get(url + "/api/events") as held:
            await read_events(held, 1)
            await runner.cleanup()
            assert b"data:" not in await held.content.read()  # the stream ended


def test_log_query_levels_and_text() -> None:
    info, error = LINES
    assert LogQuery(level="error").matches(error) and not LogQuery(level="error").matches(info)
    assert LogQuery(level="debug").matches(info)
    assert LogQuery(text="PLACED", service="orders").matches(info)
    assert not LogQuery(text="placed", service="payments").matches(info)
    assert not LogQuery(instance="orders-2").matches(info)
    assert LogQuery(trace_id="a" * 32).matches(error) and not LogQuery(trace_id="b").matches(error)
