"""The monitoring commands as a user runs them, against `minga up --detach` with real replicas:
`minga logs --grep/--level/--trace`, `minga traces`, `minga top --once`, alerts in `minga status`,
and `minga monitor render prometheus` scraped by the real Prometheus (Debian), which answers a query."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

import support
from minga.bus import Bus
from minga.cli._app import app
from minga.controlplane import ControlPlaneClient, read_state
from minga.errors import RemoteError

pytestmark = [pytest.mark.engine, pytest.mark.slow]

HERE = Path(__file__).resolve().parent  # trialsvc.py, the services the replicas run

SPEC = """\
name: trial
broker: {nats}
services:
  front:
    module: trialsvc:Front
    workdir: {here}
    ports: [http]
    health: {{http: /healthz, interval: 300ms, timeout: 300ms}}
    stop_grace: 3s
  back:
    module: trialsvc:Back
    replicas: 2
    workdir: {here}
    ports: [http]
    health: {{http: /healthz, interval: 300ms, timeout: 300ms}}
    stop_grace: 3s
alerts:
  back-errors:
    query: sum by (service) (rate(minga_entrypoint_calls_total{{service="back",outcome="error"}}[1m]))
    above: 0
    severity: critical
    summary: back fails calls
"""


def minga(*args: str, home: Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINGA_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "minga", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@dataclass
class Ran:
    returncode: int
    stdout: str
    error: str


def _invoke(args: tuple[str, ...], home: Path, cwd: Path) -> Ran:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), env={"MINGA_HOME": str(home), "COLUMNS": "200"})
    finally:
        os.chdir(old)
    return Ran(result.exit_code, result.stdout, str(result.exception or ""))


async def run(*args: str, home: Path, cwd: Path, ok: bool = True) -> Ran:
    """``minga ARGS`` in this process (a fresh interpreter per command costs seconds on a busy machine)."""
    out = await asyncio.to_thread(_invoke, args, home, cwd)
    if ok:
        assert out.returncode == 0, out.stdout + out.error
    return out


async def test_monitoring_commands_and_a_real_prometheus(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with support.running(support.nats_server(tmp_path, jetstream=True)) as nats:
        nats_url = f"nats://127.0.0.1:{nats.port}"
        (tmp_path / "minga.yaml").write_text(SPEC.format(nats=nats_url, here=HERE), encoding="utf-8")
        up = await asyncio.to_thread(minga, "up", "--detach", "--timeout", "60", home=home, cwd=tmp_path)
        assert up.returncode == 0, up.stdout + up.stderr
        try:
            state = read_state(home)
            assert state is not None
            cp = ControlPlaneClient.for_home(home)

            async def scraped() -> bool:
                targets = (await cp.monitor("targets"))["targets"]
                return len([t for t in targets if t["up"]]) == 3

            # calls made before a replica's first scrape would be in its first sample, not in a rate
            await support.eventually("every replica scraped once", scraped, every=0.5)
            async with Bus(nats_url) as bus:
                for n in range(1, 13):
                    with contextlib.suppress(RemoteError):
                        await bus.request("front", "hello", {"n": n})

            async def collected() -> bool:
                lines = (await cp.monitor("logs", service="back", level="warning", q="divisible"))["lines"]
                firing = (await cp.monitor("alerts"))["firing"]
                traces = (await cp.monitor("traces", service="back"))["traces"]
                return len(lines) >= 4 and bool(firing) and len(traces) >= 12

            await support.eventually("the monitor to collect logs, spans and the alert", collected, every=0.5)
            out = await run(
                "logs", "back", "--level", "warning", "--grep", "divisible", "--json", home=home, cwd=tmp_path
            )
            records = [json.loads(json.loads(line)["text"]) for line in out.stdout.strip().splitlines()]
            # each failed call: back's own warning, and the bus's error with the traceback
            assert sorted(r["level"] for r in records) == ["error"] * 4 + ["warning"] * 4
            assert all(r["service"] == "back" for r in records)
            trace_id = records[0]["trace_id"]
            traced = await run("logs", "--trace", trace_id, home=home, cwd=tmp_path)
            assert "front-1" in traced.stdout and "back-" in traced.stdout
            bad = await run("logs", "--level", "loud", home=home, cwd=tmp_path, ok=False)
            assert bad.returncode != 0 and "--level 'loud'" in bad.error

            listed = await run("traces", "--service", "back", "--limit", "50", home=home, cwd=tmp_path)
            assert trace_id in listed.stdout and "front.hello" in listed.stdout
            tree = await run("traces", "--trace", trace_id, home=home, cwd=tmp_path)
            assert re.search(r"front\.hello.*\n.*back\.work", tree.stdout), tree.stdout
            deps = await run("traces", "--deps", home=home, cwd=tmp_path)
            assert re.search(r"front\s*\│?\s*back", deps.stdout), deps.stdout

            top = (await run("top", "--once", home=home, cwd=tmp_path)).stdout
            assert "req/s" in top and "p95" in top and "back" in top and "front" in top
            status = (await run("status", home=home, cwd=tmp_path)).stdout
            assert "alert firing" in status and "back-errors" in status

            # a real Prometheus, configured by minga, scraping the same replicas
            if shutil.which("prometheus") is None:
                raise RuntimeError("prometheus is not installed: `make test` installs it (Debian package prometheus)")
            config = tmp_path / "prometheus.yml"
            await run("monitor", "render", "prometheus", "-o", str(config), "--interval", "1", home=home, cwd=tmp_path)
            check = await asyncio.to_thread(
                subprocess.run, ["promtool", "check", "config", str(config)], capture_output=True, text=True
            )
            assert check.returncode == 0, check.stdout + check.stderr
            port = support.free_port()
            prom = support.ServerProcess(
                ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'prom'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                port,
                log=tmp_path / "prometheus.log",
            )
            with support.running(prom, timeout=30):
                async with aiohttp.ClientSession() as session:

                    async def answered() -> dict[str, float]:
                        url = f"http://127.0.0.1:{port}/api/v1/query"
                        query = 'sum by (service) (minga_entrypoint_calls_total{kind="rpc"})'
                        async with session.get(url, params={"query": query}) as resp:
                            if resp.status != 200:  # 503 until its storage is open
                                return {}
                            doc = await resp.json()
                        got = {r["metric"]["service"]: float(r["value"][1]) for r in doc["data"]["result"]}
                        return got if got.get("back") == 12 and got.get("front") == 12 else {}

                    await support.eventually("Prometheus to answer the query", answered, seconds=40, every=0.5)
                    url = f"http://127.0.0.1:{port}/api/v1/query"
                    async with session.get(url, params={"query": 'up{service="back"}'}) as resp:
                        doc = await resp.json()
                    assert sorted(r["metric"]["instance"] for r in doc["data"]["result"]) == ["back-1", "back-2"]

            grafana = tmp_path / "dash.json"
            await run("monitor", "render", "grafana", "-o", str(grafana), home=home, cwd=tmp_path)
            panels = json.loads(grafana.read_text())["panels"]
            assert len(panels) >= 8 and all(p["targets"][0]["expr"] for p in panels)
        finally:
            down = minga("down", home=home, cwd=tmp_path)
        assert down.returncode == 0, down.stderr
