"""The lifecycle: providers' setup/start/stop/kill, and the shutdown order, enforced."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest
from demo_services import Inventory, Journal

from minga import Service, http, rpc
from minga.bus import Bus
from minga.discovery import DiscoveryClient, EmbeddedStore, Instance
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
        "deregister",  # leave routing first, while the work still runs
        "work ends",
        "release work ok",
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


class Web(Service):
    name = "web"

    @http.get("/hello")
    async def hello(self) -> dict[str, str]:
        return {"instance": self.worker.instance}

    @http.get("/slow")
    async def slow(self, seconds: float) -> str:
        JOURNAL.add("slow begins")
        await asyncio.sleep(seconds)
        return "done"


class DiscoveryRegistrar:
    """Registers a container with a real discovery client, as a replica process does."""

    def __init__(self, client: DiscoveryClient) -> None:
        self.client = client
        self.id: str | None = None

    async def register(self, info: InstanceInfo) -> None:
        await self.client.register(
            Instance(id=info.id, service=info.service, host=info.host, ports=dict(info.ports)), ttl=10
        )
        self.id = info.id

    async def deregister(self) -> None:
        assert self.id is not None
        await self.client.deregister(self.id)


async def test_a_replica_being_stopped_fails_no_request_routed_by_discovery(
    container_factory: ContainerFactory,
) -> None:
    """A client keeps sending HTTP requests to the replicas its picker (fed by a watch) chooses,
    one connection per request, while one replica stops with a request in flight: none fails."""
    global JOURNAL
    JOURNAL = Journal()
    store = EmbeddedStore()
    async with (
        DiscoveryClient(store, close_store=False) as registry,
        DiscoveryClient(store, close_store=False) as watcher,
        container_factory(Web, registrar=DiscoveryRegistrar(registry), http_port=0, grace=5) as a,
        container_factory(Web, registrar=DiscoveryRegistrar(registry), http_port=0, grace=5),
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http_client,
    ):
        await watcher.cache.wait_for(lambda cache: len(cache.candidates("web")) == 2)
        picker = watcher.picker("web", "round_robin")
        a_port = a.http_port
        served: dict[str, int] = {}
        failures: list[str] = []

        async def get(port: int, path: str) -> str:
            async with http_client.get(f"http://127.0.0.1:{port}{path}") as response:
                if response.status != 200:
                    raise AssertionError(f"{path} on :{port}: HTTP {response.status}")
                return str(await response.json())

        both = asyncio.Event()  # set once each replica has answered

        async def traffic(done: asyncio.Event) -> None:
            for _ in range(20_000):  # bounded; ends once the stop is over and a few more went through
                inst = picker.pick()
                try:
                    answer = await get(inst.ports["http"], "/hello")
                except Exception as exc:
                    failures.append(f"{inst.id}: {type(exc).__name__}: {exc}")
                else:
                    served[answer] = served.get(answer, 0) + 1
                    if len(served) == 2:
                        both.set()
                if done.is_set() and sum(served.values()) > 20:
                    return

        done = asyncio.Event()
        client = asyncio.create_task(traffic(done))
        async with asyncio.timeout(10):
            await both.wait()
        slow = asyncio.create_task(get(a_port, "/slow?seconds=0.5"))  # keeps `a` stopping for a while
        await JOURNAL.until(lambda e: ("slow begins",) in e)
        await a.stop()
        done.set()
        async with asyncio.timeout(30):
            await client
        assert await slow == "done"  # in-flight work finished
        assert failures == []
        assert a.instance not in {i.id for i in watcher.cache.candidates("web")}
