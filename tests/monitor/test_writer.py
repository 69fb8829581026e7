"""The monitor's storage writes run on its writer thread, never on the event loop's."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from minga.bus import Span
from minga.monitor import LogStore, MetricStore, Monitor, MonitorSettings, ScrapeTarget, TraceStore

EXPOSITION = "# TYPE jobs_total counter\njobs_total 3\n"


@pytest.fixture
async def metrics_url() -> AsyncIterator[str]:
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=EXPOSITION)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/metrics"
    finally:
        await runner.cleanup()


async def test_scrapes_log_lines_spans_and_compaction_are_written_off_the_loop(
    tmp_path: Path, metrics_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: dict[str, set[str]] = {}

    def on_thread(cls: type, name: str) -> None:
        real = getattr(cls, name)

        def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
            threads.setdefault(f"{cls.__name__}.{name}", set()).add(threading.current_thread().name)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, recorded)

    for cls, name in ((MetricStore, "ingest"), (MetricStore, "compact"), (LogStore, "add"), (LogStore, "expire"),
                      (TraceStore, "add"), (TraceStore, "expire")):  # fmt: skip
        on_thread(cls, name)

    async def targets() -> list[ScrapeTarget]:
        return [ScrapeTarget("jobs", "jobs-1", metrics_url)]

    logs = tmp_path / "logs"
    logs.mkdir()
    now = datetime.now(UTC)
    record = {"ts": now.isoformat(), "level": "info", "service": "jobs", "instance": "jobs-1", "message": "hello"}
    (logs / "jobs-1.log").write_text(f"{now.isoformat()} {json.dumps(record)}\n", encoding="utf-8")
    settings = MonitorSettings(scrape_interval=3600, collect_interval=3600, evaluate_interval=3600)
    async with Monitor(tmp_path, targets=targets, settings=settings) as monitor:
        assert await monitor.scrape() > 0
        monitor.record_span(Span("ab" * 16, "cd" * 8, None, "jobs", "jobs-1", "run", "rpc", 1.0, 2.0, "ok"))
        assert await monitor.collect() >= 0
        await monitor.compact()
        health = monitor.health()
    loop_thread = threading.main_thread().name
    assert set(threads) == {"MetricStore.ingest", "MetricStore.compact", "LogStore.add", "LogStore.expire",
                            "TraceStore.add", "TraceStore.expire"}  # fmt: skip
    for method, names in threads.items():
        assert loop_thread not in names, method
        assert all(n.startswith("minga-monitor-store") for n in names), (method, names)
    assert health["storage"]["state"] == "ok"
