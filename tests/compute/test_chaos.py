"""The test mode: correct jobs pass it; jobs that rely on what MapReduce does not promise fail."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from word_jobs import WordCount

from minga.compute import MapReduce, verify_job
from minga.errors import JobNotDeterministic


class MeanOfMeans(MapReduce):
    """Wrong: a mean of partial means is not the mean, so the result depends on combiner runs."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, float]]:
        word, value = line.split()
        yield word, float(value)

    def combine(self, word: str, values: Iterable[float]) -> Iterator[tuple[str, float]]:
        vs = list(values)
        yield word, sum(vs) / len(vs)

    def reduce(self, word: str, values: Iterable[float]) -> Iterator[tuple[str, float]]:
        vs = list(values)
        yield word, sum(vs) / len(vs)


class CorrectMean(MeanOfMeans):
    """Right: combine (sum, count) pairs, divide only in the reducer."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, Any]]:
        word, value = line.split()
        yield word, (int(value), 1)

    def combine(self, word: str, values: Iterable[Any]) -> Iterator[tuple[str, Any]]:
        pairs = list(values)
        yield word, (sum(s for s, _ in pairs), sum(n for _, n in pairs))

    def reduce(self, word: str, values: Iterable[Any]) -> Iterator[tuple[str, Any]]:
        pairs = list(values)
        yield word, sum(s for s, _ in pairs) / sum(n for _, n in pairs)


class FirstValue(MapReduce):
    """Wrong: keeps the first value it sees, which depends on the order values arrive in."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, str]]:
        word, value = line.split()
        yield word, value

    def reduce(self, word: str, values: Iterable[str]) -> Iterator[tuple[str, str]]:
        yield word, next(iter(values))


@pytest.fixture
def numbers(tmp_path: Path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("".join(f"k{i % 4} {i * 7 % 101}\n" for i in range(3000)))
    return path


def test_a_correct_job_passes(tmp_path: Path) -> None:
    text = "".join(f"a{i % 11} b{i % 3}\n" for i in range(3000))
    (tmp_path / "in.txt").write_text(text)
    out = verify_job(WordCount, [tmp_path / "in.txt"], reducers=2, work_dir=tmp_path)
    assert dict(out) == dict(Counter(text.split()))


def test_a_mean_done_right_passes(numbers: Path, tmp_path: Path) -> None:
    verify_job(CorrectMean, [numbers], reducers=2, work_dir=tmp_path)


def test_a_non_associative_combiner_fails(numbers: Path, tmp_path: Path) -> None:
    with pytest.raises(JobNotDeterministic, match="seed"):
        verify_job(MeanOfMeans, [numbers], reducers=2, work_dir=tmp_path)


def test_an_order_dependent_reducer_fails(numbers: Path, tmp_path: Path) -> None:
    with pytest.raises(JobNotDeterministic) as err:
        verify_job(FirstValue, [numbers], reducers=2, work_dir=tmp_path)
    assert err.value.seed in (1, 2, 3)
