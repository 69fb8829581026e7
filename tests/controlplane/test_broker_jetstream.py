"""An external broker without JetStream (a real nats-server started without ``-js``): `minga up`
refuses it at once in one line, a replica that needs a durable queue says so in one log line, and
the bus raises a BusError rather than nats-py's ServiceUnavailableError."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import support
from minga.bus import Bus
from minga.errors import BusError

pytestmark = pytest.mark.engine

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


def minga(*args: str, home: Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINGA_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "minga", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _spec(tmp_path: Path, broker: str) -> None:
    (tmp_path / "minga.yaml").write_text(
        f"name: shop\nbroker: {broker}\n"
        "services:\n"
        f"  notifications: {{module: shop.notifications:Notifications, workdir: {SHOP}, ports: [http]}}\n",
        encoding="utf-8",
    )


async def test_up_refuses_a_broker_without_jetstream_in_one_line(tmp_path: Path) -> None:
    with support.running(support.nats_server(tmp_path)) as nats:  # no -js
        url = f"nats://127.0.0.1:{nats.port}"
        _spec(tmp_path, url)
        started = time.monotonic()
        try:
            up = await asyncio.to_thread(
                minga, "up", "--detach", "--timeout", "40", home=tmp_path / "home", cwd=tmp_path
            )
            took = time.monotonic() - started
        finally:  # should it have started, nothing is left running
            await asyncio.to_thread(minga, "down", home=tmp_path / "home", cwd=tmp_path)
        assert up.returncode == 2, up.stdout + up.stderr
        assert up.stderr.strip().splitlines() == [
            f"error: the broker at {url} offers no JetStream, which durable queues need: start nats-server "
            "with JetStream (`nats-server -js`), or set `broker: {url: ..., jetstream: false}` in minga.yaml "
            "when no service uses a queue"
        ]
        assert "Traceback" not in up.stdout + up.stderr
        assert took < 30, f"refused after {took:.1f}s: it waited for the replicas"

        # a spec that says it needs no JetStream runs on the same server
        (tmp_path / "minga.yaml").write_text(
            f"name: plain\nbroker: {{url: '{url}', jetstream: false}}\n", encoding="utf-8"
        )
        up = await asyncio.to_thread(minga, "up", "--detach", "--timeout", "40", home=tmp_path / "home", cwd=tmp_path)
        try:
            assert up.returncode == 0, up.stdout + up.stderr
        finally:
            down = await asyncio.to_thread(minga, "down", home=tmp_path / "home", cwd=tmp_path)
        assert down.returncode == 0, down.stderr


async def test_a_replica_that_needs_a_queue_says_so_in_one_line(tmp_path: Path) -> None:
    with support.running(support.nats_server(tmp_path)) as nats:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SHOP), os.environ.get("PYTHONPATH", "")]),
            "MINGA_NATS_URL": f"nats://127.0.0.1:{nats.port}",
            "MINGA_INSTANCE": "notifications-1",
        }
        env.pop("MINGA_DISCOVERY_URL", None)
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "minga.service", "shop.notifications:Notifications"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    errors = [line for line in map(json.loads, out.stdout.splitlines()) if line["level"] == "error"]
    assert [e["message"] for e in errors] == [
        f"the broker at nats://127.0.0.1:{nats.port} offers no JetStream, which the durable queue stream "
        "MINGA_Q_notify needs: start nats-server with JetStream (`nats-server -js`)"
    ]


async def test_the_bus_raises_a_bus_error_without_jetstream(tmp_path: Path) -> None:
    with support.running(support.nats_server(tmp_path)) as nats:
        async with Bus(f"nats://127.0.0.1:{nats.port}") as bus:
            with pytest.raises(BusError, match="offers no JetStream, which the durable queue stream MINGA_Q_jobs"):
                await bus.enqueue("jobs", {"n": 1})
