"""The file store: records, recovery, torn tails, checksums, segment rotation and the fsync policies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from minga.broker.storage import FileStore, FileStoreOptions, FsyncPolicy, MemoryStore
from minga.broker.storage._record import DELETE, MSG, decode_records, encode_delete, encode_msg


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def truncate(path: Path, cut: int) -> int:
    """Cut ``cut`` bytes off the end of ``path``, as a crash in the middle of a write would; return the old size."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - cut)
    return size


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_records_round_trip() -> None:
    buf = encode_msg(7, 123, "orders.new", b"NATS/1.0\r\nA: b\r\n\r\n", b"payload") + encode_delete([1, 2])
    records, valid = decode_records(buf)
    assert valid == len(buf)
    assert [r.kind for r in records] == [MSG, DELETE]
    assert records[0].seq == 7 and records[0].subject == "orders.new" and records[0].payload == b"payload"
    assert records[0].headers == b"NATS/1.0\r\nA: b\r\n\r\n"
    assert records[1].seqs == (1, 2)


def test_decoding_stops_at_a_torn_or_corrupt_record() -> None:
    one = encode_msg(1, 1, "a", None, b"x" * 10)
    two = encode_msg(2, 2, "a", None, b"y" * 10)
    records, valid = decode_records(one + two[:-3])
    assert len(records) == 1 and valid == len(one)
    corrupt = bytearray(one + two)
    corrupt[len(one) + 12] ^= 0xFF  # flip a byte inside the second record's body
    records, valid = decode_records(bytes(corrupt))
    assert len(records) == 1 and valid == len(one)


def test_memory_store_sequences_removal_and_purge() -> None:
    store = MemoryStore()
    for i in range(5):
        store.append("s", None, str(i).encode(), i)
    assert (store.first_seq, store.last_seq, store.num_msgs) == (1, 5, 5)
    store.remove([1, 3])
    assert store.seqs() == [2, 4, 5] and store.count_from(3) == 2
    assert [m.seq for m in store.iter_from(3)] == [4, 5]
    store.purge()
    assert (store.first_seq, store.last_seq, store.num_msgs, store.num_bytes) == (6, 5, 0, 0)


async def test_file_store_recovers_messages_removals_and_purges(tmp_path: Path) -> None:
    store = await FileStore.open(tmp_path)
    for i in range(10):
        store.append(f"s.{i % 3}", None, f"m{i}".encode(), i)
    store.remove([2, 5])
    store.purge(3)
    await store.flush()
    await store.close()

    again = await FileStore.open(tmp_path)
    assert again.seqs() == [4, 6, 7, 8, 9, 10]
    assert again.get(4) is not None and again.get(4).payload == b"m3"  # type: ignore[union-attr]
    assert again.last_seq == 10
    nxt = again.append("s.x", None, b"new", 11)
    assert nxt.seq == 11
    await again.close()


async def test_empty_store_keeps_its_last_sequence_across_restart(tmp_path: Path) -> None:
    store = await FileStore.open(tmp_path)
    for i in range(3):
        store.append("s", None, b"x", i)
    store.purge()
    await store.close()
    again = await FileStore.open(tmp_path)
    assert (again.num_msgs, again.first_seq, again.last_seq) == (0, 4, 3)
    await again.close()


async def test_torn_tail_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    store = await FileStore.open(tmp_path)
    for i in range(20):
        store.append("s", None, b"z" * 100, i)
    await store.close()
    (seg,) = segments(tmp_path)
    size = truncate(seg, 37)  # a crash in the middle of the last record
    again = await FileStore.open(tmp_path)
    assert again.seqs() == list(range(1, 20))
    assert (await asyncio.to_thread(seg.stat)).st_size < size - 37  # the partial record was cut away
    assert again.append("s", None, b"after", 0).seq == 20
    await again.close()
    third = await FileStore.open(tmp_path)
    assert third.seqs() == list(range(1, 21))
    await third.close()


async def test_a_corrupt_record_ends_recovery_of_that_segment(tmp_path: Path) -> None:
    store = await FileStore.open(tmp_path)
    for i in range(5):
        store.append("s", None, b"p" * 50, i)
    await store.close()
    (seg,) = segments(tmp_path)
    rec = (await asyncio.to_thread(seg.stat)).st_size // 5
    flip_byte(seg, 3 * rec + 20)  # damage the fourth record
    again = await FileStore.open(tmp_path)
    assert again.seqs() == [1, 2, 3]
    await again.close()


async def test_segments_rotate_and_dead_segments_are_deleted(tmp_path: Path) -> None:
    store = await FileStore.open(tmp_path, FileStoreOptions(segment_bytes=1024))
    for i in range(100):
        store.append("s", None, b"q" * 100, i)
    await store.flush()
    assert len(segments(tmp_path)) > 5
    store.remove(range(1, 91))
    store.append("s", None, b"tail", 0)  # give the writer a new batch after the removals
    await store.flush()
    store.append("s", None, b"tail2", 0)
    await store.flush()
    remaining = len(segments(tmp_path))
    await store.close()
    again = await FileStore.open(tmp_path, FileStoreOptions(segment_bytes=1024))
    assert again.seqs() == [*range(91, 101), 101, 102]
    assert remaining < 5
    await again.close()


@pytest.mark.parametrize("policy", list(FsyncPolicy))
async def test_durable_callback_runs_after_the_write(tmp_path: Path, policy: FsyncPolicy) -> None:
    store = await FileStore.open(tmp_path, FileStoreOptions(fsync=policy, sync_interval=0.05))
    seen: list[tuple[int, BaseException | None]] = []
    for i in range(50):
        msg = store.append("s", None, b"d" * 10, i)
        store.when_durable(lambda err, seq=msg.seq: seen.append((seq, err)))
    await store.flush()
    assert [s for s, _ in seen] == list(range(1, 51)) and all(e is None for _, e in seen)
    (seg,) = segments(tmp_path)
    # what was acknowledged is in the file (readable by another process right now)
    records, _ = decode_records(await asyncio.to_thread(seg.read_bytes))
    assert len(records) == 50
    await store.close()


async def test_group_commit_batches_concurrent_writes(tmp_path: Path) -> None:
    store = await FileStore.open(tmp_path)
    batches: list[int] = []
    original = store._write_batch

    def counting(batch, fsync, obsolete):  # type: ignore[no-untyped-def]
        batches.append(sum(len(d) for _, d in batch))
        original(batch, fsync, obsolete)

    store._write_batch = counting  # type: ignore[method-assign]
    for i in range(500):
        store.append("s", None, b"g" * 10, i)
    await store.flush()
    (seg,) = segments(tmp_path)
    assert sum(batches) == (await asyncio.to_thread(seg.stat)).st_size
    assert len(batches) < 500  # many appends shared one write + fsync
    await store.close()
