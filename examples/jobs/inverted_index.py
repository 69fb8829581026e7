"""Inverted index: for each word, the sorted names of the documents that contain it.

    python examples/jobs/inverted_index.py docs/ -o out/

Each input file is one document; ``self.input_path`` says which one a map task reads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from minga.compute import MapReduce, main


class InvertedIndex(MapReduce):
    """Map each word to the documents it occurs in."""

    def setup(self) -> None:
        self.doc = os.path.basename(self.input_path or "")

    def map(self, key: None, line: str) -> Iterator[tuple[str, list[str]]]:
        for word in set(line.lower().split()):
            yield word, [self.doc]

    def combine(self, word: str, docs: Iterable[list[str]]) -> Iterator[tuple[str, list[str]]]:
        yield word, sorted({d for ds in docs for d in ds})

    def reduce(self, word: str, docs: Iterable[list[str]]) -> Iterator[tuple[str, list[str]]]:
        yield word, sorted({d for ds in docs for d in ds})


if __name__ == "__main__":
    main(InvertedIndex)
