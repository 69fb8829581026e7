"""Distributed and parallel computing: MapReduce, parallel loops, MPI and GPU.

- MapReduce (below) on one machine with the local engine, and on existing engines, with one job API;
- :mod:`minga.compute.parallel`: loops over index ranges in parallel (:func:`kernel`, :data:`prange`),
  compiled with Numba when it is installed;
- :mod:`minga.compute.mpi`: run mpi4py programs with the system's MPI (:func:`run_mpi`);
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

The seam for engines
--------------------
An engine runs tasks; the shared driver does everything else. Tasks are frozen dataclasses
of plain data (:class:`JobSpec`, :class:`InputSplit`, run segments) with no engine knowledge,
picklable by the standard pickle:

- :class:`MapTask` ``.run(attempt) -> MapResult``: read one split, run the mapper, write
  partitioned, sorted, spilled run files under a fresh attempt directory
  (:func:`run_map_task` is the same as a free function);
- :class:`ReduceTask` ``.run(attempt) -> ReduceResult``: merge one partition's runs from
  every committed map, reduce, write one uncommitted part file (:func:`run_reduce_task`).

An engine subclasses :class:`TaskEngine` and implements ``run_tasks(tasks, sink)``: run each
task somewhere (``task.run(attempt)``), hand every result to ``sink.commit(result)`` (the
first successful attempt of a task wins; a later duplicate is refused and ignored, so
re-executed and speculative attempts cannot duplicate output), report failed attempts with
``sink.failed(task, attempt, error)``, and raise :class:`~minga.errors.JobFailed` after
``max_attempts``. ``TaskEngine.run(job)`` then gives the :class:`Engine` protocol
(``run(job) -> JobResult``) through :func:`run_job`, which plans steps and splits, commits,
aggregates counters and writes ``_SUCCESS`` and the job record ``_job.json``. The engine is
found by name through :func:`register_engine` / :func:`get_engine` (``--engine NAME``).
All file paths must be visible to every worker (a shared filesystem beyond one host).
"""

from __future__ import annotations

from minga.compute._api import JobRef, MapReduce, Step, stable_hash
from minga.compute._chaos import ChaosEngine, SerialEngine, verify_job
from minga.compute._corpus import generate_corpus, generate_records
from minga.compute._driver import Engine, JobProgress, JobResult, TaskEngine, TaskSink, make_job, run_job
from minga.compute._inputs import InputSplit, Lines, expand_inputs, plan_splits
from minga.compute._local import LocalEngine
from minga.compute._outputs import read_output
from minga.compute._progress import ProgressDisplay, print_summary
from minga.compute._registry import engine_names, get_engine, register_engine
from minga.compute._runner import demo, main, run
from minga.compute._tasks import (
    JobSpec,
    MapResult,
    MapTask,
    ReduceResult,
    ReduceTask,
    run_map_task,
    run_reduce_task,
)
from minga.compute._tracebacks import user_traceback
from minga.compute.mpi import MpiCommand, MpiLauncher, find_mpi_launcher, mpi_command, run_mpi
from minga.compute.parallel import Kernel, kernel, prange

__all__ = [
    "ChaosEngine",
    "Engine",
    "InputSplit",
    "JobProgress",
    "JobRef",
    "JobResult",
    "JobSpec",
    "Kernel",
    "Lines",
    "LocalEngine",
    "MapReduce",
    "MapResult",
    "MapTask",
    "MpiCommand",
    "MpiLauncher",
    "ProgressDisplay",
    "ReduceResult",
    "ReduceTask",
    "SerialEngine",
    "Step",
    "TaskEngine",
    "TaskSink",
    "demo",
    "engine_names",
    "expand_inputs",
    "find_mpi_launcher",
    "generate_corpus",
    "generate_records",
    "get_engine",
    "kernel",
    "main",
    "make_job",
    "mpi_command",
    "plan_splits",
    "prange",
    "print_summary",
    "read_output",
    "register_engine",
    "run",
    "run_job",
    "run_map_task",
    "run_mpi",
    "run_reduce_task",
    "stable_hash",
    "user_traceback",
    "verify_job",
]
