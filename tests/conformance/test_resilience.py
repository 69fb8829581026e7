"""Slow consumers and restarts, against both servers."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import nats

import support


async def monitor(server: Any, path: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{server.monitor_url}{path}") as response:
        body: dict[str, Any] = await response.json()
        return body


async def test_slow_consumer_is_cut_off_and_others_carry_on(start_server: Any) -> None:
    server = await start_server(max_payload=64 * 1024, max_pending=256 * 1024, monitor=True)
    loop = asyncio.get_running_loop()
    # a subscriber that stops reading: small socket buffers so the server's own bound is what fills
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.setblocking(False)
    async with asyncio.timeout(5):
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        assert (await loop.sock_recv(sock, 4096)).startswith(b"INFO ")
        await loop.sock_sendall(sock, b'CONNECT {"verbose":false}\r\nSUB firehose 1\r\nPING\r\n')
        assert b"PONG" in await loop.sock_recv(sock, 4096)

    pub = await nats.connect(server.url)
    healthy = await nats.connect(server.url)
    try:
        echo = await healthy.subscribe("healthy")
        await support.nats_barrier(healthy)
        chunk = b"x" * 32 * 1024
        total = 768 * len(chunk)  # 24 MiB: more than the kernel buffers on both sides can hide
        for _ in range(768):
            await pub.publish("firehose", chunk)
            await pub.flush()
        # the publisher and the other subscriber are unaffected
        await pub.publish("healthy", b"still here")
        await support.nats_barrier(pub)
        assert (await echo.next_msg(timeout=5)).data == b"still here"
        assert pub.is_connected and healthy.is_connected
        # the stalled subscriber was disconnected: draining its socket reaches the end of the stream
        received = 0
        async with asyncio.timeout(10):
            while True:
                try:
                    data = await loop.sock_recv(sock, 65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                received += len(data)
        assert received < total
        # and it was said: counted, and recorded with its reason among the closed connections
        assert (await monitor(server, "/varz"))["slow_consumers"] >= 1
        closed = (await monitor(server, "/connz?state=closed"))["connections"]
        cut = [c["cid"] for c in closed if c["reason"] == "Slow Consumer (Pending Bytes)"]
        assert cut
        assert not set(cut) & {c["cid"] for c in (await monitor(server, "/connz"))["connections"]}
    finally:
        sock.close()
        await pub.close()
        await healthy.close()


async def test_client_reconnects_after_a_restart(start_server: Any) -> None:
    server = await start_server()
    reconnected = asyncio.Event()
    disconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    async def on_disconnect() -> None:
        disconnected.set()

    nc = await nats.connect(
        server.url,
        reconnected_cb=on_reconnect,
        disconnected_cb=on_disconnect,
        reconnect_time_wait=0.1,
        max_reconnect_attempts=-1,
    )
    try:
        sub = await nc.subscribe("after.restart")
        await support.nats_barrier(nc)
        await server.restart()
        async with asyncio.timeout(15):
            await disconnected.wait()
            await reconnected.wait()
        # the subscription was replayed on the new connection
        await support.nats_barrier(nc)
        await nc.publish("after.restart", b"back")
        assert (await sub.next_msg(timeout=5)).data == b"back"
    finally:
        await nc.close()
