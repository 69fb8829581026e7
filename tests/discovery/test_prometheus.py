"""A real Prometheus finds and scrapes the registry's instances through the http_sd endpoint."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import support
from minga.discovery import Instance, Registry


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(text="# TYPE minga_demo_up gauge\nminga_demo_up 1\n", content_type="text/plain")


@pytest.mark.engine
async def test_prometheus_scrapes_what_the_registry_lists(
    served_registry: tuple[Registry, str], serve_app: Any, tmp_path: Path
) -> None:
    registry, url = served_registry
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    metrics_url = await serve_app(app)
    metrics_port = int(metrics_url.rsplit(":", 1)[1])
    await registry.register(
        Instance(id="orders-1", service="orders", version="2.0", ports={"http": 1, "metrics": metrics_port})
    )

    binary = shutil.which("prometheus")
    assert binary is not None, (
        "prometheus is not installed: `make test` installs it (Debian package prometheus)"
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: minga\n"
        "    http_sd_configs:\n"
        f"      - url: {url}/http_sd\n"
        "        refresh_interval: 1s\n"
        "    relabel_configs:\n"
        "      - source_labels: [__meta_minga_version]\n"
        "        target_label: version\n"
    )
    port = support.free_port()
    server = support.ServerProcess(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        port,
        log=tmp_path / "prometheus.log",
    )
    await asyncio.to_thread(server.start, 30)
    try:
        target: dict[str, Any] | None = None
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while target is None or target["health"] != "up":
                await asyncio.sleep(0.25)  # Prometheus has no push notification for scrapes
                async with http.get(f"http://127.0.0.1:{port}/api/v1/targets") as resp:
                    active = (await resp.json())["data"]["activeTargets"]
                target = active[0] if active else None
            async with http.get(
                f"http://127.0.0.1:{port}/api/v1/query", params={"query": "minga_demo_up"}
            ) as resp:
                result = (await resp.json())["data"]["result"]
        assert target["scrapeUrl"] == f"http://127.0.0.1:{metrics_port}/metrics"
        assert target["labels"]["service"] == "orders" and target["labels"]["instance_id"] == "orders-1"
        assert target["labels"]["version"] == "2.0"
        assert target["discoveredLabels"]["__meta_minga_health"] == "passing"
        assert [r["metric"]["service"] for r in result] == ["orders"]
    finally:
        await asyncio.to_thread(server.stop)
