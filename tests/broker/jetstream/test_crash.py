"""Kill -9 the broker while it acknowledges publishes; nothing acknowledged may be lost.

The broker runs as ``python -m minga broker --store DIR`` on a fixed port. Publishers send
10,000 messages with acks (retrying, with a Nats-Msg-Id, until acknowledged); the broker
is SIGKILLed at five random points of that run and restarted on the same store each time.
Then a consumer with explicit acks reads the stream: every acknowledged message must be
there (lost == 0). Duplicates (a message stored twice) are counted and reported.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import ConsumerConfig

import support

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOTAL = 10_000
KILLS = 5
PUBLISHERS = 32


async def test_acknowledged_messages_survive_sigkill(tmp_path: Path) -> None:
    port = support.free_port()
    store = tmp_path / "store"
    argv = support.python_module("minga", ["broker", "--port", str(port), "--store", str(store)])
    server = support.ServerProcess(argv, port, log=tmp_path / "broker.log")
    await asyncio.to_thread(server.start, 20)
    rng = random.Random()
    kill_points = sorted(rng.sample(range(TOTAL // 20, TOTAL - TOTAL // 20), KILLS))
    acked: set[int] = set()
    kills = 0
    restarting = asyncio.Lock()

    nc = await nats.connect(
        f"nats://127.0.0.1:{port}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.05,
        connect_timeout=2,
    )
    try:
        js = nc.jetstream(timeout=2)
        await js.add_stream(name="CRASH", subjects=["crash.>"], duplicate_window=600)

        async def kill_and_restart() -> None:
            nonlocal kills
            async with restarting:
                server.kill()
                kills += 1
                await asyncio.to_thread(server.start, 20)

        async def publisher(ids: list[int]) -> None:
            deadline = time.monotonic() + 120
            for i in ids:
                while time.monotonic() < deadline:
                    try:
                        await js.publish(f"crash.{i % 16}", str(i).encode(), headers={"Nats-Msg-Id": str(i)})
                    except (TimeoutError, nats.errors.Error, nats.js.errors.Error):
                        await asyncio.sleep(0.05)
                        continue
                    acked.add(i)
                    break
                if kill_points and len(acked) >= kill_points[0]:
                    kill_points.pop(0)
                    await kill_and_restart()

        ids = list(range(TOTAL))
        await asyncio.gather(*(publisher(ids[k::PUBLISHERS]) for k in range(PUBLISHERS)))
        assert kills == KILLS
        assert len(acked) == TOTAL

        sub = await js.pull_subscribe("crash.>", durable="audit", config=ConsumerConfig(ack_wait=30))
        seen: Counter[int] = Counter()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(1000, timeout=2)
            except nats.errors.TimeoutError:
                break
            for m in msgs:
                seen[int(m.data)] += 1
                await m.ack()
        lost = acked - set(seen)
        duplicates = sum(n - 1 for n in seen.values())
        info = await js.stream_info("CRASH")
        print(
            f"\ncrash test: {TOTAL} acked publishes, {KILLS} SIGKILLs, "
            f"stream holds {info.state.messages}, lost {len(lost)}, duplicates {duplicates}"
        )
        assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {sorted(lost)[:10]}"
    finally:
        await nc.close()
        await asyncio.to_thread(server.stop)
