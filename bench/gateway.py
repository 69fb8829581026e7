"""Throughput and tail latency through the gateway, against going direct, measured with wrk.

    python bench/gateway.py [--duration 8] [--connections 32] [--rounds 2] [--replicas 1]

Starts ``--replicas`` upstream processes (a small aiohttp app answering ``GET /hello``), a
registry (served over HTTP by this process) where they are registered, then measures in
the same run, round after round:

- (a) direct: wrk against one replica (the anchor);
- (b) the minga gateway: ``minga gateway serve`` in its own process, fed by the registry;
- (c) haproxy: the real binary on a config from ``render_haproxy`` over the same registry.

Each row is the median over the rounds of wrk's requests/s and p99 latency; ratios are to
(a). Targets: the minga gateway at >= 0.5x direct throughput and p99 <= 2x direct.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from minga.discovery import DiscoveryClient, EmbeddedStore, Instance, Registry, serve_registry
from minga.discovery.ports import free_port
from minga.gateway import DiscoverySource, Haproxy, render_haproxy
from minga.spec import GatewaySpec, RouteSpec

UPSTREAM = """
import sys
from aiohttp import web
async def hello(request):
    return web.Response(text="hello, world")
app = web.Application()
app.router.add_get("/hello", hello)
app.router.add_get("/healthz", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

SPEC_YAML = """
services:
  hello: {{command: [python, upstream.py], ports: [http]}}
gateway:
  listen: 127.0.0.1:{port}
  routes: [{{path: /api/hello, service: hello, strip_prefix: true}}]
"""


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stderr=subprocess.DEVNULL)


async def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    async with asyncio.timeout(20):
        while True:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)  # nothing to wait on but the port itself


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


_COUNT = re.compile(r"^\s+(\d+) requests in", re.M)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_LATENCY = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)


async def wrk(url: str, duration: float, connections: int) -> tuple[float, float, int]:
    """(requests per second, p99 in ms, requests) of one wrk run; non-2xx answers count as failures."""
    proc = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{round(duration)}s",
        "--latency",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await proc.communicate())[0].decode()
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    rps = _RPS.search(out)
    p99 = _LATENCY.search(out)
    count = _COUNT.search(out)
    if rps is None or p99 is None or count is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return float(rps.group(1)), float(p99.group(1)) * scale, int(count.group(1))


async def main(args: argparse.Namespace) -> None:
    for binary in ("wrk", "haproxy"):
        if shutil.which(binary) is None:
            sys.exit(f"{binary} is not installed: `make bench` installs it (Debian package {binary})")
    tmp = Path(tempfile.mkdtemp(prefix="minga-bench-gateway-"))
    (tmp / "upstream.py").write_text(UPSTREAM)
    gw_port, ha_port = free_port(), free_port()
    (tmp / "minga.yaml").write_text(SPEC_YAML.format(port=gw_port))
    spec = GatewaySpec(
        port=ha_port, routes=[RouteSpec(path="/api/hello", service="hello", strip_prefix=True)]
    )
    with processes() as procs:
        ports = [free_port() for _ in range(args.replicas)]
        for port in ports:
            procs.append(spawn([sys.executable, str(tmp / "upstream.py"), str(port)]))
        for port, proc in zip(ports, procs, strict=True):
            await wait_port(port, proc)
        async with (
            Registry(EmbeddedStore()) as registry,
            serve_registry(registry) as registry_url,
            DiscoveryClient(registry.store, close_store=False) as client,
        ):
            for i, port in enumerate(ports):
                await registry.register(
                    Instance(id=f"hello-{i}", service="hello", ports={"http": port}), ttl=None
                )
            gateway = spawn(
                [
                    sys.executable,
                    "-m",
                    "minga",
                    "gateway",
                    "serve",
                    "-f",
                    str(tmp / "minga.yaml"),
                    "--discovery",
                    registry_url,
                ],
            )
            procs.append(gateway)
            await wait_port(gw_port, gateway)
            cfg = tmp / "haproxy.cfg"
            cfg.write_text(render_haproxy(spec, {"hello": DiscoverySource(client.cache).endpoints("hello")}))
            haproxy = Haproxy(cfg, log=tmp / "haproxy.log")
            haproxy.start()
            try:
                await wait_port(ha_port)
                targets = {
                    "direct (one replica)": f"http://127.0.0.1:{ports[0]}/hello",
                    "minga gateway": f"http://127.0.0.1:{gw_port}/api/hello/hello",
                    "haproxy (rendered)": f"http://127.0.0.1:{ha_port}/api/hello/hello",
                }
                results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
                cpu: dict[str, list[float]] = {
                    "replica, direct": [],
                    "replica, behind the gateway": [],
                    "gateway": [],
                }
                for url in targets.values():
                    await wrk(url, 1, args.connections)  # warm up pools and code paths
                replica, gw = procs[0].pid, gateway.pid
                for _ in range(args.rounds):
                    for name, url in targets.items():
                        before = cpu_seconds(replica), cpu_seconds(gw)
                        rps, p99, count = await wrk(url, args.duration, args.connections)
                        used = cpu_seconds(replica) - before[0], cpu_seconds(gw) - before[1]
                        results[name].append((rps, p99))
                        if name.startswith("direct") and args.replicas == 1:
                            cpu["replica, direct"].append(used[0] / count * 1e6)
                        elif name == "minga gateway" and args.replicas == 1:
                            cpu["replica, behind the gateway"].append(used[0] / count * 1e6)
                            cpu["gateway"].append(used[1] / count * 1e6)
            finally:
                await haproxy.stop()
    report(results, cpu, args)


def report(
    results: dict[str, list[tuple[float, float]]], cpu: dict[str, list[float]], args: argparse.Namespace
) -> None:
    rows = {
        name: (statistics.median(r for r, _ in runs), statistics.median(p for _, p in runs))
        for name, runs in results.items()
    }
    anchor_rps, anchor_p99 = rows["direct (one replica)"]
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} round(s), "
        f"{args.replicas} replica(s) behind the proxies; cpus: {os.cpu_count()}"
    )
    print(f"{'path':24} {'req/s':>10} {'p99 ms':>8} {'req/s ratio':>12} {'p99 ratio':>10}")
    for name, (rps, p99) in rows.items():
        print(f"{name:24} {rps:10.0f} {p99:8.2f} {rps / anchor_rps:11.2f}x {p99 / anchor_p99:9.2f}x")
    rps, p99 = rows["minga gateway"]
    ok = rps / anchor_rps >= 0.5 and p99 / anchor_p99 <= 2.0
    print(f"target (gateway >= 0.5x direct req/s, p99 <= 2x direct): {'met' if ok else 'NOT met'}")
    if all(cpu.values()):
        print("CPU time per request (median, microseconds; independent of other load on the machine):")
        for name, values in cpu.items():
            print(f"  {name:28} {statistics.median(values):6.1f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
