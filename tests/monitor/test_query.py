"""The metric store and the query engine, on samples written by the test."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from minga.errors import CardinalityError, QueryError
from minga.monitor import MetricStore, QueryEngine, parse_exposition, parse_query
from minga.monitor._expo import parse_exposition_cached
from minga.service._metrics import BUCKETS, ReplicaMetrics

T0 = 1_700_000_000.0


def lab(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


@pytest.fixture
def store(tmp_path: Path) -> MetricStore:
    s = MetricStore(tmp_path / "m.db", max_series=60)
    yield s
    s.close()


def fill(store: MetricStore) -> None:
    """Two services, two replicas each, scraped every 5 s for 10 minutes: a counter going up by
    10/s (orders) and 2/s (payments) per replica, errors 1/s for payments, a histogram."""
    for i in range(121):
        t = T0 + 5 * i
        batch = []
        for svc, per_s in (("orders", 10), ("payments", 2)):
            for rep in ("1", "2"):
                inst = f"{svc}-{rep}"
                base = {"service": svc, "instance": inst}
                batch.append(("calls_total", lab(**base, outcome="ok"), per_s * 5.0 * i))
                if svc == "payments":
                    batch.append(("calls_total", lab(**base, outcome="error"), 5.0 * i))
                batch.append(("rss_bytes", lab(**base), 1000.0 + i))
                # every observation of orders takes 0.02 s..0.05 s, of payments 0.2 s..0.5 s
                fast, slow = (0.025, 0.05) if svc == "orders" else (0.25, 0.5)
                for le in (*BUCKETS, math.inf):
                    count = 0.0
                    if le >= fast:
                        count += 50.0 * i
                    if le >= slow:
                        count += 50.0 * i
                    batch.append(("dur_bucket", lab(**base, le="+Inf" if le == math.inf else repr(le)), count))
        assert store.ingest(t, batch) == []


def value_by(result: list, label: str) -> dict[str, float]:
    return {s.labels.get(label, ""): s.points[-1][1] for s in result}


def test_rate_sum_by_and_quantiles(store: MetricStore) -> None:
    fill(store)
    q = QueryEngine(store)
    at = T0 + 600
    rates = value_by(q.instant("sum by (service) (rate(calls_total[1m]))", at), "service")
    assert rates == pytest.approx({"orders": 20.0, "payments": 6.0})
    errors = q.instant('sum by (service) (rate(calls_total{outcome="error"}[1m])) / sum by (service) (rate(calls_total[1m]))', at)
    assert value_by(errors, "service") == pytest.approx({"payments": 2 / 6})
    p50 = value_by(q.instant("histogram_quantile(0.5, sum by (service, le) (rate(dur_bucket[1m])))", at), "service")
    assert p50["orders"] == pytest.approx(0.025) and p50["payments"] == pytest.approx(0.25)
    p99 = value_by(q.instant("histogram_quantile(0.99, sum by (service, le) (rate(dur_bucket[1m])))", at), "service")
    assert 0.025 < p99["orders"] <= 0.05 and 0.25 < p99["payments"] <= 0.5
    latest = q.instant('rss_bytes{instance=~"orders-.*"}', at)
    assert sorted(s.labels["instance"] for s in latest) == ["orders-1", "orders-2"]
    assert all(s.points[-1][1] == 1120.0 for s in latest)
    assert value_by(q.instant("count by (service) (rss_bytes) > 1", at), "service") == {"orders": 2.0, "payments": 2.0}
    assert q.instant("sum(rate(calls_total[1m])) * 60", at)[0].points[0][1] == pytest.approx(26 * 60)
    assert q.instant("increase(calls_total{instance=\"orders-1\"}[1m])", at)[0].points[0][1] == pytest.approx(600)


def test_range_queries_give_one_point_per_step(store: MetricStore) -> None:
    fill(store)
    q = QueryEngine(store)
    result = q.range("sum(rate(calls_total[30s]))", T0 + 60, T0 + 300, 60)
    assert len(result) == 1
    assert [t for t, _ in result[0].points] == [T0 + 60 * k for k in range(1, 6)]
    assert all(v == pytest.approx(26.0) for _, v in result[0].points)


def test_a_counter_reset_is_not_a_negative_rate(store: MetricStore) -> None:
    for i, v in enumerate([100.0, 110.0, 120.0, 5.0, 15.0]):
        store.ingest(T0 + 10 * i, [("c_total", lab(service="a"), v)])
    inc = QueryEngine(store).instant("increase(c_total[40s])", T0 + 40)[0].points[0][1]
    assert inc == pytest.approx(10 + 10 + 5 + 10)


def test_a_series_that_begins_inside_the_window_is_extrapolated_as_prometheus_does(store: MetricStore) -> None:
    # a route's counter first scraped at 3, 9 s before the end of a 60 s window, 2 more each second
    for i in range(10):
        store.ingest(T0 + 51 + i, [("c_total", lab(service="a"), 3.0 + 2 * i)])
    q = QueryEngine(store)
    # 18 seen over 9 s; toward the start it would reach zero 1.5 s earlier, more than 1.1 sampling
    # intervals: extended by half an interval (0.5 s), not to the window's start; the end is reached
    assert q.instant("increase(c_total[1m])", T0 + 60)[0].points[0][1] == pytest.approx(18 * 9.5 / 9)
    assert q.instant("rate(c_total[1m])", T0 + 60)[0].points[0][1] == pytest.approx(18 * 9.5 / 9 / 60)
    # a series that stopped 20 s before the end (its replica went away): half an interval at each side
    assert q.instant("increase(c_total[1m])", T0 + 80)[0].points[0][1] == pytest.approx(18 * 10 / 9)


@pytest.mark.parametrize(
    "bad",
    ["", "rate(x)", "sum by (a (x)", 'x{a~"b"}', "nosuch(x[1m])", "x[1m]", 'x{a=~"("}', "x +"],
)
def test_malformed_queries_say_what_is_wrong(store: MetricStore, bad: str) -> None:
    with pytest.raises(QueryError) as err:
        QueryEngine(store).instant(bad, T0)
    assert "bad query" in str(err.value)


def test_the_cardinality_guard(store: MetricStore) -> None:
    refused = store.ingest(T0, [("hits_total", lab(request_id=str(i)), 1.0) for i in range(70)])
    assert len(refused) == 10 and store.series_count == 60
    assert "more than 60 label sets" in str(refused[0]) and refused[0].metric == "hits_total"
    with pytest.raises(CardinalityError):
        QueryEngine(store, max_series=20).instant("sum by (request_id) (hits_total)", T0)
    assert QueryEngine(store, max_series=20).instant("sum(hits_total)", T0)[0].points[0][1] == 60.0


def test_downsampling_and_retention(tmp_path: Path) -> None:
    store = MetricStore(tmp_path / "m.db", raw_for=600, resolution=60, retention=3600)
    for i in range(12 * 60):  # an hour of 5-second samples of a counter
        store.ingest(T0 + 5 * i, [("c_total", lab(service="a"), float(i))])
    removed = store.compact(now=T0 + 3600)
    kept = store.select("c_total", [], 0, T0 + 10_000)[0].points
    old = [p for p in kept if p[0] < T0 + 3000 - 60]
    # one sample per minute beyond raw_for, every sample inside it
    assert len(old) <= 50 and removed > 500
    assert len([p for p in kept if p[0] >= T0 + 3000]) == 120
    rate = QueryEngine(store).instant("rate(c_total[10m])", T0 + 1800)[0].points[0][1]
    assert rate == pytest.approx(0.2, rel=0.05)  # the counter stays exact through downsampling
    assert store.compact(now=T0 + 3600 * 3) > 0
    assert store.select("c_total", [], 0, T0 + 3600 * 2 - 1) == []
    store.close()


def test_the_store_survives_reopening(tmp_path: Path) -> None:
    store = MetricStore(tmp_path / "m.db")
    store.ingest(T0, [("a", lab(x="1"), 1.0)])
    store.close()
    again = MetricStore(tmp_path / "m.db")
    store_series = again.series("a")
    assert [labels for _, labels in store_series] == [{"x": "1"}]
    again.ingest(T0 + 1, [("a", lab(x="1"), 2.0)])
    assert again.series_count == 1
    again.close()


async def test_replica_exposition_round_trips() -> None:
    m = ReplicaMetrics("orders", "orders-1")
    m.observe("place", "rpc", True, 0.003)
    m.observe("place", "rpc", False, 0.2)
    samples = {(s.name, s.labels): s.value for s in parse_exposition(await m.render())}
    assert samples[("minga_entrypoint_calls_total", lab(entrypoint="place", kind="rpc", outcome="ok"))] == 1
    assert samples[("minga_entrypoint_duration_seconds_bucket", lab(entrypoint="place", kind="rpc", le="+Inf"))] == 2
    assert samples[("minga_entrypoint_duration_seconds_bucket", lab(entrypoint="place", kind="rpc", le="0.005"))] == 1
    assert samples[("process_resident_memory_bytes", ())] > 1_000_000
    assert samples[("process_open_fds", ())] > 0


def test_exposition_parser_handles_escapes_and_specials() -> None:
    text = '# HELP x y\n# TYPE x gauge\nx{a="q\\"uo\\\\te",b="n\\nl"} +Inf\ny NaN\nz{} -1.5e3 1700000000\n'
    got = parse_exposition(text)
    assert got[0].labels == (("a", 'q"uo\\te'), ("b", "n\nl")) and got[0].value == math.inf
    assert math.isnan(got[1].value) and got[2].value == -1500.0
    with pytest.raises(ValueError):
        parse_exposition('x{a="b} 1\n')
    assert parse_query("sum without (instance) (x)") is not None


def test_the_cached_parse_gives_what_the_plain_one_gives() -> None:
    text = 'a_total{service="spoof",x="1"} 3\nb 2 1700000000\nc{le="+Inf"} +Inf\n'
    base = (("instance", "r-1"), ("service", "real"))
    cache: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}
    first = parse_exposition_cached(text, cache, base)
    again = parse_exposition_cached(text.replace(" 3\n", " 4\n"), cache, base)
    assert [(s.name, s.labels) for s in first] == [(s.name, s.labels) for s in again] and len(cache) == 3
    assert first[0].labels == (("instance", "r-1"), ("service", "real"), ("x", "1")) and again[0].value == 4
    assert [s.value for s in again[1:]] == [2.0, math.inf]
