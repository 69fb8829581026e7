"""Self-registration for one replica: what ``python -m minga.service`` plugs in as its registrar."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from minga.discovery._client import DiscoveryClient
from minga.discovery._httpstore import HttpStore
from minga.discovery._model import Instance
from minga.errors import DiscoveryError

DEFAULT_REPLICA_TTL = 5.0


class ReplicaInfo(Protocol):
    """What a replica says about itself (``minga.service.InstanceInfo`` has this shape)."""

    @property
    def id(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def ports(self) -> Mapping[str, int]: ...
    @property
    def started_at(self) -> float: ...


class ReplicaRegistrar:
    """Registers one replica with the registry at ``url`` and renews its lease until :meth:`deregister`.

    ``env`` supplies ``MINGA_DISCOVERY_TTL`` (lease seconds, default 5), ``MINGA_VERSION``
    (used when the replica reports no version) and ``MINGA_TOKEN`` (the replica's credential). The record's metadata carries the pid.
    :meth:`register` and :meth:`deregister` are called from the same task (the container's).
    """

    def __init__(self, url: str, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.url = url
        raw = env.get("MINGA_DISCOVERY_TTL", "").strip()
        try:
            self.ttl = float(raw) if raw else DEFAULT_REPLICA_TTL
        except ValueError:
            raise DiscoveryError(f"MINGA_DISCOVERY_TTL must be seconds, got {raw!r}") from None
        self.version = env.get("MINGA_VERSION", "")
        self.token = env.get("MINGA_TOKEN") or None
        self._client: DiscoveryClient | None = None
        self._instance_id: str | None = None

    async def register(self, info: ReplicaInfo) -> None:
        """Register ``info`` and start renewing; raises :class:`~minga.errors.DiscoveryError` when the
        registry cannot be reached."""
        if self._client is None:
            client = DiscoveryClient(HttpStore(self.url, token=self.token), watch=False)
            await client.__aenter__()
            self._client = client
        instance = Instance(
            id=info.id,
            service=info.service,
            version=info.version or self.version,
            host=info.host,
            ports=dict(info.ports),
            started_at=info.started_at,
            metadata={"pid": str(os.getpid())},
        )
        await self._client.register(instance, self.ttl)
        self._instance_id = instance.id

    async def deregister(self) -> None:
        """Remove the record now and stop renewing (part of a graceful stop)."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if self._instance_id is not None:
                await client.deregister(self._instance_id)
        finally:
            self._instance_id = None
            await client.__aexit__(None, None, None)


def replica_registrar(url: str, env: Mapping[str, str]) -> ReplicaRegistrar:
    """The registrar factory for ``minga.service``'s runner: ``main(registrar_factory=replica_registrar)``."""
    return ReplicaRegistrar(url, env)
