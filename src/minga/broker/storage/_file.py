"""A file store: append-only segment files with checksummed records, group commit off the loop.

Every change (a message, a removal, a purge) is a record appended to the active segment.
Writes are buffered on the event loop and handed to one writer at a time, which runs in a
worker thread: it writes the batch and, under the ``always`` policy, fsyncs it before the
waiting callbacks run. Publishes that arrive while one fsync is in flight share the next
one (group commit), so one disk sync acknowledges a whole batch.

On open, segments are replayed in order. A record cut short or failing its checksum is the
torn tail of a crash: the segment is truncated there and everything before it is kept.
A segment is deleted once it and every older segment hold no live message, which also
makes the delete records it holds moot.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import enum
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from minga.broker.storage._memory import DurableCallback, MemoryStore, StoredMessage, file_size
from minga.broker.storage._record import (
    DELETE,
    MSG,
    PURGE,
    decode_records,
    encode_delete,
    encode_msg,
    encode_purge,
)

__all__ = ["FileStore", "FileStoreOptions", "FsyncPolicy"]

log = logging.getLogger("minga.broker.storage")

_SUFFIX = ".seg"


class FsyncPolicy(enum.StrEnum):
    """When the file store forces data to disk.

    ``always`` (the default): a publish is acknowledged only after its record is fsynced.
    ``interval``: records are written to the OS before the acknowledgement (they survive a
    killed process, not a power cut) and fsynced every ``sync_interval`` seconds, as
    nats-server does. ``never``: written before the acknowledgement, never fsynced.
    """

    ALWAYS = "always"
    INTERVAL = "interval"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class FileStoreOptions:
    """How a file store writes: ``fsync`` policy, ``sync_interval`` (seconds) and segment size (bytes)."""

    fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    sync_interval: float = 120.0
    segment_bytes: int = 8 * 1024 * 1024


class _Segment:
    __slots__ = ("live", "path", "size", "start")

    def __init__(self, path: Path, start: int, size: int = 0) -> None:
        self.path = path
        self.start = start
        self.size = size
        self.live = 0


def _segment_path(directory: Path, start: int) -> Path:
    return directory / f"{start:020d}{_SUFFIX}"


class FileStore(MemoryStore):
    """Messages in segment files under ``directory``, indexed in memory.

    Open with :meth:`open`; every mutating method returns at once and the record reaches the
    disk through the writer. Call :meth:`when_durable` to learn when it got there.
    """

    def __init__(self, directory: Path, options: FileStoreOptions) -> None:
        super().__init__(file_size)
        self.directory = directory
        self.options = options
        self._segments: list[_Segment] = []
        self._starts: list[int] = []
        # (segment path, bytes) chunks not yet handed to the writer
        self._pending: list[tuple[Path, bytearray]] = []
        self._appended = 0  # bytes appended since open
        self._durable = 0  # bytes made durable (per policy) since open
        self._waiters: list[tuple[int, DurableCallback]] = []
        self._writer: asyncio.Task[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        self._files: dict[Path, int] = {}
        self._dirty_since_sync: set[Path] = set()
        self._closed = False
        self._failed: BaseException | None = None

    # -- opening and recovery --------------------------------------------------------------

    @classmethod
    async def open(cls, directory: Path, options: FileStoreOptions | None = None) -> FileStore:
        """Open (or create) the store in ``directory``, recovering what a crash left behind."""
        store = cls(directory, options or FileStoreOptions())
        await asyncio.to_thread(store._recover)
        return store

    @classmethod
    def open_blocking(cls, directory: Path, options: FileStoreOptions | None = None) -> FileStore:
        """:meth:`open` without awaiting: it blocks while it replays the segments (instant when there are none)."""
        store = cls(directory, options or FileStoreOptions())
        store._recover()
        return store

    def _recover(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = sorted(self.directory.glob(f"*{_SUFFIX}"))
        floor = 0
        for path in paths:
            try:
                start = int(path.stem)
            except ValueError:
                continue
            data = path.read_bytes()
            records, valid = decode_records(data)
            if valid < len(data):
                log.warning("%s: dropping a torn tail of %d bytes", path, len(data) - valid)
                with open(path, "r+b") as f:
                    f.truncate(valid)
                    f.flush()
                    os.fsync(f.fileno())
            seg = _Segment(path, start, valid)
            self._segments.append(seg)
            self._starts.append(start)
            self._last_seq = max(self._last_seq, start - 1)
            for rec in records:
                if rec.kind == MSG:
                    if rec.seq <= floor or rec.seq in self._msgs:
                        continue
                    msg = StoredMessage(rec.seq, rec.subject, rec.headers, rec.payload, rec.time_ns)
                    if rec.seq > self._last_seq:
                        self._insert(msg)
                    else:
                        # a message below the highest sequence seen: insert in order
                        self._msgs[msg.seq] = msg
                        bisect.insort(self._seqs, msg.seq)
                        self._bytes += self.size_of(msg)
                    seg.live += 1
                elif rec.kind == DELETE:
                    self._remove(rec.seqs)
                elif rec.kind == PURGE:
                    floor = max(floor, rec.seq)
                    self._purge(rec.seq)
                    self._last_seq = max(self._last_seq, rec.seq)
        # live counts are recounted from what survived the replay
        for seg in self._segments:
            seg.live = 0
        for seq in self._seqs:
            self._segments[self._segment_index(seq)].live += 1

    def _segment_index(self, seq: int) -> int:
        return max(0, bisect.bisect_right(self._starts, seq) - 1)

    # -- logging changes -------------------------------------------------------------------

    def _active(self) -> _Segment:
        if not self._segments or self._segments[-1].size >= self.options.segment_bytes:
            start = self._last_seq + 1
            if self._segments and self._segments[-1].start == start:
                return self._segments[-1]
            seg = _Segment(_segment_path(self.directory, start), start)
            self._segments.append(seg)
            self._starts.append(start)
        return self._segments[-1]

    def _write(self, record: bytes, seg: _Segment) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        if self._pending and self._pending[-1][0] == seg.path:
            self._pending[-1][1].extend(record)
        else:
            self._pending.append((seg.path, bytearray(record)))
        seg.size += len(record)
        self._appended += len(record)
        if self._writer is None:
            loop = asyncio.get_running_loop()
            self._writer = loop.create_task(self._write_loop())
            if self._syncer is None and self.options.fsync is FsyncPolicy.INTERVAL:
                self._syncer = loop.create_task(self._sync_every())

    def _log_append(self, msg: StoredMessage) -> None:
        seg = self._active()
        seg.live += 1
        self._write(encode_msg(msg.seq, msg.time_ns, msg.subject, msg.headers, msg.payload), seg)

    def _log_remove(self, seqs: list[int]) -> None:
        for seq in seqs:
            self._segments[self._segment_index(seq)].live -= 1
        self._write(encode_delete(seqs), self._active())

    def _log_purge(self, upto: int) -> None:
        for seg in self._segments:
            seg.live = 0
        for seq in self._seqs:
            self._segments[self._segment_index(seq)].live += 1
        self._write(encode_purge(upto), self._active())

    def append(self, subject: str, headers: bytes | None, payload: bytes, time_ns: int) -> StoredMessage:
        # the segment is chosen before the sequence moves, so a fresh segment is named by its first message
        self._active()
        return super().append(subject, headers, payload, time_ns)

    # -- the writer ------------------------------------------------------------------------

    def when_durable(self, callback: DurableCallback) -> None:
        if self._failed is not None:
            callback(self._failed)
        elif self._durable >= self._appended:
            callback(None)
        else:
            self._waiters.append((self._appended, callback))

    async def flush(self) -> None:
        if self._durable >= self._appended:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def _wake(err: BaseException | None) -> None:
            if not done.done():
                if err is None:
                    done.set_result(None)
                else:
                    done.set_exception(err)

        self.when_durable(_wake)
        await done

    async def _write_loop(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                target = self._appended
                fsync = self.options.fsync is FsyncPolicy.ALWAYS
                obsolete = self._obsolete_segments()
                try:
                    await asyncio.to_thread(self._write_batch, batch, fsync, obsolete)
                except OSError as exc:
                    log.error("writing %s failed: %s", self.directory, exc)
                    self._failed = exc
                self._durable = target
                self._run_waiters()
        finally:
            self._writer = None
            if self._pending and not self._closed:
                self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def _run_waiters(self) -> None:
        ready = [cb for target, cb in self._waiters if target <= self._durable]
        self._waiters = [(t, cb) for t, cb in self._waiters if t > self._durable]
        for cb in ready:
            try:
                cb(self._failed)
            except Exception:
                log.exception("a durability callback failed")

    def _obsolete_segments(self) -> list[Path]:
        # a prefix of segments with no live message, never the active one
        gone: list[Path] = []
        while len(self._segments) > 1 and self._segments[0].live <= 0:
            seg = self._segments.pop(0)
            self._starts.pop(0)
            gone.append(seg.path)
        return gone

    def _fd(self, path: Path) -> int:
        fd = self._files.get(path)
        if fd is None:
            created = not path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._files[path] = fd
            if created:
                self._sync_dir()
            # only the newest file stays open
            for other in [p for p in self._files if p != path]:
                os.close(self._files.pop(other))
        return fd

    def _sync_dir(self) -> None:
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _write_batch(self, batch: list[tuple[Path, bytearray]], fsync: bool, obsolete: list[Path]) -> None:
        for path, data in batch:
            fd = self._fd(path)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if fsync:
                # chunks come one file after another: sync each before the next file is opened
                os.fdatasync(fd)
            else:
                self._dirty_since_sync.add(path)
        for path in obsolete:
            old = self._files.pop(path, None)
            if old is not None:
                os.close(old)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _sync_dirty(self) -> None:
        for path in list(self._dirty_since_sync):
            with contextlib.suppress(OSError):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        self._dirty_since_sync.clear()

    async def _sync_every(self) -> None:
        while True:
            await asyncio.sleep(self.options.sync_interval)
            if self._writer is None:
                await asyncio.to_thread(self._sync_dirty)

    # -- closing ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Write and fsync what is pending, then close the files."""
        if self._closed:
            return
        with contextlib.suppress(OSError):
            await self.flush()
        self._closed = True
        if self._syncer is not None:
            self._syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncer
        if self._writer is not None:
            await self._writer
        await asyncio.to_thread(self._close_files)

    def _close_files(self) -> None:
        for fd in self._files.values():
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.close(fd)
        self._files.clear()

    def destroy(self) -> None:
        """Delete every file of the store (the stream was deleted); the store is unusable afterwards."""
        super().destroy()
        self._closed = True
        if self._syncer is not None:
            self._syncer.cancel()
        self._pending.clear()
        for fd in self._files.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._files.clear()
        shutil.rmtree(self.directory, ignore_errors=True)
