"""The pure parts of the bus: JSON envelopes, trace headers, subject names, backoff."""

from __future__ import annotations

import contextvars
import dataclasses
import json

import pytest
from pydantic import BaseModel

from minga.bus import (
    Backoff,
    ErrorAllowList,
    Span,
    SpanRecorder,
    Timeout,
    TraceContext,
    current_trace,
    encode,
    event_subject,
    incoming,
    random_id,
    rpc_subject,
)
from minga.bus._codec import error_reply, parse_reply, result_reply
from minga.bus._trace import outgoing_header
from minga.errors import PayloadError, RemoteError, UsageError


class Stock(BaseModel):
    sku: str
    qty: int


def test_results_and_errors_are_plain_json_envelopes() -> None:
    assert json.loads(result_reply(Stock(sku="a", qty=2))) == {"result": {"sku": "a", "qty": 2}}
    body = json.loads(error_reply(ValueError("bad sku")))
    assert body == {"error": {"type": "ValueError", "module": "builtins", "message": "bad sku"}}
    assert parse_reply(result_reply([1, 2]), ErrorAllowList()) == [1, 2]


def test_only_allow_listed_errors_are_rebuilt() -> None:
    reply = error_reply(ValueError("bad sku"))
    with pytest.raises(RemoteError) as info:
        parse_reply(reply, ErrorAllowList())
    assert (info.value.remote_type, info.value.remote_message) == ("ValueError", "bad sku")
    with pytest.raises(ValueError, match="bad sku"):
        parse_reply(reply, ErrorAllowList([ValueError]))
    rich = PayloadError("qty: not an int", [{"loc": "qty", "msg": "not an int"}])
    with pytest.raises(PayloadError) as perr:
        parse_reply(error_reply(rich), ErrorAllowList())
    assert perr.value.errors == [{"loc": "qty", "msg": "not an int"}]
    with pytest.raises(PayloadError, match="not a minga envelope"):
        parse_reply(b'{"other": 1}', ErrorAllowList())


def test_encode_refuses_what_has_no_json_form() -> None:
    with pytest.raises(PayloadError, match="cannot send object as JSON"):
        encode(object())


def test_traceparent_round_trip_and_invalid_headers() -> None:
    root = TraceContext.new()
    parsed = TraceContext.parse(root.header())
    assert parsed is not None and (parsed.trace_id, parsed.span_id) == (root.trace_id, root.span_id)
    child = root.child()
    assert child.trace_id == root.trace_id and child.parent_id == root.span_id
    for bad in [
        None,
        "",
        "garbage",
        "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",
        "00-" + "0" * 32 + "-" + "b" * 16 + "-01",
    ]:
        assert TraceContext.parse(bad) is None
    assert TraceContext.parse("00-" + "a" * 32 + "-" + "b" * 16 + "-00").sampled is False  # type: ignore[union-attr]
    assert TraceContext.parse(" 00-" + "A" * 32 + "-" + "B" * 16 + "-01 ") == TraceContext("a" * 32, "b" * 16)
    assert TraceContext.parse("00-" + "a" * 32 + "-" + "0" * 16 + "-01") is None


def test_a_received_message_runs_in_a_child_of_its_sender_or_in_a_new_root() -> None:
    sender = TraceContext.new()
    assert len(sender.trace_id) == 32 and len(sender.span_id) == 16 and sender.parent_id is None
    assert int(sender.trace_id, 16) and int(sender.span_id, 16)
    got = incoming(sender.header())
    assert (got.trace_id, got.parent_id, got.sampled) == (sender.trace_id, sender.span_id, True)
    assert len(got.span_id) == 16 and got.span_id != sender.span_id
    unsampled = incoming("00-" + "a" * 32 + "-" + "b" * 16 + "-00")
    assert (unsampled.parent_id, unsampled.sampled) == ("b" * 16, False)
    for bad in [None, "garbage", "00-" + "0" * 32 + "-" + "b" * 16 + "-01"]:
        root = incoming(bad)
        assert root.parent_id is None and len(root.trace_id) == 32 and len(root.span_id) == 16
    ids = {TraceContext.new().trace_id for _ in range(1000)}
    assert len(ids) == 1000

    def outgoing_headers() -> tuple[str, str, str]:
        first, second = outgoing_header(), outgoing_header()  # no current span: a new root each time
        current_trace.set(sender)
        return first, second, outgoing_header()

    first, second, within = contextvars.copy_context().run(outgoing_headers)  # the context set stays there
    assert TraceContext.parse(first) is not None and TraceContext.parse(second) is not None
    assert first != second and within == sender.header()


def test_ids_are_hex_of_their_width_and_never_all_zeros(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([0, 0x2A])

    class Draws:
        def getrandbits(self, bits: int) -> int:
            return next(draws)

    monkeypatch.setattr("minga.bus._trace._random", Draws())
    assert random_id(64) == "000000000000002a"  # the all-zero draw was refused
    monkeypatch.undo()
    assert len(random_id(128)) == 32 and int(random_id(128), 16) > 0


def test_subject_names_are_checked() -> None:
    assert rpc_subject("inventory", "reserve") == "minga.rpc.inventory.reserve"
    assert event_subject("orders.*", wildcards=True) == "minga.evt.orders.*"
    for bad in ["a.b", "a b", "", "*"]:
        with pytest.raises(UsageError):
            rpc_subject(bad, "m")
    with pytest.raises(UsageError):
        event_subject("orders.*")
    with pytest.raises(UsageError):
        event_subject("orders.>.x", wildcards=True)


def test_backoff_and_timeouts() -> None:
    b = Backoff(initial=0.5, factor=2, maximum=3)
    assert [b.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert Timeout.of(2, Timeout()).request == 2.0
    assert Timeout.of(None, Timeout(7)).request == 7
    with pytest.raises(ValueError):
        Timeout(0)


def test_a_span_travels_as_json_field_for_field() -> None:
    span = Span(
        "t" * 32,
        "s" * 16,
        None,
        "inventory",
        "inventory-1",
        "inventory.reserve",
        "rpc",
        1.0,
        1.5,
        "error",
        {"error": "ValueError: no"},
    )
    data = json.loads(json.dumps(span.to_json()))
    assert set(data) == {f.name for f in dataclasses.fields(Span)}
    assert Span.from_json(data) == span
    assert span.to_json()["attributes"] is not span.attributes  # a copy: the span stays as recorded


async def test_a_recorder_publishes_spans_as_a_json_array() -> None:
    batches: list[bytes] = []

    async def publish(data: bytes) -> None:
        batches.append(data)

    recorder = SpanRecorder(publish, batch=2)
    spans = [Span("t" * 32, f"{i:016x}", None, "svc", "svc-1", "svc.m", "rpc", 1.0, 2.0) for i in range(1, 4)]
    for span in spans:
        recorder.record(span)
    await recorder.flush()
    assert [len(json.loads(b)) for b in batches] == [2, 1]
    assert [Span.from_json(d) for b in batches for d in json.loads(b)] == spans


async def test_a_span_recorded_by_its_fields_travels_as_the_span_would() -> None:
    batches: list[bytes] = []

    async def publish(data: bytes) -> None:
        batches.append(data)

    recorder = SpanRecorder(publish, limit=2)
    fields = ("t" * 32, "a" * 16, "p" * 16, "svc", "svc-1", "svc.m", "rpc", 1.0, 2.5)
    recorder.record_fields(*fields)
    recorder.record_fields(*fields, "error", {"error": "ValueError: no"})
    recorder.record_fields(*fields)  # beyond the limit: dropped and counted
    assert recorder.dropped == 1
    await recorder.flush()
    (batch,) = batches
    assert json.loads(batch) == [
        Span(*fields).to_json(),
        Span(*fields, "error", {"error": "ValueError: no"}).to_json(),
    ]
