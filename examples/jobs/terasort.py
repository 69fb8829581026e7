"""TeraSort-style sort of 100-byte records (a 10-character key, a space, 88 characters of payload).

    python examples/jobs/terasort.py records.txt -o out/ --reducers 4

Before the job starts, ``prepare`` samples keys from the input and picks reducers-1 boundaries,
so the range partitioner sends each key range to one reducer; since every reducer sorts its
keys, the part files read in order are the whole input sorted.
"""

from __future__ import annotations

import bisect
import os
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from minga.compute import Lines, MapReduce, main

SAMPLES = 10_000


class TeraSort(MapReduce):
    """Sort records by their first 10 characters."""

    output_format = "tsv"

    def prepare(self, inputs: Sequence[str], reducers: int) -> Mapping[str, Any]:
        rng = random.Random(0)
        keys: list[str] = []
        for path in inputs:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                for _ in range(max(1, SAMPLES // len(inputs))):
                    f.seek(rng.randrange(max(1, size)))
                    f.readline()
                    line = f.readline()
                    if line:
                        keys.append(line[:10].decode())
        keys.sort()
        bounds = [keys[len(keys) * i // reducers] for i in range(1, reducers)] if keys else []
        return {"boundaries": bounds}

    def setup(self) -> None:
        self.bounds: list[str] = self.config["boundaries"]

    def map_batch(self, records: Lines) -> list[tuple[str, str]]:
        return [(line[:10], line[11:]) for line in records]

    def partition(self, key: str, partitions: int) -> int:
        return bisect.bisect_right(self.bounds, key)

    def reduce(self, key: str, payloads: Iterable[str]) -> Iterator[tuple[str, str]]:
        for payload in sorted(payloads):
            yield key, payload


if __name__ == "__main__":
    main(TeraSort)
