"""The shop part of ``minga demo``: `minga up` on examples/shop, some traffic, a killed replica, a summary.

Runs the control plane in this process (as ``minga up`` does), so Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.logging import RichHandler

from minga.bus import Bus, Timeout
from minga.cli.runtime import log_to, status_table
from minga.controlplane import ControlPlane, ServerState, read_state
from minga.deploy import log_files, read_logs
from minga.discovery import DiscoveryClient, HttpStore
from minga.errors import BusError, UsageError
from minga.security import read_token
from minga.spec import home_dir, load_spec

__all__ = ["find_shop", "run_shop", "shop_demo", "what_next"]

console = Console(highlight=False)

SKUS = ("tea", "coffee", "cocoa")


def find_shop() -> Path:
    """examples/shop/minga.yaml of this checkout (or under the current directory)."""
    for base in (Path(__file__).resolve().parents[3], Path.cwd()):
        spec = base / "examples" / "shop" / "minga.yaml"
        if spec.is_file():
            return spec
    raise UsageError("examples/shop/minga.yaml not found: run the demo from a minga checkout")


def _shown(path: Path) -> str:
    """``path`` as the user would type it: relative to the current directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def what_next(spec_path: Path, dashboard: str | None, *, running: bool) -> list[str]:
    """The lines that end the demo: where the dashboard is (when there is one) and commands to try,
    for a shop still ``running`` or one to start again."""
    spec = _shown(spec_path)
    lines = ["what next:"]
    if sys.prefix != sys.base_prefix and shutil.which("minga") is None:
        lines.append(f"  . {_shown(Path(sys.prefix) / 'bin' / 'activate')}   # puts `minga` on PATH in this shell")
    if not running:
        lines.append(f"  minga up --detach -f {spec}   # the shop again, in the background")
    if dashboard:
        lines.append(f"  {dashboard}   # the dashboard, in a browser; its token: `minga token --read-only -f {spec}`")
    lines += [
        f"  minga status -f {spec}   # every replica: pid, health, address, restarts"
        + ("" if dashboard else "; and the dashboard's URL"),
        f"  minga call orders.place '{{\"sku\": \"tea\", \"qty\": 1, \"customer\": \"ada\"}}' -f {spec}",
        f"  minga logs orders --follow -f {spec}   # what the replicas write, merged",
        f"  minga traces -f {spec}   # each call across services, with timings",
        f"  minga down -f {spec}   # stops every replica" if not running else "  Ctrl-C here stops the shop",
    ]
    return lines


def _notified(home: Path, since: datetime) -> int:
    return sum("notified" in line.text for line in read_logs(log_files(home, "notifications"), since))


async def _traffic(cp: ControlPlane, state: ServerState, home: Path, orders: int) -> None:
    assert cp.supervisor is not None
    async with asyncio.timeout(120):
        await cp.supervisor.wait_healthy()
    console.print(status_table(cp.status()))
    console.rule("traffic")
    outcomes: collections.Counter[str] = collections.Counter()
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    registry = HttpStore(f"{state.url}/v1/discovery", token=read_token(home))
    async with Bus(state.nats_url) as bus, DiscoveryClient(registry) as disc:
        for i in range(orders):
            sku = SKUS[i % len(SKUS)]
            try:
                order = await bus.request(
                    "orders", "place", {"sku": sku, "qty": 1 + i % 3, "customer": f"customer-{i}"}, timeout=Timeout(5)
                )
                outcomes[order["status"]] += 1
            except BusError as exc:
                outcomes[f"error: {type(exc).__name__}"] += 1
        elapsed = time.perf_counter() - t0
        console.print(
            f"{orders} orders over RPC (orders.place) in {elapsed:.2f}s: "
            + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
            + "  (payments declines 5% on purpose)"
        )

        orders_http = next(s for s in cp.status()["services"] if s["name"] == "orders")["instances"][0]
        async with aiohttp.ClientSession() as http:
            url = f"http://{orders_http['address']}/orders"
            async with http.post(url, json={"sku": "tea", "qty": 2, "customer": "web"}) as resp:
                body: dict[str, Any] = await resp.json()
            console.print(f"POST {url} -> {resp.status}: order {body.get('order_id')} {body.get('status')}")

        for _ in range(100):  # the queue is durable: every order gets its notification (20 s at most)
            if _notified(home, started) >= orders + 1:
                break
            await asyncio.sleep(0.2)  # the count comes from log files: nothing to wait on but time
        console.print(f"notifications sent from the durable queue: {_notified(home, started)}")

        console.rule("a replica dies")
        victim = next(s for s in cp.status()["services"] if s["name"] == "inventory")["instances"][0]
        await disc.cache.wait_for(lambda c: victim["id"] in {i.id for i in c.candidates("inventory")})
        k0 = time.perf_counter()
        os.kill(victim["pid"], signal.SIGKILL)
        await disc.cache.wait_for(lambda c: victim["id"] not in {i.id for i in c.candidates("inventory")})
        gone = time.perf_counter() - k0
        ok = 0
        for i in range(20):
            order = await bus.request("orders", "place", {"sku": "tea", "qty": 1, "customer": f"late-{i}"})
            ok += order["status"] in ("paid", "declined")
        async with asyncio.timeout(30):
            await disc.cache.wait_for(lambda c: victim["id"] in {i.id for i in c.candidates("inventory")})
            await cp.supervisor.wait_healthy()
        back = time.perf_counter() - k0
        console.print(
            f"SIGKILL {victim['id']} (pid {victim['pid']}): out of every picker after {gone * 1000:.0f} ms; "
            f"{ok}/20 orders placed meanwhile; restarted and healthy again after {back:.1f}s"
        )
    console.print(status_table(cp.status()))


async def run_shop(spec_path: Path, once: bool, orders: int) -> None:
    """Run the shop of ``spec_path`` under a control plane in this process, drive ``orders`` orders and
    a replica kill, print what happened; then stop (``once``) or stay up until SIGINT/SIGTERM."""
    spec = load_spec(spec_path)
    home = home_dir(spec_path)
    if read_state(home, required=False) is not None:
        raise UsageError(f"the shop already runs ({home}): `minga down -f {spec_path}` first")
    cp = ControlPlane.from_spec(spec, home)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, cp.request_stop)
    ready = asyncio.Event()
    states: list[ServerState] = []

    def on_ready(state: ServerState) -> None:
        states.append(state)
        ready.set()

    finished: list[bool] = []

    async def drive() -> None:
        await ready.wait()
        dashboard = cp.status().get("dashboard")
        if dashboard:
            console.print(f"dashboard: {dashboard} (its token: `minga token --read-only -f {_shown(spec_path)}`)")
        try:
            await _traffic(cp, states[0], home, orders)
        except (TimeoutError, BusError, aiohttp.ClientError) as exc:
            console.print(f"[red]the demo went wrong:[/] {exc!r}; see `minga logs -f {spec_path}`")
            cp.request_stop()
            return
        finally:
            if once:
                cp.request_stop()
        finished.append(True)
        if not once:
            for line in what_next(spec_path, dashboard, running=True):
                console.print(line, soft_wrap=True, markup=False)

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(cp.run(on_ready))
            tg.create_task(drive())
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    console.print("shop stopped: every replica is gone")
    if once and finished:
        for line in what_next(spec_path, None, running=False):
            console.print(line, soft_wrap=True, markup=False)


def shop_demo(once: bool = False, orders: int = 60) -> None:
    """Run examples/shop, drive traffic, kill a replica, print what happened; stay up unless ``once``."""
    console.print("the example shop (examples/shop/minga.yaml) under the control plane, as `minga up` runs it")
    log_to(RichHandler(console=console, show_path=False, markup=False))
    asyncio.run(run_shop(find_shop(), once, orders))

