"""NATS header blocks."""

from __future__ import annotations

import pytest

from minga.broker import decode_headers, encode_headers
from minga.errors import ProtocolError


def test_round_trip_keeps_order_and_repeats() -> None:
    block = encode_headers({"A": "1", "B": ["2", "3"]})
    assert block == b"NATS/1.0\r\nA: 1\r\nB: 2\r\nB: 3\r\n\r\n"
    decoded = decode_headers(block)
    assert decoded.status is None and decoded.description == ""
    assert decoded.headers == [("A", "1"), ("B", "2"), ("B", "3")]
    assert decoded.get("B") == "2" and decoded.get("C") is None


def test_status_lines() -> None:
    assert encode_headers(status=503) == b"NATS/1.0 503\r\n\r\n"
    decoded = decode_headers(b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n")
    assert (decoded.status, decoded.description) == (408, "Request Timeout")
    assert decoded.headers == [("Nats-Pending-Messages", "1")]
    assert decode_headers(encode_headers([("K", "v")], status=100, description="Idle Heartbeat")).status == 100


@pytest.mark.parametrize(
    "block",
    [b"HTTP/1.1 200\r\n\r\n", b"NATS/1.0\r\nbroken\r\n\r\n", b"NATS/1.0 5x3\r\n\r\n", b"NATS/1.0\r\nA: 1\r\n"],
)
def test_malformed_blocks(block: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_headers(block)


def test_header_injection_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_headers({"A": "1\r\nB: 2"})
    with pytest.raises(ValueError):
        encode_headers({"A:B": "1"})
