"""The NATS client protocol as pure functions: bytes in, frames out, no sockets.

:class:`Parser` is incremental: feed it whatever a read returned, however the
stream was cut, and it returns the complete frames so far, keeping the rest for
the next call. A protocol violation ends the frame list with an :class:`Invalid`
frame whose ``message`` is the text nats-server sends after ``-ERR``; the parser
then refuses further input, since the connection is to be closed.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from minga.security import json_depth

__all__ = [
    "PING",
    "PONG",
    "Connect",
    "Frame",
    "Invalid",
    "Parser",
    "Ping",
    "Pong",
    "Pub",
    "Sub",
    "Unsub",
]

MAX_CONTROL_LINE = 4096

ERR_UNKNOWN_OP = "Unknown Protocol Operation"
ERR_MAX_PAYLOAD = "Maximum Payload Violation"
ERR_MAX_CONTROL_LINE = "Maximum Control Line Exceeded"
MAX_CONNECT_DEPTH = 32
"""How deep the JSON of a CONNECT may nest; no client sends more than two levels."""
ERR_CONNECT_DEPTH = f"CONNECT JSON Nested Deeper Than {MAX_CONNECT_DEPTH} Levels"


class Connect(NamedTuple):
    """``CONNECT {json}``: the client's options."""

    options: dict[str, Any]


class Pub(NamedTuple):
    """``PUB`` or ``HPUB``: ``headers`` is the raw header block (``HPUB``) or None (``PUB``)."""

    subject: bytes
    reply: bytes | None
    headers: bytes | None
    payload: bytes


class Sub(NamedTuple):
    """``SUB subject [queue] sid``."""

    subject: bytes
    queue: bytes | None
    sid: bytes


class Unsub(NamedTuple):
    """``UNSUB sid [max]``: ``max_msgs`` is the number of messages after which the subscription ends."""

    sid: bytes
    max_msgs: int | None


class Ping(NamedTuple):
    """``PING``."""


class Pong(NamedTuple):
    """``PONG``."""


class Invalid(NamedTuple):
    """A protocol violation; ``message`` is what the peer is told after ``-ERR``."""

    message: str


PING = Ping()
PONG = Pong()

Frame = Connect | Pub | Sub | Unsub | Ping | Pong | Invalid


class Parser:
    """Turns a client's byte stream into frames.

    ``max_payload`` (bytes) is enforced while parsing: a larger ``PUB`` yields
    ``Invalid("Maximum Payload Violation")``. ``max_control_line`` (bytes) bounds
    a protocol line, so that garbage without a line end cannot grow the buffer.
    """

    __slots__ = ("_chunks", "_failed", "_have", "_need", "max_control_line", "max_payload")

    def __init__(self, max_payload: int = 1024 * 1024, max_control_line: int = MAX_CONTROL_LINE) -> None:
        self.max_payload = max_payload
        self.max_control_line = max_control_line
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0
        self._failed = False

    @property
    def failed(self) -> bool:
        """True once a violation was returned: every later call returns nothing."""
        return self._failed

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return self._have

    def feed(self, data: bytes) -> list[Frame]:
        """Parse ``data`` (appended to what earlier calls left over) into complete frames."""
        if self._failed:
            return []
        if self._chunks:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return []
            buf = b"".join(self._chunks)
            self._chunks = []
            self._have = 0
        else:
            buf = data
        frames: list[Frame] = []
        append = frames.append
        n = len(buf)
        pos = 0
        max_payload = self.max_payload
        while pos < n:
            eol = buf.find(b"\n", pos)
            if eol < 0:
                if n - pos > self.max_control_line:
                    return self._fail(frames, ERR_MAX_CONTROL_LINE)
                self._keep(buf, pos, n - pos + 1)
                break
            if eol - pos > self.max_control_line:
                return self._fail(frames, ERR_MAX_CONTROL_LINE)
            line = buf[pos : eol - 1] if eol > pos and buf[eol - 1] == 13 else buf[pos:eol]
            head = line[:4]
            if head == b"PUB " or head == b"pub ":
                # the hot path: no split of the operation name
                op = b"PUB"
                rest = line[4:]
            else:
                parts = line.split(None, 1)
                if not parts:
                    # an empty line: nats-server tolerates stray line ends between operations
                    pos = eol + 1
                    continue
                # operation names are case-insensitive, as in nats-server (``Pub``, ``sub``...)
                op = parts[0].upper()
                rest = parts[1] if len(parts) > 1 else b""
            if op == b"PUB":
                args = rest.split()
                nargs = len(args)
                if nargs == 2:
                    subject, size_b = args
                    reply = None
                elif nargs == 3:
                    subject, reply, size_b = args
                else:
                    return self._fail(frames, ERR_UNKNOWN_OP)
                if not size_b.isdigit():
                    return self._fail(frames, ERR_UNKNOWN_OP)
                size = int(size_b)
                if size > max_payload:
                    return self._fail(frames, ERR_MAX_PAYLOAD)
                start = eol + 1
                stop = start + size
                if stop + 2 > n:
                    self._keep(buf, pos, stop + 2 - pos)
                    break
                if buf[stop : stop + 2] != b"\r\n":
                    return self._fail(frames, ERR_UNKNOWN_OP)
                append(Pub(subject, reply, None, buf[start:stop]))
                pos = stop + 2
                continue
            if op == b"HPUB":
                args = rest.split()
                nargs = len(args)
                if nargs == 3:
                    subject, hsize_b, size_b = args
                    reply = None
                elif nargs == 4:
                    subject, reply, hsize_b, size_b = args
                else:
                    return self._fail(frames, ERR_UNKNOWN_OP)
                if not (size_b.isdigit() and hsize_b.isdigit()):
                    return self._fail(frames, ERR_UNKNOWN_OP)
                size = int(size_b)
                hsize = int(hsize_b)
                if hsize > size:
                    return self._fail(frames, ERR_UNKNOWN_OP)
                if size > max_payload:
                    return self._fail(frames, ERR_MAX_PAYLOAD)
                start = eol + 1
                stop = start + size
                if stop + 2 > n:
                    self._keep(buf, pos, stop + 2 - pos)
                    break
                if buf[stop : stop + 2] != b"\r\n":
                    return self._fail(frames, ERR_UNKNOWN_OP)
                append(Pub(subject, reply, buf[start : start + hsize], buf[start + hsize : stop]))
                pos = stop + 2
                continue
            if op == b"SUB":
                args = rest.split()
                if len(args) == 2:
                    append(Sub(args[0], None, args[1]))
                elif len(args) == 3:
                    append(Sub(args[0], args[1], args[2]))
                else:
                    return self._fail(frames, ERR_UNKNOWN_OP)
            elif op == b"UNSUB":
                args = rest.split()
                if len(args) == 1:
                    append(Unsub(args[0], None))
                elif len(args) == 2 and args[1].isdigit():
                    append(Unsub(args[0], int(args[1])))
                else:
                    return self._fail(frames, ERR_UNKNOWN_OP)
            elif op == b"PING":
                append(PING)
            elif op == b"PONG":
                append(PONG)
            elif op == b"CONNECT":
                try:
                    options = json.loads(rest)
                except RecursionError:
                    return self._fail(frames, ERR_CONNECT_DEPTH)
                except ValueError:
                    options = None
                if not isinstance(options, dict):
                    return self._fail(frames, ERR_UNKNOWN_OP)
                if json_depth(options) > MAX_CONNECT_DEPTH:
                    return self._fail(frames, ERR_CONNECT_DEPTH)
                append(Connect(options))
            else:
                return self._fail(frames, ERR_UNKNOWN_OP)
            pos = eol + 1
        return frames

    def _keep(self, buf: bytes, pos: int, need: int) -> None:
        rest = buf[pos:] if pos else buf
        self._chunks = [rest]
        self._have = len(rest)
        self._need = need

    def _fail(self, frames: list[Frame], message: str) -> list[Frame]:
        self._failed = True
        self._chunks = []
        self._have = 0
        frames.append(Invalid(message))
        return frames
