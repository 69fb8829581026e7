"""Where the gateway learns which upstream instances serve a service.

A source answers :meth:`UpstreamSource.endpoints` at every pick (so it must be cheap) and
wakes :meth:`UpstreamSource.changed` waiters when its answer may have changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Endpoint", "StaticSource", "UpstreamSource", "parse_endpoint"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One upstream instance: its ``id`` (the registry's instance id) and where it listens."""

    id: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_endpoint(text: str, id: str | None = None) -> Endpoint:
    """``"host:port"`` as an :class:`Endpoint` (its id is the address unless given)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, found {text!r}")
    return Endpoint(id or text, host.strip("[]") or "127.0.0.1", int(port))


class UpstreamSource(Protocol):
    """The healthy instances of each service, kept current by whoever feeds the source."""

    def endpoints(self, service: str) -> Sequence[Endpoint]:
        """The instances to route ``service``'s requests to now (healthy ones only)."""
        ...

    async def changed(self) -> None:
        """Return once the endpoints may have changed."""
        ...


class StaticSource:
    """Endpoints given by hand (``{"orders": ["127.0.0.1:8001", ...]}``), changed with :meth:`set`."""

    def __init__(self, services: Mapping[str, Iterable[Endpoint | str]] | None = None) -> None:
        self._services: dict[str, tuple[Endpoint, ...]] = {}
        self._changed = asyncio.Event()
        for name, endpoints in (services or {}).items():
            self.set(name, endpoints)

    def set(self, service: str, endpoints: Iterable[Endpoint | str]) -> None:
        """Replace ``service``'s endpoints."""
        self._services[service] = tuple(
            e if isinstance(e, Endpoint) else parse_endpoint(e) for e in endpoints
        )
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def endpoints(self, service: str) -> Sequence[Endpoint]:
        return self._services.get(service, ())

    async def changed(self) -> None:
        await self._changed.wait()
