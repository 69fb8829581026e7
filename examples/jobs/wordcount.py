"""Word count: how often each word occurs in the input text.

    python examples/jobs/wordcount.py corpus.txt -o out/
    minga run examples/jobs/wordcount.py corpus.txt -o out/

The fast form of the job in the docs: the mapper takes whole batches of lines and counts
them into one Counter per task (in-mapper combining), so the per-word work runs in C and
each map task emits every distinct word once, from ``teardown``. The combiner and the
reducer sum counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from minga.compute import Lines, MapReduce, main


class WordCount(MapReduce):
    """Count the words of text files."""

    def setup(self) -> None:
        self.counts: Counter[str] = Counter()

    def map_batch(self, records: Lines) -> Iterable[tuple[str, int]]:
        self.counts.update(records.text.split())
        return ()

    def teardown(self) -> Iterable[tuple[str, int]]:
        return self.counts.items()

    def combine(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)

    def reduce(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)


if __name__ == "__main__":
    main(WordCount)
