"""What bounds a query's cost: a deadline, a series-steps budget, linear-time regexes, bounded log
pages, and query processes that are replaced when they overrun or die."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from minga.errors import QueryError, QueryTimeout
from minga.monitor import (
    LogRecord,
    LogSearch,
    LogStore,
    Matcher,
    MetricStore,
    QueryEngine,
    QueryStores,
    QueryWorker,
    WorkerSettings,
    parse_query,
)

NOW = 1_700_000_000.0


def fill(store: MetricStore, series: int, samples: int) -> None:
    for i in range(samples):
        store.ingest(
            NOW - 5 * (samples - i), [("work", (("n", str(n)),), float(i + n)) for n in range(series)]
        )


@pytest.fixture
def store(tmp_path: Path) -> MetricStore:
    s = MetricStore(tmp_path / "monitor" / "metrics.db")
    yield s
    s.close()


def test_a_query_stops_at_its_deadline(store: MetricStore) -> None:
    fill(store, 40, 720)
    engine = QueryEngine(store)
    with pytest.raises(QueryTimeout) as caught:
        engine.range("max_over_time(work[1d])", NOW - 3600, NOW + 7000, 1.0, timeout=0.2)
    assert caught.value.seconds == 0.2
    assert "deadline of 0.2s" in str(caught.value)
    # without a deadline a small query answers as before
    assert len(engine.instant("max_over_time(work[1d])", NOW, timeout=5)) == 40


def test_series_times_steps_is_bounded(store: MetricStore) -> None:
    fill(store, 100, 1)
    engine = QueryEngine(store)
    with pytest.raises(QueryError, match=r"100 series at 10001 steps, more than 1,000,000 series-steps"):
        engine.range("work", NOW - 5000, NOW + 5000, 1.0)
    assert len(engine.range("work", NOW - 100, NOW, 1.0)) == 100  # 101 steps: well within


def test_window_functions_agree_with_a_direct_computation(store: MetricStore) -> None:
    # a counter with a reset: the running sums must count the reset as Prometheus does
    values = [0.0, 10.0, 20.0, 5.0, 15.0, 30.0]
    for i, v in enumerate(values):
        store.ingest(NOW + 10 * i, [("c", (("n", "1"),), v)])
    engine = QueryEngine(store)
    at = NOW + 50
    # the samples cover 50 s of the 60 s window; as Prometheus does, the increase is extrapolated
    # toward the window's start no further than where the counter would have been zero: it was 0
    # at the first sample, so the observed increase stands
    assert engine.instant("increase(c[1m])", at)[0].points[0][1] == pytest.approx(10 + 10 + 5 + 10 + 15)
    # from 10 at the first sample, it is extended half a sampling interval toward the start
    assert engine.instant("increase(c[35s])", at)[0].points[0][1] == pytest.approx(
        (5 + 10 + 15) * (30 + 5) / 30
    )
    assert engine.instant("avg_over_time(c[25s])", at)[0].points[0][1] == pytest.approx((5 + 15 + 30) / 3)
    assert engine.instant("max_over_time(c[1m])", at)[0].points[0][1] == 30.0


def test_max_and_min_over_many_steps_agree_with_a_direct_computation(store: MetricStore) -> None:
    values = [float((i * 37) % 101) for i in range(300)]
    for i, v in enumerate(values):
        store.ingest(NOW + i, [("g", (("n", "1"),), v)])
    engine = QueryEngine(store)
    for func, pick in (("max_over_time", max), ("min_over_time", min)):
        for window in (1, 7, 64, 500):
            found = engine.range(f"{func}(g[{window}s])", NOW, NOW + 299, 3.0)
            for t, v in found[0].points:
                direct = [values[i] for i in range(300) if t - window <= NOW + i <= t]
                assert v == pick(direct), (func, window, t)


def test_label_regexes_match_in_linear_time() -> None:
    parse_query('up{instance=~"(.*.*.*)*X"}')  # accepted: RE2 has no backtracking to blow up
    label = {"instance": "instance-with-a-long-name-0001" * 10}
    assert not Matcher("instance", "=~", "(.*.*.*)*X").matches(label)
    assert Matcher("instance", "=~", "(i.*.*)*1").matches(label)
    assert Matcher("instance", "!~", "(.*.*.*)*X").matches(label)
    # what has no linear-time form is refused with the reason
    with pytest.raises(QueryError, match=r"bad regex '\(a\)\\\\1'"):
        parse_query(r'up{instance=~"(a)\\1"}')


def test_log_searches_page_and_refuse_an_unbounded_limit(tmp_path: Path) -> None:
    logs = LogStore(tmp_path / "logs.db")
    logs.add([LogRecord(NOW + i, "svc", "svc-1", "info", f"line {i}") for i in range(250)])
    for bad in (0, -1, 10_001):
        with pytest.raises(QueryError, match="limit must be between 1 and 10000"):
            LogSearch(limit=bad)
    seen: list[str] = []
    before = None
    for _ in range(10):
        page = logs.search(LogSearch(limit=100, before=before))
        seen.extend(r.message for r in page)
        if len(page) < 100:
            break
        before = page[-1].id
    assert seen == [f"line {i}" for i in reversed(range(250))]
    text = logs.search(LogSearch(text="line", limit=10, before=logs.search(LogSearch(limit=1))[0].id - 5))
    assert [r.message for r in text] == [f"line {i}" for i in range(243, 233, -1)]  # ids start at 1
    logs.close()


def sleeper(stores: QueryStores, timeout: float, seconds: float) -> str:
    """A query that ignores its deadline (stuck in C code, say)."""
    time.sleep(seconds)
    return "woke"


async def test_a_process_past_its_deadline_is_replaced(tmp_path: Path) -> None:
    store = MetricStore(tmp_path / "monitor" / "metrics.db")
    fill(store, 3, 10)
    LogStore(tmp_path / "monitor" / "logs.db").close()
    settings = WorkerSettings(processes=1, timeout=5.0, grace=0.5)
    async with QueryWorker(tmp_path / "monitor", settings) as worker:
        assert await worker.call(sleeper, 0.0) == "woke"  # started, imports done
        first = worker.health()["pids"]
        if hasattr(os, "SCHED_IDLE"):  # Linux: queries get only the CPU time nothing else wants
            assert os.sched_getscheduler(first[0]) == os.SCHED_IDLE
        with pytest.raises(QueryTimeout, match=r"deadline of 0\.5s"):
            await worker.call(sleeper, 60.0, budget=0.5)
        health = worker.health()
        assert health["restarts"] == 1 and health["timeouts"] == 1 and "overran" in health["last_error"]
        found = await worker.instant("work", NOW)
        assert sorted(s.labels["n"] for s in found) == ["0", "1", "2"]
        assert worker.health()["pids"] != first
    store.close()
