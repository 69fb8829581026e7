"""Word count on arrays: whole batches of text counted with NumPy, or CuPy on a GPU.

    python examples/jobs/wordcount_vectorized.py corpus.txt -o out/ --device gpu
    minga run examples/jobs/wordcount_vectorized.py corpus.txt -o out/ --device gpu

Each map task hands its text to ``minga.compute.gpu.word_count``, which finds the words, packs
them into 64-bit keys and counts them with a sort on the device; without a GPU (or CuPy) the
same array code runs on NumPy. Words are split on ASCII whitespace, as ``bytes.split()`` does.
The counters ``device/gpu`` and ``device/cpu`` say how many map batches ran where.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from minga.compute import Lines, MapReduce, main
from minga.compute.gpu import array_backend, word_count


class VectorizedWordCount(MapReduce):
    """Count the words of text files on a GPU when there is one."""

    def setup(self) -> None:
        self.backend = array_backend(self.config.get("device", "cpu"))

    def map_batch(self, records: Lines) -> Iterator[tuple[str, int]]:
        self.count("device", self.backend.device)
        counts = word_count(records.text.encode("utf-8", "surrogateescape"), self.backend)
        for word, n in counts.items():
            yield word.decode("utf-8", "surrogateescape"), n

    def combine(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)

    def reduce(self, word: str, counts: Iterable[int]) -> Iterator[tuple[str, int]]:
        yield word, sum(counts)


if __name__ == "__main__":
    main(VectorizedWordCount)
