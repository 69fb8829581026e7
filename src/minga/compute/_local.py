"""The local engine: a pool of worker processes on this machine, with task-level fault tolerance.

The driver keeps one pipe per worker and sends it one task at a time; data never crosses
the pipes (tasks read and write files), only the task, small progress messages and the
result. A worker that dies (even by SIGKILL) is replaced and its task attempted again; a
task that fails ``max_attempts`` times fails the job. When no task waits and a worker is
idle, a task running much longer than the wave's median gets a backup attempt
(speculative execution): the first attempt to finish is committed, the other is killed.
Those decisions are made by :class:`~minga.compute._schedule.WaveScheduler`, without
processes; this module starts, feeds and kills the workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from minga.compute._driver import Task, TaskEngine, TaskSink
from minga.compute._schedule import (
    Action,
    Died,
    Failed,
    FailJob,
    Finished,
    Launch,
    Replace,
    ReportFailure,
    Tick,
    WaveScheduler,
)
from minga.errors import JobFailed, UsageError

__all__ = ["LocalEngine"]

_PROGRESS_EVERY = 0.25  # seconds between a worker's progress messages


def _worker_main(conn: Connection) -> None:
    # the driver handles Ctrl-C; a worker just ends when its pipe closes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pending = [0, 0]
    last = [time.monotonic()]

    def progress(nbytes: int, records: int) -> None:
        pending[0] += nbytes
        pending[1] += records
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY:
            conn.send(("p", pending[0], pending[1]))
            pending[0] = pending[1] = 0
            last[0] = now

    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        task, attempt = msg
        try:
            result = task.run(attempt, progress)
        except BaseException:
            conn.send(("err", traceback.format_exc()))
        else:
            if pending[0] or pending[1]:
                conn.send(("p", pending[0], pending[1]))
                pending[0] = pending[1] = 0
            conn.send(("ok", result))


class _Worker:
    def __init__(self, ctx: Any) -> None:
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True, name="minga-worker")
        self.proc.start()
        child.close()
        self.conn: Connection = parent

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.join(5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(2)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


class LocalEngine(TaskEngine):
    """Runs tasks in ``workers`` processes (default: the CPU count).

    ``max_attempts``: how often one task may fail before the job fails. ``speculative``:
    back up stragglers, tasks running longer than ``speculation_factor`` times the median
    of the wave's finished tasks and at least ``speculation_after`` seconds.
    """

    name = "local"

    def __init__(
        self,
        workers: int | None = None,
        *,
        max_attempts: int = 4,
        speculative: bool = True,
        speculation_factor: float = 1.5,
        speculation_after: float = 1.0,
    ) -> None:
        n = workers or os.cpu_count() or 1
        if n < 1:
            raise UsageError(f"workers must be at least 1, not {n}")
        if max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, not {max_attempts}")
        self.workers = n
        self.max_attempts = max_attempts
        self.speculative = speculative
        self.speculation_factor = speculation_factor
        self.speculation_after = speculation_after
        # fork: a worker starts in milliseconds and already holds the job class, even one
        # defined in a script or a test module
        self._ctx = multiprocessing.get_context("fork")
        self._pool: list[_Worker] = []

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for tests and diagnostics)."""
        return [w.proc.pid for w in self._pool if w.proc.pid is not None]

    def close(self) -> None:
        for w in self._pool:
            w.stop()
        self._pool.clear()

    def run_tasks(self, tasks: Sequence[Task], sink: TaskSink) -> None:
        try:
            self._run_wave(tasks, sink)
        except BaseException:
            for w in self._pool:
                w.kill()
            self._pool.clear()
            raise

    def _run_wave(self, tasks: Sequence[Task], sink: TaskSink) -> None:
        while len(self._pool) < min(self.workers, max(1, len(tasks))):
            self._pool.append(_Worker(self._ctx))
        scheduler = WaveScheduler(
            len(tasks), len(self._pool), max_attempts=self.max_attempts, speculative=self.speculative,
            speculation_factor=self.speculation_factor, speculation_after=self.speculation_after,
        )  # fmt: skip
        progress = sink.progress

        def act(actions: list[Action]) -> None:
            for action in actions:
                match action:
                    case Launch(slot, task, attempt, speculative):
                        sink.started(tasks[task], attempt, speculative=speculative)
                        self._pool[slot].conn.send((tasks[task], attempt))
                    case Replace(slot):
                        self._pool[slot].kill()
                        self._pool[slot] = _Worker(self._ctx)
                    case ReportFailure(task, attempt, error):
                        sink.failed(tasks[task], attempt, error)
                    case FailJob(task, failures, error):
                        raise JobFailed(tasks[task].task_id, failures, error.strip().splitlines()[-1])

        while not scheduler.finished:
            act(scheduler.handle(Tick(time.monotonic())))
            ready = wait([w.conn for w in self._pool] + [w.proc.sentinel for w in self._pool], timeout=0.1)
            for slot, w in enumerate(list(self._pool)):
                if self._pool[slot] is not w:  # replaced while handling an earlier message
                    continue
                if w.conn in ready:
                    try:
                        while w.conn.poll():
                            kind, *rest = w.conn.recv()
                            if kind == "p":
                                progress.add_io(rest[0], rest[1])
                            elif kind == "err":
                                act(scheduler.handle(Failed(slot, rest[0], time.monotonic())))
                            else:
                                committed = sink.commit(rest[0])
                                act(scheduler.handle(Finished(slot, committed, time.monotonic())))
                    except (EOFError, OSError):
                        pass
                if w.proc.sentinel in ready and not w.proc.is_alive():
                    error = f"worker process {w.proc.pid} died (exit code {w.proc.exitcode})"
                    act(scheduler.handle(Died(slot, error, time.monotonic())))
            progress.tick()
