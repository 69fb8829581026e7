"""Word count, the job the compute tests share, and word counts that break on purpose.

The local engine tests import it (tests/compute is on ``sys.path``); the Dask, Ray and Spark
tests load it by path (``JobRef.from_file``), so it imports nothing but minga.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator
from typing import Any

from minga.compute import MapReduce


class WordCount(MapReduce):
    """How often each word of the input occurs."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        for word in line.split():
            yield word, 1

    def combine(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)

    def reduce(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)


class KillWorkerOnce(WordCount):
    """Word count whose first map task kills its own worker process (SIGKILL) halfway, once."""

    def setup(self) -> None:
        self.seen = 0

    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        self.seen += 1
        if self.task_id.endswith("-m00000") and self.seen == 50:
            try:
                open(self.config["marker"], "x").close()  # "x": only one process creates it
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        yield from super().map(key, line)


class FailFirstAttempt(WordCount):
    """Word count whose every task raises on its first attempt."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        if self.attempt == 1:
            raise RuntimeError(f"{self.task_id} fails its first attempt on purpose")
        yield from super().map(key, line)


class AlwaysFails(WordCount):
    """A job that can never succeed."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        raise ValueError("broken on purpose")
