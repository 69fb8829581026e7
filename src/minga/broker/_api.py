"""What code running inside the broker (extensions such as JetStream) sees of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from minga.broker._server import Broker

__all__ = ["BrokerExtension", "Delivery"]


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
