"""The Dask engine: minga's tasks as futures on a ``distributed`` cluster."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any

from distributed import Client, Future, LocalCluster, as_completed

from minga.compute.engines import TaskEngine, TaskSink
from minga.compute.engines._attempts import Task, attempt_failed, committed, run_attempt
from minga.errors import UsageError

__all__ = ["DaskEngine"]


class DaskEngine(TaskEngine):
    """Runs tasks on Dask: a LocalCluster of ``workers`` processes, or the scheduler at ``address``.

    The LocalCluster listens on 127.0.0.1 only, without a dashboard, and is closed with the
    engine; a cluster reached by ``address`` is left running (only the client closes). An
    attempt that raises, or whose worker dies, is submitted again until ``max_attempts``.
    """

    name = "dask"

    def __init__(self, workers: int | None = None, address: str | None = None, *, max_attempts: int = 4) -> None:
        self.max_attempts = max_attempts
        self._cluster: LocalCluster | None = None
        try:
            if address is not None:
                self.client = Client(address, timeout="30s")
            else:
                self._cluster = LocalCluster(
                    n_workers=workers or 2,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    # no dashboard; the scheduler's HTTP endpoints on a free loopback port
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                )
                self.client = Client(self._cluster)
        except OSError as exc:
            where = f"reach the Dask scheduler at {address}" if address else "start a local Dask cluster"
            raise UsageError(f"cannot {where}: {exc}") from exc
        self.workers = workers or max(1, len(self.client.nthreads()))

    def run_tasks(self, tasks: Sequence[Task], sink: TaskSink) -> None:
        running: dict[Future[Any], tuple[Task, int]] = {}

        def submit(task: Task, attempt: int) -> Future[Any]:
            sink.started(task, attempt)
            future = self.client.submit(run_attempt, task, attempt, pure=False, retries=0)
            running[future] = (task, attempt)
            return future

        futures = as_completed([submit(task, 1) for task in tasks])
        try:
            for future in futures:
                task, attempt = running.pop(future)
                if future.status == "finished":
                    committed(sink, future.result())
                    continue
                error = _describe(future)
                attempt_failed(sink, task, attempt, error, self.max_attempts)
                futures.add(submit(task, attempt + 1))
        finally:
            for future in running:
                future.cancel()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _describe(future: Any) -> str:
    if future.status != "error":  # cancelled or lost with its worker
        return f"the attempt ended as {future.status}"
    exc = future.exception()
    tb = future.traceback()
    return "".join(traceback.format_exception(type(exc), exc, tb)) if tb is not None else repr(exc)
