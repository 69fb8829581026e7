"""What code running inside the broker sees of it: extensions such as JetStream
(:class:`BrokerExtension`), and each client connection (:class:`ConnectionHost`)."""

from __future__ import annotations

import ssl
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from minga.broker._config import BrokerConfig
    from minga.broker._connection import ClientConnection, Subscription
    from minga.broker._server import Broker

__all__ = ["BrokerExtension", "ConnectionHost", "Delivery"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message as an internal subscriber receives it.

    ``headers`` is the raw NATS header block (``b"NATS/1.0\\r\\n...\\r\\n\\r\\n"``, see
    :func:`~minga.broker.decode_headers`) or None when the message has none.
    """

    subject: str
    reply: str | None
    headers: bytes | None
    payload: bytes


class BrokerExtension(Protocol):
    """A component that runs inside the broker as an internal client.

    ``start`` is awaited once the listening socket is bound and before the first client is
    accepted (so INFO fields added there reach every client); ``stop`` is awaited at shutdown,
    after the lame-duck notice and before client connections close. Extensions stop in the
    reverse order of their start.
    """

    async def start(self, broker: Broker) -> None: ...

    async def stop(self) -> None: ...


class ConnectionHost(Protocol):
    """All that a client connection uses of the broker (:class:`~minga.broker.Broker` implements it).

    The connection parses, checks and answers its client; the host numbers and counts
    connections, routes messages, keeps the subscriptions, flushes written connections once
    per loop turn and runs background tasks.
    """

    config: BrokerConfig
    #: None when clients connect without TLS
    ssl_context: ssl.SSLContext | None
    # server-wide counters, which /varz shows
    in_msgs: int
    in_bytes: int
    slow_consumers: int

    def next_client_id(self) -> int:
        """A new connection id (``cid``), never used before by this broker."""
        ...

    def register_client(self, client: ClientConnection) -> bool:
        """Count ``client`` as connected; False when it is one more than ``max_connections``."""
        ...

    def unregister_client(self, client: ClientConnection) -> None:
        """``client`` is gone: keep its record among the closed connections."""
        ...

    def info_line(self, client: ClientConnection) -> bytes:
        """The ``INFO`` line to send ``client`` when it connects."""
        ...

    def route(
        self,
        subject: bytes,
        reply: bytes | None,
        headers: bytes | None,
        payload: bytes,
        origin: ClientConnection | None,
        to: bytes | None = None,
    ) -> int:
        """Deliver a message to every matching subscription; how many received it."""
        ...

    def no_responders(self, client: ClientConnection, reply: bytes) -> None:
        """Tell a requester that nobody listens (a 503 status on its reply subscription)."""
        ...

    def add_subscription(self, sub: Subscription) -> None:
        """Route the messages of ``sub.subject`` (in ``sub.queue``'s group, if any) to ``sub``."""
        ...

    def remove_subscription(self, sub: Subscription) -> None:
        """Stop routing to ``sub``; a subscription already removed is ignored."""
        ...

    def mark_dirty(self, client: ClientConnection) -> None:
        """``client`` has output queued: flush it at the end of this loop turn."""
        ...

    def audit(self, client: ClientConnection, what: str, why: str, *, who: str = "") -> None:
        """Record a refusal of ``client``."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task that the broker cancels and awaits when it stops."""
        ...
