"""Replicas on a real broker, built with the shipped fixtures: every entrypoint kind end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from demo_services import Echo, Inventory, Journal, Orders, OutOfStock

from minga import Service, event
from minga.bus import Bus, Span, Timeout, TraceContext, current_trace
from minga.errors import PayloadError, RemoteError, RequestTimeout, ServiceError
from minga.service import ContainerState, Resource, testing
from minga.service.testing import ContainerFactory, entrypoint_hook, worker_factory

SECRETS = {"INVENTORY_KEY": "s3cret"}


def _journal(container: Any) -> Journal:
    journal: Journal = container._deps["journal"].get(None)
    return journal


async def test_rpc_validates_typed_payloads_and_injects_dependencies(
    container_factory: ContainerFactory, minga_broker: str
) -> None:
    config = {"INV_START": "5", "INV_CURRENCY": "PEN"}
    async with (
        container_factory(Inventory, config=config, secrets=SECRETS),
        Bus(minga_broker, allowed_errors=[OutOfStock]) as client,
    ):
        assert await client.request("inventory", "reserve", {"sku": "a", "qty": 2}) == {
            "sku": "a",
            "qty": 2,
            "left": 3,
        }
        with pytest.raises(PayloadError) as info:
            await client.request("inventory", "reserve", {"sku": "a", "qty": "many"})
        assert info.value.errors[0]["loc"] == "qty" and "integer" in info.value.errors[0]["msg"]
        with pytest.raises(PayloadError, match="qty: Field required"):
            await client.request("inventory", "reserve", {"sku": "a"})
        with pytest.raises(PayloadError, match="color: Extra inputs are not permitted"):
            await client.request("inventory", "reserve", {"sku": "a", "qty": 1, "color": "red"})
        with pytest.raises(RemoteError) as remote:
            await client.request("inventory", "reserve", {"sku": "a", "qty": 0})
        assert (remote.value.remote_type, remote.value.remote_message) == (
            "ValueError",
            "qty must be positive",
        )
        with pytest.raises(OutOfStock, match="only 3 of a left"):
            await client.request("inventory", "reserve", {"sku": "a", "qty": 9})
        root = TraceContext.new()
        current_trace.set(root)
        who = await client.request("inventory", "whoami")
    assert who == {"key": "s3cret", "currency": "PEN", "trace_id": root.trace_id, "entrypoint": "whoami"}


async def test_a_service_calls_another_and_its_event_reaches_subscribers(
    container_factory: ContainerFactory, minga_broker: str
) -> None:
    async with (
        container_factory(Inventory, secrets=SECRETS) as inventory,
        container_factory(Orders),
        Bus(minga_broker) as client,
    ):
        placed = await client.request("orders", "place", {"id": 7, "sku": "a", "qty": 4})
        assert placed == {"order": 7, "reservation": {"sku": "a", "qty": 4, "left": 6}}
        await _journal(inventory).until(lambda e: ("order", 7) in e)


async def test_http_routes_queue_jobs_and_health(container_factory: ContainerFactory) -> None:
    async with (
        container_factory(Inventory, secrets=SECRETS, http_port=0) as inventory,
        aiohttp.ClientSession(f"http://127.0.0.1:{inventory.http_port}") as http,
    ):
        async with http.get("/healthz") as r:
            assert r.status == 200
            health = await r.json()
            assert health["status"] == "passing" and health["instance"] == inventory.instance
        async with http.post("/restock", json={"sku": "b", "qty": 3}) as r:
            assert r.status == 200 and (await r.json())["seq"] >= 1
        await _journal(inventory).until(lambda e: ("restocked", "b", 3) in e)
        async with http.get("/stock/b") as r:
            assert await r.json() == {"sku": "b", "qty": 3}
        async with http.get("/search", params={"prefix": "", "limit": "1"}) as r:
            assert await r.json() == ["a"]
        async with http.post("/restock", json={"sku": "b", "qty": "lots"}) as r:
            assert r.status == 400
            error = (await r.json())["error"]
            assert error["type"] == "PayloadError" and error["errors"][0]["loc"] == "job.qty"
        async with http.post("/restock", data=b"{nope", headers={"content-type": "application/json"}) as r:
            assert r.status == 400


async def test_a_bad_job_is_dead_lettered_and_the_worker_carries_on(
    container_factory: ContainerFactory, minga_broker: str
) -> None:
    async with container_factory(Inventory, secrets=SECRETS) as inventory, Bus(minga_broker) as client:
        dead = await client.nats.subscribe("minga.dlq.restock")
        await client.enqueue("restock", {"sku": "c"})
        await client.enqueue("restock", {"sku": "c", "qty": 2})
        letter = await dead.next_msg(timeout=10)
        assert letter.headers is not None and "qty: Field required" in letter.headers["Minga-Error"]
        await _journal(inventory).until(lambda e: ("restocked", "c", 2) in e)


async def test_timers_run_every_interval(container_factory: ContainerFactory) -> None:
    async with container_factory(Inventory, secrets=SECRETS) as inventory:
        await _journal(inventory).until(lambda e: e.count(("tick",)) >= 3)


async def test_entrypoint_hook_calls_an_entrypoint_directly(container_factory: ContainerFactory) -> None:
    async with container_factory(Inventory, secrets=SECRETS) as inventory:
        reserve = entrypoint_hook(inventory, "reserve")
        result = await reserve(sku="a", qty=1)
        assert result.left == 9  # the method's own return value (a Reservation), not its JSON
        await entrypoint_hook(inventory, "on_order")({"id": 3, "sku": "a", "qty": 1})
        assert ("order", 3) in _journal(inventory).entries
        with pytest.raises(PayloadError):
            await reserve(sku="a")
        with pytest.raises(ServiceError, match="not an entrypoint"):
            entrypoint_hook(inventory, "worker")


async def test_a_missing_secret_refuses_to_start(container_factory: ContainerFactory) -> None:
    with pytest.raises(ServiceError, match="secret 'INVENTORY_KEY' is not set"):
        async with container_factory(Inventory, config={}):
            pass


async def test_replaced_dependencies_are_injected(
    container_factory: ContainerFactory, minga_broker: str
) -> None:
    stock = {"a": 100}
    async with (
        container_factory(Inventory, secrets=SECRETS, replace={"stock": stock}) as inventory,
        Bus(minga_broker) as client,
    ):
        assert (await client.request("inventory", "reserve", {"sku": "a", "qty": 1}))["left"] == 99
        assert stock == {"a": 99} and inventory.state is ContainerState.RUNNING
    assert inventory.state is ContainerState.STOPPED


@pytest.fixture(params=["embedded", "nats-server"])
def minga_broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both brokers: the shipped embedded one and a real nats-server."""
    with testing.embedded_broker() if request.param == "embedded" else testing.nats_server() as url:
        yield url


async def test_many_concurrent_calls(container_factory: ContainerFactory, minga_broker: str) -> None:
    async with (
        container_factory(Inventory, secrets=SECRETS, replace={"stock": {"a": 1000}}),
        Bus(minga_broker) as c,
    ):
        replies = await asyncio.gather(
            *(c.request("inventory", "reserve", {"sku": "a", "qty": 1}) for _ in range(200))
        )
    assert sorted(r["left"] for r in replies) == list(range(800, 1000))


class Cache(Service):
    name = "cache"
    journal = Resource(lambda cfg: Journal())

    @event("prices.changed", broadcast=True)
    async def flush(self, sku: str) -> None:
        self.journal.add("flushed", sku)


async def test_broadcast_events_reach_every_replica(
    container_factory: ContainerFactory, minga_broker: str
) -> None:
    async with container_factory(Cache) as a, container_factory(Cache) as b, Bus(minga_broker) as client:
        await client.publish("prices.changed", "tea")
        for replica in (a, b):
            await _journal(replica).until(lambda e: ("flushed", "tea") in e)


async def test_calls_through_self_rpc_take_a_typed_timeout(
    container_factory: ContainerFactory, minga_broker: str
) -> None:
    async with container_factory(Echo), Bus(minga_broker) as bus:
        worker = worker_factory(Orders, bus=bus)
        assert await worker.rpc.echo.echo(text="hola") == "hola"
        with pytest.raises(RequestTimeout) as info:
            await worker.rpc.echo(timeout=Timeout(0.3)).slow(seconds=1)  # outlives the timeout, not the test
        assert info.value.timeout == 0.3 and info.value.subject == "minga.rpc.echo.slow"


async def test_each_call_is_counted_and_traced_as_a_span_of_its_caller(
    container_factory: ContainerFactory, minga_broker: str
) -> None:
    async with (
        container_factory(Inventory, secrets=SECRETS, replace={"stock": {"a": 5}}) as container,
        Bus(minga_broker) as client,
    ):
        spans: list[Span] = []
        got_all = asyncio.Event()

        async def collect(msg: Any) -> None:
            spans.extend(Span.from_json(d) for d in json.loads(msg.data))
            if len(spans) >= 3:
                got_all.set()

        await client.nats.subscribe(Span.SUBJECT, cb=collect)
        await client.nats.flush()
        root = TraceContext.new()
        current_trace.set(root)
        assert (await client.request("inventory", "reserve", {"sku": "a", "qty": 1}))["left"] == 4
        with pytest.raises(RemoteError):
            await client.request("inventory", "reserve", {"sku": "a", "qty": 0})
        with pytest.raises(PayloadError):  # refused before any worker runs: neither counted nor traced
            await client.request("inventory", "reserve", {"sku": "a"})
        assert await client.request("inventory", "whoami") == {
            "key": "s3cret",
            "currency": "EUR",
            "trace_id": root.trace_id,
            "entrypoint": "whoami",
        }
        await container.spans.flush()
        await asyncio.wait_for(got_all.wait(), 10)
        metrics = await container.metrics.render()
    assert [(s.name, s.kind, s.status) for s in spans] == [
        ("inventory.reserve", "rpc", "ok"),
        ("inventory.reserve", "rpc", "error"),
        ("inventory.whoami", "rpc", "ok"),
    ]
    for span in spans:
        assert (span.trace_id, span.parent_id, span.service) == (root.trace_id, root.span_id, "inventory")
        assert span.instance == container.instance and span.span_id != root.span_id
        assert 0 <= span.duration < 10
    assert spans[1].attributes == {"error": "ValueError: qty must be positive"}
    assert spans[0].attributes == spans[2].attributes == {}
    calls = 'minga_entrypoint_calls_total{entrypoint="%s",kind="rpc",outcome="%s"} %s'
    assert calls % ("reserve", "ok", "1") in metrics
    assert calls % ("reserve", "error", "1") in metrics
    assert calls % ("whoami", "ok", "1") in metrics
    assert 'minga_entrypoint_duration_seconds_count{entrypoint="reserve",kind="rpc"} 2' in metrics
    assert 'minga_entrypoint_calls_total{entrypoint="on_order",kind="event",outcome="ok"} 0' in metrics


async def test_an_event_with_a_bad_payload_is_dropped_and_the_next_is_handled(
    container_factory: ContainerFactory, minga_broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with container_factory(Inventory, secrets=SECRETS) as inventory, Bus(minga_broker) as client:
        await client.publish("orders.created", {"id": "not a number", "sku": "a", "qty": 1})
        await client.publish("orders.created", {"id": 8, "sku": "a", "qty": 1})
        await _journal(inventory).until(lambda e: ("order", 8) in e)
        assert _journal(inventory).entries == [("order", 8)]
        metrics = await inventory.metrics.render()
    assert any("dropped an event" in r.message and "order.id" in r.message for r in caplog.records)
    # refused before a worker ran: not counted as a call
    assert 'minga_entrypoint_calls_total{entrypoint="on_order",kind="event",outcome="error"} 0' in metrics
    assert 'minga_entrypoint_calls_total{entrypoint="on_order",kind="event",outcome="ok"} 1' in metrics
