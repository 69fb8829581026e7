"""Group-by-sum over numeric keys, vectorised: NumPy, or CuPy on a GPU.

    python examples/jobs/groupby_sum.py readings.csv -o out/ --device gpu

The input is CSV with integer columns ``key`` and ``value`` (or Parquet with those columns).
Each map task sums its whole batch per key with ``minga.compute.gpu.group_by_sum`` (a sort and
a running sum on the device); the reducer adds the partial sums of each key. Integer sums are
exact on both devices.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from minga.compute import MapReduce, main
from minga.compute.gpu import array_backend, group_by_sum


class GroupBySum(MapReduce):
    """Sum ``value`` per integer ``key``."""

    def setup(self) -> None:
        self.backend = array_backend(self.config.get("device", "cpu"))

    def map_batch(self, records: Any) -> Iterator[tuple[int, int]]:
        self.count("device", self.backend.device)
        if hasattr(records, "column"):  # a pyarrow Table from Parquet
            keys = records.column("key").to_numpy()
            values = records.column("value").to_numpy()
        else:  # CSV rows as dicts of strings
            keys = np.fromiter((int(r["key"]) for r in records), dtype=np.int64, count=len(records))
            values = np.fromiter((int(r["value"]) for r in records), dtype=np.int64, count=len(records))
        uniq, sums = group_by_sum(keys, values, self.backend)
        yield from zip(uniq.tolist(), sums.tolist(), strict=True)

    def combine(self, key: int, sums: Iterable[int]) -> Iterator[tuple[int, int]]:
        yield key, sum(sums)

    def reduce(self, key: int, sums: Iterable[int]) -> Iterator[tuple[int, int]]:
        yield key, sum(sums)


if __name__ == "__main__":
    main(GroupBySum)
