"""The memory-bounded shuffle: map-side grouping, combining and spilling; reduce-side merging.

Map side: pairs are grouped by key in one dict; past the memory budget the combiner (when
the job has one) compacts the groups in place, and when that is not enough they are spilled:
split by partition, keys sorted, written as one run file whose index gives each partition's
byte range. Reduce side: a partition's runs are merged in memory when they fit the budget,
otherwise k-way merged from disk (in passes when there are more runs than ``FAN_IN``).

Run files are framed blocks: a 1-byte codec tag, a 4-byte little-endian length, and a
marshal (or, for types marshal cannot encode, pickle protocol 5) encoded list.
"""

from __future__ import annotations

import heapq
import itertools
import marshal
import os
import pickle
import random
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import IO, Any
from zlib import crc32

from minga.compute._api import stable_hash

__all__ = [
    "FAN_IN",
    "MapCollector",
    "Segment",
    "iter_groups",
    "read_run_file",
    "write_pairs_file",
]

#: (path, offset, length, values) of one partition's run inside a spill file
Segment = tuple[str, int, int, int]
Grouper = Callable[[Any, Iterable[Any]], Iterable[tuple[Any, Any]]]

FAN_IN = 48
_BLOCK = 8192  # groups per encoded block
_HEAD = struct.Struct("<cI")
_MARSHAL, _PICKLE = b"M", b"P"
_KEY = itemgetter(0)
_VALUES = itemgetter(1)
_DICT_ITEMS: type = type({}.items())


def _encode(items: list[Any]) -> bytes:
    try:
        body = marshal.dumps(items, 2)
        tag = _MARSHAL
    except ValueError:  # a type marshal does not know: user classes, sets of tuples...
        body = pickle.dumps(items, 5)
        tag = _PICKLE
    return _HEAD.pack(tag, len(body)) + body


def _write_blocks(f: IO[bytes], items: list[Any]) -> int:
    written = 0
    for i in range(0, len(items), _BLOCK):
        data = _encode(items[i : i + _BLOCK])
        f.write(data)
        written += len(data)
    return written


def _read_blocks(f: IO[bytes], length: int) -> Iterator[list[Any]]:
    left = length
    while left > 0:
        head = f.read(_HEAD.size)
        tag, size = _HEAD.unpack(head)
        body = f.read(size)
        left -= _HEAD.size + size
        yield marshal.loads(body) if tag == _MARSHAL else pickle.loads(body)


def read_segment(seg: Segment) -> Iterator[tuple[Any, list[Any]]]:
    """The (key, values) groups of one run, in key order."""
    path, offset, length, _ = seg
    with open(path, "rb") as f:
        f.seek(offset)
        for block in _read_blocks(f, length):
            yield from block


def write_pairs_file(path: str, pairs: list[tuple[Any, Any]]) -> int:
    """Write (key, value) pairs as a run file (the input of a job's next step); returns bytes."""
    with open(path, "wb") as f:
        return _write_blocks(f, pairs)


def read_run_file(path: str) -> Iterator[tuple[list[tuple[Any, Any]], int]]:
    """Blocks of (key, value) pairs of a file written by :func:`write_pairs_file`, with their sizes."""
    length = os.path.getsize(path)
    with open(path, "rb") as f:
        before = 0
        for block in _read_blocks(f, length):
            now = f.tell()
            yield block, now - before
            before = now


class MapCollector:
    """Collects one map task's output pairs within ``budget`` bytes of memory.

    ``partition(key)`` returns the reduce partition (None: the default stable hash);
    ``combine`` may be None. With ``chaos``
    (a seeded Random) the combiner runs 0, 1 or several times on random subsets of values.
    """

    def __init__(
        self,
        partitions: int,
        partition: Callable[[Any], int] | None,
        combine: Grouper | None,
        budget: int,
        spill_dir: str,
        counters: dict[tuple[str, str], int],
        chaos: random.Random | None = None,
    ) -> None:
        self.partitions = partitions
        self.partition = partition
        self.combine = combine
        self.budget = max(1, budget)
        self.spill_dir = spill_dir
        self.counters = counters
        self.chaos = chaos
        self.groups: dict[Any, list[Any]] = {}
        self.records = 0  # values held in self.groups
        self.segments: list[list[Segment]] = [[] for _ in range(partitions)]
        self.spills = 0
        self.output_records = 0
        self._key_size = 0
        self._value_size = 0
        self._check_every = 64  # until the first records have been measured

    def add(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        if type(pairs) is _DICT_ITEMS and not self.groups:
            # a mapping's items (a mapper that combines in memory, then emits its dict from
            # teardown): the keys are distinct, so the groups are built in one pass with no
            # lookups; the mapping is already held in full, so the budget is checked once after
            self.groups = {k: [v] for k, v in pairs}
            n = len(self.groups)
            self.records += n
            self.output_records += n
            self._maybe_spill()
            return
        groups = self.groups
        get = groups.get
        n = 0
        check = self._check_every
        for key, value in pairs:
            values = get(key)
            if values is None:
                groups[key] = [value]
            else:
                values.append(value)
            n += 1
            if n >= check:
                self.records += n
                self.output_records += n
                n = 0
                self._maybe_spill()
        self.records += n
        self.output_records += n
        self._maybe_spill()

    def _estimate(self) -> int:
        if not self._key_size and self.groups:
            sample = list(itertools.islice(self.groups.items(), 64))
            self._key_size = 120 + sum(sys.getsizeof(k) for k, _ in sample) // len(sample)
            self._value_size = 8 + sum(sys.getsizeof(vs[0]) for _, vs in sample) // len(sample)
            # look again after about an eighth of the budget, so big records cannot overshoot it
            per_record = self._key_size + self._value_size
            self._check_every = max(1, min(4096, self.budget // (8 * per_record)))
        return len(self.groups) * self._key_size + self.records * self._value_size

    def _maybe_spill(self) -> None:
        if self._estimate() <= self.budget:
            return
        if self.combine is not None and self.records > len(self.groups) * 1.5:
            self._combine_in_place()
            if self._estimate() <= self.budget // 2:
                return
        self.spill()

    def _combine_in_place(self) -> None:
        combine = self.combine
        assert combine is not None
        rng = self.chaos
        new: dict[Any, list[Any]] = {}
        records = 0
        cin = cout = 0
        for key, values in self.groups.items():
            if rng is not None:
                out = _chaos_combine(combine, key, values, rng)
                cin += len(values)
            elif len(values) == 1:
                out = [(key, values[0])]
            else:
                cin += len(values)
                out = list(combine(key, values) or ())
                cout += len(out)
            for k2, v2 in out:
                lst = new.get(k2)
                if lst is None:
                    new[k2] = [v2]
                else:
                    lst.append(v2)
                records += 1
        if rng is not None:
            cout = records
        self.groups.clear()
        self.groups.update(new)
        self.records = records
        _bump(self.counters, "combine input records", cin)
        _bump(self.counters, "combine output records", cout)

    def _partitions(self) -> list[int]:
        n = self.partitions
        keys = self.groups
        if self.partition is not None:
            return list(map(self.partition, keys))
        # the default partitioner, inlined: a crc32 of the UTF-8 key (see stable_hash); when
        # every key is a plain str (the common case) the whole pass runs in C
        if set(map(type, keys)) == {str}:
            encoded = map(str.encode, keys, itertools.repeat("utf-8"), itertools.repeat("surrogatepass"))
            return [h % n for h in map(crc32, encoded)]
        return [stable_hash(k) % n for k in keys]

    def spill(self) -> None:
        """Write the held groups as one sorted run per partition; nothing is held afterwards."""
        if not self.groups:
            return
        if self.combine is not None and (self.chaos is not None or self.records > len(self.groups)):
            self._combine_in_place()
        n = self.partitions
        groups = self.groups
        # partition and sort the (key, values) items themselves: looking each sorted key up
        # again in a large dict costs as much as the sort
        parts: list[list[Any]]
        if n == 1:
            parts = [list(groups.items())]
        else:
            parts = [[] for _ in range(n)]
            appends = [p.append for p in parts]
            if self.partition is None:  # in range by construction
                for item, p in zip(groups.items(), self._partitions(), strict=True):
                    appends[p](item)
            else:
                for item, p in zip(groups.items(), self._partitions(), strict=True):
                    if not 0 <= p < n:
                        raise ValueError(f"partition({item[0]!r}) returned {p}, outside 0..{n - 1}")
                    appends[p](item)
        path = os.path.join(self.spill_dir, f"spill-{self.spills:04d}.run")
        offset = 0
        with open(path, "wb") as f:
            for p, items in enumerate(parts):
                if not items:
                    continue
                items.sort(key=_KEY)
                length = _write_blocks(f, items)
                self.segments[p].append((path, offset, length, sum(map(len, map(_VALUES, items)))))
                offset += length
        _bump(self.counters, "spilled records", self.records)
        self.spills += 1
        self.groups.clear()
        self.records = 0


def _chaos_combine(
    combine: Grouper, key: Any, values: list[Any], rng: random.Random
) -> list[tuple[Any, Any]]:
    """Run the combiner 0, 1 or several times, each time on random subsets of the values."""
    out = [(key, v) for v in values]
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        vals = [v for _, v in out]
        rng.shuffle(vals)
        cuts = (
            sorted(rng.sample(range(1, len(vals)), min(len(vals) - 1, rng.randint(0, 2))))
            if len(vals) > 1
            else []
        )
        out = []
        for a, b in itertools.pairwise([0, *cuts, len(vals)]):
            out += list(combine(key, vals[a:b]) or ())
    return out


def _bump(counters: dict[tuple[str, str], int], name: str, n: int) -> None:
    if n:
        k = ("minga", name)
        counters[k] = counters.get(k, 0) + n


def _read_segment_blocks(seg: Segment) -> Iterator[list[Any]]:
    path, offset, length, _ = seg
    with open(path, "rb") as f:
        f.seek(offset)
        yield from _read_blocks(f, length)


def iter_groups(
    segments: Sequence[Segment], budget: int, tmp_dir: str, counters: dict[tuple[str, str], int] | None = None
) -> Iterator[tuple[Any, Iterator[Any]]]:
    """Each key of a partition once, in sorted order, with an iterator over all its values
    from every run (valid until the next key is taken).

    Runs whose encoded size fits in a quarter of ``budget`` are read whole and sorted together
    (each run is sorted, so the sort merges them in C); larger inputs are k-way merged from
    disk with at most ``FAN_IN`` runs open at once. Either way the grouping runs in C.
    """
    total = sum(s[2] for s in segments)
    counters = counters if counters is not None else {}
    _bump(counters, "reduce runs", len(segments))
    if total * 4 <= budget:
        items: list[tuple[Any, list[Any]]] = []
        for seg in segments:
            for block in _read_segment_blocks(seg):
                items += block
        items.sort(key=_KEY)
        stream: Iterable[tuple[Any, list[Any]]] = items
    else:
        runs = list(segments)
        passes = 0
        while len(runs) > FAN_IN:
            merged_runs: list[Segment] = []
            for i in range(0, len(runs), FAN_IN):
                path = os.path.join(tmp_dir, f"merge-{passes}-{i // FAN_IN}.run")
                merged_runs.append(_merge_to_file(runs[i : i + FAN_IN], path))
            runs = merged_runs
            passes += 1
            _bump(counters, "reduce merge passes", 1)
        stream = heapq.merge(*(read_segment(r) for r in runs), key=_KEY)
    for key, group in itertools.groupby(stream, key=_KEY):
        yield key, itertools.chain.from_iterable(map(_VALUES, group))


def _merge_to_file(runs: Sequence[Segment], path: str) -> Segment:
    values = 0
    length = 0
    buf: list[Any] = []
    with open(path, "wb") as f:
        merged = heapq.merge(*(read_segment(r) for r in runs), key=_KEY)
        for key, group in itertools.groupby(merged, key=_KEY):
            vs = [v for _, chunk in group for v in chunk]
            values += len(vs)
            buf.append((key, vs))
            if len(buf) >= _BLOCK:
                length += _write_blocks(f, buf)
                buf = []
        length += _write_blocks(f, buf)
    return (path, 0, length, values)
