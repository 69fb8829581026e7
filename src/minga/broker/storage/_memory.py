"""The message index every store keeps in memory, and the memory-only store built on it."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["DurableCallback", "MemoryStore", "Sizer", "StoredMessage", "file_size", "memory_size"]

DurableCallback = Callable[[BaseException | None], None]


def memory_size(subject: str, headers: bytes | None, payload: bytes) -> int:
    """Bytes a message counts for in a memory stream: subject, headers, payload and 16 bytes of overhead.

    The figure is nats-server's, so that ``state.bytes`` and ``max_bytes`` read the same on both.
    """
    return len(subject) + len(headers or b"") + len(payload) + 16


def file_size(subject: str, headers: bytes | None, payload: bytes) -> int:
    """Bytes a message counts for in a file stream: nats-server's record size.

    That is 22 bytes of record header, the subject, the payload, an 8-byte checksum, and the
    headers with their 4-byte length when there are any.
    """
    size = 22 + len(subject) + len(payload) + 8
    if headers:
        size += len(headers) + 4
    return size


Sizer = Callable[[str, bytes | None, bytes], int]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of a stream: its sequence, subject, raw NATS header block, payload and arrival time."""

    seq: int
    subject: str
    headers: bytes | None
    payload: bytes
    time_ns: int


class MemoryStore:
    """Messages kept in memory only: gone when the process ends.

    Sequences are assigned in order from 1; removed messages leave gaps. ``sizer`` says how many
    bytes a message counts for (:func:`memory_size` or :func:`file_size`, as the stream's storage type). ``when_durable``
    runs its callback at once, because nothing more durable than memory is promised.
    """

    def __init__(self, sizer: Sizer = memory_size) -> None:
        self.sizer = sizer
        self._msgs: dict[int, StoredMessage] = {}
        self._seqs: list[int] = []
        self._last_seq = 0
        self._bytes = 0

    # -- reading ---------------------------------------------------------------------------

    @property
    def first_seq(self) -> int:
        """The lowest stored sequence, or ``last_seq + 1`` when the store is empty."""
        return self._seqs[0] if self._seqs else self._last_seq + 1

    @property
    def last_seq(self) -> int:
        """The highest sequence ever assigned (it survives the removal of that message)."""
        return self._last_seq

    @property
    def num_msgs(self) -> int:
        return len(self._seqs)

    def size_of(self, msg: StoredMessage) -> int:
        """Bytes ``msg`` counts for in :attr:`num_bytes` (and against a stream's ``max_bytes``)."""
        return self.sizer(msg.subject, msg.headers, msg.payload)

    @property
    def num_bytes(self) -> int:
        return self._bytes

    def get(self, seq: int) -> StoredMessage | None:
        return self._msgs.get(seq)

    def count_from(self, seq: int) -> int:
        """How many stored messages have a sequence >= ``seq``."""
        return len(self._seqs) - bisect.bisect_left(self._seqs, seq)

    def next_from(self, seq: int) -> StoredMessage | None:
        """The stored message with the lowest sequence >= ``seq``."""
        i = bisect.bisect_left(self._seqs, seq)
        return self._msgs[self._seqs[i]] if i < len(self._seqs) else None

    def iter_from(self, seq: int) -> Iterator[StoredMessage]:
        """Stored messages with sequence >= ``seq``, in order; safe against removal while iterating."""
        i = bisect.bisect_left(self._seqs, seq)
        while i < len(self._seqs):
            s = self._seqs[i]
            msg = self._msgs.get(s)
            if msg is not None:
                yield msg
            i = bisect.bisect_right(self._seqs, s)

    def seqs(self) -> list[int]:
        """A copy of the stored sequences, in order."""
        return list(self._seqs)

    # -- writing ---------------------------------------------------------------------------

    def append(self, subject: str, headers: bytes | None, payload: bytes, time_ns: int) -> StoredMessage:
        """Store a message under the next sequence and return it."""
        msg = StoredMessage(self._last_seq + 1, subject, headers, payload, time_ns)
        self._insert(msg)
        self._log_append(msg)
        return msg

    def remove(self, seqs: Iterable[int]) -> list[StoredMessage]:
        """Remove the messages with these sequences; return those that were stored."""
        gone = self._remove(seqs)
        if gone:
            self._log_remove([m.seq for m in gone])
        return gone

    def purge(self, upto: int | None = None) -> list[StoredMessage]:
        """Remove every message with sequence <= ``upto`` (all of them when None); return them."""
        limit = self._last_seq if upto is None else min(upto, self._last_seq)
        gone = self._purge(limit)
        self._log_purge(limit)
        return gone

    def _remove(self, seqs: Iterable[int]) -> list[StoredMessage]:
        gone: list[StoredMessage] = []
        for seq in seqs:
            msg = self._msgs.pop(seq, None)
            if msg is None:
                continue
            i = bisect.bisect_left(self._seqs, seq)
            del self._seqs[i]
            self._bytes -= self.size_of(msg)
            gone.append(msg)
        return gone

    def _purge(self, limit: int) -> list[StoredMessage]:
        cut = bisect.bisect_right(self._seqs, limit)
        gone = [self._msgs.pop(s) for s in self._seqs[:cut]]
        del self._seqs[:cut]
        for msg in gone:
            self._bytes -= self.size_of(msg)
        return gone

    def when_durable(self, callback: DurableCallback) -> None:
        """Run ``callback(None)`` once everything written so far is as durable as the store promises."""
        callback(None)

    async def flush(self) -> None:
        """Wait until everything written so far is durable (a no-op in memory)."""

    async def close(self) -> None:
        """Flush and release resources."""

    def destroy(self) -> None:
        """Forget every message (the stream was deleted)."""
        self._msgs.clear()
        self._seqs.clear()
        self._bytes = 0

    # -- hooks for the file store ----------------------------------------------------------

    def _insert(self, msg: StoredMessage) -> None:
        self._msgs[msg.seq] = msg
        self._seqs.append(msg.seq)
        self._bytes += self.size_of(msg)
        self._last_seq = msg.seq

    def _log_append(self, msg: StoredMessage) -> None:
        pass

    def _log_remove(self, seqs: list[int]) -> None:
        pass

    def _log_purge(self, upto: int) -> None:
        pass
