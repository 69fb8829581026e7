from __future__ import annotations

import asyncio
import os

import pytest

from minga.discovery import Registry, ReplicaRegistrar, replica_registrar
from minga.errors import DiscoveryError
from minga.service import InstanceInfo


async def test_a_replica_registers_itself_renews_and_deregisters(
    served_registry: tuple[Registry, str],
) -> None:
    registry, url = served_registry
    registrar = replica_registrar(url, {"MINGA_DISCOVERY_TTL": "1", "MINGA_VERSION": "1.4"})
    info = InstanceInfo(
        id="orders-7", service="orders", ports={"http": 8007, "metrics": 9007}, started_at=1e9
    )
    await registrar.register(info)
    try:
        await asyncio.sleep(1.6)  # past the ttl: renewed
        got = await registry.get("orders-7")
        assert got is not None
        assert (got.version, got.ports, got.started_at) == ("1.4", {"http": 8007, "metrics": 9007}, 1e9)
        assert got.metadata == {"pid": str(os.getpid())}
    finally:
        await registrar.deregister()
    assert await registry.get("orders-7") is None
    await registrar.deregister()  # twice is harmless


def test_a_bad_ttl_is_named() -> None:
    with pytest.raises(DiscoveryError, match="MINGA_DISCOVERY_TTL must be seconds, got 'soon'"):
        ReplicaRegistrar("http://127.0.0.1:1", {"MINGA_DISCOVERY_TTL": "soon"})
