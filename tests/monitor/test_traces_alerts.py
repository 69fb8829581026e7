"""Trace trees, the dependency map, and alert rules firing and resolving."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from minga.bus import Span
from minga.errors import SpecError
from minga.monitor import AlertEvaluator, MetricStore, QueryEngine, Series, TraceStore
from minga.spec import AlertSpec, parse_spec

T0 = 1_700_000_000.0


def span(trace: str, sid: str, parent: str | None, service: str, start: float, end: float, status: str = "ok") -> Span:
    return Span(trace, sid, parent, service, f"{service}-1", f"{service}.op", "rpc", T0 + start, T0 + end, status)


def test_trace_tree_and_dependency_map(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    t = "a" * 32
    store.add([
        span(t, "1" * 16, "f" * 16, "gateway", 0.0, 0.100),  # its parent is outside minga: a root
        span(t, "2" * 16, "1" * 16, "orders", 0.005, 0.095),
        span(t, "3" * 16, "2" * 16, "inventory", 0.010, 0.020),
        span(t, "4" * 16, "2" * 16, "payments", 0.030, 0.090, "error"),
    ])
    store.add([span("b" * 32, "5" * 16, None, "orders", 1.0, 1.01), span("b" * 32, "6" * 16, "5" * 16, "inventory", 1.001, 1.002)])
    tree = store.tree(t)
    assert tree["spans"] == 4 and tree["duration"] == pytest.approx(0.1)
    (root,) = tree["roots"]
    assert root["service"] == "gateway"
    (orders,) = root["children"]
    assert [c["service"] for c in orders["children"]] == ["inventory", "payments"]
    assert orders["children"][1]["offset"] == pytest.approx(0.03) and orders["children"][1]["status"] == "error"
    edges = {(e["from"], e["to"]): (e["calls"], e["errors"]) for e in store.dependencies()}
    assert edges == {("gateway", "orders"): (1, 0), ("orders", "inventory"): (2, 0), ("orders", "payments"): (1, 1)}
    listed = store.traces(service="payments")
    assert [x["trace_id"] for x in listed] == [t] and listed[0]["errors"] == 1 and listed[0]["root"] == "gateway.op"
    assert [x["trace_id"] for x in store.traces()] == ["b" * 32, t]
    assert [x["trace_id"] for x in store.traces(errors_only=True)] == [t]
    assert store.tree("0" * 32)["roots"] == []
    store.close()


def answered_by(engine: QueryEngine) -> Callable[[str, float], Awaitable[list[Series]]]:
    """The evaluator's query function, answered in this process (the monitor's goes to its query processes)."""

    async def instant(query: str, at: float) -> list[Series]:
        return engine.instant(query, at)

    return instant


async def test_alerts_fire_after_their_duration_and_resolve(tmp_path: Path) -> None:
    metrics = MetricStore(tmp_path / "m.db")
    published: list[dict[str, Any]] = []

    async def publish(doc: dict[str, Any]) -> None:
        published.append(doc)

    rule = AlertSpec.model_validate({"query": "sum by (service) (queue_depth)", "above": 10, "for": "20s",
                                     "summary": "backlog"})
    ev = AlertEvaluator({"backlog": rule}, answered_by(QueryEngine(metrics)), publish)
    depth = [0, 50, 50, 50, 50, 3, 3]
    changes = []
    for i, d in enumerate(depth):
        t = T0 + 10 * i
        metrics.ingest(t, [("queue_depth", (("service", "notify"),), float(d)), ("queue_depth", (("service", "other"),), 1.0)])
        changes.append([(a.rule, a.state) for a in await ev.evaluate(t)])
        if i == 2:
            assert [a.state for a in ev.active.values()] == ["pending"] and not ev.firing()
    assert changes == [[], [], [], [("backlog", "firing")], [], [("backlog", "resolved")], []]
    assert [(d["state"], d["labels"]) for d in published] == [
        ("firing", {"service": "notify"}), ("resolved", {"service": "notify"})]
    assert published[0]["value"] == 50 and published[0]["threshold"] == "> 10"
    assert [a.state for a in ev.history] == ["firing", "resolved"]

    broken = AlertEvaluator({"bad": AlertSpec(query="rate(x)", above=1)}, answered_by(QueryEngine(metrics)))
    assert await broken.evaluate(T0) == [] and "bad query" in broken.errors["bad"]
    metrics.close()


def test_alert_rules_in_the_spec() -> None:
    spec = parse_spec(
        "services: {}\nalerts:\n  slow:\n    query: max(x)\n    below: 0.5\n    for: 1m\n    severity: critical\n",
        "minga.yaml",
    )
    assert spec.alerts["slow"].for_ == 60 and spec.alerts["slow"].breached(0.1)
    with pytest.raises(SpecError) as err:
        parse_spec("alerts:\n  odd:\n    query: x\n    above: 1\n    below: 2\n", "minga.yaml")
    assert "exactly one of `above:` or `below:`" in str(err.value) and "minga.yaml:" in str(err.value)
