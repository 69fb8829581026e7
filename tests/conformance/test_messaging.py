"""Core messaging through nats-py, against the embedded broker and nats-server alike."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

import support


class Inbox(list[Msg]):
    """Messages of one subscription; ``await inbox.reach(n)`` waits (bounded) until n have arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Condition()

    async def add(self, msg: Msg) -> None:
        async with self.changed:
            self.append(msg)
            self.changed.notify_all()

    async def reach(self, n: int, wait: float = 5.0) -> None:
        async with asyncio.timeout(wait), self.changed:
            await self.changed.wait_for(lambda: len(self) >= n)


async def collect(nc: Any, subject: str, *, queue: str = "") -> tuple[Any, Inbox]:
    inbox = Inbox()
    sub = await nc.subscribe(subject, queue=queue, cb=inbox.add)
    return sub, inbox


async def test_publish_subscribe(server: Any) -> None:
    nc = await nats.connect(server.url)
    try:
        _, first = await collect(nc, "greet")
        _, second = await collect(nc, "greet")
        await support.nats_barrier(nc)
        for i in range(5):
            await nc.publish("greet", f"hello {i}".encode())
        await nc.publish("other", b"not for them")
        await support.nats_barrier(nc)
        await first.reach(5)
        await second.reach(5)
        assert [m.data for m in first] == [f"hello {i}".encode() for i in range(5)]
        assert [m.subject for m in second] == ["greet"] * 5
    finally:
        await nc.close()


async def test_wildcards(server: Any) -> None:
    pub = await nats.connect(server.url)
    sub = await nats.connect(server.url)
    try:
        _, star = await collect(sub, "orders.*.created")
        _, full = await collect(sub, "orders.>")
        _, exact = await collect(sub, "orders.eu.created")
        await support.nats_barrier(sub)
        for subject in ("orders.eu.created", "orders.us.created", "orders.eu.paid", "orders.eu.created.late", "orders"):
            await pub.publish(subject, b"x")
        await support.nats_barrier(pub)
        await full.reach(4)
        await star.reach(2)
        await support.nats_barrier(pub)
        await support.nats_barrier(sub)
        assert sorted(m.subject for m in star) == ["orders.eu.created", "orders.us.created"]
        assert sorted(m.subject for m in full) == [
            "orders.eu.created",
            "orders.eu.created.late",
            "orders.eu.paid",
            "orders.us.created",
        ]
        assert [m.subject for m in exact] == ["orders.eu.created"]
    finally:
        await pub.close()
        await sub.close()


async def test_queue_group_delivers_each_message_to_one_member(server: Any) -> None:
    members = [await nats.connect(server.url) for _ in range(3)]
    pub = await nats.connect(server.url)
    try:
        received = []
        for nc in members:
            _, got = await collect(nc, "work", queue="workers")
            received.append(got)
            await support.nats_barrier(nc)
        _, watcher = await collect(pub, "work")
        await support.nats_barrier(pub)
        total = 90
        for i in range(total):
            await pub.publish("work", str(i).encode())
        await support.nats_barrier(pub)
        await watcher.reach(total)
        await support.nats_barrier(pub)
        for nc in members:
            await support.nats_barrier(nc)
        counts = Counter(m.data for got in received for m in got)
        assert len(counts) == total and set(counts.values()) == {1}
        # the group is spread over its members (random choice: P(some member idle) ~ 3 * (2/3)**90)
        assert all(len(got) > 0 for got in received)
    finally:
        for nc in [*members, pub]:
            await nc.close()


async def test_request_reply(server: Any) -> None:
    service = await nats.connect(server.url)
    client = await nats.connect(server.url)
    try:

        async def handler(msg: Msg) -> None:
            await msg.respond(b"echo:" + msg.data)

        await service.subscribe("svc.echo", queue="svc", cb=handler)
        await support.nats_barrier(service)
        for i in range(10):
            reply = await client.request("svc.echo", str(i).encode(), timeout=5)
            assert reply.data == f"echo:{i}".encode()
    finally:
        await service.close()
        await client.close()


async def test_no_responders(server: Any) -> None:
    nc = await nats.connect(server.url)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(NoRespondersError):
            await nc.request("nobody.home", b"?", timeout=10)
        assert loop.time() - started < 5, "no-responders must answer at once, not at the timeout"
    finally:
        await nc.close()


async def test_headers_round_trip(server: Any) -> None:
    nc = await nats.connect(server.url)
    try:
        _, got = await collect(nc, "with.headers")
        await support.nats_barrier(nc)
        await nc.publish("with.headers", b"body", headers={"Trace-Id": "abc", "X-Count": "2"})
        await nc.publish("with.headers", b"", headers={"Only": "headers"})
        await support.nats_barrier(nc)
        await got.reach(2)
        assert got[0].data == b"body" and got[0].headers == {"Trace-Id": "abc", "X-Count": "2"}
        assert got[1].data == b"" and got[1].headers == {"Only": "headers"}
    finally:
        await nc.close()


async def test_unsubscribe_with_max(server: Any) -> None:
    nc = await nats.connect(server.url)
    try:
        sub, got = await collect(nc, "limited")
        await sub.unsubscribe(limit=3)
        await support.nats_barrier(nc)
        for i in range(10):
            await nc.publish("limited", str(i).encode())
        await support.nats_barrier(nc)
        # a PING/PONG round trip after the publishes: everything the server routed has arrived
        await support.nats_barrier(nc)
        await got.reach(3)
        assert [m.data for m in got] == [b"0", b"1", b"2"]
    finally:
        await nc.close()


async def test_no_echo(server: Any) -> None:
    quiet = await nats.connect(server.url, no_echo=True)
    other = await nats.connect(server.url)
    try:
        _, own = await collect(quiet, "chat")
        _, theirs = await collect(other, "chat")
        await support.nats_barrier(quiet)
        await support.nats_barrier(other)
        await quiet.publish("chat", b"from quiet")
        await other.publish("chat", b"from other")
        await support.nats_barrier(quiet)
        await support.nats_barrier(other)
        await theirs.reach(2)
        await own.reach(1)
        await support.nats_barrier(quiet)
        assert [m.data for m in own] == [b"from other"]
    finally:
        await quiet.close()
        await other.close()
