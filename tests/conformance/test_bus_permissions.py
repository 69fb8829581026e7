"""The bus permissions generated from examples/shop's spec (``minga render nats-config``), enforced
the same way by nats-server and by ``minga broker``, both started from the rendered file."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import nats

import support

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "minga.yaml"
USERS = ("minga", "orders-1", "orders-2", "inventory-1", "inventory-2", "payments-1", "payments-2",
         "notifications-1", "notifications-2")


def _env() -> dict[str, str]:
    return {f"MINGA_BUS_PASSWORD_{u.upper().replace('-', '_')}": f"pw-{u}" for u in USERS}


async def _raw(port: int, user: str, commands: bytes, lines: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(5):
            await reader.readline()  # INFO
            connect = {"verbose": False, "pedantic": False, "user": user, "pass": f"pw-{user}"}
            writer.write(b"CONNECT " + json.dumps(connect).encode() + b"\r\n" + commands + b"PING\r\n")
            return [(await reader.readline()).rstrip() for _ in range(lines)]
    finally:
        writer.close()
        await writer.wait_closed()


async def test_shop_permissions(server_kind: str, tmp_path: Path) -> None:
    port = support.free_port()
    conf = tmp_path / "nats.conf"
    rendered = await asyncio.to_thread(
        subprocess.run,
        support.python_module(
            "minga",
            ["render", "nats-config", "--file", str(SHOP), "-o", str(conf), "--listen", f"127.0.0.1:{port}",
             "--store", str(tmp_path / "js")],
        ),
        capture_output=True, text=True, timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "pw-" not in conf.read_text()  # passwords come from the environment
    assert conf.stat().st_mode & 0o777 == 0o600
    with support.running(support.file_server(server_kind, conf, port, _env(), tmp_path / "server.log")):
        url = f"nats://127.0.0.1:{port}"
        control = await nats.connect(url, user="minga", password="pw-minga", allow_reconnect=False)
        replica = await nats.connect(url, user="orders-1", password="pw-orders-1", allow_reconnect=False)
        try:
            js = control.jetstream(timeout=5)
            await js.add_stream(name="MINGA_Q_notify", subjects=["minga.q.notify"])
            # a replica answers its own service's RPCs (allow_responses), as the control plane sees
            async def place(msg: nats.aio.msg.Msg) -> None:
                await msg.respond(b'{"ok":true}')

            await replica.subscribe("minga.rpc.orders.place", queue="orders", cb=place)
            await support.nats_barrier(replica)
            reply = await control.request("minga.rpc.orders.place", b"{}", timeout=5)
            assert reply.data == b'{"ok":true}'
            # ...but cannot answer another service's, read all traffic, or administer JetStream
            answers = await _raw(
                port,
                "orders-1",
                b"SUB minga.rpc.inventory.reserve inventory 1\r\nSUB > 2\r\nSUB minga.q.notify 3\r\n"
                b"PUB $JS.API.STREAM.DELETE.MINGA_Q_notify _INBOX.x 0\r\n\r\n"
                b"PUB $JS.API.STREAM.PURGE.MINGA_Q_notify _INBOX.x 0\r\n\r\n",
                6,
            )
            assert answers == [
                b"-ERR 'Permissions Violation for Subscription to \"minga.rpc.inventory.reserve\" using queue \"inventory\"'",
                b"-ERR 'Permissions Violation for Subscription to \">\"'",
                b"-ERR 'Permissions Violation for Subscription to \"minga.q.notify\"'",
                b"-ERR 'Permissions Violation for Publish to \"$JS.API.STREAM.DELETE.MINGA_Q_notify\"'",
                b"-ERR 'Permissions Violation for Publish to \"$JS.API.STREAM.PURGE.MINGA_Q_notify\"'",
                b"PONG",
            ]
            info = await js.stream_info("MINGA_Q_notify")
            assert info.config.name == "MINGA_Q_notify"
            # the notifications replica may consume its own queue
            worker = await nats.connect(url, user="notifications-1", password="pw-notifications-1", allow_reconnect=False)
            try:
                sub = await worker.jetstream(timeout=5).pull_subscribe("minga.q.notify", durable="worker", stream="MINGA_Q_notify")
                await js.publish("minga.q.notify", b"job")
                (msg,) = await sub.fetch(1, timeout=5)
                assert msg.data == b"job"
                await msg.ack_sync(timeout=5)
            finally:
                await worker.close()
        finally:
            await replica.close()
            await control.close()
