"""Registration with minga.discovery: the replica's own record, kept alive by a lease."""

from __future__ import annotations

import os

from minga.discovery import DiscoveryClient, Instance
from minga.errors import ServiceError
from minga.service._container import InstanceInfo

__all__ = ["DiscoveryRegistrar"]


class DiscoveryRegistrar:
    """Registers a replica through a :class:`~minga.discovery.DiscoveryClient` at ``url``.

    The lease lasts ``ttl`` seconds and is renewed every ttl/3 until :meth:`deregister`,
    so a replica that dies without deregistering leaves the registry within ``ttl``
    (the control plane, which sees the process exit, marks it critical sooner).
    """

    def __init__(self, url: str, *, ttl: float = 5.0) -> None:
        self.url = url
        self.ttl = ttl
        self._client: DiscoveryClient | None = None
        self._id: str | None = None

    async def register(self, info: InstanceInfo) -> None:
        client = DiscoveryClient(self.url, watch=False)
        await client.__aenter__()
        try:
            await client.register(
                Instance(
                    id=info.id,
                    service=info.service,
                    version=info.version,
                    host=info.host,
                    ports=dict(info.ports),
                    started_at=info.started_at,
                    metadata={"pid": str(os.getpid()), "registered_by": "replica"},
                ),
                ttl=self.ttl,
            )
        except BaseException:
            await client.__aexit__(None, None, None)
            raise
        self._client, self._id = client, info.id

    async def deregister(self) -> None:
        client, self._client = self._client, None
        if client is None or self._id is None:
            raise ServiceError("deregister() before register()")
        try:
            await client.deregister(self._id)
        finally:
            await client.__aexit__(None, None, None)
