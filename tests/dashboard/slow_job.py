"""A job slow enough to be watched while it runs: each map record takes a fifth of a second."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from minga.compute import MapReduce


class Slow(MapReduce):
    """Count lines, slowly."""

    def map(self, key: object, line: str) -> Iterator[tuple[str, int]]:
        time.sleep(0.2)
        yield "lines", 1

    def reduce(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)
