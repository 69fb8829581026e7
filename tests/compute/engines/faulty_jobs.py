"""Jobs that break on purpose, loaded by path (``JobRef.from_file``) in the engine tests."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator
from typing import Any

from minga.compute import MapReduce


class _Count(MapReduce):
    def words(self, line: str) -> Iterator[tuple[str, int]]:
        for word in line.split():
            yield word, 1

    def combine(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)

    def reduce(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)


class KillWorkerOnce(_Count):
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
        yield from self.words(line)


class FailFirstAttempt(_Count):
    """Word count whose every task raises on its first attempt."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        if self.attempt == 1:
            raise RuntimeError(f"{self.task_id} fails its first attempt on purpose")
        yield from self.words(line)


class AlwaysFails(_Count):
    """A job that can never succeed."""

    def map(self, key: Any, line: str) -> Iterator[tuple[str, int]]:
        raise ValueError("broken on purpose")
