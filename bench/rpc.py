"""RPC through minga's SDK vs raw nats-py request/reply, on the same broker, in the same run.

Three ways to answer the same request (a small JSON object echoed back):

- ``raw``: nats-py ``subscribe(queue=...)`` + ``msg.respond`` and ``nc.request`` (the anchor);
- ``bus``: :class:`minga.bus.Bus` ``serve`` / ``request`` (JSON envelope, trace header, each call run
  eagerly, in a task only once it suspends);
- ``sdk``: a :class:`minga.Service` with ``@rpc`` in a container (payload validated by pydantic,
  a fresh worker per call, dependencies injected), called with ``Bus.request`` as
  ``self.rpc.<service>.<method>`` does.

For each: round-trip latency of sequential calls (p50, p99) and throughput with
``--concurrency`` calls in flight. Rounds interleave the three and medians are reported, so a
noisy machine hits all of them alike (the order rotates), and the best round of each is
reported: load from elsewhere only ever makes a round slower. Client and server share one process and event loop.

    python bench/rpc.py [--broker nats-server|embedded] [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import nats
from nats.aio.msg import Msg
from pydantic import BaseModel

from minga import Service, rpc
from minga.bus import Bus, Delivery
from minga.discovery.ports import free_port, wait_for_port
from minga.service import ServiceContainer

PAYLOAD = {"sku": "apple-123", "qty": 2, "note": "x" * 64}


class Echo(BaseModel):
    sku: str
    qty: int
    note: str


class Bench(Service):
    name = "bench"

    @rpc
    async def echo(self, sku: str, qty: int, note: str) -> Echo:
        return Echo(sku=sku, qty=qty, note=note)


@contextmanager
def broker(kind: str) -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "nats-server":
            binary = shutil.which("nats-server")
            if binary is None:
                sys.exit("nats-server is not installed (Debian package nats-server)")
            argv = [binary, "-a", "127.0.0.1", "-p", str(port)]
        else:
            argv = [
                sys.executable,
                "-m",
                "minga",
                "broker",
                "--port",
                str(port),
                "--store",
                str(Path(tmp) / "js"),
            ]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            try:
                wait_for_port("127.0.0.1", port, 20.0, proc)
            except (RuntimeError, TimeoutError):
                sys.exit(f"the {kind} broker did not start")
            yield f"nats://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(10)


Call = Callable[[], Awaitable[object]]


async def measure(call: Call, calls: int, concurrency: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, calls/s) for ``call``."""
    for _ in range(50):  # warm up
        await call()
    lat = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await call()
        lat.append(time.perf_counter() - t0)
    lat.sort()
    p50, p99 = lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return p50, p99, calls / (time.perf_counter() - t0)


async def run(
    url: str, calls: int, rounds: int, concurrency: int
) -> dict[str, list[tuple[float, float, float]]]:
    body = json.dumps(PAYLOAD).encode()
    server_nc = await nats.connect(url)
    client_nc = await nats.connect(url)

    async def respond(msg: Msg) -> None:
        await msg.respond(json.dumps(json.loads(msg.data)).encode())

    await server_nc.subscribe("raw.echo", queue="raw", cb=respond)
    await server_nc.flush()

    async def raw() -> object:
        return json.loads((await client_nc.request("raw.echo", body, timeout=10)).data)

    results: dict[str, list[tuple[float, float, float]]] = {"raw": [], "bus": [], "sdk": []}
    async with Bus(url) as bus_server, Bus(url) as client, Bus(url) as sdk_bus:

        async def echo(d: Delivery) -> object:
            return d.payload

        await bus_server.serve("plain", "echo", echo)
        async with ServiceContainer(Bench, sdk_bus, http_port=None):

            async def via_bus() -> object:
                return await client.request("plain", "echo", PAYLOAD)

            async def via_sdk() -> object:
                return await client.request("bench", "echo", PAYLOAD)

            assert await via_sdk() == await via_bus() == await raw() == PAYLOAD
            paths: list[tuple[str, Call]] = [("raw", raw), ("bus", via_bus), ("sdk", via_sdk)]
            for r in range(rounds):
                for name, call in paths[r % 3 :] + paths[: r % 3]:  # rotate: no path always goes first
                    results[name].append(await measure(call, calls, concurrency))
                print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    await server_nc.close()
    await client_nc.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--broker", choices=["nats-server", "embedded"], default="nats-server")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with broker(args.broker) as url:
        results = asyncio.run(run(url, args.calls, args.rounds, args.concurrency))
    # best of the rounds: other load on the machine only ever makes a round slower
    med = {k: (min(x[0] for x in v), min(x[1] for x in v), max(x[2] for x in v)) for k, v in results.items()}
    raw_p50, raw_p99, raw_tput = med["raw"]
    print(f"broker: {args.broker}; {args.calls} calls x {args.rounds} rounds; {args.concurrency} in flight")
    print(
        f"{'path':<5} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9} {'p50/raw':>8} {'p99/raw':>8} {'raw/tput':>9}"
    )
    for name, (p50, p99, tput) in med.items():
        print(
            f"{name:<5} {p50:8.3f} {p99:8.3f} {tput:9.0f} {p50 / raw_p50:8.2f} {p99 / raw_p99:8.2f}"
            f" {raw_tput / tput:9.2f}"
        )


if __name__ == "__main__":
    main()
