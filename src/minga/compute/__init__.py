"""Distributed and parallel computing: MapReduce, parallel loops, MPI and GPU.

- MapReduce (below) on one machine with the local engine, and on existing engines, with one job API;
- :mod:`minga.compute.parallel`: loops over index ranges in parallel (``kernel``, ``prange``),
  compiled with Numba when it is installed;
- :mod:`minga.compute.mpi`: run mpi4py programs with the system's MPI (``run_mpi``);
- :mod:`minga.compute.engines`: the seam for engines (below) and the engines beyond one machine;
- :mod:`minga.compute.console`: the live progress display, the summary and the demo;
- :mod:`minga.compute.testing`: seeded corpora and records to run jobs on;
- :mod:`minga.compute.gpu`: vectorised word count and group-by-sum on CuPy, NumPy without a GPU
  (imported on its own, ``from minga.compute.gpu import word_count``: it needs NumPy).

Write a job::

    from minga.compute import MapReduce

    class WordCount(MapReduce):
        def map(self, key, line):
            for word in line.split():
                yield word, 1

        def combine(self, word, counts):
            yield word, sum(counts)

        def reduce(self, word, counts):
            yield word, sum(counts)

and run it with ``minga run wordcount.py INPUT -o OUT``, ``python wordcount.py INPUT -o OUT``
(through ``main(WordCount)``) or ``minga.compute.run(WordCount, [INPUT], OUT)``.

Engines are written against the seam in :mod:`minga.compute.engines`.
"""

from __future__ import annotations

from minga.compute._api import JobRef, MapReduce, Step, stable_hash
from minga.compute._chaos import verify_job
from minga.compute._driver import JobProgress, JobResult
from minga.compute._inputs import Lines
from minga.compute._outputs import read_output
from minga.compute._runner import main, run

__all__ = [
    "JobProgress",
    "JobRef",
    "JobResult",
    "Lines",
    "MapReduce",
    "Step",
    "main",
    "read_output",
    "run",
    "stable_hash",
    "verify_job",
]
