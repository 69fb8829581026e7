"""Does a heavy monitor query slow the data path? The example shop under load through the gateway,
broker PING round trips measured throughout, with and without the heaviest query the monitor's
API accepts fired every second.

Run (a couple of minutes)::

    python bench/isolation.py
    python bench/isolation.py --seconds 20 --rounds 2 --concurrency 4

What it does, in one run:

1. fills a fresh MINGA_HOME's metric store with an hour of history (``bench_work``: 90 series,
   one sample every 5 s), so that the heaviest query has real work to do;
2. ``minga up --detach`` of examples/shop in that home (4 services x 2 replicas, the gateway);
3. keeps ``--concurrency`` orders in flight through the gateway (``POST /api/orders/orders``:
   the orders service, RPC to inventory and payments, an event and a durable queue), timing each;
4. sends ``PING`` on a connection of its own to the broker every 20 ms and times each ``PONG``;
5. alternates ``--rounds`` quiet phases (the load alone, the anchor) and loud phases (the load,
   plus ``max_over_time(bench_work[1d])`` over 10,800 steps of 1 s, fired every second: 90 x
   10,800 series-steps, the most the engine accepts, each reading an hour of samples, until the
   deadline stops it), ``--seconds`` each;
6. ``minga down``.

It prints p50/p99 of the broker's PING round trip and of the gateway's order latency in each
condition, and the loud/quiet ratios (target: both p99s within 1.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from minga.controlplane import ControlPlaneClient, read_state
from minga.monitor import MetricStore
from minga.security import Role, read_token

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop" / "minga.yaml"
SERIES, SAMPLES = 90, 720


def minga(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINGA_HOME": str(home), "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "minga", *args], env=env, capture_output=True, text=True, timeout=180
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def fill(home: Path) -> None:
    store = MetricStore(home / "monitor" / "metrics.db")
    now = time.time()
    for i in range(SAMPLES):
        batch = [("bench_work", (("instance", f"w-{n}"), ("service", "bench")), float((i * 7 + n) % 100))
                 for n in range(SERIES)]  # fmt: skip
        store.ingest(now - 3600 + 5 * i, batch)
    store.close()


class Recorder:
    """Latencies (seconds) per condition; ``condition`` is what the phase running now is called."""

    def __init__(self) -> None:
        self.condition = "warmup"
        self.samples: dict[str, dict[str, list[float]]] = {}
        self.errors: dict[str, int] = {}

    def add(self, what: str, seconds: float) -> None:
        self.samples.setdefault(self.condition, {}).setdefault(what, []).append(seconds)


async def orders(gateway: str, rec: Recorder, stop: asyncio.Event, concurrency: int) -> None:
    counter = [0]

    async def one(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            counter[0] += 1
            body = {"sku": ("tea", "coffee", "cocoa")[counter[0] % 3], "qty": 1, "customer": "ada"}
            started = time.perf_counter()
            try:
                async with session.post(f"{gateway}/api/orders/orders", json=body) as resp:
                    answer = f"{resp.status} {(await resp.read())[:200]!r}"
                    ok = (
                        resp.status == 200 or b"declined" in answer.encode()
                    )  # a declined card is an answer too
            except (aiohttp.ClientError, TimeoutError) as exc:
                answer, ok = repr(exc), False
            if ok:
                rec.add("gateway", time.perf_counter() - started)
            else:
                rec.errors[rec.condition] = rec.errors.get(rec.condition, 0) + 1
                if sum(rec.errors.values()) == 1:
                    print(f"an order failed: {answer}", file=sys.stderr)

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(one(session) for _ in range(concurrency)))


async def pings(nats_url: str, rec: Recorder, stop: asyncio.Event, every: float = 0.02) -> None:
    parts = urlsplit(nats_url)
    reader, writer = await asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 4222)
    await reader.readline()  # INFO
    writer.write(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
    await writer.drain()
    await reader.readuntil(b"PONG\r\n")
    try:
        while not stop.is_set():
            started = time.perf_counter()
            writer.write(b"PING\r\n")
            await writer.drain()
            await reader.readuntil(b"PONG\r\n")
            rec.add("ping", time.perf_counter() - started)
            await asyncio.sleep(every)
    finally:
        writer.close()


async def heavy_queries(
    control: str, token: str | None, stop: asyncio.Event, outcomes: list[tuple[int, float]]
) -> None:
    """The heaviest query the API accepts, one a second, each in its own request (they overlap),
    sent with the read-only token as a dashboard's would be."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def fire() -> None:
            now = time.time()
            params = {"query": "max_over_time(bench_work[1d])", "start": str(now - 3600),
                      "end": str(now + 3 * 3600 - 3601), "step": "1s"}  # fmt: skip
            started = time.perf_counter()
            async with session.get(f"{control}/api/monitor/query_range", params=params) as resp:
                await resp.read()
                outcomes.append((resp.status, time.perf_counter() - started))

        tasks: list[asyncio.Task[None]] = []
        while not stop.is_set():
            tasks.append(asyncio.create_task(fire()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        await asyncio.gather(*tasks, return_exceptions=True)  # each ends by its deadline


async def measure(
    args: argparse.Namespace, control: str, token: str | None, gateway: str, nats_url: str
) -> tuple[Recorder, list[tuple[int, float]]]:
    rec = Recorder()
    stop = asyncio.Event()
    outcomes: list[tuple[int, float]] = []
    load = [
        asyncio.create_task(orders(gateway, rec, stop, args.concurrency)),
        asyncio.create_task(pings(nats_url, rec, stop)),
    ]
    await asyncio.sleep(3.0)  # warm up: connections, caches, the first scrapes
    for _ in range(args.rounds):
        for condition in ("quiet", "loud"):
            rec.condition = condition
            phase_stop = asyncio.Event()
            queries = (
                asyncio.create_task(heavy_queries(control, token, phase_stop, outcomes))
                if condition == "loud"
                else None
            )
            await asyncio.sleep(args.seconds)
            phase_stop.set()
            if queries is not None:
                rec.condition = "draining"  # while the last queries reach their deadline: counted nowhere
                await queries
    stop.set()
    await asyncio.gather(*load)
    return rec, outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="quiet + loud phases, alternated")
    parser.add_argument("--concurrency", type=int, default=4, help="orders in flight through the gateway")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="minga-isolationbench-"))
    home = tmp / "home"
    fill(home)
    up = minga("up", "--detach", "-f", str(SHOP), home=home)
    if up.returncode != 0:
        print(up.stdout, up.stderr, file=sys.stderr)
        return 1
    try:
        state = read_state(home)
        assert state is not None
        client = ControlPlaneClient.for_home(home)
        doc: dict[str, Any] = asyncio.run(client.status())
        token = read_token(home, Role.READ)
        rec, outcomes = asyncio.run(measure(args, state.url, token, doc["gateway"], state.nats_url))
        parts = asyncio.run(client.status())["parts"]
    finally:
        minga("down", "-f", str(SHOP), home=home)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"examples/shop, {args.concurrency} orders in flight through the gateway, broker PING every 20 ms; "
          f"{args.rounds} x ({args.seconds:g} s quiet + {args.seconds:g} s with the heaviest query every second)")  # fmt: skip
    print(f"{'':18}{'quiet p50':>11}{'quiet p99':>11}{'loud p50':>11}{'loud p99':>11}{'p99 ratio':>11}")
    ratios = {}
    for what, label in (("ping", "broker PING ms"), ("gateway", "gateway order ms")):
        quiet = rec.samples.get("quiet", {}).get(what, [])
        loud = rec.samples.get("loud", {}).get(what, [])
        ratios[what] = pct(loud, 0.99) / pct(quiet, 0.99)
        print(f"{label:18}{pct(quiet, 0.5) * 1000:>11.2f}{pct(quiet, 0.99) * 1000:>11.2f}"
              f"{pct(loud, 0.5) * 1000:>11.2f}{pct(loud, 0.99) * 1000:>11.2f}{ratios[what]:>10.2f}x")  # fmt: skip
    counts = {c: {w: len(v) for w, v in s.items()} for c, s in rec.samples.items() if c in ("quiet", "loud")}
    print(f"samples: {counts}; failed orders: {rec.errors or 0}")
    answered = [s for s, _ in outcomes]
    durations = [d for _, d in outcomes]
    print(f"heavy queries: {len(outcomes)} answered ({answered.count(200)} x 200, {answered.count(504)} x 504 past "
          f"the deadline), median {statistics.median(durations) if durations else float('nan'):.1f} s")  # fmt: skip
    refused = len(answered) - answered.count(200) - answered.count(504)
    if refused:  # a loud phase whose queries were refused was not loud: the run proves nothing
        print(f"error: {refused} heavy queries were neither answered nor stopped at their deadline", file=sys.stderr)
        return 1
    for part in parts:
        print(f"  {part['name']:16} {part['runs']:8} {part['state']:10} {part['detail']}")
    verdict = all(r <= 1.5 for r in ratios.values())
    print(f"target: both p99 ratios <= 1.5x: {'met' if verdict else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
