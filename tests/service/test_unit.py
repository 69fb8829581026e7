"""Unit tests of services with the shipped helpers and no broker: worker_factory and RecordingBus."""

from __future__ import annotations

import pytest
from demo_services import Inventory, Order, Orders, OutOfStock, Reservation
from pydantic import SecretStr

from minga.errors import PayloadError, ServiceError, ServiceUnavailable, UsageError
from minga.service import RpcProxy
from minga.service._payload import Signature
from minga.service.testing import RecordingBus, worker_factory


async def test_worker_factory_injects_replacements_and_mocks_the_rest() -> None:
    worker = worker_factory(Inventory, stock={"a": 2})
    assert await worker.reserve(sku="a", qty=2) == Reservation(sku="a", qty=2, left=0)
    with pytest.raises(OutOfStock):
        await worker.reserve(sku="a", qty=1)
    worker.journal.add("x")  # a MagicMock: accepts anything, records the call
    worker.journal.add.assert_called_once_with("x")


async def test_recording_bus_answers_calls_and_records_events() -> None:
    bus = RecordingBus(replies={"inventory.reserve": lambda sku, qty: {"sku": sku, "left": 5 - qty}})
    worker = worker_factory(Orders, bus=bus)
    placed = await worker.place(id=1, sku="a", qty=2)
    assert placed == {"order": 1, "reservation": {"sku": "a", "left": 3}}
    assert bus.calls == [("inventory.reserve", {"sku": "a", "qty": 2})]
    assert bus.events == [("orders.created", Order(id=1, sku="a", qty=2))]
    with pytest.raises(ServiceUnavailable):
        await worker_factory(Orders, bus=RecordingBus()).place(id=2, sku="a", qty=1)


async def test_dependencies_outside_a_worker_say_how_to_get_one() -> None:
    with pytest.raises(ServiceError, match="injected per call"):
        _ = Inventory().stock
    with pytest.raises(ServiceError, match="has no bus"):
        await worker_factory(Orders).place(id=1, sku="a", qty=1)
    with pytest.raises(ServiceError, match="no dependencies named"):
        worker_factory(Orders, db=1)
    assert isinstance(worker_factory(Inventory, api_key=SecretStr("k")).api_key, SecretStr)


def test_signatures_validate_field_by_field() -> None:
    sig = Signature.of(Inventory.reserve)
    assert sig.kwargs({"sku": "a", "qty": "3"}) == {"sku": "a", "qty": 3}  # JSON-ish strings are coerced
    with pytest.raises(PayloadError) as info:
        sig.kwargs({"sku": 1, "qty": "x"})
    assert [e["loc"] for e in info.value.errors] == ["sku", "qty"]
    with pytest.raises(PayloadError, match=r"expected a JSON object of \{sku, qty\}, got list"):
        sig.kwargs([1, 2])
    one = Signature.of(Inventory.on_order)
    assert one.value({"id": 1, "sku": "a", "qty": 1}) == {"order": Order(id=1, sku="a", qty=1)}
    with pytest.raises(PayloadError, match=r"order\.id: Field required"):
        one.value({"sku": "a", "qty": 1})
    assert Signature.of(Inventory.report).value("ignored") == {}


async def test_the_rpc_proxy_makes_each_name_once_and_still_refuses_bad_names() -> None:
    bus = RecordingBus(replies={"inventory.reserve": {"ok": True}})
    rpc = RpcProxy(bus)
    assert rpc.inventory is rpc.inventory and rpc.inventory.reserve is rpc.inventory.reserve
    assert await rpc.inventory.reserve(sku="a", qty=1) == {"ok": True}
    assert await rpc.inventory(timeout=2).reserve(sku="b", qty=2) == {"ok": True}
    assert bus.calls == [("inventory.reserve", {"sku": "a", "qty": 1}), ("inventory.reserve", {"sku": "b", "qty": 2})]
    for _ in range(2):  # a refused name is refused every time, never remembered
        with pytest.raises(UsageError, match="method name"):
            getattr(rpc.inventory, "no.dots")
        with pytest.raises(UsageError, match="service name"):
            getattr(rpc, "bad name")
    with pytest.raises(AttributeError):
        _ = rpc._private
