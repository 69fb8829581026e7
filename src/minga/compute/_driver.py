"""The driver every engine shares: plans tasks, commits attempts, writes the job record.

An engine only has to run tasks. :class:`TaskEngine` subclasses implement
``run_tasks(tasks, sink)``: run every task (``task.run(attempt)``, anywhere: a worker process,
a Dask worker, a Ray task, a Spark executor) until ``sink.commit(result)`` has accepted one
result per task, calling ``sink.failed(...)`` for attempts that raised or died. The driver
does everything else: steps, splits, the shuffle's bookkeeping, first-attempt-wins commits,
counters, the job record and ``_SUCCESS``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from minga.compute._api import JobRef, MapReduce
from minga.compute._inputs import InputSplit, expand_inputs, plan_splits, split_size_for
from minga.compute._outputs import read_output
from minga.compute._tasks import (
    DEFAULT_MEMORY_BUDGET,
    Counters,
    JobSpec,
    MapResult,
    MapTask,
    ReduceResult,
    ReduceTask,
)
from minga.errors import JobFailed, UsageError

__all__ = [
    "Engine",
    "JobProgress",
    "JobResult",
    "TaskEngine",
    "TaskSink",
    "make_job",
    "run_job",
]

Task = MapTask | ReduceTask
Result = MapResult | ReduceResult
RECORD_NAME = "_job.json"


def make_job(
    job: type[MapReduce] | JobRef,
    inputs: Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    reducers: int | None = None,
    config: Mapping[str, Any] | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    split_size: int | None = None,
    overwrite: bool = False,
    chaos_seed: int | None = None,
    parallelism: int = 2,
) -> JobSpec:
    """Describe a job run: resolve inputs, check the output directory, call the job's
    ``prepare()`` (once, here) and fold what it returns into the config.

    Raises :class:`~minga.errors.UsageError` for missing inputs or an existing output directory
    (unless ``overwrite``).
    """
    ref = job if isinstance(job, JobRef) else JobRef.of(job)
    cls = ref.load()
    files = expand_inputs(inputs)
    out = os.path.abspath(os.fspath(output_dir))
    if os.path.exists(out) and os.listdir(out):
        if not overwrite:
            raise UsageError(
                f"output directory {out} already exists and is not empty: remove it or pass --overwrite"
            )
        shutil.rmtree(out)
    n = reducers or cls.reducers or max(1, parallelism)
    if n < 1:
        raise UsageError(f"reducers must be at least 1, not {n}")
    cfg = dict(config or {})
    cfg.update(cls(cfg).prepare(files, n))
    if split_size is None:
        split_size = split_size_for(sum(os.path.getsize(f) for f in files), parallelism)
    return JobSpec(
        job=ref,
        inputs=tuple(files),
        output_dir=out,
        reducers=n,
        config=cfg,
        input_format=cls.input_format,
        output_format=cls.output_format,
        memory_budget=memory_budget,
        split_size=split_size,
        chaos_seed=chaos_seed,
    )


@dataclass
class JobProgress:
    """Live state of a running job, updated by the driver and the engine, read by displays.

    ``on_tick`` (set by a display) is called by :meth:`tick`, which engines call often.
    """

    job: str = ""
    engine: str = ""
    steps: int = 1
    step: int = 0
    phase: str = "plan"
    maps_total: int = 0
    maps_done: int = 0
    reduces_total: int = 0
    reduces_done: int = 0
    input_bytes: int = 0
    bytes_done: int = 0
    records_done: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    speculative: int = 0
    started: float = field(default_factory=time.monotonic)
    counters: Counters = field(default_factory=dict)
    on_tick: Callable[[JobProgress], None] | None = None

    def add_io(self, nbytes: int, records: int) -> None:
        self.bytes_done += nbytes
        self.records_done += records

    def tick(self) -> None:
        if self.on_tick is not None:
            self.on_tick(self)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class TaskSink(Protocol):
    """What an engine reports to while it runs a wave of tasks."""

    progress: JobProgress

    def started(self, task: Task, attempt: int, *, speculative: bool = False) -> None: ...
    def commit(self, result: Result) -> bool: ...
    def failed(self, task: Task, attempt: int, error: str) -> None: ...


@runtime_checkable
class Engine(Protocol):
    """Runs a whole job; ``name`` is what ``--engine`` selects."""

    name: str

    def run(self, job: JobSpec, progress: JobProgress | None = None) -> JobResult: ...


class TaskEngine:
    """Base of the engines that run tasks and let the shared driver do the rest."""

    name = "engine"
    max_attempts = 4

    def run(self, job: JobSpec, progress: JobProgress | None = None) -> JobResult:
        return run_job(job, self, progress)

    def run_tasks(self, tasks: Sequence[Task], sink: TaskSink) -> None:
        """Run ``tasks`` until ``sink.commit`` accepted one result for each; raise
        :class:`~minga.errors.JobFailed` when a task fails ``max_attempts`` times."""
        raise NotImplementedError

    def close(self) -> None:
        """Release workers or cluster connections; called once after the job."""


@dataclass
class JobResult:
    """A finished job: where its output is, its counters, and its record (also in ``_job.json``)."""

    output_dir: str
    files: list[str]
    counters: Counters
    record: dict[str, Any]
    seconds: float

    def read(self) -> Iterator[tuple[Any, Any]]:
        """Every output (key, value), partition after partition (keys sorted in each)."""
        return read_output(self.output_dir)

    def counter(self, group: str, name: str) -> int:
        return self.counters.get(group, {}).get(name, 0)


class _Driver:
    def __init__(self, job: JobSpec, engine: TaskEngine, progress: JobProgress) -> None:
        self.job = job
        self.engine = engine
        self.progress = progress
        self.maps: dict[str, MapResult] = {}
        self.reduces: dict[str, ReduceResult] = {}
        self.counters: Counters = {}
        self.attempt_log: list[dict[str, Any]] = []
        self.step_inputs: list[str] = list(job.inputs)
        self.files: list[str] = []

    # -- TaskSink ---------------------------------------------------------------------------

    def started(self, task: Task, attempt: int, *, speculative: bool = False) -> None:
        self.progress.attempts += 1
        if speculative:
            self.progress.speculative += 1

    def failed(self, task: Task, attempt: int, error: str) -> None:
        self.progress.failed_attempts += 1
        self.attempt_log.append(
            {"task": task.task_id, "attempt": attempt, "status": "failed", "error": error[-2000:]}
        )

    def commit(self, result: Result) -> bool:
        done = self.maps if isinstance(result, MapResult) else self.reduces
        entry = {"task": result.task_id, "attempt": result.attempt, "seconds": round(result.seconds, 4)}
        if result.task_id in done:
            self.attempt_log.append({**entry, "status": "discarded"})
            return False
        if isinstance(result, ReduceResult):
            target_dir = self.job.output_dir if self._final else self._step_dir()
            os.makedirs(target_dir, exist_ok=True)
            target = os.path.join(target_dir, os.path.basename(result.path))
            os.replace(result.path, target)
            result.path = target
            self.reduces[result.task_id] = result
            self.progress.reduces_done += 1
        else:
            self.maps[result.task_id] = result
            self.progress.maps_done += 1
        self.attempt_log.append({**entry, "status": "committed"})
        _merge_counters(self.counters, result.counters)
        self.progress.counters = self.counters
        return True

    # -- planning ---------------------------------------------------------------------------

    def _step_dir(self) -> str:
        return os.path.join(self.job.work_dir, f"step-{self._step}-out")

    def run(self) -> JobResult:
        job = self.job
        t0 = time.monotonic()
        phases: dict[str, float] = {}
        steps = job.instance().steps()
        self.progress.steps = len(steps)
        self.progress.input_bytes = sum(os.path.getsize(f) for f in job.inputs)
        os.makedirs(job.work_dir, exist_ok=True)
        phases["plan"] = time.monotonic() - t0
        for i, st in enumerate(steps):
            self._step = i
            self._final = i == len(steps) - 1
            partitions = st.reducers or job.reducers
            t = time.monotonic()
            splits = self._splits(i)
            maps = [MapTask(job, i, n, s, partitions) for n, s in enumerate(splits)]
            self.progress.step, self.progress.phase = i, "map"
            self.progress.maps_total, self.progress.maps_done = len(maps), 0
            self.progress.reduces_total, self.progress.reduces_done = partitions, 0
            self.maps.clear()
            self.engine.run_tasks(maps, self)
            phases[f"step {i} map"] = time.monotonic() - t
            t = time.monotonic()
            self.progress.phase = "reduce"
            reduces = [
                ReduceTask(
                    job,
                    i,
                    p,
                    tuple(seg for m in maps for seg in self.maps[m.task_id].segments[p]),
                    self._final,
                )
                for p in range(partitions)
            ]
            self.reduces.clear()
            self.engine.run_tasks(reduces, self)
            phases[f"step {i} reduce"] = time.monotonic() - t
            if not self._final:
                self.step_inputs = [self.reduces[r.task_id].path for r in reduces]
            else:
                self.files = [self.reduces[r.task_id].path for r in reduces]
        t = time.monotonic()
        self.progress.phase = "done"
        with open(os.path.join(job.output_dir, "_SUCCESS"), "w"):
            pass
        shutil.rmtree(job.work_dir, ignore_errors=True)
        phases["commit"] = time.monotonic() - t
        seconds = time.monotonic() - t0
        record = self._record("succeeded", phases, seconds)
        return JobResult(job.output_dir, self.files, self.counters, record, seconds)

    def _splits(self, step: int) -> list[InputSplit]:
        job = self.job
        if step == 0:
            return plan_splits(job.inputs, fmt=job.input_format, split_size=job.split_size)
        return plan_splits(self.step_inputs, fmt="runs")

    def _record(
        self, status: str, phases: dict[str, float], seconds: float, error: str | None = None
    ) -> dict[str, Any]:
        job = self.job
        p = self.progress
        record: dict[str, Any] = {
            "job": f"{os.path.basename(job.job.path) if job.job.path else job.job.module}:{job.job.qualname}",
            "job_module": job.job.module,
            "job_file": job.job.path,
            "engine": self.engine.name,
            "status": status,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 4),
            "config": {
                "inputs": list(job.inputs),
                "output_dir": job.output_dir,
                "reducers": job.reducers,
                "input_format": job.input_format,
                "output_format": job.output_format,
                "memory_budget": job.memory_budget,
                "split_size": job.split_size,
                "chaos_seed": job.chaos_seed,
                "job_config": job.config,
            },
            "input_bytes": p.input_bytes,
            "outputs": [os.path.basename(f) for f in self.files],
            "phases": {k: round(v, 4) for k, v in phases.items()},
            "counters": self.counters,
            "attempts": {
                "started": p.attempts,
                "failed": p.failed_attempts,
                "speculative": p.speculative,
                "log": self.attempt_log,
            },
        }
        if error is not None:
            record["error"] = error
        os.makedirs(job.output_dir, exist_ok=True)
        with open(os.path.join(job.output_dir, RECORD_NAME), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, default=str)
            f.write("\n")
        return record


def _merge_counters(into: Counters, add: Counters) -> None:
    for group, names in add.items():
        g = into.setdefault(group, {})
        for name, n in names.items():
            g[name] = g.get(name, 0) + n


def run_job(job: JobSpec, engine: TaskEngine, progress: JobProgress | None = None) -> JobResult:
    """Run ``job`` with ``engine`` executing its tasks; writes the output, ``_SUCCESS`` and
    the job record (``_job.json``, also written when the job fails).

    Raises :class:`~minga.errors.JobFailed` when a task exhausts its attempts.
    """
    progress = progress or JobProgress()
    progress.job = f"{job.job.qualname}"
    progress.engine = engine.name
    driver = _Driver(job, engine, progress)
    t0 = time.monotonic()
    try:
        return driver.run()
    except JobFailed as exc:
        with contextlib.suppress(OSError):
            driver._record("failed", {}, time.monotonic() - t0, str(exc))
        raise

