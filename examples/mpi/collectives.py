"""Word statistics across MPI ranks with the four collectives: bcast, scatter, gather, allreduce.

Run it with ``minga mpirun -n 4 examples/mpi/collectives.py [TEXTFILE]``. Without a file, rank 0
generates a seeded text. Rank 0 prints one JSON object: the word counts and what every rank saw.

1. bcast: rank 0 sends the settings (how many words to report) to every rank;
2. scatter: rank 0 splits the lines into one slice per rank;
3. each rank counts the words of its slice;
4. gather: rank 0 collects the partial counts and merges them;
5. allreduce: every rank learns the total number of words and the longest line.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter

from mpi4py import MPI

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


def generated_lines(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 12))) for _ in range(n)]


def main(argv: list[str]) -> None:
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()

    settings = None
    slices = None
    if rank == 0:
        if argv:
            with open(argv[0], encoding="utf-8") as f:
                lines = f.read().splitlines()
        else:
            lines = generated_lines(2000)
        settings = {"top": 5, "lines": len(lines)}
        slices = [lines[r::size] for r in range(size)]

    settings = comm.bcast(settings, root=0)
    mine = comm.scatter(slices, root=0)

    local = Counter(word for line in mine for word in line.split())
    words = sum(local.values())
    longest = max((len(line) for line in mine), default=0)

    partials = comm.gather(local, root=0)
    total_words = comm.allreduce(words, op=MPI.SUM)
    longest_line = comm.allreduce(longest, op=MPI.MAX)
    seen = comm.gather(
        {"rank": rank, "lines": len(mine), "settings": settings, "total_words": total_words}, root=0
    )

    if rank == 0:
        assert partials is not None
        merged: Counter[str] = Counter()
        for part in partials:
            merged.update(part)
        print(
            json.dumps(
                {
                    "ranks": size,
                    "total_words": total_words,
                    "longest_line": longest_line,
                    "counts": dict(sorted(merged.items())),
                    "top": merged.most_common(settings["top"]),
                    "seen": seen,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
