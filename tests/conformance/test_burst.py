"""A publish burst against both servers: every accepted message reaches its subscriber.

Core NATS is at most once, yet a server drops a message only when it cuts a subscriber off as a
slow consumer, and then it says so. Publisher and subscriber are the roles of bench/bus.py, each
a process of its own, so that the embedded broker has this test's event loop to itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CLIENT = Path(__file__).parents[2] / "bench" / "bus.py"
# a few hundred thousand small messages: well past what socket buffers on both sides can hide
BURST = int(os.environ.get("MINGA_BURST_MESSAGES", "300000"))
SIZE = 128

pytestmark = pytest.mark.slow


async def child(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_json(proc: asyncio.subprocess.Process, within: float) -> dict[str, Any]:
    assert proc.stdout is not None and proc.stderr is not None
    async with asyncio.timeout(within):
        line = await proc.stdout.readline()
    if not line:
        err = await proc.stderr.read()
        raise AssertionError(f"{CLIENT.name} ended without a result: {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(line)
    return result


async def varz(server: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{server.monitor_url}/varz") as response:
        body: dict[str, Any] = await response.json()
        return body


async def test_a_burst_reaches_the_subscriber_whole(start_server: Any) -> None:
    # nats-server's own write deadline: the shorter one the other suites use cuts a subscriber
    # that a loaded machine merely slows down
    server = await start_server(monitor=True, write_deadline=10)
    before = await varz(server)
    common = ("--url", server.url, "--subject", "burst.x", "--messages", str(BURST), "--size", str(SIZE))
    sub = await child("--role", "subscribe", *common)
    pub: asyncio.subprocess.Process | None = None
    try:
        assert sub.stdout is not None
        async with asyncio.timeout(20):
            assert (await sub.stdout.readline()).strip() == b"ready"
        pub = await child("--role", "publish", *common)
        assert pub.stdin is not None
        pub.stdin.write(b"go\n")
        await pub.stdin.drain()
        assert (await read_json(pub, 90))["ended"]
        result = await read_json(sub, 90)
    finally:
        for proc in (sub, pub):
            if proc is not None and proc.returncode is None:
                proc.kill()
            if proc is not None:
                await proc.wait()
    assert (result["received"], result["events"]) == (BURST, [])
    after = await varz(server)
    # one subscriber, one subject, no other traffic: the server forwarded what it accepted
    assert after["in_msgs"] - before["in_msgs"] == BURST
    assert after["out_msgs"] - before["out_msgs"] == BURST
    assert after["slow_consumers"] == before["slow_consumers"] == 0
