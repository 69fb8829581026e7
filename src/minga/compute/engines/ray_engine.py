"""The Ray engine: minga's tasks as Ray remote functions."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import ray

from minga.compute.engines import TaskEngine, TaskSink
from minga.compute.engines._attempts import Task, attempt_failed, committed, run_attempt

__all__ = ["RayEngine"]

# minga counts attempts itself, so Ray must not retry behind its back
_remote_attempt = ray.remote(max_retries=0, num_cpus=1)(run_attempt)


class RayEngine(TaskEngine):
    """Runs tasks on Ray: a local ``ray.init`` with ``workers`` CPUs, or the cluster at ``address``.

    When Ray is already initialised in this process it is used as it is and left running;
    otherwise the engine starts (or connects) it without a dashboard, and shuts it down on
    :meth:`close`. Unlike the Dask and Spark engines, a local Ray cannot be kept on loopback:
    Ray turns 127.0.0.1 into the node's reachable address and its gRPC servers listen there.
    """

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, *, max_attempts: int = 4) -> None:
        self.max_attempts = max_attempts
        self._owns = not ray.is_initialized()
        if self._owns:
            options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
            if address is not None:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=workers or 2, **options)
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run_tasks(self, tasks: Sequence[Task], sink: TaskSink) -> None:
        running: dict[Any, tuple[Task, int]] = {}

        def submit(task: Task, attempt: int) -> None:
            sink.started(task, attempt)
            running[_remote_attempt.remote(task, attempt)] = (task, attempt)

        for task in tasks:
            submit(task, 1)
        try:
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                ref = ready[0]
                task, attempt = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the task raised, or its worker died
                    attempt_failed(sink, task, attempt, str(exc), self.max_attempts)
                    submit(task, attempt + 1)
                    continue
                committed(sink, result)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._owns and ray.is_initialized():
            ray.shutdown()
