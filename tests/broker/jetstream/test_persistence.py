"""What survives a restart of the embedded broker on the same store, and the command-line switches."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest
from nats.js.api import ConsumerConfig

from minga.broker import Broker, BrokerConfig
from minga.broker.jetstream import JetStream, JetStreamConfig
from minga.broker.storage import FsyncPolicy
from minga.cli.broker import jetstream_extension
from minga.errors import UsageError


async def start(store: Path | None) -> Broker:
    broker = Broker(BrokerConfig(port=0), [JetStream(JetStreamConfig(store_dir=store))])
    await broker.start()
    return broker


async def test_streams_consumers_and_kv_survive_a_restart(tmp_path: Path) -> None:
    broker = await start(tmp_path)
    nc = await nats.connect(broker.url)
    js = nc.jetstream()
    await js.add_stream(name="S", subjects=["s.>"], max_msgs_per_subject=3)
    for i in range(5):
        await js.publish("s.a", str(i).encode(), headers={"Nats-Msg-Id": f"id-{i}"})
    sub = await js.pull_subscribe("s.>", durable="d", config=ConsumerConfig(ack_wait=30))
    first = await sub.fetch(2, timeout=2)
    await first[0].ack_sync()  # 3 acked, 4 left pending
    kv = await js.create_key_value(bucket="cfg")
    await kv.put("k", b"v1")
    await nc.close()
    await broker.stop()

    broker = await start(tmp_path)
    nc = await nats.connect(broker.url)
    js = nc.jetstream()
    info = await js.stream_info("S")
    assert (info.config.max_msgs_per_subject, info.state.messages, info.state.first_seq) == (3, 3, 3)
    dup = await js.publish("s.a", b"4", headers={"Nats-Msg-Id": "id-4"})
    assert (dup.seq, dup.duplicate) == (5, True)  # the dedupe window came back with the stream
    sub = await js.pull_subscribe("s.>", durable="d")
    again = await sub.fetch(3, timeout=2)
    # the unacked delivery comes first, as a redelivery; then what was never delivered
    assert [(m.metadata.sequence.stream, m.metadata.num_delivered) for m in again] == [(4, 2), (5, 1)]
    assert (await (await js.key_value("cfg")).get("k")).value == b"v1"
    await nc.close()
    await broker.stop()


async def test_memory_only_jetstream_forgets_on_restart() -> None:
    broker = await start(None)
    nc = await nats.connect(broker.url)
    js = nc.jetstream()
    await js.add_stream(name="M", subjects=["m"])
    assert (await js.publish("m", b"x")).seq == 1
    await nc.close()
    await broker.stop()
    broker = await start(None)
    nc = await nats.connect(broker.url)
    assert [s.config.name for s in await nc.jetstream().streams_info()] == []
    await nc.close()
    await broker.stop()


def test_command_line_switches(tmp_path: Path) -> None:
    assert jetstream_extension(None, False, FsyncPolicy.ALWAYS, 120) is None
    js = jetstream_extension(tmp_path, False, FsyncPolicy.INTERVAL, 5)
    assert js is not None and js.config.store_dir == tmp_path and js.config.fsync is FsyncPolicy.INTERVAL
    memory = jetstream_extension(None, True, FsyncPolicy.ALWAYS, 120)
    assert memory is not None and memory.config.store_dir is None
    with pytest.raises(UsageError):
        jetstream_extension(tmp_path, True, FsyncPolicy.ALWAYS, 120)
    with pytest.raises(UsageError):
        jetstream_extension(tmp_path, False, FsyncPolicy.INTERVAL, 0)
