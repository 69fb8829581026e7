"""Histories recorded through a restart: each server's KV is linearizable and its work queue
loses no acknowledged job, as judged by minga.chaos's checkers, on both servers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy
from tests.conformance.conftest import with_jetstream

from minga.chaos import QueueWorkload, Recorder, check_queue, check_registers, kv_workload, load_history

pytestmark = pytest.mark.engine


async def test_kv_and_work_queue_keep_their_promises_across_a_restart(
    start_server: Any, tmp_path: Path
) -> None:
    server = await start_server(jetstream=True, extensions=with_jetstream)
    nc = await nats.connect(server.url, max_reconnect_attempts=100, reconnect_time_wait=0.1)
    try:
        js = nc.jetstream(timeout=2)
        kv = await js.create_key_value(bucket="hist", history=1)
        await js.add_stream(name="WORK", subjects=["work"], retention=RetentionPolicy.WORK_QUEUE)
        await js.add_consumer(
            "WORK", ConsumerConfig(durable_name="workers", ack_policy=AckPolicy.EXPLICIT, ack_wait=2)
        )
        recorder = Recorder(tmp_path / "history.jsonl")
        queue = QueueWorkload(js, recorder, "work", "workers", messages=200, drain=15)

        async def restart_midway() -> None:
            await asyncio.sleep(0.4)
            recorder.invoke("nemesis", "restart")
            await server.restart()
            recorder.complete("nemesis", "ok", "restart")

        async with asyncio.TaskGroup() as tg:
            tg.create_task(kv_workload(kv, recorder, clients=4, operations=40, op_timeout=1))
            tg.create_task(queue.run())
            tg.create_task(restart_midway())
        recorder.close()
        reconnects = nc.stats["reconnects"]
    finally:
        await nc.close()

    events = load_history(tmp_path / "history.jsonl")
    assert reconnects >= 1  # the restart happened while the clients ran
    registers = check_registers(events)
    assert registers.valid is True, [k.describe() for k in registers.keys]
    assert sum(k.operations for k in registers.keys) > 100
    work = check_queue(events, ack_wait=2)
    assert work.valid, [a.describe() for a in work.anomalies]
    assert work.enqueued > 100 and work.acknowledged == work.enqueued
