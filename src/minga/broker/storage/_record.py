"""The on-disk record format, as pure functions over bytes.

A segment file is a sequence of records::

    length  u32 little-endian   bytes of ``kind + body``
    crc32   u32 little-endian   zlib.crc32 of ``kind + body``
    kind    u8                  MSG, DELETE or PURGE
    body    length - 1 bytes

A MSG body is ``seq u64, time_ns u64, subject_len u16, headers_len u32`` followed by the
subject, the raw header block and the payload. DELETE carries sequences (u64 each);
PURGE carries one u64: every sequence up to it is gone.

A record whose length runs past the end of the file, or whose checksum does not
match, marks the torn tail of a write that a crash interrupted: decoding stops there
and reports how many bytes were whole, so recovery can truncate the rest.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = [
    "DELETE",
    "MSG",
    "PURGE",
    "Decoded",
    "decode_records",
    "encode_delete",
    "encode_msg",
    "encode_purge",
]

MSG = 1
DELETE = 2
PURGE = 3

_FRAME = struct.Struct("<II")
_MSG_HEAD = struct.Struct("<QQHI")
_U64 = struct.Struct("<Q")

# A record longer than this is garbage from a torn write, not a message.
_MAX_RECORD = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Decoded:
    """One decoded record: ``kind`` and its fields (``seqs`` for DELETE, ``seq`` for MSG/PURGE)."""

    kind: int
    seq: int = 0
    time_ns: int = 0
    subject: str = ""
    headers: bytes | None = None
    payload: bytes = b""
    seqs: tuple[int, ...] = ()


def _frame(body: bytes) -> bytes:
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def encode_msg(seq: int, time_ns: int, subject: str, headers: bytes | None, payload: bytes) -> bytes:
    """The record of one stored message."""
    subj = subject.encode()
    hdr = headers or b""
    body = b"".join((bytes((MSG,)), _MSG_HEAD.pack(seq, time_ns, len(subj), len(hdr)), subj, hdr, payload))
    return _frame(body)


def encode_delete(seqs: list[int] | tuple[int, ...]) -> bytes:
    """The record that removes ``seqs``."""
    return _frame(bytes((DELETE,)) + b"".join(_U64.pack(s) for s in seqs))


def encode_purge(upto: int) -> bytes:
    """The record that removes every sequence up to and including ``upto``."""
    return _frame(bytes((PURGE,)) + _U64.pack(upto))


def _decode_body(body: bytes) -> Decoded | None:
    kind = body[0]
    if kind == MSG:
        if len(body) < 1 + _MSG_HEAD.size:
            return None
        seq, time_ns, slen, hlen = _MSG_HEAD.unpack_from(body, 1)
        start = 1 + _MSG_HEAD.size
        if start + slen + hlen > len(body):
            return None
        subject = body[start : start + slen].decode()
        hdr = body[start + slen : start + slen + hlen]
        payload = body[start + slen + hlen :]
        return Decoded(MSG, seq, time_ns, subject, hdr or None, payload)
    if kind == DELETE:
        n = (len(body) - 1) // 8
        return Decoded(DELETE, seqs=tuple(_U64.unpack_from(body, 1 + 8 * i)[0] for i in range(n)))
    if kind == PURGE and len(body) == 9:
        return Decoded(PURGE, seq=_U64.unpack_from(body, 1)[0])
    return None


def decode_records(buf: bytes) -> tuple[list[Decoded], int]:
    """Decode whole records from ``buf``; return them and the length of the valid prefix."""
    out: list[Decoded] = []
    pos = 0
    end = len(buf)
    while pos + _FRAME.size <= end:
        length, crc = _FRAME.unpack_from(buf, pos)
        start = pos + _FRAME.size
        if length == 0 or length > _MAX_RECORD or start + length > end:
            break
        body = buf[start : start + length]
        if zlib.crc32(body) != crc:
            break
        rec = _decode_body(body)
        if rec is None:
            break
        out.append(rec)
        pos = start + length
    return out, pos
