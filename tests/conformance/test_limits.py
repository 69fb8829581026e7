"""Limits against abuse, against both servers: what a client that exceeds one is told."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats

CONNECT = b'CONNECT {"verbose":false,"pedantic":false}\r\n'


async def _admitted(server: Any, raw_connect: Any) -> Any:
    """A raw client past CONNECT; retried while the server still counts a connection just closed
    (the fixture's own probe, or one a test closed), bounded."""
    for _ in range(50):
        client = await raw_connect(server)
        await client.send(CONNECT + b"PING\r\n")
        if await client.line() == b"PONG":
            return client
        await asyncio.sleep(0.05)
    raise AssertionError("no connection slot came free")


async def test_max_connections(start_server: Any, raw_connect: Any) -> None:
    server = await start_server(max_connections=2)
    first = await _admitted(server, raw_connect)
    second = await _admitted(server, raw_connect)
    # the third gets INFO (read by raw_connect), then the error, then the connection closes
    third = await raw_connect(server)
    assert await third.until_closed() == b"-ERR 'maximum connections exceeded'\r\n"
    # the connections already open are untouched, and a place freed is taken again
    await first.send(b"PING\r\n")
    assert await first.line() == b"PONG"
    await second.close()
    await _admitted(server, raw_connect)


async def test_max_subscriptions(start_server: Any, raw_connect: Any) -> None:
    server = await start_server(max_subscriptions=2)
    raw = await raw_connect(server)
    await raw.send(CONNECT + b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n")
    assert await raw.line() == b"-ERR 'maximum subscriptions exceeded'"
    # the connection stays open (nats-server does not close it) and the refused SUB was not made
    assert await raw.line() == b"PONG"
    await raw.send(b"PUB c 1\r\nx\r\nPUB a 1\r\ny\r\nPING\r\n")
    assert await raw.line() == b"MSG a 1 1"
    assert await raw.line() == b"y"
    assert await raw.line() == b"PONG"
    # an UNSUB frees a place
    await raw.send(b"UNSUB 1\r\nSUB c 3\r\nPUB c 1\r\nz\r\nPING\r\n")
    assert await raw.line() == b"MSG c 3 1"


async def test_client_that_never_sends_connect_is_closed(start_server: Any, raw_connect: Any, server_kind: str) -> None:
    """Without auth, nats-server has no CONNECT deadline: its ping (unanswered) closes such a client
    as stale. The embedded broker applies its CONNECT deadline with or without auth. Either way the
    silent client is told why and closed."""
    server = await start_server(connect_deadline=0.5)
    raw = await raw_connect(server)
    # a CONNECT that never ends, as a client stuck half-way (or an attacker) would send
    await raw.send(b'CONNECT {"verbose":false,')
    data = await raw.until_closed(wait=5)
    if server_kind == "nats-server":
        assert data.endswith(b"-ERR 'Stale Connection'\r\n"), data
    else:
        assert data == b"-ERR 'Authentication Timeout'\r\n", data
    # a client that does send CONNECT is not affected
    nc = await nats.connect(server.url, allow_reconnect=False)
    try:
        await asyncio.sleep(1.2)
        assert nc.is_connected
        await nc.flush(timeout=2)
    finally:
        await nc.close()


async def test_deeply_nested_connect_is_answered(start_server: Any, raw_connect: Any, server_kind: str) -> None:
    """CONNECT with JSON nested 2,000 deep: nats-server parses it (Go has no such bound below 10,000);
    the embedded broker refuses it with an -ERR and a close. Neither crashes, and others go on."""
    server = await start_server()
    raw = await raw_connect(server)
    deep = b"[" * 2000 + b"]" * 2000
    await raw.send(b'CONNECT {"verbose":false,"x":' + deep + b"}\r\nPING\r\n")
    if server_kind == "nats-server":
        assert await raw.line() == b"PONG"
    else:
        assert await raw.until_closed() == b"-ERR 'CONNECT JSON Nested Deeper Than 32 Levels'\r\n"
    other = await raw_connect(server)
    await other.send(CONNECT + b"PING\r\n")
    assert await other.line() == b"PONG"


async def test_deeply_nested_jetstream_request_is_answered(nc: Any, server_kind: str) -> None:
    """A JetStream API body nested 2,000 deep gets an answer (no hang, no crash); the embedded broker
    refuses it with an invalid-JSON API error, nats-server accepts it."""
    deep = '{"a":' * 2000 + "1" + "}" * 2000
    body = '{"name":"DEEP","subjects":["deep.>"],"metadata":' + deep + "}"
    msg = await nc.request("$JS.API.STREAM.CREATE.DEEP", body.encode(), timeout=5)
    answer = json.loads(msg.data)
    assert answer["type"] == "io.nats.jetstream.api.v1.stream_create_response"
    if server_kind == "embedded":
        assert answer["error"]["err_code"] == 10025
        assert "nests deeper than 32 levels" in answer["error"]["description"]
    else:
        assert answer["config"]["name"] == "DEEP"
    # the API still serves the same client
    msg = await nc.request("$JS.API.INFO", b"", timeout=5)
    assert "error" not in json.loads(msg.data)


async def test_names_with_nul_are_refused(nc: Any, server_kind: str) -> None:
    """A NUL in a stream, consumer or durable name is refused with an API error (nats-server: it
    cannot create the store; the embedded broker: the name is invalid), and nothing is created."""
    stream = json.dumps({"name": "A\x00B", "subjects": ["nul.a"]}).encode()
    answer = json.loads((await nc.request("$JS.API.STREAM.CREATE.A\x00B", stream, timeout=5)).data)
    assert "error" in answer, answer
    names = json.loads((await nc.request("$JS.API.STREAM.NAMES", b"", timeout=5)).data)
    assert "A\x00B" not in (names.get("streams") or [])
    ok = json.loads(
        (await nc.request("$JS.API.STREAM.CREATE.OK", b'{"name":"OK","subjects":["ok.>"]}', timeout=5)).data
    )
    assert "error" not in ok, ok
    for endpoint, field in (("CONSUMER.DURABLE.CREATE.OK.d\x00x", "durable_name"), ("CONSUMER.CREATE.OK.d\x00x", "name")):
        body = json.dumps({"stream_name": "OK", "config": {field: "d\x00x", "ack_policy": "explicit"}}).encode()
        answer = json.loads((await nc.request(f"$JS.API.{endpoint}", body, timeout=5)).data)
        assert "error" in answer, answer
        if server_kind == "embedded":
            assert answer["error"]["err_code"] == 10103
    consumers = json.loads((await nc.request("$JS.API.CONSUMER.NAMES.OK", b"", timeout=5)).data)
    assert not consumers.get("consumers")


async def test_names_with_control_characters(nc: Any, server_kind: str) -> None:
    """nats-server 2.9 accepts other control characters (\\x01) in names; the embedded broker refuses
    every control character, since names become file names and log lines."""
    stream = json.dumps({"name": "A\x01B", "subjects": ["ctl.a"]}).encode()
    answer = json.loads((await nc.request("$JS.API.STREAM.CREATE.A\x01B", stream, timeout=5)).data)
    if server_kind == "embedded":
        assert answer["error"]["err_code"] == 10052
        assert "control characters" in answer["error"]["description"]
    else:
        assert answer["config"]["name"] == "A\x01B"
