"""JetStream details a client notices: pull request endings, API error codes, republish, byte counts.

Each assertion is nats-server 2.9's answer, checked against both servers. Where the embedded
broker deliberately refuses what nats-server offers (sources, mirrors), or what only
nats-server 2.10 offers, the test says so and checks that the refusal is clear.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, RePublish, StorageType

pytestmark = pytest.mark.engine


async def api(nc: Client, subject: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await nc.request(f"$JS.API.{subject}", json.dumps(body).encode(), timeout=3)
    answer: dict[str, Any] = json.loads(reply.data)
    return answer


async def pull(nc: Client, stream: str, consumer: str, request: dict[str, Any]) -> Any:
    """Send a raw pull request; return the subscription its answers arrive on."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", json.dumps(request).encode(), reply=inbox)
    return sub


def status(msg: Any) -> tuple[str, str] | None:
    """A status message's (code, description), or None for a message."""
    if not msg.headers or "Status" not in msg.headers:
        return None
    return msg.headers["Status"], msg.headers.get("Description", "")


# -- pull requests -----------------------------------------------------------------------------


async def settle(nc: Client) -> None:
    """Let the 408 that ends the last fetch's lingering request arrive before the next fetch.

    nats-py gives up on a fetch at its own timeout and the server expires the request at about
    the same moment; when the 408 lands after the next fetch has begun, nats-py takes it for
    that fetch's answer and returns an empty list instead of raising. Both servers send that
    408; only its arrival time races, so the test waits for it (a round trip after a pause).
    """
    await asyncio.sleep(0.3)
    await nc.flush()


async def test_fetch_on_a_drained_consumer_raises_timeout(nc: Client, js: JetStreamContext) -> None:
    await js.add_stream(name="DRAIN", subjects=["drain"])
    for i in range(3):
        await js.publish("drain", str(i).encode())
    sub = await js.pull_subscribe("drain", durable="reader")
    got: list[bytes] = []
    rounds = 0
    # the read loop users write: it must end because fetch raises once nothing is left
    while rounds < 5:
        rounds += 1
        try:
            msgs = await sub.fetch(500, timeout=1)
        except TimeoutError:  # nats-py raises its subclass, or this one when late
            break
        for m in msgs:
            got.append(m.data)
            await m.ack()
    assert got == [b"0", b"1", b"2"]
    assert rounds == 2
    for _ in range(2):  # every time, not only the first
        await settle(nc)
        with pytest.raises(TimeoutError):
            await sub.fetch(500, timeout=1)


async def test_no_wait_with_expires_waits_for_a_message_then_ends_with_408(nc: Client, js: JetStreamContext) -> None:
    await js.add_stream(name="NW", subjects=["nw"])
    await js.add_consumer("NW", ConsumerConfig(durable_name="c"))
    sub = await pull(nc, "NW", "c", {"batch": 2, "expires": 2_000_000_000, "no_wait": True})
    started = time.monotonic()
    await asyncio.sleep(0.3)
    with pytest.raises(nats.errors.TimeoutError):  # held, not answered 404 at once
        await sub.next_msg(timeout=0.1)
    await js.publish("nw", b"late")
    first = await sub.next_msg(timeout=2)
    assert (status(first), first.data) == (None, b"late")
    end = await sub.next_msg(timeout=2)
    # what was owed is reported at once, well before the request's expiry
    assert status(end) == ("408", "Request Timeout")
    assert end.headers["Nats-Pending-Messages"] == "1"
    assert time.monotonic() - started < 1.5


async def test_no_wait_with_expires_on_an_empty_stream_ends_at_expiry(nc: Client, js: JetStreamContext) -> None:
    await js.add_stream(name="NE", subjects=["ne"])
    await js.add_consumer("NE", ConsumerConfig(durable_name="c"))
    started = time.monotonic()
    sub = await pull(nc, "NE", "c", {"batch": 1, "expires": 500_000_000, "no_wait": True})
    end = await sub.next_msg(timeout=3)
    assert status(end) == ("408", "Request Timeout")
    assert time.monotonic() - started >= 0.4


async def test_no_wait_answers(nc: Client, js: JetStreamContext) -> None:
    await js.add_stream(name="NO", subjects=["no"])
    await js.add_consumer("NO", ConsumerConfig(durable_name="c"))
    empty = await pull(nc, "NO", "c", {"batch": 3, "no_wait": True})
    assert status(await empty.next_msg(timeout=2)) == ("404", "No Messages")
    await js.publish("no", b"one")
    partial = await pull(nc, "NO", "c", {"batch": 3, "no_wait": True})
    assert (await partial.next_msg(timeout=2)).data == b"one"
    end = await partial.next_msg(timeout=2)
    assert status(end) == ("408", "Request Timeout") and end.headers["Nats-Pending-Messages"] == "2"


async def test_fetch_returns_a_message_published_while_it_waits(js: JetStreamContext) -> None:
    await js.add_stream(name="WAIT", subjects=["wait"])
    sub = await js.pull_subscribe("wait", durable="w")

    async def publish_later() -> None:
        await asyncio.sleep(0.3)
        await js.publish("wait", b"x")

    task = asyncio.create_task(publish_later())
    started = time.monotonic()
    msgs = await sub.fetch(5, timeout=3)
    await task
    assert [m.data for m in msgs] == [b"x"]
    assert time.monotonic() - started < 1.5  # not the whole timeout


async def test_pull_heartbeat_larger_than_half_the_expiry_is_refused(nc: Client, js: JetStreamContext) -> None:
    await js.add_stream(name="HBX", subjects=["hbx"])
    await js.add_consumer("HBX", ConsumerConfig(durable_name="c"))
    for request in (
        {"batch": 1, "expires": 1_000_000_000, "idle_heartbeat": 600_000_000},
        {"batch": 1, "idle_heartbeat": 100_000_000},  # no expiry: any heartbeat is too large
    ):
        sub = await pull(nc, "HBX", "c", request)
        assert status(await sub.next_msg(timeout=2)) == ("400", "Bad Request - heartbeat value too large")
    half = await pull(nc, "HBX", "c", {"batch": 1, "expires": 1_000_000_000, "idle_heartbeat": 500_000_000})
    assert status(await half.next_msg(timeout=2)) == ("100", "Idle Heartbeat")


# -- API error codes ---------------------------------------------------------------------------


async def test_consumer_name_rules_per_endpoint(nc: Client, js: JetStreamContext) -> None:
    await js.add_stream(name="N", subjects=["n"])
    explicit = {"ack_policy": "explicit"}
    cases = [
        ("CONSUMER.CREATE.N.x", {"name": "x", "durable_name": "y"}, 10017),
        ("CONSUMER.DURABLE.CREATE.N.q", {"durable_name": "y"}, 10017),
        ("CONSUMER.DURABLE.CREATE.N.q", {"name": "q"}, 10018),
        ("CONSUMER.CREATE.N", {"durable_name": "y"}, 10020),
    ]
    for subject, config, code in cases:
        answer = await api(nc, subject, {"stream_name": "N", "config": {**explicit, **config}})
        assert answer["error"]["code"] == 400, (subject, config, answer)
        assert answer["error"]["err_code"] == code, (subject, config, answer)
    with pytest.raises(nats.js.errors.BadRequestError) as err:  # through the client, as users meet it
        await js.add_consumer("N", ConsumerConfig(name="x", durable_name="y"))
    assert err.value.err_code == 10017
    named = await api(nc, "CONSUMER.CREATE.N.x", {"stream_name": "N", "config": {**explicit, "durable_name": "x"}})
    assert (named["name"], named["config"]["durable_name"]) == ("x", "x")


async def test_flow_control_needs_a_heartbeat(js: JetStreamContext) -> None:
    await js.add_stream(name="FC", subjects=["fc"])
    with pytest.raises(nats.js.errors.BadRequestError) as err:
        await js.add_consumer("FC", ConsumerConfig(deliver_subject="fc.deliver", flow_control=True))
    assert (err.value.err_code, err.value.description) == (10108, "consumer with flow control also needs heartbeats")
    ok = await js.add_consumer(
        "FC", ConsumerConfig(durable_name="ok", deliver_subject="fc.deliver", flow_control=True, idle_heartbeat=1.0)
    )
    assert ok.config.flow_control is True


async def test_mirror_direct_without_a_mirror_is_refused(nc: Client) -> None:
    answer = await api(nc, "STREAM.CREATE.MD", {"name": "MD", "subjects": ["md"], "mirror_direct": True})
    assert answer["error"] == {"code": 500, "err_code": 10052, "description": "stream has no mirror but does have mirror direct"}


# -- stream configuration ----------------------------------------------------------------------


async def test_republish(nc: Client, js: JetStreamContext) -> None:
    out = await nc.subscribe("out.>")
    info = await js.add_stream(name="RP", subjects=["rp.>"], republish=RePublish(src="rp.*.*", dest="out.$2.{{wildcard(1)}}"))
    assert info.config.republish is not None and info.config.republish.dest == "out.$2.{{wildcard(1)}}"
    await js.publish("rp.a.b", b"one", headers={"X-K": "1"})
    await js.publish("rp.a.b", b"two")
    await js.publish("rp.c", b"not selected")
    first = await out.next_msg(timeout=2)
    assert (first.subject, first.data) == ("out.b.a", b"one")
    assert first.headers == {
        "X-K": "1",
        "Nats-Stream": "RP",
        "Nats-Subject": "rp.a.b",
        "Nats-Sequence": "1",
        "Nats-Last-Sequence": "0",
    }
    second = await out.next_msg(timeout=2)
    assert (second.data, second.headers["Nats-Sequence"], second.headers["Nats-Last-Sequence"]) == (b"two", "2", "1")
    with pytest.raises(nats.errors.TimeoutError):
        await out.next_msg(timeout=0.3)

    await js.add_stream(name="RH", subjects=["rh.>"], republish=RePublish(dest="out.h.>", headers_only=True))
    await js.publish("rh.k", b"hello")
    only = await out.next_msg(timeout=2)
    assert (only.subject, only.data, only.headers["Nats-Msg-Size"]) == ("out.h.rh.k", b"", "5")


async def test_republish_configurations_refused(nc: Client) -> None:
    cases = [
        ({"src": "rp.>", "dest": "rp.>"}, "stream configuration for republish destination forms a cycle"),
        ({"src": "nope.>", "dest": "out.>"}, "stream configuration for republish source is not valid subset of subjects"),
        ({"src": "rp.*", "dest": "out.>"}, "stream configuration for republish not valid"),
        ({"src": "rp.*", "dest": "out.fixed"}, "stream configuration for republish not valid"),
        ({"src": "rp.*", "dest": "out.*"}, "stream configuration for republish not valid"),
    ]
    for republish, description in cases:
        answer = await api(nc, "STREAM.CREATE.RP", {"name": "RP", "subjects": ["rp.>"], "republish": republish})
        assert answer["error"] == {"code": 500, "err_code": 10052, "description": description}, republish


async def test_sources_and_mirrors_are_never_dropped_silently(server_kind: str, nc: Client, js: JetStreamContext) -> None:
    await js.add_stream(name="ORIGIN", subjects=["origin"])
    await js.publish("origin", b"x")
    for field, value in (("sources", [{"name": "ORIGIN"}]), ("mirror", {"name": "ORIGIN"})):
        body: dict[str, Any] = {"name": "COPY", field: value}
        if field == "sources":
            body["subjects"] = ["copy"]
        answer = await api(nc, "STREAM.CREATE.COPY", body)
        if server_kind == "nats-server":
            # nats-server copies the origin's messages into the new stream
            assert answer["config"][field] == value

            async def copied() -> bool:
                return (await js.stream_info("COPY")).state.messages == 1

            assert await _within(copied, 5)
            await js.delete_stream("COPY")
        else:
            # the embedded broker does not copy between streams: it says so instead of dropping the field
            error = answer["error"]
            assert (error["code"], error["err_code"]) == (500, 10052)
            assert f"stream {field}" in error["description"] and "not supported" in error["description"]
            with pytest.raises(nats.js.errors.NotFoundError):
                await js.stream_info("COPY")


async def test_newer_stream_options_are_not_granted(server_kind: str, nc: Client, js: JetStreamContext) -> None:
    """compression, first_seq, subject_transform and consumer_limits came with nats-server 2.10.

    nats-server 2.9 takes the stream and ignores them; the embedded broker refuses them with one
    clear line. Either way no client is left believing it got one of them.
    """
    options: list[tuple[str, Any]] = [
        ("compression", "s2"),
        ("first_seq", 100),
        ("subject_transform", {"src": "nt.>", "dest": "moved.>"}),
        ("consumer_limits", {"max_ack_pending": 5}),
    ]
    for i, (key, value) in enumerate(options):
        name = f"NT{i}"
        answer = await api(nc, f"STREAM.CREATE.{name}", {"name": name, "subjects": [f"nt{i}.>"], key: value})
        if server_kind == "nats-server":
            assert key not in answer["config"]
            ack = await js.publish(f"nt{i}.a", b"x")
            assert ack.seq == 1  # first_seq not applied, subject not transformed
        else:
            error = answer["error"]
            assert (error["code"], error["err_code"]) == (500, 10052)
            assert key in error["description"] and "2.10" in error["description"]
    plain = await api(nc, "STREAM.CREATE.PLAIN", {"name": "PLAIN", "subjects": ["plain"], "compression": "none", "first_seq": 1})
    assert "error" not in plain and "compression" not in plain["config"]


async def test_byte_accounting_matches(js: JetStreamContext) -> None:
    await js.add_stream(name="FILE", subjects=["bytes"])
    await js.publish("bytes", b"x" * 12)  # 5-byte subject, 12-byte payload
    assert (await js.stream_info("FILE")).state.bytes == 47
    await js.publish("bytes", b"x" * 12, headers={"K": "v"})
    assert (await js.stream_info("FILE")).state.bytes == 47 + 69
    await js.add_stream(name="MEM", subjects=["mem"], storage=StorageType.MEMORY)
    await js.publish("mem", b"x" * 12)
    await js.publish("mem", b"x" * 12, headers={"K": "v"})
    assert (await js.stream_info("MEM")).state.bytes == 31 + 49
    # max_bytes counts the same way: two 47-byte messages fit in 94 bytes, a third pushes the first out
    await js.add_stream(name="CAP", subjects=["cap.*"], max_bytes=94)
    for i in range(3):
        await js.publish(f"cap.{i}", b"x" * 12)
    state = (await js.stream_info("CAP")).state
    assert (state.messages, state.first_seq, state.bytes) == (2, 2, 94)


async def test_stream_info_subjects_filter_matching_nothing_leaves_the_field_out(nc: Client, js: JetStreamContext) -> None:
    await js.add_stream(name="SF", subjects=["sf.>"])
    await js.publish("sf.a", b"x")
    await js.publish("sf.a", b"y")
    nothing = await api(nc, "STREAM.INFO.SF", {"subjects_filter": "other"})
    assert "subjects" not in nothing["state"]
    some = await api(nc, "STREAM.INFO.SF", {"subjects_filter": ">"})
    assert some["state"]["subjects"] == {"sf.a": 2}
    info = await js.stream_info("SF", subjects_filter="nope.>")
    assert info.state.subjects is None


async def test_kv_purge_with_a_wildcard_purges_every_matching_key(js: JetStreamContext) -> None:
    kv = await js.create_key_value(bucket="wild")
    await kv.put("hello.a", b"1")
    await kv.put("hello.b", b"2")
    await kv.put("other", b"3")
    await kv.purge("hello.*")
    for key in ("hello.a", "hello.b"):
        with pytest.raises(nats.js.errors.KeyNotFoundError):
            await kv.get(key)
    assert (await kv.get("other")).value == b"3"
    assert await kv.keys() == ["other"]
    assert (await js.stream_info("KV_wild")).state.messages == 2  # "other" and the purge marker


async def test_direct_get_without_a_direct_responder_goes_unanswered(js: JetStreamContext) -> None:
    await js.add_stream(name="ND", subjects=["nd"])  # allow_direct is off
    await js.publish("nd", b"x")
    for stream in ("MISSING", "ND"):
        with pytest.raises(nats.errors.TimeoutError):
            await js.get_msg(stream, 1, direct=True)
    await js.add_stream(name="YD", subjects=["yd"], allow_direct=True)
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.get_msg("YD", 1, direct=True)


async def _within(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False
