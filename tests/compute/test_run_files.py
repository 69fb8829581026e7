"""Run files, spills and merges of the shuffle, and the bulk paths of part files, checked exactly."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minga.compute import stable_hash
from minga.compute._outputs import PartWriter, read_output
from minga.compute._shuffle import (
    _BLOCK,
    STREAM_VALUES,
    MapCollector,
    iter_group_chunks,
    iter_groups,
    read_run_file,
    write_pairs_file,
)


@dataclass(frozen=True)
class Point:
    """A user class: marshal cannot encode it, so its blocks fall back to pickle."""

    x: int
    y: int


VALUES: list[Any] = [
    0, -1, 2**70, True, False, None, 1.5, float("inf"), -0.0, 3 + 4j, "", "word", "\u00e9\u4e2d\U0001f600",
    "line\nbreak\ttab\"quote\\", b"", b"\x00\xff", bytearray(b"ab"), (), (1, "a", (2.0, None)), [], [1, [2, [3]]],
    {"a": 1, "b": [2]}, {1, 2}, frozenset({"x"}), Decimal("1.10"), Fraction(1, 3), Point(1, 2),
]  # fmt: skip


def _groups_of(chunks: Iterable[tuple[list[Any], list[Iterable[Any]]]]) -> list[tuple[Any, list[Any]]]:
    return [(k, list(vs)) for keys, values in chunks for k, vs in zip(keys, values, strict=True)]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_a_run_file_round_trips_every_value_type(tmp_path: Path, value: Any) -> None:
    pairs = [(f"k{i:03d}", value) for i in range(3)] + [(("t", 1), value), (7, value)]
    path = str(tmp_path / "p.run")
    write_pairs_file(path, pairs)
    got = [p for block, _ in read_run_file(path) for p in block]
    assert got == pairs
    assert all(type(v) is type(value) for _, v in got)


def test_values_with_a_buffer_keep_their_type(tmp_path: Path) -> None:
    # marshal would write these as bytes: they go to pickle, nested ones included
    np = pytest.importorskip("numpy")  # minga[parallel]: `make test` installs it
    pairs = [("a", np.arange(3)), ("b", (1, [bytearray(b"x")])), ("c", {"k": np.float32(1.5)})]
    path = str(tmp_path / "p.run")
    write_pairs_file(path, pairs)
    (ka, a), (kb, b), (kc, c) = (p for block, _ in read_run_file(path) for p in block)
    assert (ka, kb, kc) == ("a", "b", "c")
    assert type(a) is np.ndarray and a.tolist() == [0, 1, 2]
    assert b == (1, [bytearray(b"x")]) and type(b[1][0]) is bytearray
    assert type(c["k"]) is np.float32


def test_run_files_keep_pairs_across_blocks_and_report_their_sizes(tmp_path: Path) -> None:
    pairs = [(f"k{i % 1000:04d}", i) for i in range(2 * _BLOCK + 5)]
    path = tmp_path / "p.run"
    written = write_pairs_file(str(path), pairs)
    blocks = list(read_run_file(str(path)))
    assert [p for block, _ in blocks for p in block] == pairs
    assert [len(block) for block, _ in blocks] == [_BLOCK, _BLOCK, 5]
    assert sum(n for _, n in blocks) == written == path.stat().st_size


def _sum(key: Any, values: Iterable[int]) -> Iterator[tuple[Any, int]]:
    yield key, sum(values)


def _collect(
    tmp_path: Path, batches: list[Any], *, partitions: int, budget: int, combine: Any = None
) -> MapCollector:
    spill_dir = tmp_path / "spills"
    spill_dir.mkdir(exist_ok=True)
    collector = MapCollector(partitions, None, combine, budget, str(spill_dir), {})
    for batch in batches:
        collector.add(batch)
    collector.spill()
    return collector


@pytest.mark.parametrize("budget", [1 << 30, 1 << 12], ids=["in-memory", "from-disk"])
@pytest.mark.parametrize("partitions", [1, 3])
def test_spills_and_merges_give_every_value_of_every_key_once(
    tmp_path: Path, budget: int, partitions: int
) -> None:
    rng = random.Random(3)
    pairs = [
        (rng.choice(["a", "b", "\u00e9", "zz"]) + str(rng.randrange(300)), rng.randrange(10))
        for _ in range(20_000)
    ]
    pairs += [("hot", i) for i in range(2 * _BLOCK + 3)]  # one key's values span several blocks
    collector = _collect(
        tmp_path,
        [pairs[i : i + 997] for i in range(0, len(pairs), 997)],
        partitions=partitions,
        budget=budget,
    )
    if budget < 1 << 20:
        assert collector.spills > 10
    expected: dict[str, list[int]] = {}
    for k, v in pairs:
        expected.setdefault(k, []).append(v)
    counters: dict[tuple[str, str], int] = {}
    seen: dict[str, list[int]] = {}
    for p, segments in enumerate(collector.segments):
        assert sum(s[3] for s in segments) == sum(
            len(vs) for k, vs in expected.items() if _part(k, partitions) == p
        )
        groups = _groups_of(iter_group_chunks(segments, budget, str(tmp_path), counters))
        keys = [k for k, _ in groups]
        assert keys == sorted(set(keys))  # each key once, sorted within the partition
        for k, vs in groups:
            assert _part(k, partitions) == p
            seen[k] = vs
    assert {k: sorted(v) for k, v in seen.items()} == {k: sorted(v) for k, v in expected.items()}
    if budget < 1 << 20:
        assert counters[("minga", "reduce merge passes")] >= 1


def _part(key: str, partitions: int) -> int:
    return stable_hash(key) % partitions


def test_a_whole_mapping_is_spilled_without_lists_and_merges_with_later_pairs(tmp_path: Path) -> None:
    counts = {f"w{i}": i for i in range(5000)}
    collector = _collect(
        tmp_path, [counts.items(), [("w1", 10), ("new", 1)]], partitions=2, budget=1 << 30, combine=_sum
    )
    got = dict((k, sum(vs)) for k, vs in _groups_of(
        chunk for segs in collector.segments for chunk in iter_group_chunks(segs, 1 << 30, str(tmp_path))
    ))  # fmt: skip
    assert got == {**counts, "w1": 11, "new": 1}
    assert collector.output_records == 5002


def test_a_mapping_changed_after_it_was_emitted_is_spilled_as_emitted(tmp_path: Path) -> None:
    counts = {"a": 1, "b": 2}
    collector = MapCollector(1, None, None, 1 << 30, str(tmp_path), {})
    collector.add(counts.items())
    counts["a"] = 100
    counts["c"] = 3
    collector.spill()
    assert _groups_of(iter_group_chunks(collector.segments[0], 1 << 30, str(tmp_path))) == [
        ("a", [1]),
        ("b", [2]),
    ]


def test_iter_groups_gives_an_iterator_per_key(tmp_path: Path) -> None:
    collector = _collect(tmp_path, [[("b", 1), ("a", 2), ("b", 3)]], partitions=1, budget=1 << 30)
    groups = list(iter_groups(collector.segments[0], 1 << 30, str(tmp_path)))
    assert [k for k, _ in groups] == ["a", "b"]
    assert [sorted(vs) for _, vs in groups] == [[2], [1, 3]]
    assert all(iter(vs) is vs for _, vs in groups)


_keys = st.one_of(st.text(max_size=6), st.integers(-5, 5).map(str))
_values = st.one_of(
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(_keys, _values), max_size=60), fmt=st.sampled_from(["jsonl", "tsv"]))
def test_writing_pairs_at_once_writes_what_writing_them_one_by_one_does(
    tmp_path_factory: Any, pairs: list[tuple[str, Any]], fmt: str
) -> None:
    d = tmp_path_factory.mktemp("w")
    one, many = PartWriter(str(d / f"one.{fmt}"), fmt), PartWriter(str(d / f"many.{fmt}"), fmt)
    for k, v in pairs:
        one.write(k, v)
    many.write_pairs(pairs[:7])
    many.write_pairs(iter(pairs[7:]))
    assert one.close() == many.close()
    assert (d / f"one.{fmt}").read_bytes() == (d / f"many.{fmt}").read_bytes()
    assert one.records == many.records == len(pairs)


def test_plain_pairs_take_the_bulk_path_and_stay_json(tmp_path: Path) -> None:
    pairs = [("a\nb", 1), ("\u00e9", -2), ('q"', 2**80), ("", 0)]
    w = PartWriter(str(tmp_path / "part-00000.jsonl"), "jsonl")
    w.write_pairs(pairs)
    w.write_pairs([("t", True)])  # a bool is JSON's true, not 1: the per-pair path
    w.close()
    lines = (tmp_path / "part-00000.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [[k, v] for k, v in [*pairs, ("t", True)]]
    assert list(read_output(tmp_path)) == [*pairs, ("t", True)]


def test_reading_output_parses_many_lines_at_once_and_still_reports_a_broken_line(tmp_path: Path) -> None:
    rows = [[f"k{i}", {"n": i, "s": "x\ny"}] for i in range(100_000)]
    (tmp_path / "part-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert list(read_output(tmp_path)) == [tuple(r) for r in rows]
    (tmp_path / "part-00001.jsonl").write_text('["a", 1]\n\n["b", 2]\n', encoding="utf-8")
    with pytest.raises(json.JSONDecodeError):
        list(read_output(tmp_path))


def test_a_key_with_more_values_than_memory_should_hold_is_streamed_from_disk(tmp_path: Path) -> None:
    n = STREAM_VALUES + 5000
    pairs = [("a", -1), *(("hot", i) for i in range(n)), ("z", -2)]
    rng = random.Random(1)
    rng.shuffle(pairs)
    collector = _collect(
        tmp_path, [pairs[i : i + 1000] for i in range(0, len(pairs), 1000)], partitions=1, budget=1 << 14
    )
    segments = collector.segments[0]
    assert sum(s[2] for s in segments) * 4 > 1 << 14  # merged from disk
    chunks = iter_group_chunks(segments, 1 << 14, str(tmp_path))
    seen: dict[str, Any] = {}
    for keys, values in chunks:
        for k, vs in zip(keys, values, strict=True):
            if k == "hot":
                assert not isinstance(vs, list)  # an iterator over the merge, not a list
                seen[k] = sorted(vs)
            else:
                seen[k] = list(vs)
    assert seen == {"a": [-1], "hot": list(range(n)), "z": [-2]}
    # a reducer that reads none of a streamed key's values still gets every later key
    skipped = [k for keys, _ in iter_group_chunks(segments, 1 << 14, str(tmp_path)) for k in keys]
    assert skipped == ["a", "hot", "z"]


@pytest.mark.parametrize("budget", [1 << 30, 1 << 13], ids=["held", "spilled"])
def test_lists_of_distinct_keys_are_held_whole_until_a_key_repeats(tmp_path: Path, budget: int) -> None:
    counters: dict[tuple[str, str], int] = {}
    collector = MapCollector(2, None, _sum, budget, str(tmp_path), counters)
    batches: list[Any] = [[(f"k{i}", 1) for i in range(j, j + 500)] for j in range(0, 2000, 500)]
    batches.append([("k3", 5), ("k3", 6), ("new", 1)])  # a key seen before, twice
    batches.append({"m": 1}.items())
    for batch in batches:
        collector.add(batch)
    collector.spill()
    got = {
        k: sum(vs)
        for seg in collector.segments
        for k, vs in _groups_of(iter_group_chunks(seg, 1 << 30, str(tmp_path)))
    }
    assert got == {**{f"k{i}": 1 for i in range(2000)}, "k3": 12, "new": 1, "m": 1}
    assert collector.output_records == 2004
    assert counters[("minga", "spilled records")] <= 2004
    if budget < 1 << 20:
        assert collector.spills > 2


def _range_partition(key: str, partitions: int) -> int:
    return 0 if key < "m" else partitions - 1


def test_a_partition_function_gets_the_key_and_the_number_of_partitions(tmp_path: Path) -> None:
    collector = MapCollector(3, _range_partition, None, 1 << 30, str(tmp_path), {})
    collector.add([("a", 1), ("z", 2), ("b", 3)])
    collector.spill()
    parts = [
        [k for k, _ in _groups_of(iter_group_chunks(seg, 1 << 30, str(tmp_path)))]
        for seg in collector.segments
    ]
    assert parts == [["a", "b"], [], ["z"]]
    bad = MapCollector(2, lambda k, n: 5, None, 1 << 30, str(tmp_path / "b"), {})
    bad.add([("a", 1)])
    with pytest.raises(ValueError, match=r"partition\('a'\) returned 5, outside 0..1"):
        bad.spill()


def test_a_long_iterator_of_pairs_is_written_in_batches_exactly(tmp_path: Path) -> None:
    n = 150_000  # more than two batches of the bulk path
    one, many = (
        PartWriter(str(tmp_path / "one.jsonl"), "jsonl"),
        PartWriter(str(tmp_path / "many.jsonl"), "jsonl"),
    )
    for i in range(n):
        one.write(f"k{i}", i if i % 50_000 else True)
    many.write_pairs((f"k{i}", i if i % 50_000 else True) for i in range(n))
    assert one.close() == many.close()
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "many.jsonl").read_bytes()
    assert many.records == n
