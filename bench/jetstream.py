"""JetStream on the file store: the embedded broker against ``nats-server -js``, same client, same run.

Run from the repository root (nats-server must be installed)::

    python bench/jetstream.py                 # 20,000 messages of 128 bytes per phase
    python bench/jetstream.py --count 5000    # quicker

For each server, started as its own process on a free port with a fresh store directory
(servers interleaved over ``--rounds`` rounds, medians reported, to even out a busy machine):

1. **publish with ack**: ``--publishers`` coroutines (64) each await ``js.publish`` in turn, so
   that many publishes are in flight; the rate counts acknowledged messages per second;
2. **publish with ack, one at a time**: a single publisher awaiting every ack (``--count``/10
   messages): the latency a lone producer sees;
3. **consume and ack**: a durable pull consumer fetches batches of 500 and acks every message;
   the rate counts acknowledged messages per second (the last acks are flushed).

The embedded broker runs twice: with its default ``--fsync always`` (a publish is acknowledged
once it is on disk) and with ``--fsync interval`` (written before the ack, fsynced every two
minutes, which is what nats-server does by default). The ratios printed are embedded / nats-server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig

from minga.discovery.ports import free_port, wait_for_port


@contextlib.contextmanager
def server(kind: str, workdir: Path) -> Iterator[str]:
    port = free_port()
    store = workdir / kind
    if kind == "nats-server":
        binary = shutil.which("nats-server")
        if binary is None:
            sys.exit("nats-server is not installed (Debian package nats-server)")
        argv = [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
    else:
        policy = "always" if kind == "embedded" else "interval"
        argv = [sys.executable, "-m", "minga", "broker", "--port", str(port), "--store", str(store), "--fsync", policy]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, 20.0, proc)
        yield f"nats://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def measure(url: str, count: int, publishers: int, size: int) -> dict[str, float]:
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=10)
    await js.add_stream(name="BENCH", subjects=["bench.>"])
    payload = b"x" * size

    async def publish(n: int) -> None:
        for _ in range(n):
            await js.publish("bench.a", payload)

    start = time.perf_counter()
    per = count // publishers
    await asyncio.gather(*(publish(per) for _ in range(publishers)))
    published = per * publishers
    pub_rate = published / (time.perf_counter() - start)

    single = max(count // 10, 100)
    start = time.perf_counter()
    await publish(single)
    single_rate = single / (time.perf_counter() - start)
    total = published + single

    sub = await js.pull_subscribe("bench.>", durable="bench", config=ConsumerConfig(max_ack_pending=-1))
    start = time.perf_counter()
    got = 0
    while got < total:
        msgs = await sub.fetch(500, timeout=10)
        for m in msgs:
            await m.ack()
        got += len(msgs)
    await nc.flush()
    consume_rate = got / (time.perf_counter() - start)
    await nc.close()
    return {"publish": pub_rate, "publish_1": single_rate, "consume": consume_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000, help="messages per phase (default 20000)")
    parser.add_argument("--publishers", type=int, default=64, help="concurrent publishers (default 64)")
    parser.add_argument("--size", type=int, default=128, help="payload bytes (default 128)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, servers interleaved; medians reported (default 3)")
    args = parser.parse_args()
    kinds = ("nats-server", "embedded", "embedded-interval")
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix="minga-bench-js-") as tmp, server(kind, Path(tmp)) as url:
                runs[kind].append(asyncio.run(measure(url, args.count, args.publishers, args.size)))
    results = {
        kind: {key: statistics.median(r[key] for r in rs) for key in ("publish", "publish_1", "consume")}
        for kind, rs in runs.items()
    }
    anchor = results["nats-server"]
    print(
        f"JetStream file store, {args.count} x {args.size} B, {args.publishers} concurrent publishers, "
        f"median of {args.rounds} interleaved rounds"
    )
    print(f"{'server':<32}{'publish+ack/s':>16}{'1 in flight/s':>16}{'consume+ack/s':>16}")
    labels = {
        "nats-server": "nats-server -js",
        "embedded": "embedded (fsync always)",
        "embedded-interval": "embedded (fsync interval)",
    }
    for kind, r in results.items():
        print(f"{labels[kind]:<32}{r['publish']:>16,.0f}{r['publish_1']:>16,.0f}{r['consume']:>16,.0f}")
    for kind in ("embedded", "embedded-interval"):
        r = results[kind]
        print(
            f"ratio {labels[kind]} / nats-server: publish {r['publish'] / anchor['publish']:.2f}x, "
            f"one in flight {r['publish_1'] / anchor['publish_1']:.2f}x, "
            f"consume {r['consume'] / anchor['consume']:.2f}x"
        )


if __name__ == "__main__":
    main()
