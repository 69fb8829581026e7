"""Streams and consumers as pure state machines: no server, time passed in."""

from __future__ import annotations

import pytest

from minga.broker.jetstream._consumer import Consumer
from minga.broker.jetstream._errors import ApiError
from minga.broker.jetstream._headers import header_block, parse_headers, status_block
from minga.broker.jetstream._models import ConsumerConfig, StreamConfig, rfc3339, rfc3339_to_ns
from minga.broker.jetstream._stream import Stream
from minga.broker.jetstream._subjects import overlaps, subset_of
from minga.broker.storage import MemoryStore

S = 1_000_000_000


def make_stream(**cfg: object) -> Stream:
    req = {"name": "ORDERS", "subjects": ["orders.>"], **cfg}
    return Stream(StreamConfig.from_request(req), MemoryStore(), 0)


def pub(stream: Stream, subject: str, data: bytes = b"x", now: int = 0, **headers: str) -> dict[str, object]:
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    raw = header_block(hdrs) if hdrs else None
    _, ack, _ = stream.ingest(subject, raw, hdrs, data, now)
    return ack


def test_subject_overlap_and_subset() -> None:
    assert overlaps("orders.>", "orders.eu.new") and overlaps("a.*", "*.b") and not overlaps("a.b", "a.c")
    assert not overlaps("a.>", "a") and overlaps(">", "x")
    assert subset_of("orders.eu", "orders.*") and not subset_of("orders.>", "orders.*")


def test_stream_config_validation() -> None:
    with pytest.raises(ApiError) as err:
        StreamConfig.from_request({"name": "ALL", "subjects": [">"]})
    assert err.value.err_code == 10052
    with pytest.raises(ApiError):
        StreamConfig.from_request({"name": "a.b"})
    cfg = StreamConfig.from_request({"name": "T", "max_age": 30 * S})
    assert (cfg.subjects, cfg.duplicate_window) == (["T"], 30 * S)


def test_headers_and_timestamps_round_trip() -> None:
    raw = header_block({"Nats-Msg-Id": "1"}, base=b"NATS/1.0\r\nA: b\r\nNats-Msg-Id: 0\r\n\r\n")
    assert parse_headers(raw) == {"A": "b", "Nats-Msg-Id": "1"}
    assert status_block(404, "No Messages") == b"NATS/1.0 404 No Messages\r\n\r\n"
    ns = 1_700_000_000_123_456_789
    assert rfc3339_to_ns(rfc3339(ns)) == ns


def test_dedupe_window_and_expectations() -> None:
    s = make_stream(duplicate_window=10 * S)
    assert pub(s, "orders.1", Nats_Msg_Id="a") == {"stream": "ORDERS", "seq": 1}
    assert pub(s, "orders.1", Nats_Msg_Id="a", now=S) == {"stream": "ORDERS", "seq": 1, "duplicate": True}
    assert pub(s, "orders.1", Nats_Msg_Id="a", now=11 * S)["seq"] == 2  # the window has passed
    with pytest.raises(ApiError) as err:
        pub(s, "orders.2", Nats_Expected_Last_Subject_Sequence="5")
    assert (err.value.code, err.value.err_code, err.value.description) == (400, 10071, "wrong last sequence: 0")
    assert pub(s, "orders.1", Nats_Expected_Last_Subject_Sequence="2")["seq"] == 3
    with pytest.raises(ApiError) as err:
        pub(s, "orders.1", Nats_Expected_Stream="OTHER")
    assert err.value.err_code == 10060


def test_limits_discard_old_and_new() -> None:
    s = make_stream(max_msgs=3)
    for i in range(5):
        pub(s, f"orders.{i}")
    assert s.store.seqs() == [3, 4, 5]
    n = make_stream(max_msgs=2, discard="new")
    pub(n, "orders.a")
    pub(n, "orders.b")
    with pytest.raises(ApiError) as err:
        pub(n, "orders.c")
    assert (err.value.code, err.value.err_code, err.value.description) == (503, 10077, "maximum messages exceeded")
    per = make_stream(max_msgs_per_subject=2)
    for _ in range(4):
        pub(per, "orders.k")
    pub(per, "orders.j")
    assert per.store.seqs() == [3, 4, 5]
    aged = make_stream(max_age=5 * S)
    pub(aged, "orders.a", now=0)
    pub(aged, "orders.b", now=4 * S)
    assert aged.expire(6 * S) == 1 and aged.store.seqs() == [2]


def test_rollup_and_purge() -> None:
    s = make_stream(allow_rollup_hdrs=True)
    for _ in range(3):
        pub(s, "orders.k")
    pub(s, "orders.j")
    pub(s, "orders.k", Nats_Rollup="sub")
    assert s.store.seqs() == [4, 5]
    assert s.purge(filter_subject="orders.j") == 1 and s.store.seqs() == [5]
    for _ in range(4):
        pub(s, "orders.z")
    assert s.purge(keep=2) == 3 and s.store.num_msgs == 2
    assert s.purge() == 2 and s.store.first_seq == s.store.last_seq + 1
    with pytest.raises(ApiError):
        pub(make_stream(), "orders.k", Nats_Rollup="sub")


def consumer(stream: Stream, **cfg: object) -> Consumer:
    c = Consumer(stream, "C", ConsumerConfig.from_request({"durable_name": "C", **cfg}), 0)
    stream.consumers["C"] = c
    return c


def test_delivery_ack_and_metadata() -> None:
    s = make_stream()
    for i in range(3):
        pub(s, f"orders.{i}")
    c = consumer(s)
    assert c.num_pending == 3
    out = c.next_delivery(0)
    assert out is not None and out.msg.seq == 1
    assert out.reply == "$JS.ACK.ORDERS.C.1.1.1.0.2"
    assert c.num_ack_pending == 1
    assert c.on_ack(1, b"+ACK", 0).acked == [1]
    assert (c.ack_floor_cseq, c.ack_floor_sseq) == (1, 1)


def test_redelivery_after_ack_wait_and_max_deliver() -> None:
    s = make_stream()
    pub(s, "orders.1")
    c = consumer(s, ack_wait=1 * S, max_deliver=2)
    first = c.next_delivery(0)
    assert first is not None and first.deliveries == 1
    assert c.next_delivery(0) is None
    assert c.check_timeouts(S // 2).redeliver_now is False
    assert c.check_timeouts(S).redeliver_now is True
    again = c.next_delivery(S)
    assert again is not None and again.deliveries == 2 and again.cseq == 2
    assert c.num_redelivered == 1
    out = c.check_timeouts(2 * S)
    assert out.max_delivered == [(1, 2)] and c.num_ack_pending == 0


def test_nak_with_delay_progress_and_term() -> None:
    s = make_stream()
    pub(s, "orders.1")
    pub(s, "orders.2")
    c = consumer(s, ack_wait=10 * S)
    a = c.next_delivery(0)
    b = c.next_delivery(0)
    assert a is not None and b is not None
    assert c.on_ack(1, b'-NAK {"delay": 2000000000}', 0).redeliver_now is False
    assert c.check_timeouts(S).redeliver_now is False
    assert c.check_timeouts(2 * S).redeliver_now is True
    assert c.next_delivery(2 * S) is not None
    c.on_ack(2, b"+WPI", 9 * S)
    assert c.check_timeouts(11 * S).redeliver_now is False  # progress pushed the deadline out
    assert c.on_ack(2, b"+TERM", 11 * S).terminated == [(2, 1)]
    assert c.on_ack(1, b"-NAK", 11 * S).redeliver_now is True


def test_workqueue_retention_removes_acked() -> None:
    s = make_stream(retention="workqueue")
    for i in range(3):
        pub(s, f"orders.{i}")
    c = consumer(s)
    out = c.next_delivery(0)
    assert out is not None
    s.on_acked(c.on_ack(out.msg.seq, b"", 0).acked)
    assert s.store.seqs() == [2, 3]


def test_max_ack_pending_and_ack_all() -> None:
    s = make_stream()
    for i in range(5):
        pub(s, f"orders.{i}")
    c = consumer(s, max_ack_pending=2, ack_policy="all")
    assert c.next_delivery(0) is not None and c.next_delivery(0) is not None
    assert c.next_delivery(0) is None
    assert c.on_ack(2, b"+ACK", 0).acked == [1, 2]
    assert c.next_delivery(0) is not None


def test_deliver_policies() -> None:
    s = make_stream()
    for subj in ("orders.a", "orders.b", "orders.a", "orders.c"):
        pub(s, subj)
    lps = consumer(s, deliver_policy="last_per_subject")
    got = []
    while (o := lps.next_delivery(0)) is not None:
        got.append(o.msg.seq)
    assert got == [2, 3, 4]
    new = Consumer(s, "N", ConsumerConfig.from_request({"deliver_policy": "new"}), 0)
    assert new.next_delivery(0) is None
    last = Consumer(s, "L", ConsumerConfig.from_request({"deliver_policy": "last", "filter_subject": "orders.a"}), 0)
    o = last.next_delivery(0)
    assert o is not None and o.msg.seq == 3
    seq = Consumer(s, "Q", ConsumerConfig.from_request({"deliver_policy": "by_start_sequence", "opt_start_seq": 3}), 0)
    o = seq.next_delivery(0)
    assert o is not None and o.msg.seq == 3


def test_consumer_state_survives_save_and_restore() -> None:
    s = make_stream()
    for i in range(3):
        pub(s, f"orders.{i}")
    c = consumer(s)
    c.next_delivery(0)
    c.next_delivery(0)
    c.on_ack(1, b"", 0)
    saved = c.state_json()
    again = Consumer(s, "C", c.config, 0)
    again.restore(saved, 5)
    o = again.next_delivery(5)
    assert o is not None and o.msg.seq == 2 and o.deliveries == 2  # pending came back as a redelivery
    o = again.next_delivery(5)
    assert o is not None and o.msg.seq == 3


def test_nak_of_the_last_allowed_delivery_gives_up() -> None:
    s = make_stream()
    pub(s, "orders.1")
    c = consumer(s, max_deliver=1)
    assert c.next_delivery(0) is not None
    out = c.on_ack(1, b"-NAK", 0)
    assert out.max_delivered == [(1, 1)] and c.num_ack_pending == 0
    assert c.next_delivery(0) is None
