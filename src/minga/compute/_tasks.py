"""Tasks: pure, picklable units of work that know nothing of the engine running them.

``MapTask.run(attempt)`` and ``ReduceTask.run(attempt)`` (or the free functions
:func:`run_map_task` and :func:`run_reduce_task`) read their input, run the user's code and
write their output under a fresh attempt directory, returning a small result that names the
files. Nothing is visible in the job's output until the driver commits a result, so an
attempt that is re-executed, killed or run twice (speculation) cannot duplicate output.
"""

from __future__ import annotations

import inspect
import itertools
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from minga.compute._api import JobRef, MapReduce, Step
from minga.compute._inputs import InputSplit, read_batches
from minga.compute._outputs import PartWriter, gc_paused, part_name
from minga.compute._shuffle import Grouper, MapCollector, Segment, iter_group_chunks

__all__ = [
    "JobSpec",
    "MapResult",
    "MapTask",
    "ReduceResult",
    "ReduceTask",
    "run_map_task",
    "run_reduce_task",
]

Counters = dict[str, dict[str, int]]
#: called by a running task with (input bytes, input records) done since the last call
ProgressFn = Callable[[int, int], None]

DEFAULT_MEMORY_BUDGET = 256 << 20


@dataclass(frozen=True)
class JobSpec:
    """Everything a task needs to know about its job, as plain picklable data.

    ``inputs`` are resolved file paths; ``work_dir`` (default ``OUTPUT/_temporary``) holds
    attempt directories and must be on the output's filesystem so commits are renames.
    ``memory_budget`` bounds, in bytes, what one task holds before spilling or merging from
    disk. ``chaos_seed`` turns on the test mode (see :class:`~minga.compute.engines.ChaosEngine`).
    """

    job: JobRef
    inputs: tuple[str, ...]
    output_dir: str
    reducers: int = 1
    config: dict[str, Any] = field(default_factory=dict)
    input_format: str | None = None
    output_format: str = "jsonl"
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    split_size: int | None = None
    chaos_seed: int | None = None

    @property
    def work_dir(self) -> str:
        return os.path.join(self.output_dir, "_temporary")

    def instance(self) -> MapReduce:
        return self.job.load()(self.config)


@dataclass
class MapResult:
    """What a map attempt produced: for each reduce partition, the run segments holding its data."""

    task_id: str
    attempt: int
    attempt_dir: str
    segments: list[list[Segment]]
    counters: Counters
    bytes_in: int
    records_in: int
    records_out: int
    seconds: float


@dataclass
class ReduceResult:
    """What a reduce attempt produced: one uncommitted part file in its attempt directory."""

    task_id: str
    attempt: int
    attempt_dir: str
    partition: int
    path: str
    counters: Counters
    records_in: int
    records_out: int
    bytes_out: int
    seconds: float


def _attempt_dir(job: JobSpec, task_id: str, attempt: int) -> str:
    path = os.path.join(job.work_dir, task_id, f"attempt-{attempt}-{uuid.uuid4().hex[:8]}")
    os.makedirs(path, exist_ok=True)
    return path


def _nest(counters: dict[tuple[str, str], int]) -> Counters:
    out: Counters = {}
    for (group, name), n in counters.items():
        out.setdefault(group, {})[name] = n
    return out


def _chaos_rng(job: JobSpec, task_id: str, attempt: int) -> random.Random | None:
    if job.chaos_seed is None:
        return None
    return random.Random(f"{job.chaos_seed}:{task_id}:{attempt}")


def _prepare(job: JobSpec, step: int, task_id: str, attempt: int, path: str | None) -> tuple[MapReduce, Step]:
    inst = job.instance()
    inst.task_id = task_id
    inst.attempt = attempt
    inst.input_path = path
    return inst, inst.steps()[step]


def run_map_task(
    job: JobSpec,
    step: int,
    split: InputSplit,
    partitions: int,
    attempt_dir: str,
    *,
    task_id: str = "map",
    attempt: int = 1,
    progress: ProgressFn | None = None,
) -> MapResult:
    """Run one map attempt over ``split``; its runs land in ``attempt_dir``."""
    with gc_paused():
        return _map_task(job, step, split, partitions, attempt_dir, task_id, attempt, progress)


def _map_task(
    job: JobSpec,
    step: int,
    split: InputSplit,
    partitions: int,
    attempt_dir: str,
    task_id: str,
    attempt: int,
    progress: ProgressFn | None,
) -> MapResult:
    started = time.perf_counter()
    inst, st = _prepare(job, step, task_id, attempt, split.path if split.fmt != "runs" else None)
    rng = _chaos_rng(job, task_id, attempt)
    budget = job.memory_budget
    if rng is not None:
        budget = rng.choice((budget, 1 << 12, 1 << 16))
    part = inst.partition if type(inst).partition is not MapReduce.partition else None
    collector = MapCollector(partitions, part, st.combine, budget, attempt_dir, inst.counters, rng)
    bytes_in = records_in = 0
    inst.setup()
    for batch, nbytes in read_batches(split):
        n = len(batch)
        if st.map_batch is not None:
            collector.add(st.map_batch(batch))
        elif split.fmt == "runs":
            assert st.map is not None
            collector.add(itertools.chain.from_iterable(itertools.starmap(st.map, batch)))
        else:
            assert st.map is not None
            collector.add(itertools.chain.from_iterable(map(st.map, itertools.repeat(None), batch)))
        bytes_in += nbytes
        records_in += n
        if progress is not None:
            progress(nbytes, n)
    tail = inst.teardown()
    if tail is not None:
        collector.add(tail)
    collector.spill()
    counters = dict(inst.counters)
    counters[("minga", "map input records")] = records_in
    counters[("minga", "map input bytes")] = bytes_in
    counters[("minga", "map output records")] = collector.output_records
    return MapResult(
        task_id=task_id,
        attempt=attempt,
        attempt_dir=attempt_dir,
        segments=collector.segments,
        counters=_nest(counters),
        bytes_in=bytes_in,
        records_in=records_in,
        records_out=collector.output_records,
        seconds=time.perf_counter() - started,
    )


def _no_none(reduce: Grouper) -> Grouper:
    """``reduce`` that is a plain function (not a generator) may return None for no output."""

    def call(key: Any, values: Iterable[Any]) -> Iterable[tuple[Any, Any]]:
        return reduce(key, values) or ()

    return call


def _shuffled(values: Iterable[Any], rng: random.Random) -> list[Any]:
    out = list(values)
    rng.shuffle(out)
    return out


def run_reduce_task(
    job: JobSpec,
    step: int,
    partition: int,
    segments: list[Segment],
    attempt_dir: str,
    *,
    final: bool = True,
    task_id: str = "reduce",
    attempt: int = 1,
    progress: ProgressFn | None = None,
) -> ReduceResult:
    """Merge ``segments`` (every committed map's runs for ``partition``), reduce each key once
    in sorted order, and write one part file in ``attempt_dir``.

    ``final`` False writes the step's output as a run file for the next step's maps.
    """
    with gc_paused():
        return _reduce_task(job, step, partition, segments, attempt_dir, final, task_id, attempt, progress)


def _reduce_task(
    job: JobSpec,
    step: int,
    partition: int,
    segments: list[Segment],
    attempt_dir: str,
    final: bool,
    task_id: str,
    attempt: int,
    progress: ProgressFn | None,
) -> ReduceResult:
    started = time.perf_counter()
    inst, st = _prepare(job, step, task_id, attempt, None)
    rng = _chaos_rng(job, task_id, attempt)
    fmt = job.output_format if final else "runs"
    path = os.path.join(attempt_dir, part_name(partition, fmt))
    writer = PartWriter(path, fmt)
    reduce = st.reduce
    if reduce is not None and not inspect.isgeneratorfunction(reduce):
        reduce = _no_none(reduce)
    groups = 0
    inst.setup()
    records_in = sum(s[3] for s in segments)
    since_progress = 0
    for keys, values in iter_group_chunks(segments, job.memory_budget, attempt_dir, inst.counters):
        if rng is not None:
            values = [_shuffled(vs, rng) for vs in values]
        # a chunk of keys at once: the calls of reduce and the flattening of what they yield
        # run in C, and the writer encodes the chunk's output in one go
        if reduce is None:
            out = itertools.chain.from_iterable(map(zip, map(itertools.repeat, keys), values))
        else:
            out = itertools.chain.from_iterable(map(reduce, keys, map(iter, values)))
        writer.write_pairs(out)
        groups += len(keys)
        since_progress += len(keys)
        if progress is not None and since_progress >= 65536:
            progress(0, since_progress)
            since_progress = 0
    inst.teardown()
    bytes_out = writer.close()
    counters = dict(inst.counters)
    counters[("minga", "reduce input groups")] = groups
    counters[("minga", "reduce input records")] = records_in
    counters[("minga", "reduce output records")] = writer.records
    return ReduceResult(
        task_id=task_id,
        attempt=attempt,
        attempt_dir=attempt_dir,
        partition=partition,
        path=path,
        counters=_nest(counters),
        records_in=records_in,
        records_out=writer.records,
        bytes_out=bytes_out,
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class MapTask:
    """One map task of step ``step``: read ``split``, write runs for ``partitions`` reducers."""

    job: JobSpec
    step: int
    index: int
    split: InputSplit
    partitions: int

    @property
    def task_id(self) -> str:
        return f"s{self.step}-m{self.index:05d}"

    def run(self, attempt: int = 1, progress: ProgressFn | None = None) -> MapResult:
        """Run attempt number ``attempt`` (1-based) in a fresh attempt directory."""
        d = _attempt_dir(self.job, self.task_id, attempt)
        return run_map_task(
            self.job, self.step, self.split, self.partitions, d,
            task_id=self.task_id, attempt=attempt, progress=progress,
        )  # fmt: skip


@dataclass(frozen=True)
class ReduceTask:
    """One reduce task: merge ``segments`` of partition ``partition`` and write its part file."""

    job: JobSpec
    step: int
    partition: int
    segments: tuple[Segment, ...]
    final: bool

    @property
    def task_id(self) -> str:
        return f"s{self.step}-r{self.partition:05d}"

    def run(self, attempt: int = 1, progress: ProgressFn | None = None) -> ReduceResult:
        """Run attempt number ``attempt`` (1-based) in a fresh attempt directory."""
        d = _attempt_dir(self.job, self.task_id, attempt)
        return run_reduce_task(
            self.job, self.step, self.partition, list(self.segments), d,
            final=self.final, task_id=self.task_id, attempt=attempt, progress=progress,
        )  # fmt: skip
