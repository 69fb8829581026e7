"""The runnable examples in docs/bus.md and docs/service.md run, as written."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import support
from minga.bus import Bus

DOCS = Path(__file__).parents[2] / "docs"


def _blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)


def _env(url: str, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"MINGA_NATS_URL": url, "PYTHONPATH": str(tmp)})
    env.pop("MINGA_DISCOVERY_URL", None)
    return env


def test_the_bus_tour_runs(minga_broker: str, tmp_path: Path) -> None:
    (tmp_path / "bus_tour.py").write_text(_blocks("bus.md")[0])
    out = subprocess.run(
        [sys.executable, "bus_tour.py"],
        cwd=tmp_path,
        env=_env(minga_broker, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "{'sku': 'a', 'reserved': 2}",
        "event minga.evt.orders.created {'id': 7}",
        "restocked {'sku': 'a', 'qty': 5} on attempt 2",
    ]


def _write_examples(tmp: Path) -> None:
    service, _, tests = _blocks("service.md")[:3]
    (tmp / "inventory.py").write_text(service)
    (tmp / "test_inventory.py").write_text(tests)


def _start_replica(tmp: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "minga.service", "inventory:Inventory"],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_the_inventory_example_serves(minga_broker: str, tmp_path: Path) -> None:
    _write_examples(tmp_path)
    port = support.free_port()
    replica = _start_replica(tmp_path, _env(minga_broker, tmp_path) | {"MINGA_HTTP_PORT": str(port)})
    try:
        await asyncio.to_thread(support.wait_for_port, "127.0.0.1", port, 30, replica)
        async with Bus(minga_broker) as bus:
            assert await bus.request("inventory", "reserve", {"sku": "apple", "qty": 2}) == {
                "sku": "apple",
                "qty": 2,
                "left": 8,
            }
        replica.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(replica.wait, 20) == 0
    finally:
        if replica.poll() is None:
            replica.kill()
        replica.communicate()


def test_the_testing_example_passes_with_the_shipped_plugin(tmp_path: Path) -> None:
    _write_examples(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto"],
        cwd=tmp_path,
        env=_env("nats://127.0.0.1:1", tmp_path),  # the plugin's fixtures start their own broker
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
