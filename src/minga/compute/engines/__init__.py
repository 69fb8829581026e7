"""Engines: the seam to write one, the local engine, and Dask, Ray and Spark beyond one machine.

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

Engines beyond one machine
--------------------------
Dask, Ray and Spark run the same job classes as the local engine.

Each engine lives in its own module and imports its client library there, so naming one
never imports the others; ``--engine dask|ray|spark`` finds them through
:func:`get_engine`:

- :class:`~minga.compute.engines.dask_engine.DaskEngine`: a ``distributed`` LocalCluster
  (``workers`` processes, one thread each, on 127.0.0.1) or a scheduler at ``address``;
- :class:`~minga.compute.engines.ray_engine.RayEngine`: a local ``ray.init`` (``workers``
  CPUs) or the cluster at ``address``; an already initialised Ray is used as it is;
- :class:`~minga.compute.engines.spark_engine.SparkEngine`: PySpark ``local[workers]`` or the
  master URL ``address``; an active SparkSession is used as it is.

They only run tasks (``MapTask.run`` / ``ReduceTask.run``); minga's driver plans, commits and
records, so every engine writes the same output. Tasks read and write files: beyond one
host, the input and output directories must be on a filesystem every worker sees.
"""

from __future__ import annotations

from minga.compute._chaos import ChaosEngine, SerialEngine
from minga.compute._driver import Engine, TaskEngine, TaskSink, make_job, run_job
from minga.compute._inputs import InputSplit, expand_inputs, plan_splits
from minga.compute._local import LocalEngine
from minga.compute._registry import engine_names, get_engine, register_engine
from minga.compute._tasks import (
    JobSpec,
    MapResult,
    MapTask,
    ReduceResult,
    ReduceTask,
    run_map_task,
    run_reduce_task,
)

__all__ = [
    "ChaosEngine",
    "Engine",
    "InputSplit",
    "JobSpec",
    "LocalEngine",
    "MapResult",
    "MapTask",
    "ReduceResult",
    "ReduceTask",
    "SerialEngine",
    "TaskEngine",
    "TaskSink",
    "engine_names",
    "expand_inputs",
    "get_engine",
    "make_job",
    "plan_splits",
    "register_engine",
    "run_job",
    "run_map_task",
    "run_reduce_task",
]
