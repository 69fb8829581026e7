"""examples/shop scraped by a real Prometheus (Debian) configured by `minga monitor render prometheus`:
the same queries give the same answers as minga's own query API (counters exactly, rates within
scrape timing), the gateway included, with the same labels on raw series; and a control plane on a
port fixed in minga.yaml keeps the rendered file valid across `minga down` / `minga up`."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

import support
from minga.controlplane import ControlPlaneClient, read_state

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
ORDERS = 24  # placed through the gateway


def minga(*args: str, home: Path, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINGA_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "minga", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


async def run(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    out = await asyncio.to_thread(minga, *args, home=home, cwd=cwd)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def _spec(tmp_path: Path, **extra: Any) -> Path:
    """examples/shop's minga.yaml, run from tmp_path, scraped every second, with ``extra`` sections."""
    doc = yaml.safe_load((SHOP / "minga.yaml").read_text(encoding="utf-8"))
    for service in doc["services"].values():
        service["workdir"] = str(SHOP)
    doc["monitor"] = {"scrape_interval": "1s"}
    doc.update(extra)
    path = tmp_path / "minga.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


class Prometheus:
    """A real prometheus on a free port, its data under ``tmp``, answering the HTTP API."""

    def __init__(self, config: Path, tmp: Path, http: aiohttp.ClientSession) -> None:
        binary = shutil.which("prometheus")
        assert binary is not None, "prometheus is not installed: `make test` installs it (Debian package prometheus)"
        self.port = support.free_port()
        self.http = http
        self.server = support.ServerProcess(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            self.port,
            log=tmp / "prometheus.log",
        )

    async def get(self, path: str, **params: str) -> Any:
        async with self.http.get(f"http://127.0.0.1:{self.port}/api/v1/{path}", params=params) as resp:
            if resp.status == 503:  # its storage is not open yet
                return None
            doc = await resp.json()
        assert doc["status"] == "success", doc
        return doc["data"]

    async def query(self, query: str, at: float) -> dict[frozenset[tuple[str, str]], float]:
        data = await self.get("query", query=query, time=f"{at:.3f}")
        assert data is not None
        return {
            frozenset((k, v) for k, v in r["metric"].items() if k != "__name__"): float(r["value"][1])
            for r in data["result"]
        }

    async def targets_up(self) -> dict[str, str]:
        """instance -> scrape URL of every target that is up."""
        data = await self.get("targets")
        if data is None:
            return {}
        return {t["labels"]["instance"]: t["scrapeUrl"] for t in data["activeTargets"] if t["health"] == "up"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _minga_query(cp: ControlPlaneClient, query: str, at: float) -> dict[frozenset[tuple[str, str]], float]:
    doc = await cp.monitor("query", query=query, time=f"{at:.3f}")
    return {
        frozenset((k, v) for k, v in r["labels"].items() if k != "__name__"): float(r["value"])
        for r in doc["result"]
    }


async def test_prometheus_answers_like_minga_on_the_shop(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    home = tmp_path / "home"
    spec = _spec(tmp_path)
    control = support.free_port()
    await run("up", "--detach", "--control-port", str(control), "--timeout", "150", home=home, cwd=tmp_path)
    try:
        state = read_state(home)
        assert state is not None and state.url == f"http://127.0.0.1:{control}"
        cp = ControlPlaneClient.for_home(home)
        gateway = (await cp.status())["gateway"]

        config = tmp_path / "prometheus.yml"
        rendered = await run("monitor", "render", "prometheus", "-f", str(spec), "-o", str(config), "--interval", "1",
                             home=home, cwd=tmp_path)
        # the port came from --control-port, not from minga.yaml: the next `minga up` may change it
        assert "set `control: {port: N}` in minga.yaml" in rendered.stdout, rendered.stdout
        assert f"url: http://127.0.0.1:{control}/v1/discovery/http_sd" in config.read_text()
        check = await asyncio.to_thread(
            subprocess.run, ["promtool", "check", "config", str(config)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr

        prom = Prometheus(config, tmp_path, http)
        await asyncio.to_thread(prom.server.start, 30)
        try:
            expected = {f"{s}-{i}" for s in ("inventory", "payments", "notifications", "orders") for i in (1, 2)}
            expected.add("gateway")

            async def every_target_up_in_both() -> bool:
                ours = {t["instance"] for t in (await cp.monitor("targets"))["targets"] if t["up"]}
                return ours == expected and set(await prom.targets_up()) == expected

            # the gateway is one of Prometheus's targets, scraped at its metrics path
            await support.eventually("every target up in minga and Prometheus", every_target_up_in_both, 90, 0.5)
            assert (await prom.targets_up())["gateway"] == f"{gateway}/metrics"

            started = time.time()
            for n in range(ORDERS):
                order = {"sku": "tea", "qty": 1, "customer": f"c{n}"}
                async with http.post(f"{gateway}/api/orders/orders", json=order) as resp:
                    assert resp.status == 200, await resp.text()
                # spread over a dozen scrapes: one scrape interval then holds about a twelfth of the
                # traffic, so where each scraper's samples fall moves a rate by well under the tolerance
                await asyncio.sleep(0.5)
            ended = time.time()

            counters = {
                "calls": "sum by (service, kind, outcome) (minga_entrypoint_calls_total)",
                "gateway": "sum by (route, code) (minga_gateway_requests_total)",
            }

            async def settled() -> float:
                """A time at which both hold every call (the notifications' jobs run after the orders)."""
                at = time.time()
                ours = await _minga_query(cp, counters["calls"], at)
                theirs = await prom.query(counters["calls"], at)
                queued = sum(v for k, v in ours.items() if ("kind", "queue") in k)
                if queued != ORDERS or ours != theirs:
                    return 0.0
                # and the gateway's last requests too: it is scraped on its own schedule
                ours, theirs = await _minga_query(cp, counters["gateway"], at), await prom.query(counters["gateway"], at)
                return at if sum(ours.values()) == ORDERS and ours == theirs else 0.0

            at = await support.eventually("both to scrape every call", settled, 30, 0.5)
            for name, query in counters.items():
                ours, theirs = await _minga_query(cp, query, at), await prom.query(query, at)
                assert ours == theirs, f"{name}: minga {ours} != Prometheus {theirs}"
            gateway_total = await prom.query(counters["gateway"], at)
            assert sum(gateway_total.values()) == ORDERS

            # `up` per target, and raw series with the very same label sets (no `job` beside them)
            for query in ("up", "minga_gateway_requests_total", 'minga_entrypoint_calls_total{service="orders"}'):
                ours, theirs = await _minga_query(cp, query, at), await prom.query(query, at)
                assert ours == theirs, f"{query}: minga {sorted(ours)} != Prometheus {sorted(theirs)}"
            assert (await prom.query('up{service="gateway"}', at)) == {
                frozenset({("service", "gateway"), ("instance", "gateway")}): 1.0
            }

            # rates over a window that holds the traffic: equal within scrape timing
            window = math.ceil(ended - started) + 10
            mid = ended + 3
            await asyncio.sleep(max(0.0, mid + 2 - time.time()))  # both scraped past `mid`
            rates = {
                "calls": f"sum by (service) (rate(minga_entrypoint_calls_total[{window}s]))",
                "gateway": f"sum(rate(minga_gateway_requests_total[{window}s]))",
            }
            for name, query in rates.items():
                ours, theirs = await _minga_query(cp, query, mid), await prom.query(query, mid)
                assert ours.keys() == theirs.keys(), f"{name}: {sorted(ours)} != {sorted(theirs)}"
                for labels, value in ours.items():
                    assert value > 0 and theirs[labels] == pytest.approx(value, rel=0.15), (
                        f"{name} {sorted(labels)}: minga {value} vs Prometheus {theirs[labels]}"
                    )
        finally:
            await asyncio.to_thread(prom.server.stop)
    finally:
        down = await asyncio.to_thread(minga, "down", home=home, cwd=tmp_path)
    assert down.returncode == 0, down.stderr


async def test_a_fixed_control_port_keeps_the_rendered_file_valid_across_restarts(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    home = tmp_path / "home"
    control = support.free_port()
    spec = tmp_path / "minga.yaml"
    spec.write_text(
        f"name: stock\nbroker: {{port: 0}}\ncontrol: {{listen: '127.0.0.1:{control}'}}\n"
        "monitor: {scrape_interval: 1s}\nservices:\n"
        f"  inventory: {{module: shop.inventory:Inventory, workdir: {SHOP}, ports: [http],"
        " health: {http: /healthz, interval: 500ms, timeout: 400ms}}\n",
        encoding="utf-8",
    )
    # rendered before anything runs: from the port minga.yaml fixes
    config = tmp_path / "prometheus.yml"
    await run("monitor", "render", "prometheus", "-o", str(config), "--interval", "1", home=home, cwd=tmp_path)
    assert f"url: http://127.0.0.1:{control}/v1/discovery/http_sd" in config.read_text()

    prom = Prometheus(config, tmp_path, http)
    await asyncio.to_thread(prom.server.start, 30)
    try:
        started: list[float] = []
        for _ in range(2):  # the same file, two runs of the system
            await run("up", "--detach", "--timeout", "90", home=home, cwd=tmp_path)
            try:
                state = read_state(home)
                assert state is not None and state.url == f"http://127.0.0.1:{control}"

                async def a_new_replica_scraped() -> float:
                    data = await prom.get("query", query='process_start_time_seconds{instance="inventory-1"}')
                    found = [float(r["value"][1]) for r in (data or {}).get("result", [])]
                    return found[0] if found and found[0] not in started else 0.0

                started.append(await support.eventually("Prometheus to scrape this run's replica", a_new_replica_scraped, 60, 0.5))
            finally:
                down = await asyncio.to_thread(minga, "down", home=home, cwd=tmp_path)
            assert down.returncode == 0, down.stderr
        assert started[1] > started[0]
    finally:
        await asyncio.to_thread(prom.server.stop)
