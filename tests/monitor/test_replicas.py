"""The monitor in a running control plane, with real replicas on a real nats-server: metrics
scraped from every replica, logs searchable by trace id, a trace across two services, the
dependency map, and an alert that fires, shows in the status and is published on the bus."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import support
from minga.bus import Bus
from minga.controlplane import ControlPlane, ServerState
from minga.errors import RemoteError
from minga.monitor import LogSearch, LogStore, MonitorSettings
from minga.spec import parse_spec

pytestmark = [pytest.mark.engine, pytest.mark.slow]

HERE = Path(__file__).resolve().parent  # trialsvc.py, the services the replicas run


def spec_text(nats_url: str, workdir: Path) -> str:
    return f"""\
name: trial
broker: {nats_url}
services:
  front:
    module: trialsvc:Front
    workdir: {workdir}
    ports: [http]
    health: {{http: /healthz, interval: 300ms, timeout: 300ms}}
    stop_grace: 3s
  back:
    module: trialsvc:Back
    replicas: 2
    workdir: {workdir}
    ports: [http]
    health: {{http: /healthz, interval: 300ms, timeout: 300ms}}
    stop_grace: 3s
gateway:
  port: 0
  routes:
    - {{path: /front, service: front, strip_prefix: true}}
alerts:
  back-errors:
    query: sum by (service) (rate(minga_entrypoint_calls_total{{service="back",outcome="error"}}[5s]))
    above: 0
    for: 500ms
    severity: critical
    summary: back fails calls
"""


async def get(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with session.get(url, params=params) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_metrics_logs_traces_alerts_from_real_replicas(tmp_path: Path) -> None:
    with support.running(support.nats_server(tmp_path, jetstream=True)) as nats:
        nats_url = f"nats://127.0.0.1:{nats.port}"
        spec = parse_spec(spec_text(nats_url, HERE), str(tmp_path / "minga.yaml"))
        cp = ControlPlane.from_spec(spec, tmp_path / "home")
        cp.monitor_settings = MonitorSettings(scrape_interval=0.5, evaluate_interval=0.5, collect_interval=0.2)
        ready: asyncio.Future[ServerState] = asyncio.get_running_loop().create_future()
        alerts_seen: list[dict[str, Any]] = []
        async with asyncio.TaskGroup() as tg:
            tg.create_task(cp.run(ready.set_result))
            try:
                state = await asyncio.wait_for(ready, 30)
                assert cp.supervisor is not None
                async with asyncio.timeout(60):
                    await cp.supervisor.wait_healthy()
                api = f"{state.url}/api/monitor"
                assert cp.credentials is not None  # the admin token, as the CLI reads it from the home
                auth = {"Authorization": f"Bearer {cp.credentials.admin}"}
                async with Bus(nats_url) as bus, aiohttp.ClientSession(headers=auth) as session:
                    async def on_alert(msg: Any) -> None:
                        alerts_seen.append(json.loads(msg.data))

                    await bus.nats.subscribe("_minga.alerts.>", cb=on_alert)

                    async def scraped() -> bool:
                        targets = (await get(session, f"{api}/targets"))["targets"]
                        return len([t for t in targets if t["up"]]) == 4  # three replicas, the gateway

                    await support.eventually("every replica scraped once", scraped)
                    failed = 0
                    for n in range(1, 31):
                        try:
                            await bus.request("front", "hello", {"n": n})
                        except RemoteError:
                            failed += 1
                    assert failed == 10
                    await bus.enqueue("chores", {"sweep": "floor"})

                    # metrics from every replica, per service
                    async def rates() -> dict[str, float]:
                        doc = await get(session, f"{api}/query",
                                        query="sum by (service) (minga_entrypoint_calls_total)")
                        found = {r["labels"]["service"]: r["value"] for r in doc["result"]}
                        return found if found.get("front", 0) >= 30 and found.get("back", 0) >= 30 else {}

                    await support.eventually("the calls in the scraped metrics", rates)
                    targets = (await get(session, f"{api}/targets"))["targets"]
                    assert sorted(t["instance"] for t in targets) == ["back-1", "back-2", "front-1", "gateway"]
                    assert all(t["up"] for t in targets)
                    doc = await get(session, f"{api}/query", query='sum by (instance) (minga_entrypoint_calls_total{service="back",kind="rpc"})')
                    per_replica = {r["labels"]["instance"]: r["value"] for r in doc["result"]}
                    assert sum(per_replica.values()) == 30
                    assert set(per_replica) == {"back-1", "back-2"}, "one queue group spreads calls over both replicas"
                    async def increase() -> bool:
                        doc = await get(session, f"{api}/query",
                                        query='sum(increase(minga_entrypoint_calls_total{service="front"}[1m]))')
                        return bool(doc["result"]) and doc["result"][0]["value"] >= 30

                    # counters are exposed at zero before the first call, so every call counts in a rate
                    await support.eventually("the calls in increase()", increase)
                    red = {r["service"]: r for r in (await get(session, f"{api}/red", window="1m"))["services"]}
                    assert red["back"]["p95"] is not None and red["back"]["rss"] > 1e6
                    assert red["front"]["targets"] == 1 and red["back"]["up"] == 2
                    depth = await get(session, f"{api}/query", query="max(minga_queue_pending)")
                    assert depth["result"], "a consumer exposes its queue depth"
                    lag = await get(session, f"{api}/query", query="max(minga_event_loop_lag_seconds)")
                    assert 0 <= lag["result"][0]["value"] < 5
                    bad = await session.get(f"{api}/query", params={"query": "rate(x)"})
                    assert bad.status == 400 and "needs a range" in (await bad.json())["error"]

                    # logs: the warning of a failed call, and every line of its trace
                    async def warning() -> list[dict[str, Any]]:
                        doc = await get(session, f"{api}/logs", service="back", level="warning", q="divisible")
                        return doc["lines"]

                    lines = await support.eventually("the warnings in the log index", warning)
                    trace_id = lines[0]["trace_id"]
                    assert trace_id and lines[0]["instance"] in ("back-1", "back-2")
                    traced = (await get(session, f"{api}/logs", trace_id=trace_id))["lines"]
                    assert {ln["service"] for ln in traced} == {"front", "back"}

                    # the live tail: a long poll from the newest line answers with the next ones
                    newest = (await get(session, f"{api}/logs", limit="1"))["last"]

                    async def call_later() -> None:
                        await asyncio.sleep(0.3)
                        await bus.request("front", "hello", {"n": 100})

                    seen: list[str] = []
                    async with asyncio.TaskGroup() as calls:
                        calls.create_task(call_later())
                        last = newest
                        for _ in range(10):  # lines of earlier calls may still be arriving first
                            tail = await get(session, f"{api}/logs/tail", after=str(last), wait="20s", service="front")
                            assert tail["lines"] and all(ln["id"] > last for ln in tail["lines"])
                            seen += [ln["message"] for ln in tail["lines"]]
                            last = tail["last"]
                            if "hello 100" in seen:
                                break
                    assert "hello 100" in seen

                    # the trace of that call: front's span, back's span under it
                    async def tree() -> dict[str, Any]:
                        async with session.get(f"{api}/traces/{trace_id}") as resp:
                            doc: dict[str, Any] = await resp.json()
                            return doc if resp.status == 200 and doc["spans"] >= 2 else {}

                    doc = await support.eventually("the spans of the trace", tree)
                    (root,) = doc["roots"]
                    assert root["service"] == "front" and root["status"] == "error"
                    assert [c["service"] for c in root["children"]] == ["back"]
                    assert root["children"][0]["status"] == "error" and root["duration"] >= root["children"][0]["duration"]
                    # through the gateway: its span is the root, the replicas' spans hang under it
                    assert cp.gateway is not None
                    async with session.get(f"{cp.gateway.url}/front/hello/4") as resp:
                        assert resp.status == 200, await resp.text()
                        via_gateway = resp.headers.get("traceparent") or ""

                    async def gateway_trace() -> list[dict[str, Any]]:
                        found = (await get(session, f"{api}/traces", service="gateway"))["traces"]
                        return [t for t in found if t["spans"] >= 3]

                    (summary,) = await support.eventually("the gateway's span", gateway_trace)
                    tree = await get(session, f"{api}/traces/{summary['trace_id']}")
                    (root,) = tree["roots"]
                    assert root["service"] == "gateway" and root["name"] == "GET /front"
                    assert root["children"][0]["service"] == "front"
                    assert root["children"][0]["children"][0]["service"] == "back"
                    assert via_gateway == "" or summary["trace_id"] in via_gateway
                    edges = (await get(session, f"{api}/dependencies"))["edges"]
                    assert {(e["from"], e["to"]) for e in edges} == {("front", "back"), ("gateway", "front")}
                    assert (await get(session, f"{api}/traces", service="back"))["traces"]

                    # the alert: firing in the API, in the status, and on the bus
                    async def firing() -> list[dict[str, Any]]:
                        return (await get(session, f"{api}/alerts"))["firing"]

                    fired = await support.eventually("the alert to fire", firing)
                    assert fired[0]["rule"] == "back-errors" and fired[0]["labels"] == {"service": "back"}
                    assert [a["rule"] for a in cp.status()["alerts"]] == ["back-errors"]
                    await support.eventually("the alert on the bus", lambda: asyncio.sleep(0, alerts_seen))
                    assert alerts_seen[0]["state"] == "firing"
            finally:
                cp.request_stop()
        # after a stop the index still answers: the replicas' last lines were collected on the way out
        store = LogStore(tmp_path / "home" / "monitor" / "logs.db")
        assert store.search(LogSearch(service="back", text="stopped"))
        store.close()
