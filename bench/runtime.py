"""A running system under `minga up`: RPC between real replica processes, SDK against raw nats-py,
and how fast a SIGKILLed replica leaves routing.

bench/rpc.py measures the SDK's own overhead with client and server in one event loop; this one
measures what a user of `minga up` sees, every responder a supervised process. Run (a minute or so)::

    python bench/runtime.py                 # the embedded broker
    python bench/runtime.py --nats-server   # a real nats-server, when installed

What it does, in one run:

1. ``minga up --detach`` on a generated minga.yaml in a temp MINGA_HOME: ``echo`` (a minga
   Service with one ``@rpc``, 2 replicas) and ``raw`` (the same echo written with nats-py,
   queue group ``raw``, 2 replicas), both on the same broker;
2. round trips one at a time (``--n`` calls each): p50 and p99 latency, SDK
   (``Bus.request("echo", "ping", ...)``) against raw (``nc.request("raw.echo", ...)``),
   same JSON payload, and ``mixed`` (a raw client calling the minga service: where the cost is);
3. throughput with ``--concurrency`` calls in flight for ``--seconds`` seconds each;
   steps 2 and 3 run in ``--rounds`` interleaved rounds and the best round of each side counts;
4. ``--kills`` times: SIGKILL one ``echo`` replica and time until a discovery picker
   (``DiscoveryClient.picker("echo")``, fed by the registry's watch) no longer offers it;
   then wait until the supervisor has it back and healthy;
5. ``minga down``.

It prints each number and the SDK/raw ratios (target: SDK p50 <= 1.5x raw) and the
kill-to-removal times (target: <= 500 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats

from minga.bus import Bus
from minga.controlplane import ControlPlaneClient, read_state
from minga.discovery import DiscoveryClient, Health, HttpStore
from minga.security import read_token

HERE = Path(__file__).resolve().parent

SPEC = """\
name: runtimebench
broker: {broker}
services:
  echo:
    module: runtime_echo:Echo
    workdir: {here}
    replicas: 2
    ports: [http]
    health: {{http: /healthz, interval: 200ms, timeout: 200ms}}
  raw:
    command: ["{python}", "{here}/runtime_echo.py"]
    replicas: 2
"""


def minga(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MINGA_HOME": str(home), "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "minga", *args], env=env, capture_output=True, text=True, timeout=120)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latencies(call: Callable[[int], Awaitable[Any]], n: int) -> list[float]:
    for i in range(min(50, n)):  # warm-up: connections, subscriptions, caches
        await call(i)
    out: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        await call(i)
        out.append(time.perf_counter() - t0)
    return out


async def throughput(call: Callable[[int], Awaitable[Any]], concurrency: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < deadline:
            await call(i)
            i += 1
            done += 1

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    return done / (time.perf_counter() - t0)


async def kill_to_removal(home: Path, discovery_url: str, kills: int) -> list[float]:
    cp = ControlPlaneClient.for_home(home)
    out: list[float] = []
    async with DiscoveryClient(HttpStore(discovery_url, token=read_token(home))) as client:
        for _ in range(kills):
            doc = await cp.wait_healthy(30)
            echo = next(s for s in doc["services"] if s["name"] == "echo")
            victim = echo["instances"][0]
            await client.cache.wait_for(
                lambda c, v=victim["id"]: any(
                    i.id == v and i.health is Health.PASSING for i in c.instances("echo")
                )
            )
            t0 = time.perf_counter()
            os.kill(victim["pid"], signal.SIGKILL)
            await client.cache.wait_for(
                lambda c, v=victim["id"]: all(i.id != v for i in c.candidates("echo"))
            )
            out.append(time.perf_counter() - t0)
    return out


async def measure(nats_url: str, args: argparse.Namespace) -> dict[str, Any]:
    payload = {"n": 0, "pad": "x" * args.size}
    raw_body = json.dumps(payload).encode()
    async with Bus(nats_url) as bus:
        nc = await nats.connect(nats_url)
        try:

            async def sdk(i: int) -> Any:
                return await bus.request("echo", "ping", payload)

            async def raw(i: int) -> Any:
                return json.loads((await nc.request("raw.echo", raw_body, timeout=5)).data)

            async def mixed(i: int) -> Any:
                return json.loads((await nc.request("minga.rpc.echo.ping", raw_body, timeout=5)).data)

            calls = {"raw": raw, "sdk": sdk, "mixed": mixed}
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name in calls}
            order = list(calls)
            for r in range(args.rounds):
                # the order rotates, so load from elsewhere hits every side alike
                for name in order[r % len(order) :] + order[: r % len(order)]:
                    lat = await latencies(calls[name], args.n // args.rounds)
                    rounds[name].append(
                        {
                            "p50_us": statistics.median(lat) * 1e6,
                            "p99_us": pct(lat, 0.99) * 1e6,
                            "rps": await throughput(calls[name], args.concurrency, args.seconds / args.rounds),
                        }
                    )
            # the best round of each: load from elsewhere only ever makes a round slower
            return {
                name: {
                    "p50_us": min(x["p50_us"] for x in rs),
                    "p99_us": min(x["p99_us"] for x in rs),
                    "rps": max(x["rps"] for x in rs),
                }
                for name, rs in rounds.items()
            }
        finally:
            await nc.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=3000, help="sequential calls per side, over all rounds")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best of each side is shown")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput time per side, over all rounds")
    parser.add_argument("--size", type=int, default=64, help="payload padding, bytes")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--nats-server", action="store_true", help="use a real nats-server as the broker")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="minga-runtimebench-"))
    home = tmp / "home"
    nats_proc: subprocess.Popen[bytes] | None = None
    broker = "{port: 0}"
    if args.nats_server:
        binary = shutil.which("nats-server")
        if binary is None:
            print("nats-server is not installed", file=sys.stderr)
            return 2
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        nats_proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp / "js")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        broker = f"nats://127.0.0.1:{port}"
        time.sleep(0.5)
    spec = tmp / "minga.yaml"
    spec.write_text(SPEC.format(broker=broker, here=HERE, python=sys.executable), encoding="utf-8")
    up = minga("up", "--detach", "-f", str(spec), home=home)
    if up.returncode != 0:
        print(up.stdout, up.stderr, file=sys.stderr)
        return 1
    try:
        state = read_state(home)
        assert state is not None
        result = asyncio.run(measure(state.nats_url, args))
        kills = asyncio.run(kill_to_removal(home, f"{state.url}/v1/discovery", args.kills))
    finally:
        minga("down", home=home)
        if nats_proc is not None:
            nats_proc.terminate()
            nats_proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    sdk, raw = result["sdk"], result["raw"]
    broker_name = "nats-server" if args.nats_server else "embedded broker"
    print(f"RPC round trip, {args.size}-byte payload, 2 responders each, {broker_name}")
    print("mixed: a raw nats-py client calling the minga service (where the overhead is: client or service)")
    print(f"{'':8}{'p50 us':>10}{'p99 us':>10}{'calls/s':>12}   ({args.concurrency} in flight)")
    for name, r in (("raw", raw), ("sdk", sdk), ("mixed", result["mixed"])):
        print(f"{name:8}{r['p50_us']:>10.0f}{r['p99_us']:>10.0f}{r['rps']:>12.0f}")
    print(f"sdk/raw: p50 {sdk['p50_us'] / raw['p50_us']:.2f}x  p99 {sdk['p99_us'] / raw['p99_us']:.2f}x  "
          f"throughput {sdk['rps'] / raw['rps']:.2f}x   (target: p50 <= 1.5x)")
    ms = [k * 1000 for k in kills]
    print(f"SIGKILL -> out of the picker: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms "
          f"over {len(ms)} kills   (target <= 500 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
