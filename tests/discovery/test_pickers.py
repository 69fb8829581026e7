from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from minga.discovery import (
    Health,
    Instance,
    InstanceCache,
    PowerOfTwoChoices,
    RandomPicker,
    RoundRobin,
    Snapshot,
    WatchEvent,
    make_picker,
)
from minga.errors import DiscoveryError, NoInstanceError


def inst(n: int, health: Health = Health.PASSING, service: str = "orders") -> Instance:
    return Instance(id=f"{service}-{n}", service=service, ports={"http": 8000 + n}, health=health)


def cache_of(*instances: Instance) -> InstanceCache:
    cache = InstanceCache()
    cache.reset(Snapshot(list(instances), 1))
    return cache


def test_round_robin_takes_each_in_turn_and_skips_those_that_left() -> None:
    cache = cache_of(inst(1), inst(2), inst(3), inst(9, service="other"))
    picker = RoundRobin(cache, "orders")
    assert [picker.pick().id for _ in range(6)] == ["orders-1", "orders-2", "orders-3"] * 2
    cache.apply(WatchEvent("put", inst(2, Health.CRITICAL), 2))
    assert {picker.pick().id for _ in range(4)} == {"orders-1", "orders-3"}
    cache.apply(WatchEvent("delete", inst(1), 3))
    assert {picker.pick().id for _ in range(4)} == {"orders-3"}


def test_warning_instances_are_used_only_when_none_passes() -> None:
    cache = cache_of(inst(1, Health.WARNING), inst(2), inst(3, Health.CRITICAL))
    assert {RoundRobin(cache, "orders").pick().id for _ in range(4)} == {"orders-2"}
    cache.apply(WatchEvent("put", inst(2, Health.CRITICAL), 2))
    assert RoundRobin(cache, "orders").pick().id == "orders-1"
    cache.apply(WatchEvent("put", inst(1, Health.CRITICAL), 3))
    with pytest.raises(NoInstanceError) as info:
        RoundRobin(cache, "orders").pick()
    assert info.value.service == "orders"
    with pytest.raises(NoInstanceError):
        RandomPicker(cache, "nothing").pick()


def test_random_spreads_over_healthy_instances_only() -> None:
    cache = cache_of(inst(1), inst(2), inst(3, Health.CRITICAL))
    picker = RandomPicker(cache, "orders", rng=random.Random(7))
    counts = Counter(picker.pick().id for _ in range(400))
    assert set(counts) == {"orders-1", "orders-2"}
    assert min(counts.values()) > 120


def test_power_of_two_choices_prefers_the_less_busy() -> None:
    cache = cache_of(inst(1), inst(2))
    picker = PowerOfTwoChoices(cache, "orders", rng=random.Random(3))
    with picker.request() as first:
        # with one request outstanding on `first`, both candidates are compared: the other wins
        others = {picker.pick().id for _ in range(20)}
        assert others == {"orders-1", "orders-2"} - {first.id}
        assert picker.outstanding == {first.id: 1}
    assert picker.outstanding == {}
    # a busy instance gets less new work under load
    busy = Counter[str]()
    held = [picker.request() for _ in range(50)]
    for ctx in held:
        busy[ctx.__enter__().id] += 1
    assert abs(busy["orders-1"] - busy["orders-2"]) <= 2
    for ctx in held:
        ctx.__exit__(None, None, None)
    assert picker.outstanding == {}


def test_make_picker_by_name() -> None:
    cache = cache_of(inst(1))
    assert isinstance(make_picker(cache, "orders", "p2c"), PowerOfTwoChoices)
    assert isinstance(make_picker(cache, "orders", "random"), RandomPicker)
    assert isinstance(make_picker(cache, "orders"), RoundRobin)
    with pytest.raises(DiscoveryError, match="unknown picker"):
        make_picker(cache, "orders", "fastest")  # type: ignore[arg-type]


async def test_waiters_wake_on_the_change_they_wait_for() -> None:
    cache = cache_of(inst(1))
    waiter = asyncio.ensure_future(cache.wait_for(lambda c: not c.candidates("orders")))
    await asyncio.sleep(0)
    cache.apply(WatchEvent("put", inst(2), 2))
    await asyncio.sleep(0)
    assert not waiter.done()
    cache.apply(WatchEvent("put", inst(1, Health.CRITICAL), 3))
    cache.apply(WatchEvent("delete", inst(2), 4))
    async with asyncio.timeout(1):
        await waiter
    assert cache.revision == 4
    before = cache.generation
    cache.reset(Snapshot([], 1))  # a store that lost its history: the revision goes back
    assert cache.revision == 1 and cache.generation == before + 1
