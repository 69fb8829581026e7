"""Where the gateway learns which upstream instances serve a service.

A source answers :meth:`UpstreamSource.endpoints` at every pick (so it must be cheap) and
wakes :meth:`UpstreamSource.changed` waiters when its answer may have changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from minga.discovery import Instance, InstanceCache

__all__ = ["DiscoverySource", "Endpoint", "StaticSource", "UpstreamSource", "parse_endpoint"]


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


class DiscoverySource:
    """The passing instances in a discovery :class:`~minga.discovery.InstanceCache` (the one a
    :class:`~minga.discovery.DiscoveryClient` keeps current by its watch), at their ``port`` port.

    Endpoints are recomputed only when the cache changed, so a pick costs a dict lookup.
    """

    def __init__(self, cache: InstanceCache, port: str = "http") -> None:
        self.cache = cache
        self.port = port
        self._generation = -1
        self._table: dict[str, tuple[Endpoint, ...]] = {}

    def _endpoint(self, instance: Instance) -> Endpoint | None:
        port = instance.ports.get(self.port)
        if port is None and len(instance.ports) == 1:
            port = next(iter(instance.ports.values()))
        return None if port is None else Endpoint(instance.id, instance.host, port)

    def _rebuild(self) -> None:
        self._generation = self.cache.generation
        self._table = {}

    def endpoints(self, service: str) -> Sequence[Endpoint]:
        if self.cache.generation != self._generation:
            self._rebuild()
        found = self._table.get(service)
        if found is None:
            found = tuple(
                e for e in (self._endpoint(i) for i in self.cache.candidates(service)) if e is not None
            )
            self._table[service] = found
        return found

    async def changed(self) -> None:
        first = True

        def later(_: InstanceCache) -> bool:
            nonlocal first
            seen, first = not first, False
            return seen

        await self.cache.wait_for(later)
