"""What the monitor costs: scrape + store per 1,000 series, log ingest, and log search over many lines.

    python bench/monitor.py [--series 1000] [--scrapes 20] [--lines 1000000] [--searches 5]

Scrape + store: a replica-like aiohttp endpoint serves an exposition of ``--series`` series
(counters and histogram buckets with service/instance/entrypoint labels); the monitor's scraper
fetches, parses and stores it in SQLite ``--scrapes`` times. Anchor, in the same run: fetching
the same body over the same HTTP and appending it to a plain file.

Log ingest: ``--lines`` JSON log lines in the supervisor's format (``<time> <json>``), as
replicas write them, indexed by the log collector (SQLite + FTS5). Anchor: reading the same file
and ``json.loads`` of every line (no index at all).

Search latency: free text (a rare word), a trace id, level + service (the newest 100) and a
common word + service (the newest 100) over the same lines, through the index; anchor: GNU grep over the same file (``grep -F -c``), the plain tool.
Medians; ratios against the anchors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from minga.monitor import LogCollector, LogSearch, LogStore, MetricStore, Scraper, ScrapeTarget
from minga.service._metrics import BUCKETS


def exposition(series: int) -> str:
    """An exposition with about ``series`` series, shaped like a replica's."""
    lines = ["# TYPE minga_entrypoint_calls_total counter"]
    per_entry = 2 + len(BUCKETS) + 3  # ok, error, buckets + Inf, sum, count
    entries = max(1, series // per_entry)
    for e in range(entries):
        ep = f'entrypoint="method_{e}",kind="rpc"'
        lines.append(f'minga_entrypoint_calls_total{{{ep},outcome="ok"}} {random.randint(0, 10**6)}')
        lines.append(f'minga_entrypoint_calls_total{{{ep},outcome="error"}} {random.randint(0, 10**3)}')
        running = 0
        for le in (*BUCKETS, "+Inf"):
            running += random.randint(0, 100)
            lines.append(f'minga_entrypoint_duration_seconds_bucket{{{ep},le="{le}"}} {running}')
        lines.append(f"minga_entrypoint_duration_seconds_sum{{{ep}}} {running * 0.01}")
        lines.append(f"minga_entrypoint_duration_seconds_count{{{ep}}} {running}")
    return "\n".join(lines) + "\n"


async def bench_scrape(series: int, scrapes: int, tmp: Path) -> dict[str, float]:
    body = exposition(series)
    n_series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/metrics"
    store = MetricStore(tmp / "metrics.db", max_series=100_000)

    async def targets() -> list[ScrapeTarget]:
        return [ScrapeTarget("bench", "bench-1", url)]

    scraper = Scraper(store, targets)
    plain: list[float] = []
    minga: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            await scraper.scrape_all(session)  # creates the series once, as a long-running monitor has
            with (tmp / "plain.txt").open("a", encoding="utf-8") as sink:
                for _ in range(scrapes):
                    t0 = time.perf_counter()
                    async with session.get(url) as resp:
                        sink.write(await resp.text())
                        sink.flush()
                    plain.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    await scraper.scrape_all(session)
                    minga.append(time.perf_counter() - t0)
    finally:
        store.close()
        await runner.cleanup()
    scale = 1000 / n_series
    return {
        "series": n_series,
        "plain_ms": statistics.median(plain) * 1000 * scale,
        "minga_ms": statistics.median(minga) * 1000 * scale,
    }


def write_lines(path: Path, lines: int) -> str:
    """``lines`` supervisor-format JSON log lines; returns a trace id that occurs in a few of them."""
    services = ["orders", "payments", "inventory", "notifications"]
    words = ["reserved", "charged", "declined", "shipped", "queued", "retrying", "timeout", "ok"]
    needle = "f" * 32
    rng = random.Random(7)
    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    with path.open("w", encoding="utf-8") as f:
        for i in range(lines):
            svc = services[i % 4]
            at = datetime.fromtimestamp(t0 + i * 0.001, UTC).isoformat(timespec="milliseconds")
            level = "error" if i % 97 == 0 else ("warning" if i % 13 == 0 else "info")
            trace = needle if i % 200_000 == 1 else f"{rng.getrandbits(128):032x}"
            message = f"order {i} {rng.choice(words)} for customer c{i % 5000}"
            if i % 100_000 == 3:
                message += " zebracorn"  # the rare word searched for
            doc = {
                "ts": at, "level": level, "service": svc, "instance": f"{svc}-{i % 2 + 1}", "logger": "shop",
                "message": message, "trace_id": trace, "fields": {"order": i},
            }
            f.write(f"{at} {json.dumps(doc)}\n")
    return needle


def bench_logs(lines: int, searches: int, tmp: Path) -> dict[str, float]:
    logs = tmp / "logs"
    logs.mkdir()
    path = logs / "shop-1.log"
    needle = write_lines(path, lines)
    # anchor: read and parse every line, no index
    t0 = time.perf_counter()
    with path.open(encoding="utf-8") as f:
        for raw in f:
            json.loads(raw.split(" ", 1)[1])
    parse_s = time.perf_counter() - t0
    store = LogStore(tmp / "logs.db")
    t0 = time.perf_counter()
    indexed = LogCollector(store, logs).collect()
    ingest_s = time.perf_counter() - t0
    assert indexed == lines, (indexed, lines)

    grep = shutil.which("grep")

    def timed_grep(pattern: str) -> float:
        assert grep is not None
        t = time.perf_counter()
        subprocess.run([grep, "-F", "-c", pattern, str(path)], check=False, capture_output=True)
        return time.perf_counter() - t

    def timed_search(q: LogSearch) -> tuple[float, int]:
        t = time.perf_counter()
        n = len(store.search(q))
        return time.perf_counter() - t, n

    results: dict[str, float] = {
        "lines": lines,
        "file_mb": path.stat().st_size / 2**20,
        "db_mb": sum(p.stat().st_size for p in tmp.glob("logs.db*")) / 2**20,
        "parse_lps": lines / parse_s,
        "ingest_lps": lines / ingest_s,
    }
    cases = {
        "text": (LogSearch(text="zebracorn", limit=1000), "zebracorn"),
        "trace": (LogSearch(trace_id=needle, limit=1000), needle),
        "level+service": (LogSearch(service="payments", level="error", limit=100), '"level": "error"'),
        "word+service": (LogSearch(service="orders", text="declined", limit=100), "declined"),
    }
    for name, (q, pattern) in cases.items():
        idx = [timed_search(q)[0] for _ in range(searches)]
        plain = [timed_grep(pattern) for _ in range(searches)] if grep else [float("nan")]
        results[f"{name}_index_ms"] = statistics.median(idx) * 1000
        results[f"{name}_grep_ms"] = statistics.median(plain) * 1000
    store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--searches", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minga-bench-monitor-") as tmpdir:
        tmp = Path(tmpdir)
        scrape = asyncio.run(bench_scrape(args.series, args.scrapes, tmp))
        print(f"scrape + store, per 1,000 series ({scrape['series']:.0f} series, median of {args.scrapes}):")
        print(f"  fetch + append to a file (anchor)  {scrape['plain_ms']:8.2f} ms")
        print(f"  minga scrape + parse + store       {scrape['minga_ms']:8.2f} ms  "
              f"({scrape['minga_ms'] / scrape['plain_ms']:.1f}x)")
        logs = bench_logs(args.lines, args.searches, tmp)
        print(f"log ingest, {logs['lines']:,.0f} lines ({logs['file_mb']:.0f} MiB of JSON lines, "
              f"index {logs['db_mb']:.0f} MiB):")
        print(f"  read + json.loads (anchor)         {logs['parse_lps']:10,.0f} lines/s")
        print(f"  minga collect + index (FTS5)       {logs['ingest_lps']:10,.0f} lines/s  "
              f"({logs['ingest_lps'] / logs['parse_lps']:.2f}x)")
        print(f"search latency over {logs['lines']:,.0f} lines (median of {args.searches}):")
        for name in ("text", "trace", "level+service", "word+service"):
            idx, plain = logs[f"{name}_index_ms"], logs[f"{name}_grep_ms"]
            print(f"  {name:<14} index {idx:9.2f} ms   grep -F {plain:9.2f} ms   ({plain / idx:,.0f}x faster)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
