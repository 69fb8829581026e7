"""How fast discovery follows changes: watch latency per store, and SIGKILL-to-removal per path.

    python bench/discovery.py [--events 300] [--trials 10]

Watch latency: from a registration to the moment a DiscoveryClient's cache holds it, for
the embedded store in-process, through the control plane's HTTP API (NDJSON watch), and on
etcd directly (when the ``etcd`` binary is installed). Target: within 100 ms.

Kill-to-removal: real replica processes register themselves through the HTTP API (and
renew their own lease); one is killed with SIGKILL and the time until a watching client's
pickers no longer offer it is measured, along three paths: the supervisor's exit signal
(``Registry.mark_critical``), active checks alone (interval 250 ms, timeout 200 ms), and the
lease alone (ttl 1 s). The lease-only path is the anchor measured in the same run; the
target is 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from minga.discovery import (
    DiscoveryClient,
    EmbeddedStore,
    EtcdStore,
    Instance,
    Registry,
    Store,
    serve_registry,
)
from minga.discovery.ports import free_port, wait_for_port
from minga.spec import HealthCheckSpec

REPLICA = """
import asyncio, sys
from aiohttp import web
from minga.discovery import DiscoveryClient, Instance

async def main(url, instance_id, port, ttl):
    app = web.Application()
    app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with DiscoveryClient(url, watch=False) as client:
        await client.register(Instance(id=instance_id, service="bench", ports={"http": port}), ttl=ttl)
        await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
"""


@contextlib.contextmanager
def etcd(tmp: Path) -> Iterator[str | None]:
    binary = shutil.which("etcd")
    if binary is None:
        yield None
        return
    client, peer = free_port(), free_port()
    argv = [binary, "--data-dir", str(tmp / "etcd"), "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://127.0.0.1:{client}", "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--heartbeat-interval", "50",
            "--election-timeout", "300", "--log-level", "warn"]  # fmt: skip
    with open(tmp / "etcd.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", client, 20.0)
        yield f"http://127.0.0.1:{client}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.asynccontextmanager
async def control_plane(
    store: Store, checks: dict[str, HealthCheckSpec] | None = None
) -> AsyncIterator[tuple[Registry, str]]:
    async with Registry(store, checks=checks) as registry, serve_registry(registry) as url:
        yield registry, url


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def watch_latency(registry: Registry, client: DiscoveryClient, events: int) -> list[float]:
    out = []
    for n in range(events):
        instance_id = f"w-{uuid.uuid4().hex[:8]}-{n}"
        start = time.perf_counter()
        await registry.register(Instance(id=instance_id, service="watched"), ttl=None)
        await client.cache.wait_for(lambda c, i=instance_id: c.get(i) is not None)  # type: ignore[misc]
        out.append(time.perf_counter() - start)
        await registry.deregister(instance_id)
    return out


async def kill_trial(registry: Registry, url: str, path: str, ttl: float) -> float:
    port = free_port()
    instance_id = f"bench-{uuid.uuid4().hex[:8]}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", REPLICA, url, instance_id, str(port), str(ttl)
    )
    async with DiscoveryClient(url) as client:
        async with asyncio.timeout(30):
            await client.cache.wait_for(lambda c: any(i.id == instance_id for i in c.candidates("bench")))
        # kill at a random phase of the check interval and of the lease renewals
        await asyncio.sleep(random.uniform(0.3, 0.8))

        async def supervise() -> None:
            await proc.wait()
            if path == "supervisor":
                await registry.mark_critical(instance_id, f"exited with {proc.returncode}")

        async with asyncio.TaskGroup() as tg:
            tg.create_task(supervise())
            start = time.perf_counter()
            proc.send_signal(signal.SIGKILL)
            async with asyncio.timeout(10):
                await client.cache.wait_for(lambda c: all(i.id != instance_id for i in c.candidates("bench")))
            elapsed = time.perf_counter() - start
    await registry.deregister(instance_id)
    return elapsed


async def main(events: int, trials: int) -> None:
    check = HealthCheckSpec(http="/healthz", interval=0.25, timeout=0.2)
    with tempfile.TemporaryDirectory() as tmp, etcd(Path(tmp)) as etcd_url:
        print(f"watch latency, register -> client cache ({events} events)")
        stores: list[tuple[str, Store, bool]] = [
            ("embedded, in-process", EmbeddedStore(), False),
            ("embedded, HTTP API", EmbeddedStore(), True),
        ]
        if etcd_url:
            stores.append(("etcd, direct", EtcdStore(str(etcd_url), prefix="/bench-watch/"), False))
        for name, store, over_http in stores:
            async with control_plane(store) as (registry, url):
                if over_http:
                    client_store: Store | str = url
                elif isinstance(store, EtcdStore):
                    client_store = EtcdStore(store.url, prefix=store.prefix)
                else:
                    client_store = store
                async with DiscoveryClient(client_store, close_store=client_store is not store) as client:
                    lat = await watch_latency(registry, client, events)
                p50, p99 = pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000
                print(
                    f"  {name:24s} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   p99/100ms target {p99 / 100:.3f}"
                )

        print(f"SIGKILL -> gone from pickers ({trials} kills per path)")
        results: dict[str, list[float]] = {}
        paths = [
            ("lease only, ttl 1s (anchor)", "lease", None, 1.0, EmbeddedStore()),
            ("active checks only, 250ms", "checks", check, 30.0, EmbeddedStore()),
            ("supervisor signal, embedded", "supervisor", check, 30.0, EmbeddedStore()),
        ]
        if etcd_url:
            paths.append(
                (
                    "supervisor signal, etcd",
                    "supervisor",
                    check,
                    30.0,
                    EtcdStore(str(etcd_url), prefix="/bench-kill/"),
                )
            )
        for name, path, checks, ttl, store in paths:
            async with control_plane(store, {"bench": checks} if checks else None) as (registry, url):
                results[name] = [await kill_trial(registry, url, path, ttl) for _ in range(trials)]
        anchor = statistics.median(next(iter(results.values())))
        for name, values in results.items():
            p50, worst = statistics.median(values), max(values)
            print(
                f"  {name:30s} p50 {p50 * 1000:7.1f} ms   max {worst * 1000:7.1f} ms   "
                f"max/1s target {worst:.3f}   p50/anchor {p50 / anchor:.3f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.trials))
