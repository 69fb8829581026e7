"""A replica killed with SIGKILL leaves every picker within 1 second (the requirement)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

import support
from minga.discovery import (
    DiscoveryClient,
    EmbeddedStore,
    EtcdStore,
    Health,
    Instance,
    Registry,
    Store,
    discovery_app,
)
from minga.spec import HealthCheckSpec

ServeApp = Callable[[web.Application], Awaitable[str]]

REPLICA = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


async def _start_replica(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", REPLICA, str(port))
    await asyncio.to_thread(support.wait_for_port, "127.0.0.1", port, 15.0)
    return proc


@pytest.mark.parametrize(
    ("store_kind", "supervisor_signal"),
    [("embedded", True), ("embedded", False), ("etcd", True)],
    ids=["embedded-supervisor", "embedded-checks-only", "etcd-supervisor"],
)
async def test_a_killed_replica_leaves_every_picker_within_a_second(
    store_kind: str, supervisor_signal: bool, etcd_url: str, serve_app: ServeApp, tmp_path: Path
) -> None:
    check = HealthCheckSpec(http="/healthz", interval=0.25, timeout=0.2)
    prefix = f"/kill-{uuid.uuid4().hex}/"
    store: Store = (
        EmbeddedStore(tmp_path / "r.json") if store_kind == "embedded" else EtcdStore(etcd_url, prefix=prefix)
    )
    ports = [support.free_port(), support.free_port()]
    procs = [await _start_replica(p) for p in ports]
    try:
        async with Registry(store, checks={"orders": check}) as registry:
            app = web.Application()
            app.add_subapp("/v1/discovery", discovery_app(registry))
            url = await serve_app(app)
            for n, (port, proc) in enumerate(zip(ports, procs, strict=True)):
                await registry.register(
                    Instance(
                        id=f"orders-{n}",
                        service="orders",
                        ports={"http": port},
                        metadata={"pid": str(proc.pid)},
                    )
                )

            async def supervise(n: int, proc: asyncio.subprocess.Process) -> None:
                await proc.wait()  # the supervisor learns of the exit from the OS at once
                if supervisor_signal:
                    await registry.mark_critical(f"orders-{n}", f"exited with {proc.returncode}")

            # a client through the control plane's API, and, for etcd, one on etcd directly
            client_stores: list[Store | str] = [url]
            if store_kind == "etcd":
                client_stores.append(EtcdStore(etcd_url, prefix=prefix))
            async with asyncio.TaskGroup() as tg:
                watchers = [tg.create_task(supervise(n, p)) for n, p in enumerate(procs)]
                clients = [DiscoveryClient(s) for s in client_stores]
                for client in clients:
                    await client.__aenter__()
                try:
                    pickers = [
                        c.picker("orders", kind) for c in clients for kind in ("round_robin", "random", "p2c")
                    ]
                    async with asyncio.timeout(3):
                        for client in clients:
                            await client.cache.wait_for(lambda c: len(c.candidates("orders")) == 2)
                    killed_at = time.monotonic()
                    procs[0].send_signal(signal.SIGKILL)
                    async with asyncio.timeout(1.0):  # the requirement: gone from every picker within 1 s
                        for client in clients:
                            await client.cache.wait_for(
                                lambda c: [i.id for i in c.candidates("orders")] == ["orders-1"]
                            )
                    elapsed = time.monotonic() - killed_at
                    for picker in pickers:
                        assert {picker.pick().id for _ in range(10)} == {"orders-1"}
                    dead = await registry.get("orders-0")
                    assert dead is not None and dead.health is Health.CRITICAL
                    print(
                        f"kill-to-removal ({store_kind}, supervisor={supervisor_signal}): {elapsed * 1000:.0f} ms"
                    )
                finally:
                    for client in clients:
                        await client.__aexit__(None, None, None)
                    for task in watchers:
                        task.cancel()
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
