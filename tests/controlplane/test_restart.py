"""A control plane SIGKILLed under load: the next `minga up` replaces the replicas it left running,
with no instance twice, and every queued job whose enqueue was acknowledged is still delivered."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

import support
from minga.bus import Bus, Timeout
from minga.controlplane import ControlPlaneClient, pid_alive, read_state
from minga.errors import BusError
from support import minga

pytestmark = [pytest.mark.slow]

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "minga.yaml"
SERVICES = {"inventory", "payments", "notifications", "orders"}


async def test_up_after_a_killed_control_plane_replaces_its_replicas_and_loses_no_queued_job(tmp_path: Path) -> None:
    home = tmp_path / "home"
    up = await asyncio.to_thread(minga, "up", "--detach", "-f", str(SHOP), "--timeout", "90", home=home)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = read_state(home)
        assert state is not None
        doc = await ControlPlaneClient.for_home(home).status()
        old_pids = {i["pid"] for s in doc["services"] for i in s["instances"]}
        assert len(old_pids) == 8

        # orders under way; an order that came back had its notification job acknowledged by JetStream
        placed: list[str] = []
        killed = asyncio.Event()

        async def traffic(bus: Bus) -> None:
            for i in range(5000):
                try:
                    order = await bus.request(
                        "orders", "place", {"sku": "tea", "qty": 1, "customer": f"r{i}"}, timeout=Timeout(2.0)
                    )
                except BusError:
                    if killed.is_set():
                        return  # the broker died with the control plane
                    continue
                assert order["status"] in ("paid", "declined")
                placed.append(f"r{i}")
                if len(placed) == 40:
                    os.kill(state.pid, signal.SIGKILL)
                    killed.set()

        async with Bus(state.nats_url) as bus:
            async with asyncio.timeout(90):
                await traffic(bus)
        assert killed.is_set() and len(placed) >= 40
        # the replicas outlived their supervisor
        assert any(pid_alive(pid) for pid in old_pids)

        again = await asyncio.to_thread(minga, "up", "--detach", "-f", str(SHOP), "--timeout", "90", home=home)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "stopped replicas a previous server left running" in again.stdout, again.stdout
        assert not [pid for pid in old_pids if pid_alive(pid)], "a replica of the killed server still runs"
        doc = await ControlPlaneClient.for_home(home).status()
        assert {s["name"] for s in doc["services"]} == SERVICES
        for service in doc["services"]:
            ids = [i["id"] for i in service["instances"]]
            assert sorted(ids) == [f"{service['name']}-1", f"{service['name']}-2"], ids
            for instance in service["instances"]:
                # the probe checks the instance id and the pid: only the new replica passes
                assert instance["pid"] not in old_pids and instance["health"] == "passing", instance

        async def every_job_delivered() -> bool:
            logs = await asyncio.to_thread(minga, "logs", "notifications", "-f", str(SHOP), home=home)
            missing = [c for c in placed if f"notified {c}:" not in logs.stdout]
            return not missing

        # a job taken by a killed replica and never acked comes back after its ack wait (30 s)
        await support.eventually("every acknowledged job to be delivered", every_job_delivered, seconds=60, every=1)
    finally:
        down = await asyncio.to_thread(minga, "down", "-f", str(SHOP), home=home)
    assert down.returncode == 0, down.stderr
