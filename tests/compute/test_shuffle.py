"""Input splitting and the memory-bounded shuffle."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from minga.compute import Lines, MapReduce, run, stable_hash
from minga.compute._inputs import read_batches
from minga.compute._shuffle import FAN_IN
from minga.compute.engines import InputSplit, plan_splits


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab \u00e9\u4e2d", max_size=30), max_size=40),
    final_newline=st.booleans(),
    split_size=st.integers(min_value=1, max_value=64),
    batch=st.integers(min_value=1, max_value=50),
)
def test_every_line_is_read_exactly_once(
    tmp_path_factory: Any, lines: list[str], final_newline: bool, split_size: int, batch: int
) -> None:
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    path = tmp_path_factory.mktemp("split") / "in.txt"
    path.write_bytes(text.encode())
    got: list[str] = []
    nbytes = 0
    for split in plan_splits([str(path)], split_size=split_size):
        for chunk, n in read_batches(split, batch_bytes=batch):
            assert isinstance(chunk, Lines)
            got += list(chunk)
            nbytes += n
    expected = text.split("\n")
    if expected and expected[-1] == "":
        expected.pop()
    assert got == expected
    assert nbytes == len(text.encode())


def test_splits_cover_the_file(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_bytes(b"x" * 10_000)
    splits = plan_splits([str(tmp_path / "in.txt")], split_size=3000)
    assert [(s.start, s.end) for s in splits] == [(0, 3000), (3000, 6000), (6000, 9000), (9000, 10_000)]
    assert all(isinstance(s, InputSplit) and s.fmt == "text" for s in splits)


def test_stable_hash_is_the_same_in_every_process() -> None:
    code = (
        "from minga.compute import stable_hash; print([stable_hash(k) for k in ('word', b'x', 12, ('a', 1))])"
    )
    seen = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        seen.add(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
    assert len(seen) == 1
    assert seen.pop().strip() == str([stable_hash(k) for k in ("word", b"x", 12, ("a", 1))])


class Distinct(MapReduce):
    """Every record is its own key, with no combiner: nothing shrinks the map output."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        word, n = line.split()
        yield word, int(n)

    def reduce(self, key: str, values: Iterable[int]) -> Iterator[tuple[str, list[int]]]:
        yield key, sorted(values)


def test_a_job_far_larger_than_its_memory_budget_completes(tmp_path: Path) -> None:
    rng = random.Random(5)
    rows = [(f"k{rng.randrange(20_000):05d}", i) for i in range(60_000)]
    (tmp_path / "in.txt").write_text("".join(f"{k} {i}\n" for k, i in rows))
    budget = 64 << 10  # the map output alone is tens of MB in memory
    result = run(
        Distinct, [tmp_path / "in.txt"], tmp_path / "out", workers=2, reducers=3, memory_budget=budget
    )
    expected: dict[str, list[int]] = {}
    for k, i in rows:
        expected.setdefault(k, []).append(i)
    out = list(result.read())
    assert dict(out) == {k: sorted(v) for k, v in expected.items()}
    spills = result.counter("minga", "spilled records")
    assert spills == 60_000
    # more runs per partition than one merge takes: the reducers merged from disk, in passes
    assert result.counter("minga", "reduce runs") > 3 * FAN_IN
    assert result.counter("minga", "reduce merge passes") >= 3
    for part in sorted((tmp_path / "out").glob("part-*")):
        keys = [line.split('"')[1] for line in part.read_text().splitlines()]
        assert keys == sorted(keys)


class Sum(MapReduce):
    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        for w in line.split():
            yield w, 1

    def combine(self, key: str, values: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield key, sum(values)

    def reduce(self, key: str, values: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield key, sum(values)


def test_the_combiner_shrinks_what_is_spilled(tmp_path: Path) -> None:
    text = "a b a c a b\n" * 20_000
    (tmp_path / "in.txt").write_text(text)
    result = run(Sum, [tmp_path / "in.txt"], tmp_path / "out", workers=2, memory_budget=1 << 16)
    assert dict(result.read()) == dict(Counter(text.split()))
    assert result.counter("minga", "map output records") == 120_000
    assert result.counter("minga", "spilled records") < 120_000 // 10
