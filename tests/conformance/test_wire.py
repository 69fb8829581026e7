"""The protocol as bytes on the wire: what each server answers, byte for byte."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from typing import Any

import nats
import pytest
from nats.errors import MaxPayloadError

import support

MSG = re.compile(rb"^MSG (\S+) (\S+) (?:(\S+) )?(\d+)$")


async def test_defaults_without_options_are_verbose(server: Any, raw_connect: Any) -> None:
    raw = await raw_connect(server)
    await raw.send(b"CONNECT {}\r\nSUB foo 1\r\nPUB foo.* 1\r\nx\r\nPING\r\n")
    assert await raw.line() == b"+OK"
    assert await raw.line() == b"+OK"
    assert await raw.line() == b"-ERR 'Invalid Publish Subject'"  # pedantic is on unless turned off
    assert await raw.line() == b"+OK"  # a warning: the message is still taken
    assert await raw.line() == b"PONG"


async def test_info_then_ping_pong(server: Any, raw_connect: Any) -> None:
    raw = await raw_connect(server)
    assert raw.info["max_payload"] == 1024 * 1024
    assert raw.info["headers"] is True and raw.info["proto"] == 1
    await raw.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    assert await raw.line() == b"PONG"


async def test_verbose_acknowledges_every_operation(server: Any, raw_connect: Any) -> None:
    raw = await raw_connect(server)
    await raw.send(b'CONNECT {"verbose":true}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\nPING\r\n')
    assert await raw.line() == b"+OK"  # CONNECT
    assert await raw.line() == b"+OK"  # SUB
    assert await raw.line() == b"+OK"  # PUB, delivered to ourselves after being acknowledged
    assert MSG.match(await raw.line())
    assert await raw.line() == b"hi"
    assert await raw.line() == b"+OK"  # UNSUB
    assert await raw.line() == b"PONG"


async def test_message_framing_with_reply_and_headers(server: Any, raw_connect: Any) -> None:
    sub = await raw_connect(server)
    await sub.send(b'CONNECT {"verbose":false,"headers":true}\r\nSUB a.* 7\r\nPING\r\n')
    assert await sub.line() == b"PONG"
    pub = await raw_connect(server)
    await pub.send(b'CONNECT {"verbose":false,"headers":true}\r\nPUB a.b inbox.1 5\r\nhello\r\nHPUB a.c 12 14\r\nNATS/1.0\r\n\r\nhi\r\n')
    assert await sub.line() == b"MSG a.b 7 inbox.1 5"
    assert await sub.line() == b"hello"
    assert await sub.line() == b"HMSG a.c 7 12 14"
    assert await sub.line() == b"NATS/1.0"
    assert await sub.line() == b""
    assert await sub.line() == b"hi"


async def test_headers_are_stripped_for_clients_without_header_support(server: Any, raw_connect: Any) -> None:
    old = await raw_connect(server)
    await old.send(b'CONNECT {"verbose":false,"headers":false}\r\nSUB h 1\r\nPING\r\n')
    assert await old.line() == b"PONG"
    nc = await nats.connect(server.url)
    try:
        await nc.publish("h", b"body", headers={"K": "v"})
        await support.nats_barrier(nc)
        assert await old.line() == b"MSG h 1 4"
        assert await old.line() == b"body"
    finally:
        await nc.close()


async def test_no_responders_status_message(server: Any, raw_connect: Any) -> None:
    raw = await raw_connect(server)
    await raw.send(
        b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\nSUB _INBOX.x.* 1\r\nPUB nobody _INBOX.x.1 0\r\n\r\nPING\r\n'
    )
    assert await raw.line() == b"HMSG _INBOX.x.1 1 16 16"
    assert await raw.line() == b"NATS/1.0 503"
    assert await raw.line() == b""
    assert await raw.line() == b""
    assert await raw.line() == b"PONG"


async def test_unknown_operation_gets_err_and_close_while_others_carry_on(server: Any, raw_connect: Any) -> None:
    nc = await nats.connect(server.url)
    try:
        bad = await raw_connect(server)
        await bad.send(b'CONNECT {"verbose":false}\r\nHELLO WORLD\r\n')
        rest = await bad.until_closed()
        assert rest.startswith(b"-ERR 'Unknown Protocol Operation'\r\n"), rest
        sub = await nc.subscribe("still.fine")
        await nc.publish("still.fine", b"yes")
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"yes"
    finally:
        await nc.close()


async def test_max_payload_is_advertised_and_enforced(start_server: Any, raw_connect: Any) -> None:
    server = await start_server(max_payload=1024)
    raw = await raw_connect(server)
    assert raw.info["max_payload"] == 1024
    await raw.send(b'CONNECT {"verbose":false}\r\n' + b"PUB foo 1024\r\n" + b"x" * 1024 + b"\r\nPING\r\n")
    assert await raw.line() == b"PONG"
    await raw.send(b"PUB foo 1025\r\n" + b"x" * 1025 + b"\r\n")
    rest = await raw.until_closed()
    assert rest.startswith(b"-ERR 'Maximum Payload Violation'\r\n"), rest
    nc = await nats.connect(server.url)
    try:
        assert nc.max_payload == 1024
        with pytest.raises(MaxPayloadError):
            await nc.publish("foo", b"y" * 2048)
    finally:
        await nc.close()


async def test_invalid_subscription_subject(server: Any, raw_connect: Any) -> None:
    raw = await raw_connect(server)
    await raw.send(b'CONNECT {"verbose":false}\r\nSUB foo..bar 1\r\nPING\r\n')
    assert await raw.line() == b"-ERR 'Invalid Subject'"
    assert await raw.line() == b"PONG"  # the connection stays open


async def test_pedantic_refuses_publishing_to_wildcards(server: Any, raw_connect: Any) -> None:
    raw = await raw_connect(server)
    await raw.send(b'CONNECT {"verbose":false,"pedantic":true}\r\nSUB foo.* 1\r\nPUB foo.* 1\r\nx\r\nPING\r\n')
    assert await raw.line() == b"-ERR 'Invalid Publish Subject'"
    assert await raw.line() == b"MSG foo.* 1 1"  # only a warning, as in nats-server
    assert await raw.line() == b"x"
    assert await raw.line() == b"PONG"


async def test_info_fields_common_to_both(server: Any, raw_connect: Any) -> None:
    raw = await raw_connect(server)
    for key in ("server_id", "version", "proto", "host", "port", "headers", "max_payload", "client_id"):
        assert key in raw.info, key
    assert raw.info["port"] == server.port
    json.dumps(raw.info)


async def test_operation_names_are_case_insensitive(server: Any, raw_connect: Any) -> None:
    raw = await raw_connect(server)
    await raw.send(
        b'Connect {"verbose":false,"headers":true}\r\nSub a 1\r\nPub a 1\r\nx\r\n'
        b"hPub a 12 14\r\nNATS/1.0\r\n\r\nhi\r\nUnSub 1\r\nPub a 1\r\ny\r\nPiNg\r\n"
    )
    assert await raw.line() == b"MSG a 1 1"
    assert await raw.line() == b"x"
    assert await raw.line() == b"HMSG a 1 12 14"
    assert await raw.line() == b"NATS/1.0"
    assert await raw.line() == b""
    assert await raw.line() == b"hi"
    assert await raw.line() == b"PONG"  # unsubscribed: "y" never came


async def test_the_advertised_version_is_the_one_conformance_runs_against(server: Any, raw_connect: Any) -> None:
    binary = shutil.which("nats-server")
    assert binary is not None
    ran = await asyncio.to_thread(subprocess.run, [binary, "--version"], capture_output=True, text=True, timeout=10)
    out = ran.stdout
    installed = out.strip().rsplit("v", 1)[-1]  # "nats-server: v2.9.10"
    raw = await raw_connect(server)
    assert raw.info["version"] == installed
