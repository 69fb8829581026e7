"""The bus benchmark: the same nats-py harness against nats-server and the embedded broker.

    python bench/bus.py [--messages 200000] [--size 128] [--requests 5000] [--rounds 3]

For each server, started fresh as its own process on a free port:

- publish-only: one process publishes ``--messages`` messages of ``--size`` bytes to a subject
  nobody listens on, and flushes; messages per second.
- end to end: a subscriber process and a publisher process (separate from each other and from
  the server); from the first publish to the last message received; messages per second, and
  how many messages never reached the subscriber (lost). The subscriber holds everything
  client-side, so a lost message is one the server accepted and did not forward.
- request/reply: a responder process; this process sends ``--requests`` sequential requests and
  reports the latency percentiles.

Both servers run side by side and are measured in turn, ``--rounds`` times, so that they share
the machine's background load; prints every round, then the medians and the embedded/nats-server
ratios. Targets: end to end >= 0.5x,
request/reply p50 <= 2x nats-server's, and no message lost. The run fails (exit status 1) when
the embedded broker lost messages that nats-server did not.

The publish and subscribe roles are also the clients of tests/conformance/test_burst.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import nats

from minga.discovery.ports import free_port, wait_for_port

SUBJECT = "bench.data"


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.port, 30.0, self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def servers() -> list[Server]:
    binary = shutil.which("nats-server")
    if binary is None:
        raise SystemExit("nats-server is not installed (`make test` installs it)")
    p1, p2 = free_port(), free_port()
    return [
        Server("nats-server", [binary, "-a", "127.0.0.1", "-p", str(p1)], p1),
        Server("embedded", [sys.executable, "-m", "minga", "broker", "--port", str(p2)], p2),
    ]


# -- child roles (run as `python bench/bus.py --role ...`) ------------------


async def role_publish(url: str, count: int, size: int, subject: str) -> None:
    nc = await nats.connect(url, max_reconnect_attempts=0)
    payload = b"x" * size
    # wait for the go signal on stdin, so that the subscriber is surely listening
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    started = time.monotonic()
    publish = nc.publish
    for i in range(count):
        await publish(subject, payload)
        if i % 1000 == 999:
            await asyncio.sleep(0)  # as an application would: other tasks get their turn
    # once the flush returns the server has read every PUB
    await nc.flush(timeout=120)
    ended = time.monotonic()
    print(json.dumps({"started": started, "ended": ended}), flush=True)
    await nc.close()


TICK = 0.1
QUIET_TICKS = 15  # the subscriber gives up after 1.5 s of turns without a message
LIMIT = 300.0


async def role_subscribe(url: str, count: int, subject: str) -> None:
    """Count what arrives; print ``{"received", "last", "events"}`` once all did, or on quiet.

    Quiet is counted in turns of this process's loop that saw no message, not by the clock
    alone: a loop starved by a flood of reads must not take its starvation for silence.
    Disconnections and client errors are reported in ``events``.
    """
    events: list[str] = []

    async def on_error(exc: Exception) -> None:
        events.append(f"error: {exc!r}")

    async def on_disconnect() -> None:
        events.append("disconnected")

    nc = await nats.connect(url, error_cb=on_error, disconnected_cb=on_disconnect, max_reconnect_attempts=0)
    done = asyncio.Event()
    received = 0
    last = 0.0

    async def on_message(msg: object) -> None:
        nonlocal received, last
        received += 1
        last = time.monotonic()
        if received == count:
            done.set()

    # everything is held client-side: a message missing was not forwarded by the server
    await nc.subscribe(subject, cb=on_message, pending_msgs_limit=count + 10, pending_bytes_limit=1 << 30)
    await nc.flush()
    await nc.flush()
    print("ready", flush=True)
    started = time.monotonic()
    seen, quiet = 0, 0
    while not done.is_set() and quiet < QUIET_TICKS and time.monotonic() - started < LIMIT:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), TICK)
        quiet = quiet + 1 if received == seen and received else 0
        seen = received
    print(json.dumps({"received": received, "last": last, "events": events}), flush=True)
    await nc.close()


async def role_respond(url: str) -> None:
    nc = await nats.connect(url)

    async def on_request(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(msg.data)

    await nc.subscribe("bench.echo", cb=on_request)
    await nc.flush()
    await nc.flush()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await nc.close()


# -- measurements --------------------------------------------------------------


def child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def publish_only(url: str, count: int, size: int) -> float:
    pub = child("--role", "publish", "--url", url, "--messages", str(count), "--size", str(size), "--subject", "bench.void")
    assert pub.stdin is not None and pub.stdout is not None
    pub.stdin.write("go\n")
    pub.stdin.flush()
    result = json.loads(pub.stdout.readline())
    pub.wait(60)
    return count / (result["ended"] - result["started"])


def end_to_end(url: str, count: int, size: int) -> tuple[float, int]:
    """Messages per second from the first publish to the last message received, and how many were lost."""
    sub = child("--role", "subscribe", "--url", url, "--messages", str(count))
    assert sub.stdout is not None
    if sub.stdout.readline().strip() != "ready":
        raise RuntimeError("subscriber failed to start")
    pub = child("--role", "publish", "--url", url, "--messages", str(count), "--size", str(size), "--subject", SUBJECT)
    assert pub.stdin is not None and pub.stdout is not None
    pub.stdin.write("go\n")
    pub.stdin.flush()
    published = json.loads(pub.stdout.readline())
    received = json.loads(sub.stdout.readline())
    pub.wait(60)
    sub.wait(60)
    if received["events"]:
        print(f"  the subscriber saw: {', '.join(received['events'])}", flush=True)
    if not received["received"]:
        raise RuntimeError("the subscriber got no message at all")
    return received["received"] / (received["last"] - published["started"]), count - received["received"]


async def request_latency(url: str, requests: int, size: int) -> tuple[float, float]:
    responder = child("--role", "respond", "--url", url)
    assert responder.stdout is not None and responder.stdin is not None
    if responder.stdout.readline().strip() != "ready":
        raise RuntimeError("responder failed to start")
    nc = await nats.connect(url)
    payload = b"x" * size
    for _ in range(200):  # warm up
        await nc.request("bench.echo", payload, timeout=5)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        await nc.request("bench.echo", payload, timeout=5)
        samples.append(time.perf_counter() - started)
    await nc.close()
    responder.stdin.write("stop\n")
    responder.stdin.flush()
    responder.wait(30)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="measure each server this many times; medians")
    parser.add_argument("--role", choices=["publish", "subscribe", "respond"])
    parser.add_argument("--url")
    parser.add_argument("--subject", default=SUBJECT)
    args = parser.parse_args()
    if args.role == "publish":
        asyncio.run(role_publish(args.url, args.messages, args.size, args.subject))
        return
    if args.role == "subscribe":
        asyncio.run(role_subscribe(args.url, args.messages, args.subject))
        return
    if args.role == "respond":
        asyncio.run(role_respond(args.url))
        return

    figures: dict[str, dict[str, list[float]]] = {}
    started = [server.__enter__() for server in servers()]
    try:
        for round_ in range(1, args.rounds + 1):
            for server in started:  # interleaved, so that both see the same background load
                pub_rate = publish_only(server.url, args.messages, args.size)
                e2e_rate, lost = end_to_end(server.url, args.messages, args.size)
                p50, p99 = asyncio.run(request_latency(server.url, args.requests, args.size))
                mine = figures.setdefault(server.name, {"publish": [], "e2e": [], "p50": [], "p99": [], "lost": []})
                for key, value in (("publish", pub_rate), ("e2e", e2e_rate), ("p50", p50), ("p99", p99), ("lost", lost)):
                    mine[key].append(value)
                print(
                    f"round {round_} {server.name:>12}: publish-only {pub_rate:>9,.0f} msg/s   "
                    f"end-to-end {e2e_rate:>9,.0f} msg/s, lost {lost:>6,}   request/reply p50 {p50 * 1e6:>7.1f} us  "
                    f"p99 {p99 * 1e6:>8.1f} us",
                    flush=True,
                )
    finally:
        for server in started:
            server.__exit__(None, None, None)
    med = {name: {key: statistics.median(values) for key, values in f.items()} for name, f in figures.items()}
    ours, anchor = med["embedded"], med["nats-server"]
    lost = {name: int(sum(f["lost"])) for name, f in figures.items()}
    print()
    print(
        f"medians of {args.rounds} rounds; {args.messages:,} messages of {args.size} bytes, {args.requests:,} requests"
    )
    print(f"{'':>26}{'nats-server':>14}{'embedded':>14}{'ratio':>9}")
    rows = (
        ("publish-only, msg/s", "publish", 1.0, "{:,.0f}", ""),
        ("end to end, msg/s", "e2e", 1.0, "{:,.0f}", "   target >= 0.5x"),
        ("request/reply p50, us", "p50", 1e6, "{:,.1f}", "   target <= 2x"),
        ("request/reply p99, us", "p99", 1e6, "{:,.1f}", ""),
    )
    for label, key, scale, fmt, target in rows:
        print(
            f"{label:>26}{fmt.format(anchor[key] * scale):>14}{fmt.format(ours[key] * scale):>14}"
            f"{ours[key] / anchor[key]:>8.2f}x{target}"
        )
    print(f"{'lost in all rounds':>26}{lost['nats-server']:>14,}{lost['embedded']:>14,}          target 0")
    if lost["embedded"] > lost["nats-server"]:
        raise SystemExit(f"the embedded broker lost {lost['embedded']:,} messages, nats-server {lost['nats-server']:,}")


if __name__ == "__main__":
    main()
