"""``python -m minga.service MODULE:Class``: a replica process with JSON logs and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

import support
from minga.bus import Bus, TraceContext, current_trace
from minga.discovery import EmbeddedStore, Registry, serve_registry

HERE = Path(__file__).parent


def _replica(
    url: str, port: int, *, target: str = "demo_services:Echo", discovery: str | None = None
) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
            "MINGA_NATS_URL": url,
            "MINGA_INSTANCE": "echo-1",
            "MINGA_HTTP_PORT": str(port),
            "MINGA_GRACE": "5",
        }
    )
    env.pop("MINGA_DISCOVERY_URL", None)
    if discovery is not None:
        env["MINGA_DISCOVERY_URL"] = discovery
    return subprocess.Popen(
        [sys.executable, "-m", "minga.service", target],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_a_replica_serves_logs_json_and_stops_on_sigterm(minga_broker: str) -> None:
    port = support.free_port()
    proc = _replica(minga_broker, port)
    try:
        support.wait_for_port("127.0.0.1", port, timeout=30, proc=proc)
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as r:
            assert (await r.json())["instance"] == "echo-1"
        async with Bus(minga_broker) as client:
            root = TraceContext.new()
            current_trace.set(root)
            assert await client.request("echo", "echo", {"text": "hola"}) == "hola"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert {(x["service"], x["instance"]) for x in lines} == {("echo", "echo-1")}
    messages = [x["message"] for x in lines]
    assert messages[0] == "echo started" and messages[-1] == "echo stopped"
    (echoed,) = [x for x in lines if x["message"] == "echoing"]
    assert echoed["trace_id"] == root.trace_id and echoed["fields"] == {"text": "hola"}
    assert echoed["level"] == "info" and echoed["ts"].endswith("+00:00")


def test_a_wrong_target_is_one_clear_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "minga.service", "no_such_module:Thing"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: cannot import 'no_such_module': No module named 'no_such_module'"
    ]


async def test_a_replica_registers_with_discovery_and_deregisters_on_sigterm(
    minga_broker: str, tmp_path: Path
) -> None:
    registry = Registry(EmbeddedStore(tmp_path / "registry.json"))
    async with registry, serve_registry(registry) as control, registry.watch() as watch:
        assert watch.snapshot.instances == []
        port = support.free_port()
        proc = _replica(minga_broker, port, discovery=control)
        try:
            events = aiter(watch)
            async with asyncio.timeout(30):
                put = await anext(events)
            assert put.kind == "put" and put.instance.id == "echo-1"
            assert put.instance.service == "echo" and put.instance.ports == {"http": port, "metrics": port}
            assert put.instance.metadata["pid"] == str(proc.pid)
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                gone = await anext(events)
            assert gone.kind == "delete" and gone.instance.id == "echo-1"
            _, err = await asyncio.to_thread(proc.communicate, timeout=20)
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
