"""JetStream conformance: the same nats-py assertions against the embedded broker and ``nats-server -js``.

Where the two differ, the embedded broker is wrong.
"""

from __future__ import annotations

import asyncio
import json
import time

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, DiscardPolicy, RetentionPolicy

pytestmark = pytest.mark.engine


async def eventually(check, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Poll an async check until it passes (bounded): used only for time-based server behaviour."""
    deadline = time.monotonic() + within
    while True:
        try:
            await check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


# -- streams -----------------------------------------------------------------------------------


async def test_stream_create_info_update_list_delete(js: JetStreamContext) -> None:
    info = await js.add_stream(name="ORDERS", subjects=["orders.>"])
    assert info.config.name == "ORDERS" and info.state.messages == 0
    again = await js.add_stream(name="ORDERS", subjects=["orders.>"])  # same config: no error
    assert again.config.subjects == ["orders.>"]
    with pytest.raises(nats.js.errors.BadRequestError) as err:
        await js.add_stream(name="ORDERS", subjects=["orders.>", "other"])
    assert (err.value.code, err.value.err_code) == (400, 10058)
    with pytest.raises(nats.js.errors.BadRequestError) as err:
        await js.add_stream(name="CLASH", subjects=["orders.eu"])
    assert err.value.err_code == 10065
    await js.publish("orders.1", b"a")
    updated = await js.update_stream(name="ORDERS", subjects=["orders.>"], max_msgs=10)
    assert updated.config.max_msgs == 10 and updated.state.messages == 1
    await js.add_stream(name="AUDIT", subjects=["audit"])
    names = sorted(s.config.name for s in await js.streams_info())
    assert names == ["AUDIT", "ORDERS"]
    assert await js.find_stream_name_by_subject("orders.x") == "ORDERS"
    assert await js.delete_stream("AUDIT") is True
    with pytest.raises(nats.js.errors.NotFoundError) as nf:
        await js.stream_info("AUDIT")
    assert (nf.value.code, nf.value.err_code, nf.value.description) == (404, 10059, "stream not found")


async def test_limits_discard_old_new_and_per_subject(js: JetStreamContext) -> None:
    await js.add_stream(name="OLD", subjects=["old.>"], max_msgs=3)
    for i in range(5):
        await js.publish(f"old.{i}", b"x")
    state = (await js.stream_info("OLD")).state
    assert (state.messages, state.first_seq, state.last_seq) == (3, 3, 5)

    await js.add_stream(name="NEW", subjects=["new.>"], max_msgs=2, discard=DiscardPolicy.NEW)
    await js.publish("new.a", b"1")
    await js.publish("new.b", b"2")
    with pytest.raises(nats.js.errors.APIError) as err:
        await js.publish("new.c", b"3")
    assert (err.value.err_code, err.value.description) == (10077, "maximum messages exceeded")

    await js.add_stream(name="PER", subjects=["per.>"], max_msgs_per_subject=2)
    for _ in range(4):
        await js.publish("per.k", b"k")
    await js.publish("per.j", b"j")
    assert (await js.stream_info("PER")).state.messages == 3

    await js.add_stream(name="BIG", subjects=["big"], max_msg_size=10)
    with pytest.raises(nats.js.errors.APIError) as err:
        await js.publish("big", b"x" * 11)
    assert err.value.err_code == 10054


async def test_max_age_expires_messages(js: JetStreamContext) -> None:
    await js.add_stream(name="AGED", subjects=["aged"], max_age=1.0)
    await js.publish("aged", b"x")
    assert (await js.stream_info("AGED")).state.messages == 1

    async def gone() -> None:
        assert (await js.stream_info("AGED")).state.messages == 0

    await eventually(gone)


async def test_purge_and_message_get(js: JetStreamContext) -> None:
    await js.add_stream(name="P", subjects=["p.>"])
    for i in range(6):
        await js.publish(f"p.{i % 2}", str(i).encode(), headers={"X-N": str(i)})
    msg = await js.get_msg("P", 2)
    assert (msg.subject, msg.data, msg.seq) == ("p.1", b"1", 2)
    assert msg.headers is not None and msg.headers["X-N"] == "1"
    last = await js.get_last_msg("P", "p.0")
    assert (last.seq, last.data) == (5, b"4")
    with pytest.raises(nats.js.errors.NotFoundError) as err:
        await js.get_msg("P", 99)
    assert err.value.err_code == 10037
    assert await js.purge_stream("P", subject="p.0") is True
    assert (await js.stream_info("P")).state.messages == 3
    assert await js.delete_msg("P", 2) is True
    assert await js.purge_stream("P", keep=1) is True
    state = (await js.stream_info("P")).state
    assert (state.messages, state.last_seq) == (1, 6)
    await js.purge_stream("P")
    state = (await js.stream_info("P")).state
    assert (state.messages, state.first_seq) == (0, 7)


async def test_direct_get(js: JetStreamContext) -> None:
    await js.add_stream(name="DG", subjects=["dg.>"], allow_direct=True)
    await js.publish("dg.a", b"one", headers={"X-K": "1"})
    await js.publish("dg.b", b"two")
    msg = await js.get_msg("DG", 1, direct=True)
    assert (msg.subject, msg.seq, msg.data) == ("dg.a", 1, b"one")
    assert msg.headers is not None and msg.headers["X-K"] == "1"
    last = await js.get_last_msg("DG", "dg.b", direct=True)
    assert (last.seq, last.data) == (2, b"two")
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.get_msg("DG", 9, direct=True)


# -- publish -----------------------------------------------------------------------------------


async def test_publish_ack_dedupe_and_expectations(js: JetStreamContext) -> None:
    await js.add_stream(name="PUB", subjects=["pub.>"], duplicate_window=60)
    first = await js.publish("pub.a", b"1", headers={"Nats-Msg-Id": "m1"})
    assert (first.stream, first.seq, first.duplicate) == ("PUB", 1, None)
    dup = await js.publish("pub.a", b"1", headers={"Nats-Msg-Id": "m1"})
    assert (dup.seq, dup.duplicate) == (1, True)
    assert (await js.publish("pub.b", b"2")).seq == 2
    assert (await js.stream_info("PUB")).state.messages == 2
    with pytest.raises(nats.js.errors.APIError) as err:
        await js.publish("pub.a", b"x", headers={"Nats-Expected-Last-Subject-Sequence": "7"})
    assert (err.value.err_code, err.value.description) == (10071, "wrong last sequence: 1")
    ok = await js.publish("pub.a", b"y", headers={"Nats-Expected-Last-Subject-Sequence": "1"})
    assert ok.seq == 3
    with pytest.raises(nats.js.errors.APIError) as err:
        await js.publish("pub.a", b"z", headers={"Nats-Expected-Last-Sequence": "1"})
    assert err.value.err_code == 10071
    with pytest.raises(nats.js.errors.APIError) as err:
        await js.publish("pub.a", b"z", stream="OTHER")
    assert err.value.err_code == 10060
    with pytest.raises(nats.js.errors.NoStreamResponseError):
        await js.publish("nobody.listens", b"z")


# -- pull consumers ----------------------------------------------------------------------------


async def test_pull_fetch_ack_nak_term_progress(js: JetStreamContext) -> None:
    await js.add_stream(name="W", subjects=["w.>"])
    for i in range(10):
        await js.publish(f"w.{i}", str(i).encode())
    sub = await js.pull_subscribe("w.>", durable="work", config=ConsumerConfig(ack_wait=30))
    msgs = await sub.fetch(5, timeout=2)
    assert [m.data for m in msgs] == [str(i).encode() for i in range(5)]
    meta = msgs[0].metadata
    assert (meta.stream, meta.consumer, meta.sequence.stream, meta.sequence.consumer) == ("W", "work", 1, 1)
    assert meta.num_pending == 9 and meta.num_delivered == 1
    await msgs[0].ack()
    await msgs[1].ack_sync()
    await msgs[2].nak()
    await msgs[3].term()
    await msgs[4].in_progress()

    async def two_pending() -> None:  # the nak'd message and the one in progress (acks are asynchronous)
        assert (await sub.consumer_info()).num_ack_pending == 2

    await eventually(two_pending, within=2)
    again = await sub.fetch(1, timeout=2)
    assert again[0].data == b"2" and again[0].metadata.num_delivered == 2
    await again[0].ack()
    rest = await sub.fetch(10, timeout=1)
    assert [m.data for m in rest] == [str(i).encode() for i in range(5, 10)]
    for m in rest:
        await m.ack()
    await msgs[4].ack()

    async def all_acked() -> None:
        info = await sub.consumer_info()
        assert (info.num_pending, info.num_ack_pending, info.delivered.stream_seq) == (0, 0, 10)

    await eventually(all_acked, within=2)
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=0.5)


async def test_fetch_with_heartbeats(js: JetStreamContext) -> None:
    await js.add_stream(name="HB", subjects=["hb"])
    sub = await js.pull_subscribe("hb", durable="hb")
    with pytest.raises(nats.js.errors.FetchTimeoutError):  # heartbeats came, messages did not
        await sub.fetch(2, timeout=1.5, heartbeat=0.2)
    await js.publish("hb", b"x")
    (msg,) = await sub.fetch(1, timeout=1.5, heartbeat=0.2)
    assert msg.data == b"x"


async def test_nak_with_delay(js: JetStreamContext) -> None:
    await js.add_stream(name="D", subjects=["d"])
    await js.publish("d", b"x")
    sub = await js.pull_subscribe("d", durable="d")
    (msg,) = await sub.fetch(1, timeout=2)
    started = time.monotonic()
    await msg.nak(delay=1.0)
    (again,) = await sub.fetch(1, timeout=4)
    assert again.metadata.num_delivered == 2
    assert time.monotonic() - started >= 0.8


async def test_redelivery_after_ack_wait(js: JetStreamContext) -> None:
    await js.add_stream(name="R", subjects=["r"])
    await js.publish("r", b"x")
    sub = await js.pull_subscribe("r", durable="r", config=ConsumerConfig(ack_wait=1))
    (first,) = await sub.fetch(1, timeout=2)
    assert first.metadata.num_delivered == 1
    (second,) = await sub.fetch(1, timeout=5)
    assert second.data == b"x" and second.metadata.num_delivered == 2
    assert second.metadata.sequence.consumer == 2
    info = await sub.consumer_info()
    assert info.num_redelivered == 1
    await second.ack()


async def test_max_deliver_publishes_the_advisory(nc: Client, js: JetStreamContext) -> None:
    await js.add_stream(name="M", subjects=["m"])
    advisories = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.M.m")
    await nc.flush()
    await js.publish("m", b"poison")
    sub = await js.pull_subscribe("m", durable="m", config=ConsumerConfig(ack_wait=0.5, max_deliver=2))
    await sub.fetch(1, timeout=2)
    (two,) = await sub.fetch(1, timeout=3)
    assert two.metadata.num_delivered == 2
    # no third delivery; a waiting pull request is what makes nats-server notice the limit
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=1.5)
    event = json.loads((await advisories.next_msg(timeout=3)).data)
    assert event["type"] == "io.nats.jetstream.advisory.v1.max_deliver"
    assert (event["stream"], event["consumer"], event["stream_seq"], event["deliveries"]) == ("M", "m", 1, 2)


async def test_workqueue_retention(js: JetStreamContext) -> None:
    await js.add_stream(name="Q", subjects=["q.>"], retention=RetentionPolicy.WORK_QUEUE)
    for i in range(4):
        await js.publish(f"q.{i}", b"job")
    sub = await js.pull_subscribe("q.>", durable="workers")
    msgs = await sub.fetch(4, timeout=2)
    for m in msgs[:3]:
        await m.ack_sync()
    assert (await js.stream_info("Q")).state.messages == 1
    with pytest.raises(nats.js.errors.BadRequestError) as err:
        await js.add_consumer("Q", ConsumerConfig(durable_name="other", ack_policy=AckPolicy.EXPLICIT))
    assert err.value.err_code == 10099


async def test_ack_policies_none_and_all_and_filters(js: JetStreamContext) -> None:
    await js.add_stream(name="AP", subjects=["ap.>"])
    for i in range(4):
        await js.publish(f"ap.{'x' if i % 2 else 'y'}", str(i).encode())
    none = await js.pull_subscribe("ap.>", durable="none", config=ConsumerConfig(ack_policy=AckPolicy.NONE))
    assert len(await none.fetch(4, timeout=1)) == 4
    info = await none.consumer_info()
    assert (info.num_ack_pending, info.ack_floor.stream_seq) == (0, 4)
    every = await js.pull_subscribe("ap.>", durable="all", config=ConsumerConfig(ack_policy=AckPolicy.ALL))
    msgs = await every.fetch(4, timeout=1)
    await msgs[2].ack_sync()  # acknowledges the first three
    info = await every.consumer_info()
    assert (info.num_ack_pending, info.ack_floor.stream_seq) == (1, 3)
    only_x = await js.pull_subscribe("ap.x", durable="x")
    assert [m.data for m in await only_x.fetch(4, timeout=1)] == [b"1", b"3"]


async def test_interest_retention(js: JetStreamContext) -> None:
    await js.add_stream(name="I", subjects=["i"], retention=RetentionPolicy.INTEREST)
    await js.publish("i", b"nobody listens")
    assert (await js.stream_info("I")).state.messages == 0
    sub = await js.pull_subscribe("i", durable="one")
    await js.publish("i", b"kept")
    assert (await js.stream_info("I")).state.messages == 1
    (msg,) = await sub.fetch(1, timeout=2)
    await msg.ack_sync()
    assert (await js.stream_info("I")).state.messages == 0


async def test_max_ack_pending_and_consumer_info(js: JetStreamContext) -> None:
    await js.add_stream(name="MAP", subjects=["map"])
    for _ in range(5):
        await js.publish("map", b"x")
    sub = await js.pull_subscribe("map", durable="c", config=ConsumerConfig(max_ack_pending=2))
    msgs = await sub.fetch(5, timeout=0.5)
    assert len(msgs) == 2
    info = await sub.consumer_info()
    assert (info.num_ack_pending, info.num_pending) == (2, 3)
    await msgs[0].ack()
    more = await sub.fetch(5, timeout=0.5)
    assert len(more) == 1


async def test_deliver_policies(js: JetStreamContext) -> None:
    await js.add_stream(name="DP", subjects=["dp.>"])
    for subject in ("dp.a", "dp.b", "dp.a"):
        await js.publish(subject, subject.encode())
    last = await js.pull_subscribe("dp.>", durable="last", config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST))
    assert [m.metadata.sequence.stream for m in await last.fetch(3, timeout=1)] == [3]
    per = await js.pull_subscribe(
        "dp.>", durable="per", config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
    )
    assert sorted(m.metadata.sequence.stream for m in await per.fetch(3, timeout=1)) == [2, 3]
    new = await js.pull_subscribe("dp.>", durable="new", config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW))
    await js.publish("dp.c", b"c")
    assert [m.data for m in await new.fetch(3, timeout=1)] == [b"c"]
    start = await js.pull_subscribe(
        "dp.>", durable="seq", config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=3)
    )
    assert [m.metadata.sequence.stream for m in await start.fetch(5, timeout=1)] == [3, 4]


# -- push consumers ----------------------------------------------------------------------------


async def test_push_subscribe_and_queue_group(js: JetStreamContext) -> None:
    await js.add_stream(name="EV", subjects=["ev.>"])
    got: list[bytes] = []
    done = asyncio.Event()

    async def handler(msg: nats.aio.msg.Msg) -> None:
        got.append(msg.data)
        if len(got) == 6:
            done.set()

    await js.subscribe("ev.>", cb=handler, durable="push")
    for i in range(3):
        await js.publish(f"ev.{i}", str(i).encode())
    q1 = await js.subscribe("ev.>", queue="group", cb=handler)
    q2 = await js.subscribe("ev.>", queue="group", cb=handler)
    await asyncio.wait_for(done.wait(), 5)
    assert sorted(got) == sorted([b"0", b"1", b"2"] * 2)
    info = await js.consumer_info("EV", "push")
    assert info.num_ack_pending == 0 and info.delivered.stream_seq == 3
    await q1.unsubscribe()
    await q2.unsubscribe()


# -- key-value ---------------------------------------------------------------------------------


async def test_kv_put_get_delete_cas_purge(js: JetStreamContext) -> None:
    kv = await js.create_key_value(bucket="cfg", history=5)
    r1 = await kv.put("color", b"red")
    entry = await kv.get("color")
    assert (entry.key, entry.value, entry.revision) == ("color", b"red", r1)
    r2 = await kv.update("color", b"blue", last=r1)
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.update("color", b"green", last=r1)
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.create("color", b"again")
    assert (await kv.get("color")).value == b"blue"
    assert (await kv.get("color", revision=r1)).value == b"red"
    assert [e.value for e in await kv.history("color")] == [b"red", b"blue"]
    await kv.delete("color")
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await kv.get("color")
    r3 = await kv.create("color", b"reborn")
    assert r3 > r2
    await kv.put("size", b"L")
    assert sorted(await kv.keys()) == ["color", "size"]
    await kv.purge("size")
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await kv.get("size")
    assert [e.operation for e in await kv.history("size")] == ["PURGE"]
    again = await js.key_value("cfg")
    assert (await again.get("color")).value == b"reborn"
    assert (await again.status()).history == 5


async def test_kv_direct_get_and_ttl(js: JetStreamContext) -> None:
    kv = await js.create_key_value(bucket="ttl", ttl=1.0, direct=True)
    await kv.put("k", b"v")
    assert (await kv.get("k")).value == b"v"

    async def expired() -> None:
        try:
            await kv.get("k")
        except nats.js.errors.KeyNotFoundError:
            return
        raise AssertionError("the key outlived its TTL")

    await eventually(expired)


async def test_kv_watch(js: JetStreamContext) -> None:
    kv = await js.create_key_value(bucket="w", history=3)
    await kv.put("a", b"1")
    await kv.put("a", b"2")
    await kv.put("b", b"3")
    watcher = await kv.watchall()
    initial = []
    while (entry := await watcher.updates(timeout=3)) is not None:
        initial.append((entry.key, entry.value))
    assert sorted(initial) == [("a", b"2"), ("b", b"3")]
    await kv.put("c", b"4")
    await kv.delete("a")
    update = await watcher.updates(timeout=3)
    assert (update.key, update.value, update.operation) == ("c", b"4", None)
    deleted = await watcher.updates(timeout=3)
    assert (deleted.key, deleted.operation) == ("a", "DEL")
    await watcher.stop()

    history = await kv.watch("a", include_history=True)
    seen = []
    while (entry := await history.updates(timeout=3)) is not None:
        seen.append(entry.operation or entry.value)
    assert seen == [b"1", b"2", "DEL"]
    await history.stop()

    empty = await (await js.create_key_value(bucket="empty")).watchall()
    assert await empty.updates(timeout=3) is None
    await empty.stop()
