"""Decorators record metadata and return the function unchanged; the class collects them."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from minga import Service, consume, event, every, http, rpc
from minga.errors import UsageError
from minga.service import Config, parse_duration
from minga.service._entrypoints import (
    ConsumeEntry,
    EventEntry,
    HttpEntry,
    RpcEntry,
    TimerEntry,
    entrypoints_of,
)


class Order(BaseModel):
    id: int


async def plain(self: object, order: Order) -> None:
    return None


def test_decorators_return_the_function_unchanged() -> None:
    for decorate in [
        rpc,
        rpc(name="x"),
        event("orders.created"),
        consume("restock"),
        http.get("/a"),
        every("1s"),
    ]:
        assert decorate(plain) is plain
    assert [type(e) for e in entrypoints_of(plain)] == [
        RpcEntry,
        RpcEntry,
        EventEntry,
        ConsumeEntry,
        HttpEntry,
        TimerEntry,
    ]


class Inventory(Service):
    name = "inventory"
    config = Config()

    @rpc
    @http.post("/reserve")
    async def reserve(self, sku: str, qty: int) -> dict[str, int]:
        return {sku: qty}

    @event("orders.created", broadcast=True)
    async def on_order(self, order: Order) -> None: ...

    @consume("restock", max_deliver=3, concurrency=2)
    async def restock(self, order: Order) -> None: ...

    @every("250ms")
    async def report(self) -> None: ...

    async def helper(self) -> int:
        return 1


def test_the_class_collects_entrypoints_and_dependencies() -> None:
    assert set(Inventory.entrypoints) == {"reserve", "on_order", "restock", "report"}
    assert Inventory.entrypoints["reserve"] == (HttpEntry("POST", "/reserve"), RpcEntry())
    assert Inventory.entrypoints["on_order"] == (EventEntry("orders.created", broadcast=True),)
    (consumer,) = Inventory.entrypoints["restock"]
    assert isinstance(consumer, ConsumeEntry) and consumer.policy.max_deliver == 3
    assert Inventory.entrypoints["report"] == (TimerEntry(0.25),)
    assert list(Inventory.dependencies) == ["config"]


def test_subclasses_inherit_and_override_entrypoints() -> None:
    class Bigger(Inventory):
        async def report(self) -> None:  # overriding without a decorator removes the timer
            return None

    assert set(Bigger.entrypoints) == {"reserve", "on_order", "restock"}


def test_mistakes_are_one_clear_line() -> None:
    with pytest.raises(UsageError, match="must be `async def`"):

        class Sync(Service):
            name = "sync"

            @rpc
            def nope(self) -> None: ...

    with pytest.raises(UsageError, match="service name 'has space'"):

        class Bad(Service):
            name = "has space"

    with pytest.raises(UsageError, match="must look like"):
        every("soon")
    with pytest.raises(UsageError, match="must start with '/'"):
        http.get("stock")


def test_durations() -> None:
    assert [parse_duration(v) for v in ["30s", "250ms", "5m", "1h", "2", 0.5]] == [
        30,
        0.25,
        300,
        3600,
        2,
        0.5,
    ]
    with pytest.raises(UsageError):
        parse_duration("0s")


def test_every_takes_the_spec_duration_grammar() -> None:
    # the grammar of minga.yaml: parts in a row, as in health.interval: 1m30s
    async def tick(self: object) -> None:
        return None

    async def hourly(self: object) -> None:
        return None

    assert entrypoints_of(every("1m30s")(tick)) == (TimerEntry(90.0),)
    assert entrypoints_of(every("1h0.5s")(hourly)) == (TimerEntry(3600.5),)
    for bad in ("1m30", "90 s", "-1s", "1d"):
        with pytest.raises(UsageError, match=f"duration '{bad}' must"):
            every(bad)
