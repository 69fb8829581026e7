"""A server's life as a process: lame-duck mode on SIGUSR2, with nats-server's timing.

Both servers run as child processes here (signals are the interface): nats-server with
``lame_duck_duration`` / ``lame_duck_grace_period`` in its config file, ``minga broker`` with
``--lame-duck-duration`` / ``--lame-duck-grace-period``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import support

DURATION = 30.0  # nats-server's minimum
GRACE = 1.0
CLIENTS = 4
# the pause between two closes: (duration - grace) / clients, at most 1 s, and at random from half of that
SHARE = min((DURATION - GRACE) / CLIENTS, 1.0)


@pytest.fixture
def process(server_kind: str, tmp_path: Path) -> Iterator[support.ServerProcess]:
    port = support.free_port()
    if server_kind == "nats-server":
        binary = shutil.which("nats-server")
        assert binary is not None
        conf = tmp_path / "nats.conf"
        conf.write_text(f'lame_duck_duration: "{DURATION:g}s"\nlame_duck_grace_period: "{GRACE:g}s"\n')
        argv = [binary, "-a", "127.0.0.1", "-p", str(port), "-c", str(conf)]
    else:
        argv = support.python_module(
            "minga",
            ["broker", "--port", str(port), "--lame-duck-duration", f"{DURATION:g}", "--lame-duck-grace-period", f"{GRACE:g}"],
        )
    server = support.ServerProcess(argv, port, log=tmp_path / "server.log")
    with support.running(server):
        yield server


async def watch(port: int, ready: asyncio.Event) -> tuple[bool, float]:
    """Connect, wait for the lame-duck INFO; return (told, when the connection closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await reader.readline()).startswith(b"INFO ")
        writer.write(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
        await writer.drain()
        assert await reader.readline() == b"PONG\r\n"
        ready.set()
        told = False
        async with asyncio.timeout(GRACE + CLIENTS * SHARE + 10):
            while line := await reader.readline():
                if line.startswith(b"INFO "):
                    told = told or json.loads(line[5:]).get("ldm") is True
                elif line == b"PING\r\n":
                    writer.write(b"PONG\r\n")
        return told, time.monotonic()
    finally:
        writer.close()


async def test_sigusr2_enters_lame_duck_mode(process: support.ServerProcess) -> None:
    readies = [asyncio.Event() for _ in range(CLIENTS)]
    watchers = [asyncio.create_task(watch(process.port, ready)) for ready in readies]
    for ready in readies:
        await asyncio.wait_for(ready.wait(), 10)
    started = time.monotonic()
    process.signal(signal.SIGUSR2)
    await asyncio.sleep(0.3)
    # no new client is accepted from the start of lame-duck mode
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", process.port)
        writer.close()
    results = await asyncio.gather(*watchers)
    assert all(told for told, _ in results)
    closed = sorted(when - started for _, when in results)
    # nobody is closed during the grace period, then one by one, SHARE / 2 to SHARE apart
    assert closed[0] >= GRACE * 0.9, closed
    assert closed[-1] - closed[0] >= (CLIENTS - 1) * SHARE / 2 * 0.8, closed
    assert closed[-1] <= GRACE + (CLIENTS - 1) * SHARE + 2.0, closed
    # and then the server goes away by itself
    assert process.proc is not None
    code = await asyncio.to_thread(process.proc.wait, 10)
    assert code == 0


@pytest.mark.parametrize(
    ("duration", "grace", "said"),
    [(20, 1, ("lame", "duration", "minimum is 30 seconds")), (30, 30, ("grace period", "lame duck duration"))],
)
def test_lame_duck_settings_are_checked(
    server_kind: str, tmp_path: Path, duration: int, grace: int, said: tuple[str, ...]
) -> None:
    if server_kind == "nats-server":
        binary = shutil.which("nats-server")
        assert binary is not None
        conf = tmp_path / "nats.conf"
        conf.write_text(f'lame_duck_duration: "{duration}s"\nlame_duck_grace_period: "{grace}s"\n')
        argv = [binary, "-a", "127.0.0.1", "-p", str(support.free_port()), "-c", str(conf)]
    else:
        argv = support.python_module(
            "minga",
            ["broker", "--port", "0", "--lame-duck-duration", str(duration), "--lame-duck-grace-period", str(grace)],
        )
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    text = (out.stdout + out.stderr).lower()
    assert all(part in text for part in said), text
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
