from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import nats
import pytest

import minga.bus._bus as bus_module
import support
from minga.bus import Backoff, Bus, Delivery, QueuePolicy, TraceContext, current_trace
from minga.service.testing import embedded_broker

FAST = QueuePolicy(max_deliver=3, backoff=Backoff(initial=0.2, factor=2.0, maximum=1.0), ack_wait=5)


async def _stream_messages(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.messages)
    finally:
        await nc.close()


async def test_jobs_survive_until_a_worker_takes_them_and_are_acked(broker_url: str) -> None:
    done: asyncio.Queue[Delivery] = asyncio.Queue()

    async def restock(d: Delivery) -> None:
        await done.put(d)

    async with Bus(broker_url) as producer:
        root = TraceContext.new()
        current_trace.set(root)
        seqs = [await producer.enqueue("restock", {"sku": "a", "n": n}) for n in range(3)]
    assert seqs == [1, 2, 3]
    async with Bus(broker_url) as worker:
        await worker.consume("restock", restock, policy=FAST)
        got = [await asyncio.wait_for(done.get(), 10) for _ in range(3)]
    assert sorted(d.payload["n"] for d in got) == [0, 1, 2]
    assert all(d.attempt == 1 and d.trace.trace_id == root.trace_id for d in got)
    assert await _stream_messages(broker_url, "MINGA_Q_restock") == 0  # acked: gone from the work queue


async def test_a_failing_job_is_retried_with_backoff(broker_url: str) -> None:
    attempts: list[tuple[int, float]] = []
    done = asyncio.Event()

    async def flaky(d: Delivery) -> None:
        attempts.append((d.attempt, time.monotonic()))
        if d.attempt < 3:
            raise RuntimeError("warehouse offline")
        done.set()

    async with Bus(broker_url) as bus:
        await bus.consume("flaky", flaky, policy=FAST)
        await bus.enqueue("flaky", {"sku": "a"})
        await asyncio.wait_for(done.wait(), 15)
        assert await bus.dead_letters("flaky") == []
    assert [a for a, _ in attempts] == [1, 2, 3]
    (_, t1), (_, t2), (_, t3) = attempts
    assert t2 - t1 >= 0.2 * 0.9 and t3 - t2 >= 0.4 * 0.9  # nak delays: initial, then initial * factor


async def test_a_job_that_always_fails_is_dead_lettered_after_max_deliveries(broker_url: str) -> None:
    attempts: list[int] = []

    async def doomed(d: Delivery) -> None:
        attempts.append(d.attempt)
        raise ValueError(f"sku {d.payload['sku']} unknown")

    async with Bus(broker_url) as bus:
        dead = await bus.nats.subscribe("minga.dlq.doomed")
        await bus.consume("doomed", doomed, policy=FAST)
        await bus.enqueue("doomed", {"sku": "zz"})
        msg = await dead.next_msg(timeout=15)
        assert msg.data == b'{"sku":"zz"}'
        letters = await bus.dead_letters("doomed")
    assert attempts == [1, 2, 3]
    (letter,) = letters
    assert letter.payload == {"sku": "zz"} and letter.attempt == 3
    assert letter.headers["Minga-Error"] == "ValueError: sku zz unknown"
    assert letter.headers["Minga-Queue"] == "doomed" and letter.headers["Minga-Sequence"] == "1"
    assert await _stream_messages(broker_url, "MINGA_Q_doomed") == 0


async def test_an_invalid_payload_is_dead_lettered_at_once(broker_url: str) -> None:
    calls: list[Any] = []

    async def handler(d: Delivery) -> None:
        calls.append(d.payload)

    async with Bus(broker_url) as bus:
        dead = await bus.nats.subscribe("minga.dlq.parse")
        await bus.consume("parse", handler, policy=FAST)
        await bus.jetstream.publish("minga.q.parse", b"{oops")
        await bus.enqueue("parse", {"ok": True})
        await dead.next_msg(timeout=10)
        (letter,) = await bus.dead_letters("parse")
    assert letter.attempt == 1 and letter.headers["Minga-Error"].startswith(
        "PayloadError: payload is not valid JSON"
    )
    assert calls == [{"ok": True}]


async def test_a_job_cut_short_by_shutdown_is_redelivered_to_another_worker(broker_url: str) -> None:
    started = asyncio.Event()
    finished: asyncio.Queue[Delivery] = asyncio.Queue()

    async def stuck(d: Delivery) -> None:
        started.set()
        await asyncio.Event().wait()  # never finishes on its own

    async def quick(d: Delivery) -> None:
        await finished.put(d)

    first = Bus(broker_url, grace=0.2)
    async with first:
        await first.consume("long", stuck, policy=FAST)
        await first.enqueue("long", {"id": 1})
        await asyncio.wait_for(started.wait(), 10)
    # leaving the block stopped the worker: the job was cancelled after the grace and naked
    async with Bus(broker_url) as second:
        await second.consume("long", quick, policy=FAST)
        d = await asyncio.wait_for(finished.get(), 10)
    assert d.payload == {"id": 1} and d.attempt == 2


async def test_jobs_run_concurrently_up_to_the_policy(broker_url: str) -> None:
    running = 0
    peak = 0
    both = asyncio.Event()
    done: asyncio.Queue[int] = asyncio.Queue()

    async def job(d: Delivery) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 10)
        running -= 1
        await done.put(d.payload)

    async with Bus(broker_url) as bus:
        for n in range(4):
            await bus.enqueue("par", n)
        await bus.consume("par", job, policy=QueuePolicy(concurrency=2))
        got = sorted([await asyncio.wait_for(done.get(), 10) for _ in range(4)])
    assert got == [0, 1, 2, 3] and peak == 2


async def test_jobs_survive_a_broker_restart(tmp_path: Path) -> None:
    # nats-server only: the embedded broker's own crash test lives with JetStream
    server = support.nats_server(tmp_path, jetstream=True)
    done: asyncio.Queue[int] = asyncio.Queue()

    async def job(d: Delivery) -> None:
        await done.put(d.payload)

    with support.running(server):
        url = f"nats://127.0.0.1:{server.port}"
        async with Bus(url) as worker:
            await worker.consume("durable", job, policy=FAST)
            async with Bus(url) as producer:
                await producer.enqueue("durable", 1)
                assert await asyncio.wait_for(done.get(), 10) == 1
                for n in (100, 101, 102):  # acknowledged by the broker, nobody consumes them yet
                    await producer.enqueue("parked", n)
                await asyncio.to_thread(server.kill)  # SIGKILL: no goodbye to anyone
            await asyncio.to_thread(server.start)  # same port, same store
            async with Bus(url) as producer:
                for n in range(2, 6):
                    await producer.enqueue("durable", n)
            await worker.consume("parked", job, policy=FAST)
            got = sorted([await asyncio.wait_for(done.get(), 30) for _ in range(7)])
    assert got == [2, 3, 4, 5, 100, 101, 102]



class _OnePull:
    """A pull subscription whose first fetch fails with ``error``; later ones wait and find nothing."""

    def __init__(self, error: BaseException, done: asyncio.Event) -> None:
        self.error = error
        self.calls = 0
        self.done = done

    async def fetch(self, batch: int, timeout: float) -> list[Any]:  # noqa: ASYNC109 (nats-py's signature)
        self.calls += 1
        if self.calls == 1:
            raise self.error
        self.done.set()
        await asyncio.sleep(timeout)
        raise nats.errors.TimeoutError


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # what nats-py raises when the server's 408 ends an idle pull request just before the deadline
        (TimeoutError(), []),
        (ConnectionResetError(), ["fetching jobs from q failed (ConnectionResetError: ); retrying"]),
    ],
)
async def test_an_idle_fetch_is_quiet_and_a_failed_one_names_its_type(
    error: BaseException, expected: list[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(bus_module, "_FETCH_WAIT", 0.01)
    with embedded_broker(store_dir=tmp_path / "js") as url:
        async with Bus(url) as bus:
            done = asyncio.Event()
            with caplog.at_level(logging.WARNING, logger="minga.bus"):
                loop = asyncio.create_task(bus._fetch_loop("q", _OnePull(error, done), _never, FAST))  # type: ignore[arg-type]
                await asyncio.wait_for(done.wait(), 5)
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
    assert [r.getMessage() for r in caplog.records if "fetching jobs" in r.getMessage()] == expected


async def _never(d: Delivery) -> None:
    raise AssertionError("no job was fetched")
