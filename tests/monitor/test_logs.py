"""Log collection from the supervisor's files and searching the index."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from minga.errors import QueryError
from minga.monitor import LogCollector, LogSearch, LogStore, parse_log_line

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def line(at: datetime, **record: object) -> str:
    doc = {"ts": at.isoformat(), "level": "info", "logger": "shop", "trace_id": None, "fields": {}, **record}
    return f"{at.isoformat()} {json.dumps(doc)}\n"


def write(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def test_parse_json_and_plain_lines() -> None:
    rec = parse_log_line("orders-1", line(T0, service="orders", instance="orders-1", message="placed", level="warning",
                                          trace_id="ab" * 16, fields={"sku": "tea"}))
    assert rec is not None
    assert (rec.service, rec.level, rec.message, rec.trace_id, rec.fields) == (
        "orders", "warning", "placed", "ab" * 16, {"sku": "tea"})
    plain = parse_log_line("web-2", f"{T0.isoformat()} GET / 200\n")
    assert plain is not None and (plain.service, plain.instance, plain.level, plain.message) == (
        "web", "web-2", "info", "GET / 200")
    assert parse_log_line("x", "no time stamp here") is None


def test_nothing_lost_or_repeated_across_a_restart(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    f = logs / "orders-1.log"
    write(f, "".join(line(T0 + timedelta(seconds=i), service="orders", instance="orders-1", message=f"m{i}") for i in range(100)))
    write(f, f"{T0.isoformat()} half a li")  # no newline yet: waits for its end
    store = LogStore(tmp_path / "logs.db")
    assert LogCollector(store, logs).collect() == 100
    store.close()  # the control plane stops (or is killed: the offset was committed with the lines)

    write(f, "ne\n" + "".join(line(T0 + timedelta(seconds=200 + i), service="orders", instance="orders-1", message=f"n{i}") for i in range(50)))
    again = LogStore(tmp_path / "logs.db")
    assert LogCollector(again, logs).collect() == 51
    assert LogCollector(again, logs).collect() == 0
    messages = [r.message for r in again.search(LogSearch(limit=1000))]
    assert len(messages) == 151 and len(set(messages)) == 151 and "half a line" in messages

    # a budget reads a backlog in steps, each resuming where the last stopped
    write(f, "".join(line(T0, service="orders", instance="orders-1", message=f"b{i}") for i in range(300)))
    small = LogCollector(again, logs, chunk=4096)
    steps = []
    while True:
        steps.append(small.collect(budget=8192))
        if not small.behind:
            break
    assert sum(steps) == 300 and len(steps) > 3

    # a file replaced by a new one (a fresh inode) is read from its start
    f.unlink()
    write(f, line(T0, service="orders", instance="orders-1", message="fresh"))
    assert LogCollector(again, logs).collect() == 1
    again.close()


def test_search_filters_and_free_text(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    trace = "cd" * 16
    for svc in ("orders", "payments"):
        write(logs / f"{svc}-1.log", "".join(
            line(T0 + timedelta(seconds=i), service=svc, instance=f"{svc}-1",
                 level="error" if i % 10 == 0 else "info",
                 message=f"charge {i} declined by the bank" if svc == "payments" and i % 10 == 0 else f"step {i} ok",
                 trace_id=trace if i == 42 else None, fields={"customer": f"c{i}"})
            for i in range(100)))
    store = LogStore(tmp_path / "logs.db")
    LogCollector(store, logs).collect()
    assert len(store.search(LogSearch(service="payments", level="error"))) == 10
    assert len(store.search(LogSearch(level="warning"))) == 20
    hits = store.search(LogSearch(text="declined bank"))
    assert len(hits) == 10 and all(h.service == "payments" for h in hits)
    assert [h.message for h in store.search(LogSearch(text="decl*", limit=3))] == [
        "charge 90 declined by the bank", "charge 80 declined by the bank", "charge 70 declined by the bank"]
    assert {h.service for h in store.search(LogSearch(trace_id=trace))} == {"orders", "payments"}
    assert len(store.search(LogSearch(text="c42"))) == 2  # fields are searched too
    window = store.search(LogSearch(start=(T0 + timedelta(seconds=10)).timestamp(),
                                    end=(T0 + timedelta(seconds=19)).timestamp(), service="orders"))
    assert [r.fields["customer"] for r in window] == [f"c{i}" for i in range(19, 9, -1)]
    with pytest.raises(QueryError):
        store.search(LogSearch(level="loud"))
    with pytest.raises(QueryError):
        store.search(LogSearch(text="!!!"))
    store.close()


async def test_live_tail_wakes_on_new_lines(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    store = LogStore(tmp_path / "logs.db")
    collector = LogCollector(store, logs)
    start = store.last_id

    async def later() -> None:
        await asyncio.sleep(0.2)
        write(logs / "a-1.log", line(T0, service="a", instance="a-1", message="hello tail", level="warning"))
        write(logs / "a-1.log", line(T0, service="a", instance="a-1", message="quiet", level="debug"))
        collector.collect()
        await store.notify()

    async def fetch(after: int, q: LogSearch) -> list[dict[str, Any]]:
        return [r.to_json() for r in store.after(after, q)]

    async with asyncio.TaskGroup() as tg:
        tg.create_task(later())
        got = await store.wait_after(start, LogSearch(level="info"), 10, fetch)
    assert [r["message"] for r in got] == ["hello tail"]
    assert await store.wait_after(got[-1]["id"] + 1, LogSearch(), 0.05, fetch) == []
    store.close()
