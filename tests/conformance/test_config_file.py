"""One configuration file, in nats-server's syntax, runs either server: ``nats-server -c FILE`` and
``minga broker -c FILE`` give the same answers."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import nats

import support

CONF = """
# the same file for both servers
listen: 127.0.0.1:{port}
max_subscriptions: 3
max_payload: 64KB
max_pending: 8MB
authorization {{
  users = [
    {{user: admin, password: $TEST_ADMIN_PW}}
    {{user: app, password: $TEST_APP_PW, permissions: {{
        publish: {{allow: ["orders.>", "$JS.API.INFO"], deny: "orders.internal"}}
        subscribe: {{allow: ["orders.*"]}}
        allow_responses: true
    }}}}
  ]
}}
jetstream {{ store_dir: "{store}" }}
"""

ENV = {"TEST_ADMIN_PW": "adm1n-secret", "TEST_APP_PW": "app-secret"}


def _server(kind: str, tmp_path: Path) -> support.ServerProcess:
    port = support.free_port()
    conf = tmp_path / "broker.conf"
    conf.write_text(CONF.format(port=port, store=tmp_path / "js"))
    return support.file_server(kind, conf, port, ENV, tmp_path / "server.log")


async def test_one_file_runs_both(server_kind: str, tmp_path: Path) -> None:
    with support.running(_server(server_kind, tmp_path)) as proc:
        url = f"nats://127.0.0.1:{proc.port}"
        admin = await nats.connect(url, user="admin", password=ENV["TEST_ADMIN_PW"], allow_reconnect=False)
        try:
            assert admin.max_payload == 64 * 1024
            js = admin.jetstream(timeout=5)
            await js.add_stream(name="ORDERS", subjects=["orders.>"])
            # the app's permissions and the subscription limit, as seen on the wire
            reader, writer = await _open(proc.port)
            try:
                writer.write(
                    b'CONNECT {"verbose":false,"pedantic":false,"user":"app","pass":"app-secret"}\r\n'
                    b"SUB orders.a 1\r\nSUB other 2\r\nSUB orders.b 3\r\nSUB orders.c 4\r\nSUB orders.d 5\r\n"
                    b"PUB orders.internal 1\r\nx\r\nPUB $JS.API.STREAM.DELETE.ORDERS 0\r\n\r\nPING\r\n"
                )
                lines = [(await reader.readline()).rstrip() for _ in range(5)]
            finally:
                writer.close()
                await writer.wait_closed()
            assert lines == [
                b"-ERR 'Permissions Violation for Subscription to \"other\"'",
                b"-ERR 'maximum subscriptions exceeded'",
                b"-ERR 'Permissions Violation for Publish to \"orders.internal\"'",
                b"-ERR 'Permissions Violation for Publish to \"$JS.API.STREAM.DELETE.ORDERS\"'",
                b"PONG",
            ]
            info = await js.stream_info("ORDERS")
            assert info.config.name == "ORDERS"
        finally:
            await admin.close()
        # a wrong password is refused
        reader, writer = await _open(proc.port)
        try:
            writer.write(b'CONNECT {"verbose":false,"user":"app","pass":"nope"}\r\nPING\r\n')
            assert (await reader.readline()).rstrip() == b"-ERR 'Authorization Violation'"
        finally:
            writer.close()
            await writer.wait_closed()
    # the secrets came from the environment: they are not in the file
    assert "app-secret" not in (tmp_path / "broker.conf").read_text()


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()  # INFO
    return reader, writer


def test_a_mistake_in_the_file_is_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "broker.conf"
    conf.write_text("listen: 127.0.0.1:4999\ncluster { port: 6222 }\n")
    out = subprocess.run(support.python_module("minga", ["broker", "-c", str(conf)]), capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "unsupported key(s) cluster" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    conf.write_text("authorization { user: a, password: $NOT_SET_ANYWHERE_PW }\n")
    out = subprocess.run(support.python_module("minga", ["broker", "-c", str(conf)]), capture_output=True, text=True, timeout=30)
    assert "NOT_SET_ANYWHERE_PW" in out.stderr and "line 1" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
