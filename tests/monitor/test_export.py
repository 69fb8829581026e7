"""Logs to OpenSearch's bulk API in ECS, spans to an OTLP/HTTP collector: each against a local
server that checks the request the way the real one parses it, then answers as the real one does."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import support
from minga.bus import Span
from minga.errors import MonitorError
from minga.monitor import LogRecord, Monitor, MonitorSettings, OpenSearchExporter, OtlpExporter, ScrapeTarget
from minga.spec import OpenSearchSpec, OtlpSpec

T0 = datetime.now(UTC).replace(microsecond=0)  # recent: older lines would expire at once
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
ECS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class FakeOpenSearch:
    """Checks bulk requests as OpenSearch does: NDJSON, action/document pairs, a final newline."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.fail_next = 0  # answer 503 this many times
        self.refuse: str | None = None  # refuse documents whose message contains this

    async def bulk(self, request: web.Request) -> web.Response:
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"error": "cluster_block_exception"}, status=503)
        if request.content_type != "application/x-ndjson":
            self.problems.append(f"content type {request.content_type}")
            return web.json_response({"error": "Content-Type header [x] is not supported"}, status=406)
        body = await request.text()
        if not body.endswith("\n"):
            return web.json_response({"error": "The bulk request must be terminated by a newline [\\n]"}, status=400)
        lines = body[:-1].split("\n")
        items = []
        for action_line, doc_line in zip(lines[::2], lines[1::2], strict=True):
            action, doc = json.loads(action_line), json.loads(doc_line)
            (op, meta), = action.items()
            if op not in ("create", "index") or not meta.get("_index"):
                self.problems.append(f"bad action {action}")
            for key in ("@timestamp", "message", "ecs", "log", "service"):
                if key not in doc:
                    self.problems.append(f"no {key} in {doc}")
            if not ECS_TIME.match(doc["@timestamp"]):
                self.problems.append(f"bad @timestamp {doc['@timestamp']}")
            if "." in "".join(doc):  # ECS documents nest objects; dotted keys would be another mapping
                self.problems.append(f"dotted keys in {doc}")
            if self.refuse and self.refuse in doc["message"]:
                items.append({op: {"_index": meta["_index"], "status": 400, "error": {
                    "type": "mapper_parsing_exception", "reason": "failed to parse field [message]"}}})
                continue
            self.docs.append(doc)
            items.append({op: {"_index": meta["_index"], "_id": str(len(self.docs)), "status": 201, "result": "created"}})
        errors = any(next(iter(i.values()))["status"] >= 300 for i in items)
        return web.json_response({"took": 3, "errors": errors, "items": items})


class FakeCollector:
    """Checks OTLP/HTTP JSON export requests as the OpenTelemetry Collector's receiver does."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.problems: list[str] = []

    async def traces(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.Response(status=415, text="unsupported content type")
        doc = await request.json()
        for rs in doc["resourceSpans"]:
            resource = {a["key"]: a["value"]["stringValue"] for a in rs["resource"]["attributes"]}
            if "service.name" not in resource:
                self.problems.append("no service.name")
            for ss in rs["scopeSpans"]:
                if not ss["scope"]["name"]:
                    self.problems.append("no scope name")
                for span in ss["spans"]:
                    if not HEX32.match(span["traceId"]) or not HEX16.match(span["spanId"]):
                        self.problems.append(f"ids must be hex: {span}")
                    if "parentSpanId" in span and not HEX16.match(span["parentSpanId"]):
                        self.problems.append(f"bad parent {span}")
                    start, end = span["startTimeUnixNano"], span["endTimeUnixNano"]
                    if not (isinstance(start, str) and start.isdigit() and int(end) >= int(start)):
                        self.problems.append(f"times are nanoseconds as strings: {span}")
                    if span["kind"] not in range(6) or span["status"]["code"] not in (0, 1, 2):
                        self.problems.append(f"bad kind or status {span}")
                    for attr in span["attributes"]:
                        if set(attr["value"]) - {"stringValue", "intValue", "boolValue", "doubleValue"}:
                            self.problems.append(f"bad attribute {attr}")
                    self.spans.append((resource, span))
        return web.json_response({"partialSuccess": {}})


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeOpenSearch, FakeCollector, str]]:
    search, collector = FakeOpenSearch(), FakeCollector()
    app = web.Application()
    app.router.add_post("/_bulk", search.bulk)
    app.router.add_post("/v1/traces", collector.traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield search, collector, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def write_lines(home: Path, n: int, start: int = 0) -> None:
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "orders-1.log").open("a", encoding="utf-8") as f:
        for i in range(start, start + n):
            doc = {"ts": T0.isoformat(), "level": "error" if i == 0 else "info", "service": "orders",
                   "instance": "orders-1", "logger": "shop", "message": f"line {i}", "trace_id": "ab" * 16,
                   "fields": {"sku": "tea", "i": i}}
            if i == 0:
                doc["error"] = "Traceback (most recent call last):\nValueError: no tea"
            f.write(f"{T0.isoformat()} {json.dumps(doc)}\n")


async def no_targets() -> list[ScrapeTarget]:
    return []


async def test_logs_reach_opensearch_in_ecs_and_resume_after_a_restart(
    tmp_path: Path, fakes: tuple[FakeOpenSearch, FakeCollector, str]
) -> None:
    search, _, url = fakes
    settings = MonitorSettings(opensearch=OpenSearchSpec(url=url, index="shop-logs"), export_interval=3600)
    write_lines(tmp_path, 30)
    async with Monitor(tmp_path, targets=no_targets, settings=settings) as monitor:
        await monitor.collect()
        search.fail_next = 1
        assert await monitor.export() == 0 and "503" in monitor.export_errors["opensearch"]
        assert await monitor.export() == 30 and "opensearch" not in monitor.export_errors
        assert await monitor.export() == 0
    assert not search.problems, search.problems
    first = search.docs[0]
    assert first["service"] == {"name": "orders", "node": {"name": "orders-1"}}
    assert first["log"]["level"] == "error" and first["trace"]["id"] == "ab" * 16
    assert first["error"]["message"] == "ValueError: no tea" and first["minga"]["fields"] == {"sku": "tea", "i": 0}
    assert first["@timestamp"] == T0.strftime("%Y-%m-%dT%H:%M:%S.000Z") and first["ecs"]["version"]

    # a restarted control plane ships only what is new; a refused document is reported, not retried forever
    write_lines(tmp_path, 5, start=30)
    search.refuse = "line 32"
    async with Monitor(tmp_path, targets=no_targets, settings=settings) as monitor:
        await monitor.collect()
        assert await monitor.export() == 0
        assert "refused 1 of 5" in monitor.export_errors["opensearch"]
        assert "mapper_parsing_exception" in monitor.export_errors["opensearch"]
        assert await monitor.export() == 0
    assert [d["message"] for d in search.docs[30:]] == ["line 30", "line 31", "line 33", "line 34"]


async def test_spans_reach_an_otlp_collector(tmp_path: Path, fakes: tuple[FakeOpenSearch, FakeCollector, str]) -> None:
    _, collector, url = fakes
    settings = MonitorSettings(otlp=OtlpSpec(url=url), export_interval=3600)
    t = 1_700_000_000.0
    spans = [
        Span("a" * 32, "1" * 16, None, "orders", "orders-1", "orders.place", "rpc", t, t + 0.05),
        Span("a" * 32, "2" * 16, "1" * 16, "payments", "payments-2", "payments.charge", "rpc", t + 0.01, t + 0.04,
             "error", {"error": "Declined: no funds"}),
        Span("a" * 32, "3" * 16, "1" * 16, "notifications", "notifications-1", "notifications.notify", "queue",
             t + 0.05, t + 0.06),
    ]
    async with Monitor(tmp_path, targets=no_targets, settings=settings) as monitor:
        monitor.record_spans(spans)
        assert await monitor.export() == 3
        assert await monitor.export() == 0
    assert not collector.problems, collector.problems
    by_name = {span["name"]: (resource, span) for resource, span in collector.spans}
    resource, charge = by_name["payments.charge"]
    assert resource == {"service.name": "payments", "service.instance.id": "payments-2"}
    assert charge["parentSpanId"] == "1" * 16 and charge["status"] == {"code": 2, "message": "Declined: no funds"}
    assert charge["kind"] == 2 and int(charge["endTimeUnixNano"]) - int(charge["startTimeUnixNano"]) == pytest.approx(3e7, rel=1e-3)
    assert by_name["notifications.notify"][1]["kind"] == 5 and "parentSpanId" not in by_name["orders.place"][1]


async def test_exporters_name_who_failed_and_what_was_not_shipped() -> None:
    record = LogRecord(1_700_000_000.0, "orders", "orders-1", "info", "hello")
    span = Span("a" * 32, "1" * 16, None, "orders", "orders-1", "orders.place", "rpc", 1.0, 2.0)

    async def busy_answer(request: web.Request) -> web.Response:
        return web.Response(status=503, text="busy")

    app = web.Application()
    app.router.add_post("/{tail:.*}", busy_answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    busy = f"http://127.0.0.1:{runner.addresses[0][1]}"
    nobody = f"http://127.0.0.1:{support.free_port()}"  # nothing listens there
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(MonitorError, match=r"^OpenSearch bulk request answered 503: busy$"):
                await OpenSearchExporter(busy, "logs").send(session, [record])
            with pytest.raises(MonitorError, match=r"^the OTLP collector answered 503: busy$"):
                await OtlpExporter(busy).send(session, [span])
            with pytest.raises(MonitorError, match=rf"^cannot ship logs to {nobody}: "):
                await OpenSearchExporter(nobody, "logs").send(session, [record])
            with pytest.raises(MonitorError, match=rf"^cannot ship spans to {nobody}/v1/traces: "):
                await OtlpExporter(nobody).send(session, [span])
    finally:
        await runner.cleanup()
