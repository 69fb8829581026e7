"""One suite, run against every store: embedded, etcd (a real one) and the control plane's HTTP API."""

from __future__ import annotations

import asyncio
import time

import pytest

from minga.discovery import Health, Instance, Store, WatchEvent


def inst(n: int, service: str = "orders", **kw: object) -> Instance:
    return Instance(id=f"{service}-{n}", service=service, ports={"http": 8000 + n}, started_at=1e9, **kw)  # type: ignore[arg-type]


async def test_put_get_snapshot_delete(store: Store) -> None:
    before = (await store.snapshot()).revision
    await store.put(inst(1), ttl=None)
    await store.put(inst(2, tags=["blue"], metadata={"pid": "42"}), ttl=30)
    assert await store.get("orders-1") == inst(1)
    got = await store.get("orders-2")
    assert got is not None and got.tags == ["blue"] and got.metadata == {"pid": "42"}
    snap = await store.snapshot()
    assert sorted(i.id for i in snap.instances) == ["orders-1", "orders-2"]
    assert snap.revision > before
    assert await store.delete("orders-1") is True
    assert await store.get("orders-1") is None
    assert await store.delete("orders-1") is False
    assert [i.id for i in (await store.snapshot()).instances] == ["orders-2"]


async def test_update_replaces_a_record_and_reports_a_missing_one(store: Store) -> None:
    await store.put(inst(1), ttl=30)
    critical = inst(1).with_health(Health.CRITICAL, "exited with -9")
    assert await store.update(critical) is True
    assert await store.get("orders-1") == critical
    assert await store.renew("orders-1") is True
    assert await store.update(inst(9)) is False
    assert await store.get("orders-9") is None


async def test_renew_of_unknown_is_false(store: Store) -> None:
    assert await store.renew("nobody") is False


async def _next(events: object) -> WatchEvent:
    async with asyncio.timeout(2):
        return await anext(events)  # type: ignore[call-overload, no-any-return]


async def test_watch_gives_a_snapshot_then_every_change_in_order(store: Store) -> None:
    await store.put(inst(1), ttl=None)
    async with store.watch() as watch:
        assert [i.id for i in watch.snapshot.instances] == ["orders-1"]
        events = aiter(watch)
        await store.put(inst(2), ttl=30)
        await store.update(inst(2).with_health(Health.WARNING, "slow"))
        await store.delete("orders-1")
        seen = [await _next(events) for _ in range(3)]
    assert [(e.kind, e.instance.id) for e in seen] == [
        ("put", "orders-2"),
        ("put", "orders-2"),
        ("delete", "orders-1"),
    ]
    assert seen[1].instance.health is Health.WARNING and seen[1].instance.output == "slow"
    assert seen[2].instance == inst(1)  # a delete carries the last record
    revisions = [e.revision for e in seen]
    assert revisions == sorted(revisions) and revisions[0] > watch.snapshot.revision


async def test_a_lease_not_renewed_expires_and_watchers_see_it(store: Store) -> None:
    await store.put(inst(1), ttl=1)
    await store.put(inst(2), ttl=1)
    async with store.watch() as watch:
        events = aiter(watch)
        start = time.monotonic()
        # orders-2 is renewed for 2.5 s, well past its ttl; orders-1 is left to expire
        while time.monotonic() - start < 2.5:
            assert await store.renew("orders-2") is True
            await asyncio.sleep(0.3)
        async with asyncio.timeout(5):
            event = await anext(events)
    assert (event.kind, event.instance.id) == ("delete", "orders-1")
    assert await store.get("orders-1") is None
    assert await store.renew("orders-1") is False
    assert await store.get("orders-2") is not None


async def test_closing_the_store_ends_its_watches(store: Store) -> None:
    async with store.watch() as watch:
        reader = asyncio.ensure_future(anext(aiter(watch)))
        await asyncio.sleep(0.05)
        await store.close()
        async with asyncio.timeout(5):
            with pytest.raises(StopAsyncIteration):
                await reader
