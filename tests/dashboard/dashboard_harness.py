"""The dashboard tests' harness: the shop's commands, orders through RPC, a recording browser tab.

The browser is Debian's /usr/bin/chromium: nothing is downloaded, and the page must work with
every request going to the control plane on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minga.bus import Bus, Timeout
from minga.errors import BusError

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop" / "minga.yaml"
WORDCOUNT = ROOT / "examples" / "jobs" / "wordcount.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


# the shop as examples/shop declares it, plus one alert rule that its first orders set off
ALERT = """
alerts:
  OrdersPlaced:
    query: sum by (service) (increase(minga_entrypoint_calls_total{service="orders"}[5m]))
    above: 5
    severity: info
    summary: the shop is taking orders
"""


def minga(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # the shop's package is found through PYTHONPATH when its spec is a copy elsewhere
    path = os.pathsep.join(p for p in (str(SHOP.parent), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "MINGA_HOME": str(home), "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "minga", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


async def place_orders(nats_url: str, n: int, customer: str) -> list[dict[str, Any]]:
    """``n`` orders through the shop's RPC; declined ones (payments fails 5% on purpose) count too."""
    placed: list[dict[str, Any]] = []
    async with Bus(nats_url) as bus:
        for i in range(n):
            try:
                placed.append(
                    await bus.request(
                        "orders", "place", {"sku": "tea", "qty": 1, "customer": f"{customer}{i}"}, timeout=Timeout(5.0)
                    )
                )
            except BusError:
                continue
    return placed


@dataclass
class Shop:
    home: Path
    control: str
    dashboard: str
    nats_url: str
    status: dict[str, Any]
    pages: list[str] = field(default_factory=list)

    def orders(self, n: int, customer: str) -> list[dict[str, Any]]:
        # in a thread of its own: Playwright's sync API keeps an event loop running in this one
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(lambda: asyncio.run(place_orders(self.nats_url, n, customer))).result(60)


@dataclass
class Page:
    """A browser tab on the dashboard that records console errors and every URL it requested."""

    page: Any
    base: str
    shots: Path
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, fragment: str) -> Any:
        self.page.goto(self.base + fragment)
        self.page.wait_for_selector(".conn.live", timeout=15_000)
        return self.page

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path
