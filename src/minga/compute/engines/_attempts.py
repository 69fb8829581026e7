"""What the remote engines share: run one attempt of a task, and the retry bookkeeping."""

from __future__ import annotations

import traceback
from typing import Any

from minga.compute.engines import MapResult, MapTask, ReduceResult, ReduceTask, TaskSink
from minga.errors import JobFailed

Task = MapTask | ReduceTask
Result = MapResult | ReduceResult


def run_attempt(task: Task, attempt: int) -> Result:
    """Executed on a worker: one attempt of ``task`` (a plain function, so every engine can ship it)."""
    return task.run(attempt)


def run_attempt_caught(task: Task, attempt: int) -> tuple[bool, Any]:
    """Like :func:`run_attempt`, but an exception comes back as ``(False, traceback text)``."""
    try:
        return True, task.run(attempt)
    except Exception:
        return False, traceback.format_exc()


def committed(sink: TaskSink, result: Result) -> None:
    """Hand ``result`` to the driver and account its input in the progress."""
    if sink.commit(result):
        if isinstance(result, MapResult):
            sink.progress.add_io(result.bytes_in, result.records_in)
        else:
            sink.progress.add_io(0, result.records_in)
    sink.progress.tick()


def attempt_failed(sink: TaskSink, task: Task, attempt: int, error: str, max_attempts: int) -> None:
    """Report a failed attempt; raise :class:`~minga.errors.JobFailed` when it was the last one allowed."""
    sink.failed(task, attempt, error)
    if attempt >= max_attempts:
        lines = [line for line in error.strip().splitlines() if line.strip()]
        raise JobFailed(task.task_id, attempt, lines[-1] if lines else "unknown error")
