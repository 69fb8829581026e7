"""The Logs page in headless Chromium over a small source: rows strictly newest first, from the
search and from the live tail, whatever order the lines arrive in."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from dashboard_harness import CHROMIUM, CHROMIUM_ARGS
from playwright.sync_api import sync_playwright

from minga.dashboard import DashboardSource, LogQuery, dashboard_app


def line(at: str, instance: str, message: str) -> dict[str, Any]:
    return {"at": at, "service": instance.rsplit("-", 1)[0], "instance": instance, "level": "info",
            "message": message, "trace_id": None, "fields": {}}  # fmt: skip


# as the monitor's index may give them: in the order they were collected, replica by replica
SEARCHED = [
    line("2026-01-01T10:00:03.000+00:00", "orders-2", "third"),
    line("2026-01-01T10:00:01.000+00:00", "orders-1", "first"),
    line("2026-01-01T10:00:04.000+00:00", "orders-1", "fourth"),
    line("2026-01-01T10:00:02.000+00:00", "orders-2", "second"),
]


class Lines(DashboardSource):
    """Fixed search results; its tail yields what :meth:`push` sends, from any thread."""

    def __init__(self) -> None:
        super().__init__(refresh=0.5)
        self.feed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.loop: asyncio.AbstractEventLoop | None = None

    def status(self) -> dict[str, Any]:
        return {"name": "t", "services": [{"name": "orders", "replicas": 2, "instances": [], "healthy": True}]}

    async def search_logs(self, query: LogQuery) -> list[dict[str, Any]]:
        return [x for x in SEARCHED if query.matches(x)]

    async def tail_logs(self, query: LogQuery) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.feed.get()

    def push(self, item: dict[str, Any]) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.feed.put_nowait, item)


@pytest.fixture
def served() -> Iterator[tuple[str, Lines]]:
    """The dashboard app over :class:`Lines` on 127.0.0.1, its event loop in a thread of its own
    (Playwright's sync API runs one in this thread)."""
    source = Lines()
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    urls: list[str] = []

    async def serve() -> None:
        source.loop = asyncio.get_running_loop()
        stop.append(asyncio.Event())
        app = web.Application()
        app.add_subapp("/dashboard", dashboard_app(source))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        urls.append(f"http://{host}:{port}/dashboard/")
        ready.set()
        try:
            await stop[0].wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield urls[0], source
    finally:
        assert source.loop is not None
        source.loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)


def shown(tab: Any) -> list[tuple[str, str]]:
    rows = tab.locator("#log-results tbody tr")
    return [(rows.nth(i).get_attribute("data-at"), rows.nth(i).locator("td.msg").inner_text())
            for i in range(rows.count())]  # fmt: skip


def test_log_rows_are_strictly_newest_first(served: tuple[str, Lines]) -> None:
    url, source = served
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page()
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(url + "#/logs")
            tab.wait_for_selector("#log-results tbody tr", timeout=15_000)
            assert [m for _, m in shown(tab)] == ["fourth", "third", "second", "first"]

            tab.click("#tail-toggle")
            tab.wait_for_selector("#tail-toggle.on")
            rows_are = "() => document.querySelectorAll('#log-results tbody tr').length === {}"
            # a new line, then one another replica wrote earlier but that was collected later
            source.push(line("2026-01-01T10:00:06.000+00:00", "orders-1", "sixth"))
            tab.wait_for_function(rows_are.format(5), timeout=15_000)
            source.push(line("2026-01-01T10:00:05.000+00:00", "orders-2", "fifth"))
            tab.wait_for_function(rows_are.format(6), timeout=15_000)
            source.push(line("2026-01-01T10:00:00.500+00:00", "orders-2", "very late"))
            tab.wait_for_function(rows_are.format(7), timeout=15_000)
            rows = shown(tab)
        finally:
            browser.close()
    assert [m for _, m in rows] == ["sixth", "fifth", "fourth", "third", "second", "first", "very late"]
    times = [datetime.fromisoformat(at) for at, _ in rows if at]
    assert len(times) == 7 and times == sorted(times, reverse=True)
    assert not errors, errors
