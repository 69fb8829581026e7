"""The parser as a pure function: bytes in, frames out."""

from __future__ import annotations

import pytest

from minga.broker import Connect, Invalid, Parser, Ping, Pong, Pub, Sub, Unsub


def parse(data: bytes, **kwargs: int) -> list[object]:
    return list(Parser(**kwargs).feed(data))


def test_every_client_operation() -> None:
    frames = parse(
        b'CONNECT {"verbose":false,"headers":true}\r\n'
        b"PUB foo 5\r\nhello\r\n"
        b"PUB foo.bar _INBOX.1 0\r\n\r\n"
        b"HPUB h 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
        b"HPUB h reply 12 12\r\nNATS/1.0\r\n\r\n\r\n"
        b"SUB foo 1\r\nSUB foo.* workers 2\r\n"
        b"UNSUB 1\r\nUNSUB 2 10\r\n"
        b"PING\r\nPONG\r\n"
    )
    assert frames == [
        Connect({"verbose": False, "headers": True}),
        Pub(b"foo", None, None, b"hello"),
        Pub(b"foo.bar", b"_INBOX.1", None, b""),
        Pub(b"h", None, b"NATS/1.0\r\n\r\n", b"hi"),
        Pub(b"h", b"reply", b"NATS/1.0\r\n\r\n", b""),
        Sub(b"foo", None, b"1"),
        Sub(b"foo.*", b"workers", b"2"),
        Unsub(b"1", None),
        Unsub(b"2", 10),
        Ping(),
        Pong(),
    ]


def test_operations_are_case_insensitive_and_tolerate_spacing() -> None:
    assert parse(b"pub  foo\t 3\r\nabc\r\nping\r\nsub foo   9\r\n") == [
        Pub(b"foo", None, None, b"abc"),
        Ping(),
        Sub(b"foo", None, b"9"),
    ]
    assert parse(b"Pub a 1\r\nx\r\nhPuB a 12 12\r\nNATS/1.0\r\n\r\n\r\nPiNg\r\n") == [
        Pub(b"a", None, None, b"x"),
        Pub(b"a", None, b"NATS/1.0\r\n\r\n", b""),
        Ping(),
    ]


def test_bare_newline_ends_a_control_line() -> None:
    assert parse(b"PING\nPONG\n") == [Ping(), Pong()]


def test_payload_may_hold_line_ends() -> None:
    assert parse(b"PUB x 6\r\na\r\nb\r\n\r\n") == [Pub(b"x", None, None, b"a\r\nb\r\n")]


def test_incremental_over_every_split() -> None:
    stream = b'CONNECT {}\r\nPUB a.b r 11\r\nhello world\r\nHPUB h 12 15\r\nNATS/1.0\r\n\r\nabc\r\nPING\r\n'
    whole = parse(stream)
    for cut in range(1, len(stream)):
        parser = Parser()
        assert parser.feed(stream[:cut]) + parser.feed(stream[cut:]) == whole, cut
    parser = Parser()
    byte_by_byte = [frame for i in range(len(stream)) for frame in parser.feed(stream[i : i + 1])]
    assert byte_by_byte == whole
    assert parser.buffered == 0


def test_a_large_payload_in_many_reads() -> None:
    payload = bytes(range(256)) * 4096
    stream = b"PUB big %d\r\n" % len(payload) + payload + b"\r\n"
    parser = Parser(max_payload=len(payload))
    frames = []
    for i in range(0, len(stream), 1000):
        frames += parser.feed(stream[i : i + 1000])
    assert frames == [Pub(b"big", None, None, payload)]


@pytest.mark.parametrize(
    "data",
    [
        b"FOO bar\r\n",
        b"MSG foo 1 2\r\nhi\r\n",
        b"PUB foo\r\n",
        b"PUB foo bar baz 3\r\nabc\r\n",
        b"PUB foo -1\r\n",
        b"PUB foo 1_0\r\n",
        b"PUB foo 3\r\nabcd\r\n",
        b"HPUB foo 10 5\r\n",
        b"HPUB foo 5\r\n",
        b"SUB foo\r\n",
        b"SUB a b c d\r\n",
        b"UNSUB\r\n",
        b"UNSUB 1 x\r\n",
        b"CONNECT {nope\r\n",
        b"CONNECT [1]\r\n",
    ],
)
def test_violations_end_the_stream(data: bytes) -> None:
    parser = Parser()
    frames = parser.feed(data + b"PING\r\n")
    assert frames == [Invalid("Unknown Protocol Operation")]
    assert parser.failed
    assert parser.feed(b"PING\r\n") == []


def test_frames_before_a_violation_are_kept() -> None:
    assert parse(b"PING\r\nBOGUS\r\nPING\r\n") == [Ping(), Invalid("Unknown Protocol Operation")]


def test_max_payload_is_enforced_before_the_payload_arrives() -> None:
    parser = Parser(max_payload=10)
    assert parser.feed(b"PUB foo 11\r\n") == [Invalid("Maximum Payload Violation")]
    assert Parser(max_payload=10).feed(b"HPUB foo 5 11\r\n") == [Invalid("Maximum Payload Violation")]
    assert Parser(max_payload=10).feed(b"PUB foo 10\r\n0123456789\r\n") == [Pub(b"foo", None, None, b"0123456789")]


def test_a_control_line_without_end_is_bounded() -> None:
    parser = Parser(max_control_line=64)
    assert parser.feed(b"SUB " + b"a" * 40) == []
    assert parser.feed(b"a" * 40) == [Invalid("Maximum Control Line Exceeded")]
    assert Parser(max_control_line=64).feed(b"SUB " + b"a" * 100 + b" 1\r\n") == [
        Invalid("Maximum Control Line Exceeded")
    ]


def test_empty_lines_are_ignored() -> None:
    assert parse(b"\r\n\r\nPING\r\n") == [Ping()]
