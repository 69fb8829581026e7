"""The embedded broker's own surface: the extension interface, lifecycle, monitoring, the command."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import nats
import pytest
from nats.aio.msg import Msg
from typer.testing import CliRunner

import support
from minga.broker import (
    AuthConfig,
    Broker,
    BrokerConfig,
    BrokerTimeouts,
    Delivery,
    decode_headers,
    encode_headers,
)
from minga.cli import app
from minga.errors import BrokerError, UsageError


@pytest.fixture
async def broker() -> Broker:
    b = Broker(BrokerConfig(port=0, monitor_port=0))
    await b.start()
    yield b  # type: ignore[misc]
    await b.stop()


async def test_internal_subscriber_receives_client_messages(broker: Broker) -> None:
    got: list[Delivery] = []
    sid = broker.subscribe_internal("svc.>", got.append)
    nc = await nats.connect(broker.url)
    try:
        await nc.publish("svc.a", b"one", reply="r.1", headers={"K": "v"})
        await nc.publish("svc.b.c", b"two")
        await support.nats_barrier(nc)
        assert [(d.subject, d.reply, d.payload) for d in got] == [("svc.a", "r.1", b"one"), ("svc.b.c", None, b"two")]
        assert got[0].headers is not None and decode_headers(got[0].headers).get("K") == "v"
        assert got[1].headers is None
        broker.unsubscribe_internal(sid)
        await nc.publish("svc.a", b"three")
        await support.nats_barrier(nc)
        assert len(got) == 2
    finally:
        await nc.close()


async def test_internal_subscriber_answers_requests(broker: Broker) -> None:
    def answer(d: Delivery) -> None:
        assert d.reply is not None
        broker.publish_internal(d.reply, d.payload.upper(), headers=encode_headers({"By": "broker"}))

    broker.subscribe_internal("upper", answer, queue="q")
    nc = await nats.connect(broker.url)
    try:
        reply = await nc.request("upper", b"shout", timeout=5)
        assert reply.data == b"SHOUT" and reply.headers == {"By": "broker"}
    finally:
        await nc.close()


async def test_publish_internal_counts_receivers_and_respects_queue_groups(broker: Broker) -> None:
    nc = await nats.connect(broker.url)
    try:
        got: list[Msg] = []

        async def cb(msg: Msg) -> None:
            got.append(msg)

        await nc.subscribe("evt.*", cb=cb)
        await nc.subscribe("evt.x", queue="g", cb=cb)
        await nc.subscribe("evt.x", queue="g", cb=cb)
        await support.nats_barrier(nc)
        internal: list[Delivery] = []
        broker.subscribe_internal("evt.x", internal.append, queue="g")
        assert broker.has_interest("evt.x") and broker.has_interest("evt.y")
        assert not broker.has_interest("other")
        assert broker.publish_internal("evt.x", b"1") == 2  # the plain subscription + one of group g
        assert broker.publish_internal("other", b"1") == 0
        await support.nats_barrier(nc)
        assert len(internal) + len(got) >= 1  # the internal member is called synchronously, if picked
        with pytest.raises(BrokerError):
            broker.publish_internal("evt.*", b"wildcards are for subscribers")
        with pytest.raises(BrokerError):
            broker.subscribe_internal("bad..subject", internal.append)
    finally:
        await nc.close()


async def test_internal_subscription_counts_as_a_responder(broker: Broker) -> None:
    broker.subscribe_internal("quiet", lambda d: None)
    nc = await nats.connect(broker.url)
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await nc.request("quiet", b"", timeout=0.3)
    finally:
        await nc.close()


class RecordingExtension:
    def __init__(self, log: list[str], name: str) -> None:
        self.log = log
        self.name = name
        self.broker: Broker | None = None

    async def start(self, broker: Broker) -> None:
        self.broker = broker
        assert broker.port != 0
        broker.update_info(**{self.name: True})
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_extensions_start_before_clients_and_stop_in_reverse() -> None:
    log: list[str] = []
    b = Broker(BrokerConfig(port=0), [RecordingExtension(log, "alpha"), RecordingExtension(log, "jetstream")])
    await b.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
    info = json.loads((await reader.readline())[5:])
    assert info["jetstream"] is True and info["alpha"] is True and info["headers"] is True
    writer.close()
    await b.stop()
    await b.stop()  # idempotent
    assert log == ["start alpha", "start jetstream", "stop jetstream", "stop alpha"]


async def test_lame_duck_notice_on_stop() -> None:
    b = Broker(BrokerConfig(port=0))
    await b.start()
    told = asyncio.Event()

    async def on_lame_duck() -> None:
        told.set()

    nc = await nats.connect(b.url, lame_duck_mode_cb=on_lame_duck, allow_reconnect=False)
    try:
        await b.stop()
        async with asyncio.timeout(5):
            await told.wait()
    finally:
        await nc.close()


async def test_stop_during_lame_duck_mode_ends_it_at_once() -> None:
    b = Broker(BrokerConfig(port=0, timeouts=BrokerTimeouts(lame_duck_duration=60, lame_duck_grace=50)))
    await b.start()
    nc = await nats.connect(b.url, allow_reconnect=False)
    try:
        lame = asyncio.create_task(b.lame_duck())
        await asyncio.sleep(0.2)
        assert not nc.is_closed and b.running  # within the grace period: nobody closed yet
        async with asyncio.timeout(5):  # not the 50 s of grace
            await b.stop()
            await lame
        assert not b.running
    finally:
        await nc.close()


def test_lame_duck_settings_follow_nats_server_rules() -> None:
    with pytest.raises(UsageError, match="minimum is 30 seconds"):
        BrokerTimeouts(lame_duck_duration=10, lame_duck_grace=1)
    with pytest.raises(UsageError, match="shorter than the lame duck duration"):
        BrokerTimeouts(lame_duck_duration=30, lame_duck_grace=30)


async def test_port_in_use_is_a_usage_error(broker: Broker) -> None:
    with pytest.raises(UsageError, match="already in use"):
        await Broker(BrokerConfig(port=broker.port)).start()


async def test_monitoring_endpoint(broker: Broker) -> None:
    nc = await nats.connect(broker.url, name="watched")
    try:
        await nc.subscribe("a.b")
        await nc.publish("a.b", b"12345")
        await support.nats_barrier(nc)
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{broker.monitor_port}"
            async with http.get(f"{base}/varz") as resp:
                varz = await resp.json()
            async with http.get(f"{base}/connz?subs=1") as resp:
                connz = await resp.json()
            async with http.get(f"{base}/connz?limit=x") as resp:
                assert resp.status == 400
        assert varz["connections"] == 1 and varz["subscriptions"] == 1
        assert varz["in_msgs"] == 1 and varz["out_msgs"] == 1 and varz["in_bytes"] == 5
        assert varz["slow_consumers"] == 0 and varz["port"] == broker.port
        [conn] = connz["connections"]
        assert conn["name"] == "watched" and conn["lang"] == "python3"
        assert conn["subscriptions_list"] == ["a.b"] and conn["in_msgs"] == 1
    finally:
        await nc.close()


async def test_closed_connections_are_listed_with_their_reason(broker: Broker) -> None:
    nc = await nats.connect(broker.url, name="leaving")
    await nc.close()
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{broker.monitor_port}"

        async def closed() -> list[dict[str, str]]:
            async with http.get(f"{base}/connz?state=closed") as resp:
                conns: list[dict[str, str]] = (await resp.json())["connections"]
                return conns

        [conn] = await support.eventually("the closed connection", closed, seconds=5, every=0.05)
        assert conn["name"] == "leaving" and conn["reason"] == "Client Closed" and conn["stop"]
        async with http.get(f"{base}/connz?state=sideways") as resp:
            assert resp.status == 400 and "open, closed or all" in (await resp.json())["error"]


class _RefusingTransport:
    """Stands in for a transport whose write raises, as one closed under the broker's feet may."""

    def __init__(self, real: asyncio.Transport) -> None:
        self.real = real

    def write(self, data: bytes) -> None:
        raise RuntimeError("cannot write")

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


async def test_a_client_whose_write_fails_does_not_strand_the_others(broker: Broker) -> None:
    first = await nats.connect(broker.url, name="broken", max_reconnect_attempts=0)
    second = await nats.connect(broker.url, name="fine")
    try:
        await first.subscribe("x")
        sub = await second.subscribe("x")
        await support.nats_barrier(first)
        await support.nats_barrier(second)
        [broken] = [c for c in broker._clients.values() if c.name == "broken"]
        broken.transport = _RefusingTransport(broken.transport)  # type: ignore[arg-type,assignment]
        for i in range(3):  # each message is queued on both, and written once per loop turn
            await second.publish("x", b"%d" % i)
            await support.nats_barrier(second)
        assert [(await sub.next_msg(timeout=2)).data for _ in range(3)] == [b"0", b"1", b"2"]
        assert broken.closed and broken.close_reason.startswith("Write Error")
        assert [c["name"] for c in broker.connz()["connections"]] == ["fine"]
    finally:
        await second.close()
        await first.close()


def test_command_serves_and_shuts_down_on_sigterm(tmp_path: Path) -> None:
    port = support.free_port()
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    server = support.ServerProcess(
        support.python_module("minga", ["broker", "--port", str(port), "--token-file", str(token_file)]),
        port,
        log=tmp_path / "broker.log",
    )
    with support.running(server):

        async def exchange() -> list[bool]:
            events: list[bool] = []
            told = asyncio.Event()

            async def on_lame_duck() -> None:
                events.append(True)
                told.set()

            nc = await nats.connect(f"nats://127.0.0.1:{port}", token="s3cret", lame_duck_mode_cb=on_lame_duck,
                                    allow_reconnect=False)
            reply_sub = await nc.subscribe("ping")
            await nc.publish("ping", b"x")
            msg = await reply_sub.next_msg(timeout=5)
            assert msg.data == b"x"
            server.signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                await told.wait()
            await nc.close()
            return events

        assert asyncio.run(exchange()) == [True]
        assert server.proc is not None
        assert server.proc.wait(10) == 0
    log = (tmp_path / "broker.log").read_text()
    assert "s3cret" not in log


def test_command_refuses_a_taken_port() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "minga", "broker", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert out.returncode == 2
    assert "already in use" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_command_checks_its_options(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("t")
    (tmp_path / "p").write_text("p")
    for args, message in (
        (["--token-file", str(tmp_path / "t"), "--user", "u", "--password-file", str(tmp_path / "p")], "either a token"),
        (["--password", "p", "--user", "u"], "visible in `ps`"),
        (["--user", "u"], "needs a password"),
        (["--tls-cert", str(tmp_path / "nope.pem")], "--tls-key"),
        (["--tls-cert", str(tmp_path / "a.pem"), "--tls-key", str(tmp_path / "b.pem")], "no such file"),
    ):
        result = CliRunner().invoke(app, ["broker", "--port", "0", *args])
        assert isinstance(result.exception, UsageError), (args, result.output)
        assert message in str(result.exception)


async def read_all(reader: asyncio.StreamReader, wait: float = 5.0) -> bytes:
    chunks = []
    async with asyncio.timeout(wait):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_a_client_must_authenticate_in_time() -> None:
    b = Broker(BrokerConfig(port=0, auth=AuthConfig(token="t"), timeouts=BrokerTimeouts(auth=0.2)))
    await b.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
        assert (await reader.readline()).startswith(b"INFO ")
        assert await read_all(reader) == b"-ERR 'Authentication Timeout'\r\n"
        writer.close()
    finally:
        await b.stop()


async def test_a_client_that_stops_answering_pings_is_stale() -> None:
    b = Broker(BrokerConfig(port=0, timeouts=BrokerTimeouts(ping_interval=0.1, max_pings_out=2)))
    await b.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
        await reader.readline()
        writer.write(b'CONNECT {"verbose":false}\r\n')
        assert await read_all(reader) == b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"
        writer.close()
        # one that answers stays
        reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
        await reader.readline()
        writer.write(b'CONNECT {"verbose":false}\r\n')
        for _ in range(4):
            assert await reader.readline() == b"PING\r\n"
            writer.write(b"PONG\r\n")
        assert b.varz()["connections"] == 1
        writer.close()
    finally:
        await b.stop()


async def test_shutdown_does_not_wait_forever_for_a_client_that_does_not_read() -> None:
    b = Broker(BrokerConfig(port=0, timeouts=BrokerTimeouts(shutdown_flush=0.3)))
    await b.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", b.port, limit=1024)
    writer.write(b'CONNECT {"verbose":false}\r\nSUB big 1\r\nPING\r\n')
    await reader.readuntil(b"PONG\r\n")
    nc = await nats.connect(b.url)
    for _ in range(64):  # 32 MiB queued for a client that reads nothing
        await nc.publish("big", b"x" * 512 * 1024)
    await support.nats_barrier(nc)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await b.stop()
    assert loop.time() - started < 5
    await nc.close()
    writer.close()


def test_the_broker_command_imports_only_what_it_needs() -> None:
    # a restarted broker must take its clients' reconnections at once: what it imports is its start
    # time (bench/broker_startup.py measures it); the CLI framework, the HTTP stack and pydantic wait
    probe = (
        "import sys, minga.cli.broker; "
        "print(sorted(m for m in ('aiohttp', 'typer', 'rich', 'pydantic', 'cryptography') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout
