"""The lifecycle: providers' setup/start/stop/kill, and the shutdown order, enforced."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from demo_services import Inventory, Journal

from minga import Service, rpc
from minga.bus import Bus
from minga.errors import BusError, ServiceUnavailable
from minga.service import (
    ContainerState,
    Dependency,
    InstanceInfo,
    ServiceContainer,
    ServiceContext,
    WorkerContext,
    testing,
)
from minga.service.testing import ContainerFactory, entrypoint_hook


@pytest.fixture(params=["embedded", "nats-server"])
def minga_broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both brokers: the shipped embedded one and a real nats-server."""
    with testing.embedded_broker() if request.param == "embedded" else testing.nats_server() as url:
        yield url


EVENTS: list[str] = []
JOURNAL = Journal()  # replaced per test; announces "work begins"


class Recorder(Dependency[list[str]]):
    """Writes every lifecycle step it sees to EVENTS."""

    async def setup(self, context: ServiceContext) -> None:
        EVENTS.append(f"setup {context.service}")

    async def start(self) -> None:
        EVENTS.append("start")

    def get(self, worker: WorkerContext) -> list[str]:
        EVENTS.append(f"get {worker.entrypoint}")
        return EVENTS

    async def release(self, worker: WorkerContext, value: list[str], error: BaseException | None) -> None:
        EVENTS.append(f"release {worker.entrypoint} {type(error).__name__ if error else 'ok'}")

    async def stop(self) -> None:
        EVENTS.append("stop")

    async def kill(self) -> None:
        EVENTS.append("kill")


class Registry:
    async def register(self, info: InstanceInfo) -> None:
        EVENTS.append(f"register {info.service} http={'http' in info.ports}")

    async def deregister(self) -> None:
        EVENTS.append("deregister")


class Slow(Service):
    name = "slow"
    events = Recorder()

    @rpc
    async def work(self, seconds: float) -> str:
        self.events.append("work begins")
        JOURNAL.add("work begins")
        await asyncio.sleep(seconds)
        self.events.append("work ends")
        return "done"


async def test_the_shutdown_order_is_enforced(minga_broker: str) -> None:
    global JOURNAL
    EVENTS.clear()
    JOURNAL = Journal()
    async with Bus(minga_broker) as client:
        bus = Bus(minga_broker)
        await bus.__aenter__()
        container = ServiceContainer(Slow, bus, registrar=Registry(), http_port=0, grace=5)
        await container.start()
        assert container.state is ContainerState.RUNNING
        call = asyncio.create_task(client.request("slow", "work", {"seconds": 0.5}))
        await JOURNAL.until(lambda e: ("work begins",) in e)
        stopping = asyncio.create_task(container.stop())
        assert await call == "done"  # in-flight work finished during the stop
        await stopping
        await bus.__aexit__(None, None, None)
        with pytest.raises(ServiceUnavailable):  # entrypoints are gone
            await client.request("slow", "work", {"seconds": 0})
    assert EVENTS == [
        "setup slow",
        "start",
        "register slow http=True",
        "get work",
        "work begins",
        "work ends",
        "release work ok",
        "deregister",
        "stop",
    ]
    assert container.state is ContainerState.STOPPED


async def test_in_flight_work_past_the_grace_is_cancelled(minga_broker: str) -> None:
    global JOURNAL
    EVENTS.clear()
    JOURNAL = Journal()
    async with Bus(minga_broker) as client, Bus(minga_broker) as bus:
        container = ServiceContainer(Slow, bus, http_port=None, grace=0.3)
        await container.start()
        call = asyncio.create_task(client.request("slow", "work", {"seconds": 30}))
        await JOURNAL.until(lambda e: ("work begins",) in e)
        await container.stop()
        try:
            await call
            raise AssertionError("the cancelled call returned")
        except BusError as exc:
            assert "stopped before answering" in str(exc)
    assert EVENTS[-2:] == ["release work CancelledError", "stop"]


async def test_kill_skips_the_grace_and_deregistration(minga_broker: str) -> None:
    global JOURNAL
    EVENTS.clear()
    JOURNAL = Journal()
    async with Bus(minga_broker) as bus:
        container = ServiceContainer(Slow, bus, registrar=Registry(), http_port=None)
        await container.start()
        await container.kill()
    assert EVENTS == ["setup slow", "start", "register slow http=False", "kill"]
    assert container.state is ContainerState.KILLED


async def test_replicas_in_one_process_do_not_share_providers(container_factory: ContainerFactory) -> None:
    secrets = {"INVENTORY_KEY": "k"}
    async with (
        container_factory(Inventory, secrets=secrets) as a,
        container_factory(Inventory, secrets=secrets) as b,
    ):
        assert a.instance != b.instance
        assert (await entrypoint_hook(a, "reserve")(sku="a", qty=3)).left == 7
        assert (await entrypoint_hook(b, "reserve")(sku="a", qty=1)).left == 9


async def test_stop_is_idempotent(container_factory: ContainerFactory) -> None:
    async with container_factory(Slow) as echo:
        await echo.stop()
        await echo.stop()
    assert echo.state is ContainerState.STOPPED
