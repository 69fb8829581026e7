"""``minga demo``: walk through what the bus does, count words with MapReduce, then run the example shop.

The walk is a list of steps (:data:`STEPS`), each an async function of a :class:`DemoContext`;
:func:`run_demo` runs any list of them, so a larger demo extends the list rather than this module.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import nats
import typer
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from rich.console import Console
from rich.table import Table

from minga.broker import Broker, BrokerConfig
from minga.cli.shopdemo import shop_demo
from minga.compute.console import demo as compute_demo

__all__ = ["STEPS", "DemoContext", "DemoStep", "demo", "run_demo"]


@dataclass
class DemoContext:
    """What every step gets: the running broker, its URL and the console to narrate on."""

    broker: Broker
    console: Console
    connections: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.broker.url

    async def connect(self, name: str) -> Any:
        """A nats-py connection, closed when the demo ends."""
        nc = await nats.connect(self.url, name=name)
        self.connections.append(nc)
        return nc


DemoStep = Callable[[DemoContext], Awaitable[None]]


async def _settle(*connections: Any) -> None:
    # two round trips: nats-py may still hold a SUB in its buffer when its first PING leaves
    for nc in connections:
        await nc.flush()
        await nc.flush()


async def publish_subscribe(ctx: DemoContext) -> None:
    """Every subscriber whose subject pattern matches receives every message."""
    ctx.console.rule("[bold]1. publish / subscribe[/]")
    alice = await ctx.connect("alice")
    bob = await ctx.connect("bob")
    seen: list[tuple[str, str, str]] = []
    all_seen = asyncio.Event()

    def listener(who: str) -> Callable[[Msg], Awaitable[None]]:
        async def on_message(msg: Msg) -> None:
            seen.append((who, msg.subject, msg.data.decode()))
            if len(seen) == 5:
                all_seen.set()

        return on_message

    await alice.subscribe("orders.*.created", cb=listener("alice (orders.*.created)"))
    await bob.subscribe("orders.>", cb=listener("bob (orders.>)"))
    await _settle(alice, bob)
    publisher = await ctx.connect("shop")
    for subject, body in (("orders.eu.created", "order 1"), ("orders.us.created", "order 2"), ("orders.eu.paid", "order 1 paid")):
        ctx.console.print(f"  shop publishes [cyan]{subject}[/]: {body!r}")
        await publisher.publish(subject, body.encode())
    await _settle(publisher)
    async with asyncio.timeout(10):
        await all_seen.wait()
    table = Table("subscriber", "subject", "message")
    for row in sorted(seen):
        table.add_row(*row)
    ctx.console.print(table)


async def queue_group(ctx: DemoContext) -> None:
    """Members of one queue group share the work: each message goes to one of them."""
    ctx.console.rule("[bold]2. a queue group[/]")
    counts: Counter[str] = Counter()
    jobs = 30
    all_done = asyncio.Event()
    workers = []
    for i in range(3):
        name = f"worker-{i + 1}"
        nc = await ctx.connect(name)

        async def on_job(msg: Msg, name: str = name) -> None:
            counts[name] += 1
            if counts.total() == jobs:
                all_done.set()

        await nc.subscribe("jobs.resize", queue="resizers", cb=on_job)
        workers.append(nc)
    await _settle(*workers)
    producer = await ctx.connect("producer")
    for i in range(jobs):
        await producer.publish("jobs.resize", f"image-{i}.png".encode())
    await _settle(producer)
    async with asyncio.timeout(10):
        await all_done.wait()
    ctx.console.print(f"  producer sent {jobs} jobs to [cyan]jobs.resize[/], queue group [cyan]resizers[/] of 3 workers")
    table = Table("worker", "jobs taken")
    for name in sorted(counts):
        table.add_row(name, str(counts[name]))
    ctx.console.print(table)
    ctx.console.print(f"  every job handled exactly once: {sum(counts.values()) == jobs}")


async def request_reply(ctx: DemoContext) -> None:
    """A request goes to one responder and its reply comes back through the requester's inbox."""
    ctx.console.rule("[bold]3. request / reply[/]")
    service = await ctx.connect("clock-service")

    async def on_request(msg: Msg) -> None:
        await msg.respond(time.strftime("%H:%M:%S", time.gmtime()).encode())

    await service.subscribe("svc.clock.now", queue="clock", cb=on_request)
    await _settle(service)
    client = await ctx.connect("client")
    started = time.perf_counter()
    reply = await client.request("svc.clock.now", b"", timeout=5)
    elapsed = (time.perf_counter() - started) * 1000
    ctx.console.print(f"  client asks [cyan]svc.clock.now[/] -> {reply.data.decode()} UTC ({elapsed:.2f} ms round trip)")
    try:
        await client.request("svc.nobody.home", b"", timeout=5)
    except NoRespondersError:
        ctx.console.print("  client asks [cyan]svc.nobody.home[/] -> no responders (status 503, at once)")


async def mapreduce(ctx: DemoContext) -> None:
    """examples/jobs/wordcount.py on a small generated corpus, with the local engine's progress."""
    ctx.console.rule("[bold]4. MapReduce: word count[/]")
    # the job forks worker processes and blocks while it runs: keep it off the event loop
    await asyncio.to_thread(compute_demo, ctx.console, size=8 << 20)


STEPS: list[DemoStep] = [publish_subscribe, queue_group, request_reply, mapreduce]
"""The walk ``minga demo`` takes, in order."""


async def run_demo(
    steps: Sequence[DemoStep] = STEPS,
    *,
    once: bool = False,
    console: Console | None = None,
    config: BrokerConfig | None = None,
) -> None:
    """Start a broker on a free port, run ``steps``, then stay up until SIGINT/SIGTERM unless ``once``."""
    console = console or Console(highlight=False)
    broker = Broker(config or BrokerConfig(port=0))
    await broker.start()
    ctx = DemoContext(broker, console)
    try:
        console.print(f"[bold green]minga broker[/] (embedded) listening on {broker.url}")
        for step in steps:
            await step(ctx)
        for nc in ctx.connections:
            await nc.close()
        ctx.connections.clear()
        if not once:
            console.rule()
            console.print(f"The broker stays up on {broker.url}: point any NATS client at it. Ctrl-C stops it.")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
    finally:
        for nc in ctx.connections:
            await nc.close()
        await broker.stop()
        console.print("broker stopped")


def demo(
    once: Annotated[bool, typer.Option("--once", help="Exit at the end instead of keeping the shop up.")] = False,
) -> None:
    """Walk the bus (pub/sub, a queue group, request/reply), count words with MapReduce, then run the
    example shop under `minga up`: traffic, a killed replica, the status table; Ctrl-C stops it."""
    console = Console(highlight=False)
    asyncio.run(run_demo(once=True, console=console))  # the walk ends with the word count
    console.rule("[bold]5. a system of services[/]")
    shop_demo(once=once)
