"""The memory-bounded shuffle: map-side grouping, combining and spilling; reduce-side merging.

Map side: pairs are grouped by key in one dict; past the memory budget the combiner (when
the job has one) compacts the groups in place, and when that is not enough they are spilled:
split by partition, keys sorted, written as one run file whose index gives each partition's
byte range. Reduce side: a partition's runs are merged in memory when they fit the budget,
otherwise k-way merged from disk (in passes when there are more runs than ``FAN_IN``).

Run files are framed blocks: a 1-byte codec tag, a 4-byte little-endian length, and a
marshal (or, for types marshal cannot encode, pickle protocol 5) encoded pair of lists
``(keys, values)``: a run's (key, value) pairs in key order, a key repeated once per value.
Two flat lists encode and decode faster than a list of ``(key, [values])`` groups, and a key
with one value (the common case after combining) costs no list of its own.

The per-key work is done by C loops (``map``, ``sorted``, ``compress``...) wherever the data
allows: a word count's tasks handle hundreds of thousands of distinct keys each.
"""

from __future__ import annotations

import itertools
import marshal
import os
import pickle
import random
import struct
import sys
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import is_, itemgetter, mod, ne
from typing import IO, Any
from zlib import crc32

from minga.compute._api import stable_hash

__all__ = [
    "FAN_IN",
    "GROUP_CHUNK",
    "STREAM_VALUES",
    "MapCollector",
    "Segment",
    "iter_group_chunks",
    "iter_groups",
    "read_run_file",
    "write_pairs_file",
]

#: (path, offset, length, values) of one partition's run inside a spill file
Segment = tuple[str, int, int, int]
Grouper = Callable[[Any, Iterable[Any]], Iterable[tuple[Any, Any]]]
#: sorted distinct keys and, for each, a sequence (or an iterator) of its values
GroupChunk = tuple[list[Any], list[Iterable[Any]]]

FAN_IN = 48
GROUP_CHUNK = 8192  # keys handed to the reducer at once by iter_group_chunks
#: a key with more values than this, merged from disk, is handed over with an iterator
STREAM_VALUES = 1 << 16
_BLOCK = 16384  # pairs per encoded block
_HEAD = struct.Struct("<cI")
_MARSHAL, _PICKLE = b"M", b"P"
_KEY = itemgetter(0)
_VALUES = itemgetter(1)
_DICT_ITEMS: type = type({}.items())
_ENCODE_STR = str.encode
_ATOMS = frozenset({str, int, float, complex, bool, bytes, type(None)})
_SEQUENCES = frozenset({tuple, list, set, frozenset})
_MARSHAL_TYPES = _ATOMS | _SEQUENCES | {dict}
_MAX_DEPTH = 6  # deeper values are pickled rather than checked further
_REPEAT = itertools.repeat


def _consume(it: Iterable[Any]) -> None:
    deque(it, maxlen=0)


def _marshal_exact(objs: list[Any], depth: int = 0) -> bool:
    """Whether marshal gives ``objs`` back exactly: only exact atoms and containers of them.

    marshal refuses most other types, but it writes any object with a buffer (bytearray,
    array, a NumPy array) as bytes, and a container's elements are checked the same way.
    Each level is checked by C loops over the types."""
    types = set(map(type, objs))
    if types <= _ATOMS:
        return True
    if depth >= _MAX_DEPTH or not types <= _MARSHAL_TYPES:
        return False
    inner: list[Any] = []
    if types & _SEQUENCES:
        inner += itertools.chain.from_iterable(itertools.compress(objs, map(_SEQUENCES.__contains__, map(type, objs))))
    if dict in types:
        dicts = itertools.compress(objs, map(is_, map(type, objs), _REPEAT(dict)))
        inner += itertools.chain.from_iterable(map(dict.items, dicts))
    return _marshal_exact(inner, depth + 1)


def _encode(keys: list[Any], values: list[Any]) -> bytes:
    block = (keys, values)
    if _marshal_exact(keys) and _marshal_exact(values):
        body = marshal.dumps(block, 2)
        tag = _MARSHAL
    else:  # user classes, subclasses of str or int, NumPy arrays...: pickle keeps their types
        body = pickle.dumps(block, 5)
        tag = _PICKLE
    return _HEAD.pack(tag, len(body)) + body


def _write_blocks(f: IO[bytes], keys: list[Any], values: list[Any]) -> int:
    written = 0
    for i in range(0, len(keys), _BLOCK):
        data = _encode(keys[i : i + _BLOCK], values[i : i + _BLOCK])
        f.write(data)
        written += len(data)
    return written


def _read_blocks(f: IO[bytes], length: int) -> Iterator[tuple[list[Any], list[Any]]]:
    left = length
    while left > 0:
        head = f.read(_HEAD.size)
        tag, size = _HEAD.unpack(head)
        body = f.read(size)
        left -= _HEAD.size + size
        keys, values = marshal.loads(body) if tag == _MARSHAL else pickle.loads(body)
        yield keys, values


def _read_segment_blocks(seg: Segment) -> Iterator[tuple[list[Any], list[Any]]]:
    path, offset, length, _ = seg
    with open(path, "rb") as f:
        f.seek(offset)
        yield from _read_blocks(f, length)


def write_pairs_file(path: str, pairs: list[tuple[Any, Any]]) -> int:
    """Write (key, value) pairs as a run file (the input of a job's next step); returns bytes."""
    with open(path, "wb") as f:
        return _write_blocks(f, list(map(_KEY, pairs)), list(map(_VALUES, pairs)))


def read_run_file(path: str) -> Iterator[tuple[list[tuple[Any, Any]], int]]:
    """Blocks of (key, value) pairs of a file written by :func:`write_pairs_file`, with their sizes."""
    length = os.path.getsize(path)
    with open(path, "rb") as f:
        before = 0
        for keys, values in _read_blocks(f, length):
            now = f.tell()
            yield list(zip(keys, values, strict=True)), now - before
            before = now


def _flatten(keys: list[Any], groups: list[list[Any]]) -> tuple[list[Any], list[Any]]:
    """The flat (keys, values) lists of ``groups`` (the values of each key, in key order)."""
    lengths = list(map(len, groups))
    if lengths.count(1) == len(lengths):
        return keys, list(map(_KEY, groups))
    flat_keys = list(itertools.chain.from_iterable(map(_REPEAT, keys, lengths)))
    return flat_keys, list(itertools.chain.from_iterable(groups))


class MapCollector:
    """Collects one map task's output pairs within ``budget`` bytes of memory.

    ``partition(key, partitions)`` returns the reduce partition (None: the default stable hash);
    ``combine`` may be None. With ``chaos``
    (a seeded Random) the combiner runs 0, 1 or several times on random subsets of values.
    """

    def __init__(
        self,
        partitions: int,
        partition: Callable[[Any, int], int] | None,
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
        #: a mapping emitted whole (keys distinct, one value each), held as it is until spilled
        self.single: dict[Any, Any] | None = None
        self.records = 0  # values held in self.groups or self.single
        self.segments: list[list[Segment]] = [[] for _ in range(partitions)]
        self.spills = 0
        self.output_records = 0
        self._key_size = 0
        self._value_size = 0
        self._check_every = 64  # until the first records have been measured

    def add(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        if self.chaos is None and not self.groups and self._add_distinct(pairs):
            return
        if self.single is not None:  # a key repeats: group everything held so far
            self.groups = {k: [v] for k, v in self.single.items()}
            self.single = None
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

    def _add_distinct(self, pairs: Iterable[tuple[Any, Any]]) -> bool:
        """Hold ``pairs`` in ``self.single``, one value per key with no list per key, when
        they are a mapping's items or a list whose keys are distinct and new; else False.

        A mapper that combines in memory emits its dict from teardown, and many mappers emit
        lists of distinct keys (a sort, an index of records): their keys are then grouped by C
        loops. A mapping is copied, so the mapper may change it afterwards."""
        if type(pairs) is _DICT_ITEMS:
            batch = dict(pairs)
        elif type(pairs) is list:
            batch = dict(pairs)
            if len(batch) != len(pairs):
                return False
        else:
            return False
        if self.single is None:
            self.single = batch
        elif self.single.keys().isdisjoint(batch):
            self.single.update(batch)
        else:
            return False
        n = len(batch)
        self.records += n
        self.output_records += n
        self._maybe_spill()
        return True

    def _held(self) -> dict[Any, Any]:
        return self.single if self.single is not None else self.groups

    def _estimate(self) -> int:
        held = self._held()
        if not self._key_size and held:
            sample = list(itertools.islice(held.items(), 64))
            self._key_size = 120 + sum(sys.getsizeof(k) for k, _ in sample) // len(sample)
            if self.single is not None:
                self._value_size = 8 + sum(sys.getsizeof(v) for _, v in sample) // len(sample)
            else:
                self._value_size = 8 + sum(sys.getsizeof(vs[0]) for _, vs in sample) // len(sample)
            # look again after about an eighth of the budget, so big records cannot overshoot it
            per_record = self._key_size + self._value_size
            self._check_every = max(1, min(4096, self.budget // (8 * per_record)))
        return len(held) * self._key_size + self.records * self._value_size

    def _maybe_spill(self) -> None:
        if self._estimate() <= self.budget:
            return
        if self.combine is not None and self.single is None and self.records > len(self.groups) * 1.5:
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

    def _partitions(self, keys: list[Any]) -> list[int]:
        n = self.partitions
        if self.partition is not None:
            parts = list(map(self.partition, keys, _REPEAT(n)))
            if parts and not (min(parts) >= 0 and max(parts) < n):
                bad = next(i for i, p in enumerate(parts) if not 0 <= p < n)
                raise ValueError(f"partition({keys[bad]!r}) returned {parts[bad]}, outside 0..{n - 1}")
            return parts
        # the default partitioner, inlined: a crc32 of the UTF-8 key (see stable_hash); when
        # every key is a plain str (the common case) the whole pass runs in C
        if set(map(type, keys)) == {str}:
            encoded = map(_ENCODE_STR, keys, _REPEAT("utf-8"), _REPEAT("surrogatepass"))
            return list(map(mod, map(crc32, encoded), _REPEAT(n)))
        return [stable_hash(k) % n for k in keys]

    def spill(self) -> None:
        """Write the held pairs as one sorted run per partition; nothing is held afterwards."""
        single = self.single
        if single is None:
            if not self.groups:
                return
            if self.combine is not None and (self.chaos is not None or self.records > len(self.groups)):
                self._combine_in_place()
        held = self._held()
        n = self.partitions
        # partition the keys, then sort each partition's keys and look their values up,
        # every per-key step a C loop
        parts: list[list[Any]]
        if n == 1:
            parts = [list(held)]
        else:
            keys = list(held)
            parts = [[] for _ in range(n)]
            _consume(map(list.append, map(parts.__getitem__, self._partitions(keys)), keys))
            del keys
        path = os.path.join(self.spill_dir, f"spill-{self.spills:04d}.run")
        offset = 0
        with open(path, "wb") as f:
            for p, pkeys in enumerate(parts):
                if not pkeys:
                    continue
                pkeys.sort()
                if single is not None:
                    flat_keys, flat_values = pkeys, list(map(single.__getitem__, pkeys))
                else:
                    flat_keys, flat_values = _flatten(pkeys, list(map(held.__getitem__, pkeys)))
                length = _write_blocks(f, flat_keys, flat_values)
                self.segments[p].append((path, offset, length, len(flat_values)))
                offset += length
        _bump(self.counters, "spilled records", self.records)
        self.spills += 1
        self.groups.clear()
        self.single = None
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


def _group_in_memory(keys: list[Any], values: list[Any]) -> GroupChunk:
    """Group flat pairs whose keys are a concatenation of sorted runs: the sorted distinct
    keys and a list of the values of each. All per-pair work runs in C: an index sort (a
    merge of the runs), gathers, and slices between the positions where the key changes."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    keys = list(map(keys.__getitem__, order))
    values = list(map(values.__getitem__, order))
    del order
    n = len(keys)
    if n == 0:
        return [], []
    starts = [0, *itertools.compress(range(1, n), map(ne, itertools.islice(keys, 1, None), keys))]
    if len(starts) == n:  # every key once: one-value tuples, no slicing
        return keys, list(zip(values))
    distinct = list(map(keys.__getitem__, starts))
    ends = starts[1:]
    ends.append(n)
    return distinct, list(map(values.__getitem__, map(slice, starts, ends)))


def iter_group_chunks(
    segments: Sequence[Segment], budget: int, tmp_dir: str, counters: dict[tuple[str, str], int] | None = None
) -> Iterator[GroupChunk]:
    """The keys of a partition once each, in sorted order, in chunks of ``(keys, values)``:
    ``values[i]`` holds every value of ``keys[i]`` from every run. Take a chunk's values
    before asking for the next chunk: a key streamed from disk has an iterator over the merge.

    Runs whose encoded size fits in a quarter of ``budget`` are read whole and grouped in
    memory; larger inputs are k-way merged from disk with at most ``FAN_IN`` runs open at
    once (in passes when there are more), a block of each run at a time. Chunks hold about
    ``GROUP_CHUNK`` keys with lists of values, except that a key merged from disk with more
    than ``STREAM_VALUES`` values comes alone with an iterator, never held whole.
    """
    total = sum(s[2] for s in segments)
    counters = counters if counters is not None else {}
    _bump(counters, "reduce runs", len(segments))
    if total * 4 <= budget:
        keys: list[Any] = []
        values: list[Any] = []
        for seg in segments:
            for k, v in _read_segment_blocks(seg):
                keys += k
                values += v
        distinct, groups = _group_in_memory(keys, values)
        del keys, values
        for i in range(0, len(distinct), GROUP_CHUNK):
            yield distinct[i : i + GROUP_CHUNK], groups[i : i + GROUP_CHUNK]
        return
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
    yield from _group_merged(_merged_chunks(runs))


def _merged_chunks(runs: Sequence[Segment]) -> Iterator[tuple[list[Any], list[Any]]]:
    """The pairs of sorted runs, merged: flat ``(keys, values)`` chunks, each sorted, and no
    key of a chunk greater than a key of the next. One block of each run is held at a time;
    each chunk is what every run holds up to the smallest last key held, merged by a C sort."""
    n = len(runs)
    readers = [_read_segment_blocks(r) for r in runs]
    held_keys: list[list[Any]] = [[] for _ in range(n)]
    held_values: list[list[Any]] = [[] for _ in range(n)]
    pos = [0] * n
    more = [True] * n
    while True:
        for i in range(n):
            while more[i] and pos[i] >= len(held_keys[i]):  # (a block may be empty)
                block = next(readers[i], None)
                if block is None:
                    more[i] = False
                else:
                    held_keys[i], held_values[i] = block
                    pos[i] = 0
        live = [i for i in range(n) if more[i]]  # exactly the runs holding pairs
        if not live:
            return
        # every run's pairs up to the smallest last key held: what no unread block can precede
        bound = min(held_keys[i][-1] for i in live)
        keys: list[Any] = []
        values: list[Any] = []
        pieces = 0
        for i in live:
            cut = bisect_right(held_keys[i], bound, pos[i])
            if cut > pos[i]:
                keys += held_keys[i][pos[i] : cut]
                values += held_values[i][pos[i] : cut]
                pos[i] = cut
                pieces += 1
        if pieces > 1:
            order = sorted(range(len(keys)), key=keys.__getitem__)
            keys = list(map(keys.__getitem__, order))
            values = list(map(values.__getitem__, order))
        yield keys, values


def _group_merged(chunks: Iterator[tuple[list[Any], list[Any]]]) -> Iterator[GroupChunk]:
    """Group merged chunks (see :func:`_merged_chunks`) into chunks of distinct keys with
    lists of their values; a key's values may span chunks. A key with more than
    ``STREAM_VALUES`` values comes alone, with an iterator that reads on through the merge,
    so no key's values need to fit in memory."""
    pushed: list[tuple[list[Any], list[Any]]] = []  # what a streamed key's iterator read too far

    def next_chunk() -> tuple[list[Any], list[Any]] | None:
        return pushed.pop() if pushed else next(chunks, None)

    def stream(key: Any, first: list[Any]) -> Iterator[Any]:
        yield from first
        while (chunk := next_chunk()) is not None:
            keys, values = chunk
            cut = bisect_right(keys, key)  # no key of a later chunk is smaller
            yield from values[:cut]
            if cut < len(keys):
                pushed.append((keys[cut:], values[cut:]))
                return

    out_keys: list[Any] = []
    out_values: list[Any] = []
    carry: tuple[Any, list[Any]] | None = None  # the last key seen, which may go on
    while (chunk := next_chunk()) is not None:
        keys, values = chunk
        n = len(keys)
        if not n:
            continue
        starts = [0, *itertools.compress(range(1, n), map(ne, itertools.islice(keys, 1, None), keys))]
        ends = starts[1:]
        ends.append(n)
        group_keys = list(map(keys.__getitem__, starts))
        groups: list[Any] = list(map(values.__getitem__, map(slice, starts, ends)))
        if carry is not None:
            if group_keys[0] == carry[0]:
                carry[1].extend(groups[0])
                del group_keys[0], groups[0]
            if not group_keys:  # the carried key fills the whole chunk
                if len(carry[1]) > STREAM_VALUES:
                    if out_keys:
                        yield out_keys, out_values
                        out_keys, out_values = [], []
                    values_iter = stream(carry[0], carry[1])
                    yield [carry[0]], [values_iter]
                    _consume(values_iter)  # what reduce left unread
                    carry = None
                continue
            out_keys.append(carry[0])
            out_values.append(carry[1])
        carry = (group_keys.pop(), groups.pop())
        out_keys += group_keys
        out_values += groups
        if len(out_keys) >= GROUP_CHUNK:
            yield out_keys, out_values
            out_keys, out_values = [], []
    if carry is not None:
        out_keys.append(carry[0])
        out_values.append(carry[1])
    if out_keys:
        yield out_keys, out_values


def iter_groups(
    segments: Sequence[Segment], budget: int, tmp_dir: str, counters: dict[tuple[str, str], int] | None = None
) -> Iterator[tuple[Any, Iterator[Any]]]:
    """Each key of a partition once, in sorted order, with an iterator over all its values
    from every run (valid until the next key is taken); see :func:`iter_group_chunks`."""
    for keys, values in iter_group_chunks(segments, budget, tmp_dir, counters):
        yield from zip(keys, map(iter, values), strict=True)


def _merge_to_file(runs: Sequence[Segment], path: str) -> Segment:
    length = 0
    count = 0
    with open(path, "wb") as f:
        for keys, values in _merged_chunks(runs):
            length += _write_blocks(f, keys, values)
            count += len(values)
    return (path, 0, length, count)
