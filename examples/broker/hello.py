"""The embedded broker in a few lines: start it, talk to it with nats-py, stop it.

    python examples/broker/hello.py
"""

from __future__ import annotations

import asyncio

import nats

from minga.broker import Broker, BrokerConfig, Delivery


async def main() -> None:
    broker = Broker(BrokerConfig(port=0))  # port 0: any free port
    await broker.start()
    print(f"listening on {broker.url}")

    # the broker itself can subscribe: internal subscribers share routing with clients
    broker.subscribe_internal("audit.>", lambda d: print(f"broker saw {d.subject}: {d.payload!r}"))

    nc = await nats.connect(broker.url)

    async def greet(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b"hello, " + msg.data)

    await nc.subscribe("greet", queue="greeters", cb=greet)
    reply = await nc.request("greet", b"world", timeout=2)
    print(f"reply: {reply.data.decode()}")

    await nc.publish("audit.login", b"alice")

    seen = asyncio.Event()
    deliveries: list[Delivery] = []

    def on_metric(delivery: Delivery) -> None:  # runs on the event loop: must not block
        deliveries.append(delivery)
        seen.set()

    broker.subscribe_internal("metrics.*", on_metric)
    await nc.publish("metrics.cpu", b"0.42", headers={"Host": "web-1"})
    await asyncio.wait_for(seen.wait(), 2)
    print(f"headers seen by the broker: {deliveries[0].headers!r}")

    await nc.close()
    await broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
