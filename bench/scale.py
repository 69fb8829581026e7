"""How cost grows with the work: each figure at 1x and 10x the load, beside its anchor, in one run.

    python bench/scale.py [PART ...] [--quick]
    python bench/scale.py broker          # one part alone

Parts (each runs alone and is bounded in time):

- ``broker``: 100 connections x 10 subscriptions (1x) and 1,000 x 10 = 10,000 subscriptions (10x),
  each subscription on a subject of its own; one publisher sends messages round-robin over every
  subject. Delivered messages per second and the server's resident memory per connection
  (RSS after the connections and subscriptions are set up, less RSS before), nats-server beside
  the embedded broker.
- ``fanout``: one subject, 10 (1x) and 100 (10x) subscribers, each on its own connection;
  deliveries per second, nats-server beside the embedded broker.
- ``watch``: a registry holding 1,000 instances watched by 10 clients (1x), and 10,000 instances
  watched by 100 clients (10x); the time from a registration to the moment every watcher's cache
  holds it (p50 and p99). The embedded registry runs in a process of its own, served over its HTTP
  API, as the control plane serves it; etcd is the anchor.
- ``logs``: 100,000 (1x) and 1,000,000 (10x) log lines indexed by the monitor's log store; p50 and
  p99 of a term query (a customer token, the newest 100) and of a trace-id query; anchor: one
  ``grep -F -c`` over the same file.
- ``metrics``: a one-hour range query (step 15 s) of ``sum by (service) (rate(...[1m]))`` over
  500 (1x) and 5,000 (10x) series scraped every 15 s; anchor: Prometheus over the same samples,
  backfilled with ``promtool tsdb create-blocks-from openmetrics``.
- ``wordcount``: minga's local engine (2 workers) over 100 MB (1x) and over ten times the shuffle's
  memory budget (``--budget-mb``, 100 by default: 1,000 MB, 10x) of the seeded Zipf corpus;
  anchor: a single-process ``collections.Counter``.

Each part prints a table: the figure per load and side, minga's ratio to the anchor, and the growth
of the cost per unit of work from 1x to 10x (1.00: the cost grows linearly with the work; above 1:
worse than linear; below: better). ``--quick`` runs every part at a small size, to check the bench
still works; its figures mean little.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mapreduce import ROOT, counter_wordcount, timed

from bus import servers
from discovery import etcd
from minga.compute import JobRef, run
from minga.compute.testing import generate_corpus
from minga.discovery import (
    DiscoveryClient,
    EmbeddedStore,
    EtcdStore,
    HttpStore,
    Instance,
    Registry,
    Store,
    serve_registry,
)
from minga.discovery.ports import free_port, wait_for_port
from minga.monitor import LogCollector, LogSearch, LogStore, MetricStore, QueryEngine
from monitor import write_lines

# -- the table every part prints ---------------------------------------------------------------


@dataclass
class Figure:
    """One measured quantity at 1x and 10x for the anchor and for minga.

    ``per_unit`` turns a value into the cost of one unit of work at that load (``load`` is 1 or
    10), so that the growth ``per_unit(10x) / per_unit(1x)`` is 1.0 when the cost is linear.
    """

    label: str
    fmt: str
    per_unit: Callable[[float, float], float]
    anchor: dict[int, float]
    minga: dict[int, float]


def per_op(value: float, load: float) -> float:
    """A time or a size per unit already (seconds per query, bytes per connection)."""
    return value


def rate_cost(value: float, load: float) -> float:
    """A rate (units per second): its cost per unit is its inverse."""
    return 1.0 / value


def total_cost(value: float, load: float) -> float:
    """A total over the whole load (seconds for everything): per unit, divide by the load."""
    return value / load


def verdict(growth: float) -> str:
    if growth <= 1.25:
        return "linear" if growth >= 0.8 else "better than linear"
    return "somewhat worse than linear" if growth <= 2.0 else "worse than linear"


def print_table(title: str, loads: dict[int, str], anchor: str, figures: Sequence[Figure]) -> None:
    print(f"\n{title}")
    for load, what in loads.items():
        print(f"  {load:>2}x: {what}")
    print(f"  {'':<34}{'load':>5}{anchor:>14}{'minga':>14}{'minga/anchor':>14}")
    for f in figures:
        for load in (1, 10):
            a, m = f.anchor.get(load, float("nan")), f.minga.get(load, float("nan"))
            print(
                f"  {f.label if load == 1 else '':<34}{load:>4}x{f.fmt.format(a):>14}{f.fmt.format(m):>14}"
                f"{m / a if a else float('nan'):>13.2f}x"
            )
        grow = {
            side: f.per_unit(values[10], 10) / f.per_unit(values[1], 1)
            for side, values in ((anchor, f.anchor), ("minga", f.minga))
            if 1 in values and 10 in values
        }
        if grow:
            text = "; ".join(f"{side} {g:.2f} ({verdict(g)})" for side, g in grow.items())
            print(f"  {'':<34}growth of the cost per unit, 10x/1x: {text}")
    sys.stdout.flush()


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def raise_nofile(need: int) -> None:
    """Raise this process's soft limit on open files to at least ``need`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < need:
            raise SystemExit(f"this bench needs {need} open files; the hard limit is {hard} (ulimit -Hn)")


# -- broker and fanout: raw NATS connections, so that the client costs next to nothing -----------

PAYLOAD = b"x" * 16


class Conn:
    """A bare NATS client connection that counts the MSG frames it receives."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = 0
        self.pong = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, port: int, subjects: Sequence[str]) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        await reader.readline()  # INFO
        conn = cls(reader, writer)
        subs = b"".join(f"SUB {s} {i + 1}\r\n".encode() for i, s in enumerate(subjects))
        writer.write(b'CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n' + subs + b"PING\r\n")
        conn.task = asyncio.create_task(conn._read())
        await asyncio.wait_for(conn.pong.wait(), 60)
        return conn

    async def _read(self) -> None:
        tail = b""
        while chunk := await self.reader.read(1 << 16):
            data = tail + chunk
            # payloads are all "x" and subjects hold no "MSG ", so a count of markers is exact
            self.received += data.count(b"MSG ") - tail.count(b"MSG ")
            if b"PONG\r\n" in data:
                self.pong.set()
            if b"PING\r\n" in data and b"PING\r\n" not in tail:
                self.writer.write(b"PONG\r\n")
            tail = data[-5:]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def open_all(port: int, plan: Sequence[Sequence[str]]) -> list[Conn]:
    conns: list[Conn] = []
    for start in range(0, len(plan), 50):  # 50 handshakes at a time: a burst of 1,000 is refused
        conns += await asyncio.gather(*(Conn.open(port, subs) for subs in plan[start : start + 50]))
    return conns


async def deliver(port: int, conns: list[Conn], subjects: Sequence[str], messages: int, per_message: int) -> tuple[float, int]:
    """Publish ``messages`` round-robin over ``subjects``; returns (deliveries per second, lost),
    each message being delivered ``per_message`` times."""
    pub = await Conn.open(port, [])
    frames = [f"PUB {s} {len(PAYLOAD)}\r\n".encode() + PAYLOAD + b"\r\n" for s in subjects]
    body = b"".join(frames[i % len(frames)] for i in range(messages))
    expected = messages * per_message
    before = sum(c.received for c in conns)
    started = time.perf_counter()
    for off in range(0, len(body), 1 << 20):
        pub.writer.write(body[off : off + (1 << 20)])
        await pub.writer.drain()
    last, seen, quiet = started, before, 0.0
    while seen - before < expected and quiet < 3.0 and time.perf_counter() - started < 300:
        await asyncio.sleep(0.02)
        now_seen = sum(c.received for c in conns)
        if now_seen != seen:
            seen, last, quiet = now_seen, time.perf_counter(), 0.0
        else:
            quiet = time.perf_counter() - last
    await pub.close()
    got = seen - before
    return got / (last - started), expected - got


async def broker_round(port: int, pid: int, connections: int, subs_each: int, messages: int) -> dict[str, float]:
    before = rss_bytes(pid)
    plan = [[f"scale.{c}.{k}" for k in range(subs_each)] for c in range(connections)]
    conns = await open_all(port, plan)
    await asyncio.sleep(0.5)  # let the server settle what it allocated for them
    per_conn = (rss_bytes(pid) - before) / connections
    subjects = [s for subs in plan for s in subs]
    rate, lost = await deliver(port, conns, subjects, messages, 1)
    for c in conns:
        await c.close()
    return {"rate": rate, "lost": lost, "rss_per_conn": per_conn}


async def fanout_round(port: int, subscribers: int, messages: int) -> dict[str, float]:
    conns = await open_all(port, [["fan.out"]] * subscribers)
    rate, lost = await deliver(port, conns, ["fan.out"], messages, subscribers)
    for c in conns:
        await c.close()
    return {"rate": rate, "lost": lost}


def part_broker(quick: bool) -> None:
    connections = {1: 10, 10: 100} if quick else {1: 100, 10: 1000}
    subs_each, messages = 10, 20_000 if quick else 200_000
    raise_nofile(connections[10] * 2 + 256)
    results: dict[str, dict[int, dict[str, float]]] = {}
    for load, count in connections.items():
        for server in servers():
            with server:
                assert server.proc is not None
                out = asyncio.run(broker_round(server.port, server.proc.pid, count, subs_each, messages))
            results.setdefault(server.name, {})[load] = out
            print(f"  {server.name:>12} {load:>2}x: {out['rate']:>10,.0f} msg/s, lost {out['lost']:,.0f}, "
                  f"{out['rss_per_conn'] / 1024:,.1f} KiB per connection", flush=True)
    anchor, ours = results["nats-server"], results["embedded"]
    print_table(
        f"broker: {messages:,} messages of {len(PAYLOAD)} bytes round-robin over every subscription",
        {load: f"{n:,} connections x {subs_each} = {n * subs_each:,} subscriptions" for load, n in connections.items()},
        "nats-server",
        [
            Figure("delivered, msg/s", "{:,.0f}", rate_cost,
                   {k: v["rate"] for k, v in anchor.items()}, {k: v["rate"] for k, v in ours.items()}),
            Figure("RSS per connection, KiB", "{:,.1f}", per_op,
                   {k: v["rss_per_conn"] / 1024 for k, v in anchor.items()},
                   {k: v["rss_per_conn"] / 1024 for k, v in ours.items()}),
        ],
    )  # fmt: skip
    report_lost(results)


def part_fanout(quick: bool) -> None:
    subscribers = {1: 10, 10: 100}
    messages = 2_000 if quick else 20_000
    raise_nofile(subscribers[10] * 2 + 256)
    results: dict[str, dict[int, dict[str, float]]] = {}
    for load, count in subscribers.items():
        for server in servers():
            with server:
                out = asyncio.run(fanout_round(server.port, count, messages))
            results.setdefault(server.name, {})[load] = out
            print(f"  {server.name:>12} {load:>2}x: {out['rate']:>10,.0f} deliveries/s, lost {out['lost']:,.0f}",
                  flush=True)  # fmt: skip
    print_table(
        f"fanout: {messages:,} messages of {len(PAYLOAD)} bytes to one subject",
        {load: f"{n} subscribers, {n * messages:,} deliveries" for load, n in subscribers.items()},
        "nats-server",
        [Figure("deliveries/s", "{:,.0f}", rate_cost,
                {k: v["rate"] for k, v in results["nats-server"].items()},
                {k: v["rate"] for k, v in results["embedded"].items()})],
    )  # fmt: skip
    report_lost(results)


def report_lost(results: dict[str, dict[int, dict[str, float]]]) -> None:
    lost = {name: sum(r["lost"] for r in rounds.values()) for name, rounds in results.items()}
    print("  lost in all rounds: " + ", ".join(f"{name} {n:,.0f}" for name, n in lost.items()))
    if lost["embedded"] > lost["nats-server"]:
        raise SystemExit(f"the embedded broker lost {lost['embedded']:,.0f} messages, nats-server {lost['nats-server']:,.0f}")


# -- watch: a change reaching every watcher ---------------------------------------------------


async def role_registry() -> None:
    """The embedded registry in a process of its own, served over HTTP; prints its URL."""
    async with Registry(EmbeddedStore()) as registry, serve_registry(registry) as url:
        print(url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


@contextlib.contextmanager
def registry_process() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, __file__, "--role", "registry"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        url = proc.stdout.readline().strip()
        if not url:
            raise RuntimeError("the registry process did not start")
        yield url
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def watch_round(
    make_store: Callable[[float], Store], instances: int, watchers: int, changes: int
) -> tuple[float, list[float]]:
    """Seconds per registration while filling the registry, and the latencies of ``changes`` changes."""
    writer = make_store(120.0)
    await writer.open()
    try:
        started = time.perf_counter()
        for start in range(0, instances, 50):
            await asyncio.gather(*(
                writer.put(Instance(id=f"inst-{n}", service=f"svc-{n % 50}", ports={"http": 20000 + n % 20000}))
                for n in range(start, min(instances, start + 50))
            ))  # fmt: skip
        fill = (time.perf_counter() - started) / instances
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for _ in range(watchers):
                clients.append(await stack.enter_async_context(DiscoveryClient(make_store(5.0), timeout=120)))
            for c in clients:
                async with asyncio.timeout(120):
                    await c.cache.wait_for(lambda cache: len(cache.instances()) >= instances)
            out = []
            for n in range(changes):
                probe = f"probe-{n}"
                started = time.perf_counter()
                await writer.put(Instance(id=probe, service="probe"))
                async with asyncio.timeout(60):
                    await asyncio.gather(*(c.cache.wait_for(lambda cache, p=probe: cache.get(p) is not None) for c in clients))
                out.append(time.perf_counter() - started)
                await writer.delete(probe)
                async with asyncio.timeout(60):
                    await asyncio.gather(*(c.cache.wait_for(lambda cache, p=probe: cache.get(p) is None) for c in clients))
            return fill, out
    finally:
        await writer.close()


def part_watch(quick: bool) -> None:
    loads = {1: (100, 10), 10: (1000, 100)} if quick else {1: (1000, 10), 10: (10_000, 100)}
    changes = 10 if quick else 50
    raise_nofile(loads[10][1] * 4 + 256)
    lat: dict[str, dict[int, list[float]]] = {"etcd": {}, "embedded": {}}
    fill: dict[str, dict[int, float]] = {"etcd": {}, "embedded": {}}
    with tempfile.TemporaryDirectory(prefix="minga-bench-scale-") as tmp:
        for load, (instances, watchers) in loads.items():
            (Path(tmp) / f"etcd-{load}").mkdir()
            with etcd(Path(tmp) / f"etcd-{load}") as etcd_url:
                if etcd_url is None:
                    raise SystemExit("etcd is not installed (`make test` installs it)")
                fill["etcd"][load], lat["etcd"][load] = asyncio.run(watch_round(
                    lambda t: EtcdStore(str(etcd_url), prefix="/scale/", timeout=t), instances, watchers, changes))  # fmt: skip
            with registry_process() as url:
                fill["embedded"][load], lat["embedded"][load] = asyncio.run(
                    watch_round(lambda t: HttpStore(url, timeout=t), instances, watchers, changes)
                )
            for side in lat:
                print(f"  {side:>9} {load:>2}x: p50 {pct(lat[side][load], 0.5) * 1000:7.1f} ms  "
                      f"p99 {pct(lat[side][load], 0.99) * 1000:7.1f} ms  "
                      f"(filling: {fill[side][load] * 1000:.2f} ms per registration)", flush=True)  # fmt: skip
    figures = [
        Figure(f"register -> all watchers, {name}, ms", "{:,.1f}", total_cost,
               {k: pct(v, q) * 1000 for k, v in lat["etcd"].items()},
               {k: pct(v, q) * 1000 for k, v in lat["embedded"].items()})
        for name, q in (("p50", 0.5), ("p99", 0.99))
    ]  # fmt: skip
    figures.append(
        Figure("filling: ms per registration", "{:,.2f}", per_op,
               {k: v * 1000 for k, v in fill["etcd"].items()}, {k: v * 1000 for k, v in fill["embedded"].items()})
    )  # fmt: skip
    print_table(
        f"registry watch: one registration reaching every watcher ({changes} changes; the cost unit is a "
        "watcher); filling: registrations 50 at a time, before the watchers start (the unit: one)",
        {load: f"{i:,} instances, {w} watchers" for load, (i, w) in loads.items()}, "etcd", figures,
    )


# -- logs: term and trace-id queries over an indexed log ----------------------------------------


def sample_trace_ids(path: Path, count: int, rng: random.Random) -> list[str]:
    lines = sum(1 for _ in path.open("rb"))
    wanted = set(rng.sample(range(lines), count))
    out = []
    with path.open(encoding="utf-8") as f:
        for i, raw in enumerate(f):
            if i in wanted:
                out.append(json.loads(raw.split(" ", 1)[1])["trace_id"])
    return out


def grep_seconds(pattern: str, path: Path, repeat: int) -> float:
    grep = shutil.which("grep")
    if grep is None:
        raise SystemExit("grep is not installed")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([grep, "-F", "-c", pattern, str(path)], check=False, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def part_logs(quick: bool) -> None:
    loads = {1: 10_000, 10: 100_000} if quick else {1: 100_000, 10: 1_000_000}
    queries = 30 if quick else 200
    rng = random.Random(11)
    minga: dict[str, dict[int, float]] = {}
    anchor: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="minga-bench-scale-") as tmpdir:
        for load, lines in loads.items():
            tmp = Path(tmpdir) / f"x{load}"
            (tmp / "logs").mkdir(parents=True)
            path = tmp / "logs" / "shop-1.log"
            write_lines(path, lines)
            store = LogStore(tmp / "logs.db")
            ingest_s, indexed = timed(lambda s=store, t=tmp: LogCollector(s, t / "logs").collect())
            assert indexed == lines, (indexed, lines)
            traces = sample_trace_ids(path, queries, rng)
            # write_lines names customers c0..c4999: a token in 1 line of 5,000
            terms = [f"c{rng.randrange(5000)}" for _ in range(queries)]
            for name, searches in (
                ("term", [LogSearch(text=t, limit=100) for t in terms]),
                ("trace", [LogSearch(trace_id=t, limit=100) for t in traces]),
            ):
                times = []
                for q in searches:
                    t, found = timed(lambda q=q, s=store: s.search(q))
                    assert found, q
                    times.append(t)
                minga.setdefault(f"{name} p50", {})[load] = pct(times, 0.5) * 1000
                minga.setdefault(f"{name} p99", {})[load] = pct(times, 0.99) * 1000
            store.close()
            for name, pattern in (("term", f'customer {terms[0]}"'), ("trace", traces[0])):
                g = grep_seconds(pattern, path, 3) * 1000
                anchor.setdefault(f"{name} p50", {})[load] = anchor.setdefault(f"{name} p99", {})[load] = g
            print(f"  {lines:>9,} lines: indexed in {ingest_s:.1f}s; " + ", ".join(
                f"{k} {v[load]:.2f} ms" for k, v in minga.items()), flush=True)  # fmt: skip
            shutil.rmtree(tmp)
    print_table(
        f"log search: {queries} term queries (a customer token, newest 100) and {queries} trace-id queries; "
        "the anchor is one grep -F -c over the file (median of 3) for both p50 and p99",
        {load: f"{n:,} JSON log lines" for load, n in loads.items()},
        "grep -F",
        [Figure(f"{name}, ms", "{:,.2f}", total_cost, anchor[name], minga[name]) for name in minga],
    )


# -- metrics: a one-hour range query ------------------------------------------------------------

QUERY = "sum by (service) (rate(minga_entrypoint_calls_total[1m]))"
SCRAPE = 15.0


def series_labels(count: int) -> list[tuple[tuple[str, str], ...]]:
    return [
        (("entrypoint", f"method_{n % 20}"), ("instance", f"svc{n % 10}-{n // 10}"), ("service", f"svc{n % 10}"))
        for n in range(count)
    ]


def write_openmetrics(path: Path, labels: list[tuple[tuple[str, str], ...]], start: float, points: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("# TYPE minga_entrypoint_calls counter\n")
        for i, ls in enumerate(labels):
            text = ",".join(f'{k}="{v}"' for k, v in ls)
            for p in range(points):
                f.write(f"minga_entrypoint_calls_total{{{text}}} {p * (i % 7 + 1)} {start + p * SCRAPE:.0f}\n")
        f.write("# EOF\n")


@contextlib.contextmanager
def prometheus(data: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("prometheus is not installed (`make test` installs it)")
    config = data.parent / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    port = free_port()
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}"]
    with open(data.parent / "prometheus.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_port("127.0.0.1", port, 60.0, proc)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/-/ready", timeout=5) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def prometheus_range(url: str, start: float, end: float) -> tuple[float, int]:
    query = urllib.parse.urlencode({"query": QUERY, "start": start, "end": end, "step": SCRAPE})
    started = time.perf_counter()
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{query}", timeout=120) as r:
        body = json.load(r)
    took = time.perf_counter() - started
    return took, len(body["data"]["result"])


def part_metrics(quick: bool) -> None:
    loads = {1: 50, 10: 500} if quick else {1: 500, 10: 5000}
    repeat = 3 if quick else 5
    points = int(3600 / SCRAPE) + 20  # an hour of scrapes, and the rate's first window before it
    end = (time.time() // 3600) * 3600 - 3600  # a whole hour, an hour back: within Prometheus's retention
    start = end - 3600
    first = start - 20 * SCRAPE
    minga: dict[int, float] = {}
    anchor: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="minga-bench-scale-") as tmpdir:
        for load, count in loads.items():
            tmp = Path(tmpdir) / f"x{load}"
            tmp.mkdir()
            labels = series_labels(count)
            store = MetricStore(tmp / "metrics.db", max_series=count * 2)
            for p in range(points):
                store.ingest(first + p * SCRAPE, [("minga_entrypoint_calls_total", ls, float(p * (i % 7 + 1)))
                                                 for i, ls in enumerate(labels)])  # fmt: skip
            engine = QueryEngine(store)
            times = []
            while len(times) < repeat and sum(times) < 90:  # a slow query is timed fewer times
                t, result = timed(lambda e=engine: e.range(QUERY, start, end, SCRAPE))
                assert len(result) == 10, len(result)
                times.append(t)
            minga[load] = statistics.median(times) * 1000
            store.close()
            write_openmetrics(tmp / "samples.om", labels, first, points)
            subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
                            str(tmp / "samples.om"), str(tmp / "tsdb")], check=True)  # fmt: skip
            with prometheus(tmp / "tsdb") as url:
                prometheus_range(url, start, end)  # the first query loads the blocks' indexes
                times = []
                for _ in range(repeat):
                    t, n = prometheus_range(url, start, end)
                    assert n == 10, n
                    times.append(t)
                anchor[load] = statistics.median(times) * 1000
            print(f"  {count:>6,} series: prometheus {anchor[load]:.1f} ms, minga {minga[load]:.1f} ms", flush=True)
    print_table(
        f"metrics: {QUERY} over one hour, step {SCRAPE:g}s (median of {repeat}, fewer past 90 s); "
        "the cost unit is a series",
        {load: f"{n:,} counter series scraped every {SCRAPE:g}s" for load, n in loads.items()},
        "prometheus",
        [Figure("range query, ms", "{:,.1f}", total_cost, anchor, minga)],
    )


# -- word count up to ten times the shuffle's memory budget -----------------------------------


def part_wordcount(quick: bool, budget_mb: int, data: Path) -> None:
    sizes = {1: 10, 10: 100} if quick else {1: 100, 10: 10 * budget_mb}
    budget = (8 if quick else budget_mb) << 20
    minga: dict[int, float] = {}
    anchor: dict[int, float] = {}
    actual: dict[int, float] = {}
    job = JobRef.from_file(ROOT / "examples" / "jobs" / "wordcount.py")
    for load, mb in sizes.items():
        corpus = data / f"zipf-{mb}mb-seed42.txt"
        if not corpus.exists():
            print(f"  generating {corpus} ...", flush=True)
            data.mkdir(parents=True, exist_ok=True)
            generate_corpus(corpus, mb << 20, seed=42)
        actual[load] = corpus.stat().st_size / 1e6
        anchor[load], expected = timed(lambda c=corpus: counter_wordcount(c))
        with tempfile.TemporaryDirectory(prefix="minga-bench-scale-") as tmp:
            minga[load], result = timed(lambda c=corpus, t=tmp: run(job, [c], Path(t) / "out", workers=2, memory_budget=budget))
            assert dict(result.read()) == expected, "minga's word count differs from Counter's"
        print(f"  {actual[load]:,.0f} MB: Counter {anchor[load]:.1f}s, minga {minga[load]:.1f}s", flush=True)
    ratio = actual[10] / actual[1]
    print_table(
        f"word count, seeded Zipf corpus, 2 workers, shuffle memory budget {budget >> 20} MB per task; "
        f"the cost unit is a MB (10x is {ratio:.1f}x the bytes)",
        {load: f"{actual[load]:,.0f} MB" for load in sizes}, "Counter",
        [Figure("seconds", "{:,.1f}", lambda v, load: v / (actual[10] if load == 10 else actual[1]),
                anchor, minga)],
    )  # fmt: skip


PARTS = ("broker", "fanout", "watch", "logs", "metrics", "wordcount")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"some of: {', '.join(PARTS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: check that each part works")
    parser.add_argument("--budget-mb", type=int, default=100, help="the shuffle's memory budget per task (wordcount)")
    parser.add_argument("--data", type=Path, default=ROOT / ".bench-data", help="where corpora are cached")
    parser.add_argument("--role", choices=["registry"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "registry":
        asyncio.run(role_registry())
        return
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"no part named {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    runners: dict[str, Callable[[], Any]] = {
        "broker": lambda: part_broker(args.quick),
        "fanout": lambda: part_fanout(args.quick),
        "watch": lambda: part_watch(args.quick),
        "logs": lambda: part_logs(args.quick),
        "metrics": lambda: part_metrics(args.quick),
        "wordcount": lambda: part_wordcount(args.quick, args.budget_mb, args.data),
    }
    for name in args.parts or PARTS:
        started = time.monotonic()
        print(f"\n--- {name}", flush=True)
        runners[name]()
        print(f"--- {name} took {time.monotonic() - started:.0f}s", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
