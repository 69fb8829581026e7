"""Random and malformed frames: the parser never crashes and agrees with itself however the
stream is cut; a live broker answers garbage with -ERR and a close, and nobody else notices."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minga.broker import Broker, BrokerConfig, Invalid, Parser, Ping

TOKENS = st.sampled_from(["foo", "bar", "a", "*", ">", "_INBOX", "x y", "", "é", "1"])
SUBJECTS = st.lists(TOKENS, min_size=1, max_size=4).map(".".join)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One plausible client operation, sometimes with lying sizes."""
    kind = draw(st.sampled_from(["pub", "hpub", "sub", "unsub", "ping", "pong", "connect", "junk"]))
    subject = draw(SUBJECTS).encode()
    payload = draw(st.binary(max_size=40))
    size = len(payload) + draw(st.sampled_from([0, 0, 0, 1, -1, 7]))
    if kind == "pub":
        return b"PUB %s %d\r\n%s\r\n" % (subject, size, payload)
    if kind == "hpub":
        hdr = b"NATS/1.0\r\nK: v\r\n\r\n"
        return b"HPUB %s %d %d\r\n%s%s\r\n" % (subject, len(hdr), len(hdr) + size, hdr, payload)
    if kind == "sub":
        return b"SUB %s %d\r\n" % (subject, draw(st.integers(0, 9)))
    if kind == "unsub":
        return b"UNSUB %d %s\r\n" % (draw(st.integers(0, 9)), draw(st.sampled_from([b"", b"2", b"x"])))
    if kind == "ping":
        return b"PING\r\n"
    if kind == "pong":
        return b"PONG\r\n"
    if kind == "connect":
        return draw(st.sampled_from([b"CONNECT {}\r\n", b'CONNECT {"verbose":false}\r\n', b"CONNECT {\r\n", b"CONNECT []\r\n"]))
    return draw(st.binary(min_size=1, max_size=60))


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(frames(), min_size=1, max_size=6))))
    for _ in range(draw(st.integers(0, 3))):  # a few byte-level mutations
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "drop", "dup"]))
        if op == "flip":
            data[i] = draw(st.integers(0, 255))
        elif op == "drop":
            del data[i]
        else:
            data.insert(i, data[i])
    return bytes(data)


INPUTS = st.one_of(streams(), st.binary(max_size=300))


@settings(max_examples=300, deadline=None, database=None)
@given(data=INPUTS, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_parser_is_total_and_split_invariant(data: bytes, cuts: list[int]) -> None:
    whole = Parser(max_payload=64).feed(data)
    parser = Parser(max_payload=64)
    pieces: list[object] = []
    start = 0
    for cut in sorted({c for c in cuts if c < len(data)}):
        pieces += parser.feed(data[start:cut])
        start = cut
    pieces += parser.feed(data[start:])
    assert pieces == whole
    assert all(not isinstance(f, Invalid) for f in whole[:-1]), "nothing follows a violation"


class ThreadedBroker:
    """An embedded broker on its own event loop thread, so the test can use blocking sockets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.broker = Broker(BrokerConfig(port=0, max_payload=64, max_pending=1024 * 1024))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedBroker:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.broker.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.broker.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    info = b""
    while not info.endswith(b"\r\n"):
        info += sock.recv(4096)
    return sock


def read_until(sock: socket.socket, marker: bytes, wait: float) -> tuple[bytes, bool]:
    """What arrives until ``marker`` is seen, the peer closes (True) or ``wait`` seconds pass."""
    sock.settimeout(wait)
    got = b""
    try:
        while marker not in got:
            chunk = sock.recv(65536)
            if not chunk:
                return got, True
            got += chunk
    except TimeoutError:
        return got, False
    except ConnectionResetError:
        return got, True
    return got, False


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[ThreadedBroker, socket.socket, socket.socket]]:
    with ThreadedBroker() as server:
        watcher = connect(server.broker.port)
        watcher.sendall(b'CONNECT {"verbose":false}\r\nSUB canary 1\r\nPING\r\n')
        assert read_until(watcher, b"PONG\r\n", 5)[0].endswith(b"PONG\r\n")
        publisher = connect(server.broker.port)
        publisher.sendall(b'CONNECT {"verbose":false}\r\n')
        yield server, watcher, publisher
        watcher.close()
        publisher.close()


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=INPUTS)
def test_live_broker_survives_garbage(live: tuple[ThreadedBroker, socket.socket, socket.socket], data: bytes) -> None:
    server, watcher, publisher = live
    probe = data + b"\r\nPING\r\n"
    expected = Parser(max_payload=64).feed(probe)
    sock = connect(server.broker.port)
    try:
        sock.sendall(probe)
        if expected and isinstance(expected[-1], Invalid):
            out, closed = read_until(sock, b"\x00never", 5)
            assert closed, f"no close after a violation: {out!r}"
            assert out.endswith(b"-ERR '%s'\r\n" % expected[-1].message.encode()), out
        elif expected and isinstance(expected[-1], Ping):
            out, closed = read_until(sock, b"PONG\r\n", 5)
            assert b"PONG\r\n" in out and not closed, out
        # otherwise the stream stops inside a payload: the broker waits for the rest, as it should
    finally:
        sock.close()
    # everybody else is unaffected
    publisher.sendall(b"PUB canary 2\r\nok\r\n")
    out, closed = read_until(watcher, b"ok\r\n", 5)
    assert out.startswith(b"MSG canary 1 2\r\nok\r\n") and not closed, out
