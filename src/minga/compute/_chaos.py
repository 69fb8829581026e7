"""In-process engines: serial (one task after another, for debugging) and chaos (the test mode).

The chaos engine breaks a job on purpose, within the semantics MapReduce promises: the
combiner runs 0, 1 or several times on random subsets of values, spills happen at random,
values reach ``reduce`` shuffled, splits are cut at random sizes, and every task is executed
twice with a random attempt committed. A correct job gives the same output; a non-associative
combiner, an order-dependent reducer or a mapper with hidden state does not, and
:func:`verify_job` says so in a unit test.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from minga.compute._api import MapReduce
from minga.compute._driver import JobProgress, JobResult, Task, TaskEngine, TaskSink, make_job, run_job
from minga.compute._tasks import JobSpec
from minga.errors import JobFailed, JobNotDeterministic

__all__ = ["ChaosEngine", "SerialEngine", "verify_job"]


class SerialEngine(TaskEngine):
    """Runs every task in this process, one after the other; failures are retried
    up to ``max_attempts`` times. The simplest engine, and the easiest to debug."""

    name = "serial"

    def __init__(self, workers: int | None = None, *, max_attempts: int = 1) -> None:
        self.max_attempts = max_attempts

    def run_tasks(self, tasks: Sequence[Task], sink: TaskSink) -> None:
        for task in tasks:
            for attempt in range(1, self.max_attempts + 1):
                sink.started(task, attempt)
                try:
                    result = task.run(attempt, sink.progress.add_io)
                except Exception as exc:
                    sink.failed(task, attempt, repr(exc))
                    if attempt == self.max_attempts:
                        raise JobFailed(task.task_id, attempt, repr(exc)) from exc
                    continue
                sink.commit(result)
                sink.progress.tick()
                break


class ChaosEngine(TaskEngine):
    """The test mode: runs the job in this process while exercising every freedom the
    MapReduce contract leaves to the runtime, chosen by ``seed`` (see the module docstring)."""

    name = "chaos"

    def __init__(self, workers: int | None = None, *, seed: int = 0, reexecute: bool = True) -> None:
        self.seed = seed
        self.reexecute = reexecute
        self.rng = random.Random(seed)

    def run(self, job: JobSpec, progress: JobProgress | None = None) -> JobResult:
        split = self.rng.choice((job.split_size, 1 << 10, 1 << 14, None))
        return run_job(replace(job, chaos_seed=self.seed, split_size=split), self, progress)

    def run_tasks(self, tasks: Sequence[Task], sink: TaskSink) -> None:
        order = list(tasks)
        self.rng.shuffle(order)
        for task in order:
            runs = 2 if self.reexecute else 1
            results = []
            for attempt in range(1, runs + 1):
                sink.started(task, attempt)
                results.append(task.run(attempt, sink.progress.add_io))
            self.rng.shuffle(results)
            for result in results:
                sink.commit(result)


def verify_job(
    job: type[MapReduce],
    inputs: Sequence[str | os.PathLike[str]],
    *,
    seeds: Sequence[int] = (1, 2, 3),
    reducers: int | None = None,
    config: Mapping[str, Any] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
) -> list[tuple[Any, Any]]:
    """Run ``job`` plainly, then under the chaos engine once per seed, and compare outputs.

    Returns the plain run's output pairs. Raises :class:`~minga.errors.JobNotDeterministic`
    naming the first seed and key where the outputs differ.
    """
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="minga-verify-") as tmp:

        def once(engine: TaskEngine, name: str) -> list[tuple[Any, Any]]:
            spec = make_job(job, inputs, os.path.join(tmp, name), reducers=reducers, config=config)
            return list(engine.run(spec).read())

        expected = once(SerialEngine(), "plain")
        for seed in seeds:
            got = once(ChaosEngine(seed=seed), f"chaos-{seed}")
            if got != expected:
                raise JobNotDeterministic(seed, _first_difference(expected, got))
    return expected


def _first_difference(a: list[tuple[Any, Any]], b: list[tuple[Any, Any]]) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"expected {x!r}, got {y!r}"
    return f"expected {len(a)} output records, got {len(b)}"
