"""A client connection drives the broker only through ConnectionHost: bytes in, calls out, no socket."""

from __future__ import annotations

import ssl
from collections.abc import Coroutine
from typing import Any

from minga.broker import BrokerConfig
from minga.broker._connection import ClientConnection, Subscription


class FakeHost:
    """Records what the connection asks of its broker."""

    def __init__(self) -> None:
        self.config = BrokerConfig()
        self.ssl_context: ssl.SSLContext | None = None
        self.in_msgs = self.in_bytes = self.slow_consumers = 0
        self.calls: list[tuple[Any, ...]] = []
        self.subs: list[Subscription] = []

    def next_client_id(self) -> int:
        return 7

    def register_client(self, client: ClientConnection) -> bool:
        return True

    def unregister_client(self, client: ClientConnection) -> None:
        self.calls.append(("unregister", client.cid))

    def info_line(self, client: ClientConnection) -> bytes:
        return b"INFO {}\r\n"

    def route(
        self,
        subject: bytes,
        reply: bytes | None,
        headers: bytes | None,
        payload: bytes,
        origin: ClientConnection | None,
        to: bytes | None = None,
    ) -> int:
        self.calls.append(("route", subject, reply, payload))
        return 0

    def no_responders(self, client: ClientConnection, reply: bytes) -> None:
        self.calls.append(("no_responders", reply))

    def add_subscription(self, sub: Subscription) -> None:
        self.subs.append(sub)

    def remove_subscription(self, sub: Subscription) -> None:
        self.calls.append(("unsubscribe", sub.subject))

    def mark_dirty(self, client: ClientConnection) -> None:
        self.calls.append(("dirty", client.cid))

    def audit(self, client: ClientConnection, what: str, why: str, *, who: str = "") -> None:
        self.calls.append(("audit", what, why))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        coro.close()


def test_frames_become_calls_on_the_host() -> None:
    host = FakeHost()
    conn = ClientConnection(host)  # FakeHost is a ConnectionHost: mypy checks the call
    assert conn.cid == 7
    conn.data_received(
        b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\n'
        b"SUB orders.* q1 1\r\nPUB orders.new _INBOX.r 2\r\nhi\r\nPING\r\nUNSUB 1\r\n"
    )
    assert [(s.subject, s.queue, s.sid) for s in host.subs] == [(b"orders.*", b"q1", b"1")]
    assert host.calls == [
        ("route", b"orders.new", b"_INBOX.r", b"hi"),
        ("no_responders", b"_INBOX.r"),  # routed to nobody, and the client asked to hear so
        ("dirty", 7),  # the PONG waits for the end of the loop turn
        ("unsubscribe", b"orders.*"),
    ]
    assert conn.out == [b"PONG\r\n"] and (host.in_msgs, host.in_bytes) == (1, 2)

