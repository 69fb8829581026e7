"""A job whose every map attempt fails, so the run fails."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from minga.compute import MapReduce


class Broken(MapReduce):
    """Fails on its first record."""

    def map(self, key: object, line: str) -> Iterator[tuple[str, int]]:
        raise ValueError(f"cannot read {line!r}")

    def reduce(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)
