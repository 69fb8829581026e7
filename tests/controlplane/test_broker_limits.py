"""The embedded broker of a running system bounds the subscriptions of one connection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlparse

from minga.controlplane._broker import MAX_SUBSCRIPTIONS, BrokerHandle


async def test_subscriptions_per_connection_are_bounded(tmp_path: Path) -> None:
    async with BrokerHandle(None, "127.0.0.1", 0, tmp_path, jetstream=False) as url:
        port = urlparse(url).port
        assert port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await reader.readline()  # INFO
            subs = b"".join(b"SUB s.%d %d\r\n" % (i, i) for i in range(MAX_SUBSCRIPTIONS + 1))
            writer.write(b'CONNECT {"verbose":false}\r\n' + subs + b"PUB s.0 1\r\nx\r\nPING\r\n")
            await writer.drain()
            async with asyncio.timeout(10):
                lines = [(await reader.readline()).rstrip() for _ in range(4)]
        finally:
            writer.close()
            await writer.wait_closed()
    # only the one past the bound is refused; the connection and its subscriptions still work
    assert lines == [b"-ERR 'maximum subscriptions exceeded'", b"MSG s.0 0 1", b"x", b"PONG"]
