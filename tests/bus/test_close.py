"""Closing a bus whose broker already died must be quiet: nothing is left to flush."""

from __future__ import annotations

import asyncio
from pathlib import Path

import support
from minga.bus import Bus


async def test_closing_after_the_broker_was_killed_does_not_raise(tmp_path: Path) -> None:
    # Whether nats-py has noticed the reset when close() runs is a race; several rounds make
    # each outcome (already closed, writer reset, close waiter cancelled) likely to occur.
    server = support.nats_server(tmp_path)
    for _ in range(16):
        with support.running(server):
            bus = Bus(f"nats://127.0.0.1:{server.port}")
            await bus.__aenter__()
            await bus.flush()
            await asyncio.to_thread(server.kill)
            await bus.__aexit__(None, None, None)

