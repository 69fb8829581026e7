"""Replicas on etcd directly: register with a lease, renew it, and see the control plane's health changes."""

from __future__ import annotations

import asyncio
import uuid

from minga.discovery import DiscoveryClient, EtcdStore, Health, Instance, Registry


async def test_a_replica_on_etcd_keeps_its_lease_and_follows_health(etcd_url: str) -> None:
    prefix = f"/client-{uuid.uuid4().hex}/"
    async with (
        Registry(EtcdStore(etcd_url, prefix=prefix)) as registry,
        DiscoveryClient(EtcdStore(etcd_url, prefix=prefix)) as replica,
    ):
        me = Instance(id="orders-1", service="orders", ports={"http": 8001})
        await replica.register(me, ttl=1)
        await asyncio.sleep(2.5)  # past the 1 s lease (and etcd's half-second expiry sweep): renewals hold it
        assert await registry.get("orders-1") == me
        assert await registry.mark_critical("orders-1", "exited with -9")
        async with asyncio.timeout(1):
            await replica.cache.wait_for(lambda c: c.candidates("orders") == [])
        cached = replica.cache.get("orders-1")
        assert cached is not None and cached.health is Health.CRITICAL
        # the health change kept the lease: renewals still work
        assert await registry.renew("orders-1")
        assert await replica.deregister("orders-1")
        async with asyncio.timeout(1):
            await replica.cache.wait_for(lambda c: c.get("orders-1") is None)
