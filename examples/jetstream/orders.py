"""A durable work queue and a key-value bucket on the embedded broker, driven by nats-py's JetStream client.

Run it with ``python examples/jetstream/orders.py``: it starts a broker with JetStream on a
free port, keeps its streams in a temporary directory, and prints what happens.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import nats
from nats.js.api import RetentionPolicy

from minga.broker import Broker, BrokerConfig
from minga.broker.jetstream import JetStream, JetStreamConfig


async def main(store: Path) -> None:
    broker = Broker(BrokerConfig(port=0), [JetStream(JetStreamConfig(store_dir=store))])
    await broker.start()
    nc = await nats.connect(broker.url)
    js = nc.jetstream()

    # a work queue: each order is processed once, and removed when acknowledged
    await js.add_stream(name="ORDERS", subjects=["orders.>"], retention=RetentionPolicy.WORK_QUEUE)
    for i in range(3):
        ack = await js.publish("orders.new", f"order {i}".encode(), headers={"Nats-Msg-Id": f"order-{i}"})
        print(f"order {i} stored as sequence {ack.seq}")  # the ack comes once the order is on disk
    again = await js.publish("orders.new", b"order 0", headers={"Nats-Msg-Id": "order-0"})
    print(f"order 0 sent twice: duplicate={again.duplicate}")

    worker = await js.pull_subscribe("orders.>", durable="workers")
    for msg in await worker.fetch(3, timeout=2):
        print(f"processing {msg.data.decode()} (delivery {msg.metadata.num_delivered})")
        await msg.ack_sync()
    print(f"orders left in the queue: {(await js.stream_info('ORDERS')).state.messages}")

    # a key-value bucket with history and compare-and-set
    kv = await js.create_key_value(bucket="settings", history=5)
    revision = await kv.put("color", b"blue")
    await kv.update("color", b"green", last=revision)
    entry = await kv.get("color")
    print(f"color = {entry.value.decode() if entry.value else ''} (revision {entry.revision})")
    print(f"history: {[e.value for e in await kv.history('color')]}")

    await nc.close()
    await broker.stop()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
