from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import support
from minga.bus import Bus, Delivery, Timeout, TraceContext, current_trace
from minga.errors import PayloadError, RemoteError, RequestTimeout, ServiceUnavailable


async def test_rpc_round_trip_carries_json_and_the_trace(broker_url: str) -> None:
    seen: list[Delivery] = []

    async def reserve(d: Delivery) -> dict[str, Any]:
        seen.append(d)
        return {"sku": d.payload["sku"], "left": 10 - d.payload["qty"]}

    async with Bus(broker_url) as server, Bus(broker_url) as client:
        await server.serve("inventory", "reserve", reserve)
        root = TraceContext.new()
        current_trace.set(root)
        assert await client.request("inventory", "reserve", {"sku": "a", "qty": 3}) == {"sku": "a", "left": 7}
    (d,) = seen
    assert d.subject == "minga.rpc.inventory.reserve"
    assert d.trace.trace_id == root.trace_id and d.trace.parent_id == root.span_id
    assert d.trace.span_id != root.span_id
    assert d.headers["traceparent"] == root.header()


async def test_one_queue_group_per_service_answers_each_request_once(broker_url: str) -> None:
    answered: dict[str, int] = {"a": 0, "b": 0}

    def replica(name: str) -> Any:
        async def ping(d: Delivery) -> str:
            answered[name] += 1
            return name

        return ping

    async with Bus(broker_url) as a, Bus(broker_url) as b, Bus(broker_url) as client:
        await a.serve("svc", "ping", replica("a"))
        await b.serve("svc", "ping", replica("b"))
        replies = await asyncio.gather(*(client.request("svc", "ping") for _ in range(40)))
    assert sorted(replies) == sorted(["a"] * answered["a"] + ["b"] * answered["b"])
    assert answered["a"] + answered["b"] == 40
    assert answered["a"] > 0 and answered["b"] > 0  # random split: both empty-handed has p = 2**-39


class OutOfStock(Exception):
    pass


async def test_remote_errors_cross_the_wire_as_remote_error_or_rebuilt(broker_url: str) -> None:
    async def fail(d: Delivery) -> None:
        raise (OutOfStock if d.payload["allowed"] else KeyError)("sku a")

    async with (
        Bus(broker_url) as server,
        Bus(broker_url) as plain,
        Bus(broker_url, allowed_errors=[OutOfStock]) as trusting,
    ):
        await server.serve("inventory", "reserve", fail)
        with pytest.raises(RemoteError) as info:
            await plain.request("inventory", "reserve", {"allowed": False})
        assert info.value.remote_type == "KeyError" and info.value.remote_message == "'sku a'"
        with pytest.raises(RemoteError) as info:
            await plain.request("inventory", "reserve", {"allowed": True})
        assert info.value.remote_type == "OutOfStock"
        with pytest.raises(OutOfStock, match="sku a"):
            await trusting.request("inventory", "reserve", {"allowed": True})


async def test_a_bad_payload_gets_a_clear_error_reply(broker_url: str) -> None:
    async def echo(d: Delivery) -> Any:
        return d.payload

    async with Bus(broker_url) as server, Bus(broker_url) as client:
        await server.serve("svc", "echo", echo)
        reply = await client.nats.request("minga.rpc.svc.echo", b"{not json", timeout=5)
        assert b'"type":"PayloadError"' in reply.data.replace(b" ", b"")
        with pytest.raises(PayloadError, match="cannot send _Raw as JSON"):
            await client.request_subject("minga.rpc.svc.echo", _Raw())
        # the service still answers afterwards
        assert await client.request("svc", "echo", {"x": 1}) == {"x": 1}


class _Raw:
    """Not JSON-serializable: the client refuses to send it."""


async def test_typed_timeouts_and_no_responders(broker_url: str) -> None:
    release = asyncio.Event()

    async def slow(d: Delivery) -> None:
        await release.wait()

    async with Bus(broker_url) as server, Bus(broker_url, timeout=Timeout(request=0.3)) as client:
        await server.serve("svc", "slow", slow)
        with pytest.raises(RequestTimeout) as info:
            await client.request("svc", "slow")
        assert info.value.timeout == 0.3 and info.value.subject == "minga.rpc.svc.slow"
        with pytest.raises(RequestTimeout):
            await client.request("svc", "slow", timeout=Timeout(0.2))
        with pytest.raises(ServiceUnavailable, match=r"minga\.rpc\.svc\.nothing"):
            await client.request("svc", "nothing")
        release.set()


async def test_each_subscribing_service_gets_each_event_once_broadcast_reaches_every_replica(
    broker_url: str,
) -> None:
    got: dict[str, list[Any]] = {}
    done = asyncio.Event()
    expected = 5 * (1 + 1 + 2)  # billing once, shipping once, every cache replica

    def handler(who: str) -> Any:
        async def on(d: Delivery) -> None:
            got.setdefault(who, []).append(d.payload["n"])
            if sum(map(len, got.values())) == expected:
                done.set()

        return on

    buses = [Bus(broker_url) for _ in range(6)]
    for bus in buses:
        await bus.__aenter__()
    try:
        b1, b2, s1, s2, c1, c2 = buses
        for bus, who, group in [
            (b1, "billing-1", "billing"),
            (b2, "billing-2", "billing"),
            (s1, "shipping-1", "shipping"),
            (s2, "shipping-2", "shipping"),
            (c1, "cache-1", None),
            (c2, "cache-2", None),
        ]:
            await bus.subscribe("orders.created", handler(who), group=group)
            await bus.nats.flush()
        for n in range(5):
            await b1.publish("orders.created", {"n": n})
        async with asyncio.timeout(10):
            await done.wait()
        await asyncio.sleep(0.2)  # a duplicate, were there one, would arrive within this
    finally:
        for bus in buses:
            await bus.__aexit__(None, None, None)
    assert sorted(got.get("billing-1", []) + got.get("billing-2", [])) == list(range(5))
    assert sorted(got.get("shipping-1", []) + got.get("shipping-2", [])) == list(range(5))
    assert sorted(got["cache-1"]) == sorted(got["cache-2"]) == list(range(5))


async def test_events_carry_the_trace_and_wildcards_match(broker_url: str) -> None:
    seen: asyncio.Queue[Delivery] = asyncio.Queue()

    async def on(d: Delivery) -> None:
        await seen.put(d)

    async with Bus(broker_url) as bus:
        await bus.subscribe("orders.*", on, group="audit")
        root = TraceContext.new()
        current_trace.set(root)
        await bus.publish("orders.paid", {"id": 7})
        d = await asyncio.wait_for(seen.get(), 5)
    assert d.subject == "minga.evt.orders.paid" and d.payload == {"id": 7}
    assert d.trace.trace_id == root.trace_id


async def test_stop_lets_in_flight_requests_finish(broker_url: str) -> None:
    started = asyncio.Event()

    async def slow(d: Delivery) -> str:
        started.set()
        await asyncio.sleep(0.3)
        return "done"

    async with Bus(broker_url) as client:
        server = Bus(broker_url, grace=5)
        await server.__aenter__()
        await server.serve("svc", "slow", slow)
        call = asyncio.create_task(client.request("svc", "slow"))
        await started.wait()
        await server.__aexit__(None, None, None)  # stop: entrypoints, in-flight, acks, close
        assert await call == "done"
        with pytest.raises(ServiceUnavailable):
            await client.request("svc", "slow")


async def test_a_method_answers_as_soon_as_serve_returns(broker_url: str) -> None:
    # serve() must not return before the broker has the subscription: with a single flush,
    # nats-py's PING can overtake the buffered SUB and a caller sees "no responders"
    async def echo(d: Delivery) -> int:
        return 1

    async with Bus(broker_url) as client:
        for n in range(40):
            async with Bus(broker_url) as server:
                await server.serve(f"svc{n}", "echo", echo)
                assert await client.request(f"svc{n}", "echo") == 1


async def test_a_waiting_handler_does_not_hold_up_its_subscription(broker_url: str) -> None:
    """Calls run at once and go on in a task only when they wait: the next request is answered
    meanwhile, and a handler that cancels itself ends its own call, not the subscription."""
    release = asyncio.Event()

    async def handler(d: Delivery) -> Any:
        if d.payload.get("wait"):
            await release.wait()
        if d.payload.get("cancel"):
            raise asyncio.CancelledError
        return d.payload["n"]

    async with Bus(broker_url) as server, Bus(broker_url) as client:
        await server.serve("svc", "m", handler)
        waiting = asyncio.create_task(client.request("svc", "m", {"wait": True, "n": 1}))
        assert await client.request("svc", "m", {"n": 2}) == 2
        assert server.inflight == 1  # only the waiting call holds a task
        with pytest.raises(RemoteError, match="stopped before answering"):
            await client.request("svc", "m", {"cancel": True, "n": 3})
        assert await client.request("svc", "m", {"n": 4}) == 4
        release.set()
        assert await waiting == 1


async def test_concurrent_requests_get_their_own_replies_and_a_late_reply_is_dropped(broker_url: str) -> None:
    release = asyncio.Event()

    async def handler(d: Delivery) -> Any:
        if d.payload.get("late"):
            await release.wait()
            return "late"
        await asyncio.sleep((20 - d.payload["n"]) / 1000)  # later requests are answered first
        return d.payload["n"]

    async with Bus(broker_url) as server, Bus(broker_url) as client:
        await server.serve("svc", "m", handler)
        with pytest.raises(RequestTimeout):
            await client.request("svc", "m", {"late": True}, timeout=0.2)
        release.set()  # its reply now arrives for a request that is gone
        got = await asyncio.gather(*(client.request("svc", "m", {"n": n}) for n in range(20)))
        assert got == list(range(20))
        assert await client.request("svc", "m", {"n": 20}) == 20


async def test_requests_are_answered_again_after_a_broker_restart(tmp_path: Path) -> None:
    # nats-server only: kill it and start it again on the same port; both buses reconnect and
    # subscribe again, the requester's reply subscription included
    server = support.nats_server(tmp_path)

    async def echo(d: Delivery) -> Any:
        return d.payload

    with support.running(server):
        url = f"nats://127.0.0.1:{server.port}"
        async with Bus(url) as responder, Bus(url) as client:
            await responder.serve("svc", "echo", echo)
            assert await client.request("svc", "echo", {"n": 1}) == {"n": 1}
            await asyncio.to_thread(server.kill)
            await asyncio.to_thread(server.start)
            deadline = asyncio.get_running_loop().time() + 30
            while True:  # bounded: until both have reconnected (nats-py waits 2 s between tries)
                try:
                    assert await client.request("svc", "echo", {"n": 2}, timeout=1) == {"n": 2}
                    break
                except (RequestTimeout, ServiceUnavailable):
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.2)
