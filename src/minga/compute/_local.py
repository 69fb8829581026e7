"""The local engine: a pool of worker processes on this machine, with task-level fault tolerance.

The driver keeps one pipe per worker and sends it one task at a time; data never crosses
the pipes (tasks read and write files), only the task, small progress messages and the
result. A worker that dies (even by SIGKILL) is replaced and its task attempted again; a
task that fails ``max_attempts`` times fails the job. When no task waits and a worker is
idle, a task running much longer than the wave's median gets a backup attempt
(speculative execution): the first attempt to finish is committed, the other is killed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import statistics
import time
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from minga.compute._driver import Result, Task, TaskEngine, TaskSink
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


@dataclass
class _Running:
    index: int
    attempt: int
    started: float
    speculative: bool


class _Worker:
    def __init__(self, ctx: Any) -> None:
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True, name="minga-worker")
        self.proc.start()
        child.close()
        self.conn: Connection = parent
        self.running: _Running | None = None

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
        pending: deque[int] = deque(range(len(tasks)))
        attempts = [0] * len(tasks)
        failures = [0] * len(tasks)
        done = [False] * len(tasks)
        durations: list[float] = []
        left = len(tasks)
        progress = sink.progress

        def launch(w: _Worker, i: int, speculative: bool) -> None:
            attempts[i] += 1
            w.running = _Running(i, attempts[i], time.monotonic(), speculative)
            sink.started(tasks[i], attempts[i], speculative=speculative)
            w.conn.send((tasks[i], attempts[i]))

        def replace(w: _Worker) -> None:
            w.kill()
            self._pool[self._pool.index(w)] = _Worker(self._ctx)

        def fail(w: _Worker, error: str) -> None:
            run = w.running
            assert run is not None
            w.running = None
            sink.failed(tasks[run.index], run.attempt, error)
            if done[run.index]:
                return
            failures[run.index] += 1
            if failures[run.index] >= self.max_attempts:
                raise JobFailed(tasks[run.index].task_id, failures[run.index], error.strip().splitlines()[-1])
            if not any(o.running and o.running.index == run.index for o in self._pool):
                pending.append(run.index)

        while left:
            for w in self._pool:
                if w.running is not None:
                    continue
                if pending:
                    launch(w, pending.popleft(), False)
                elif self.speculative:
                    straggler = self._straggler(durations)
                    if straggler is not None:
                        launch(w, straggler, True)
            ready = wait([w.conn for w in self._pool] + [w.proc.sentinel for w in self._pool], timeout=0.1)
            for w in list(self._pool):
                if w not in self._pool:  # replaced while handling an earlier message
                    continue
                if w.conn in ready:
                    try:
                        while w.conn.poll():
                            kind, *rest = w.conn.recv()
                            if kind == "p":
                                progress.add_io(rest[0], rest[1])
                            elif kind == "err":
                                fail(w, rest[0])
                            else:
                                left -= self._finished(w, rest[0], sink, done, durations, replace)
                    except (EOFError, OSError):
                        pass
                if w.proc.sentinel in ready and not w.proc.is_alive():
                    if w.running is not None:
                        fail(w, f"worker process {w.proc.pid} died (exit code {w.proc.exitcode})")
                    replace(w)
            progress.tick()

    def _finished(
        self,
        w: _Worker,
        result: Result,
        sink: TaskSink,
        done: list[bool],
        durations: list[float],
        replace: Any,
    ) -> int:
        run = w.running
        assert run is not None
        w.running = None
        durations.append(time.monotonic() - run.started)
        if not sink.commit(result):
            return 0
        done[run.index] = True
        for other in list(self._pool):
            if other.running is not None and other.running.index == run.index:
                replace(other)  # the slower copy of a task that is now committed
        return 1

    def _straggler(self, durations: list[float]) -> int | None:
        if not durations:
            return None
        limit = max(self.speculation_after, self.speculation_factor * statistics.median(durations))
        now = time.monotonic()
        running: dict[int, list[_Running]] = {}
        for w in self._pool:
            if w.running is not None:
                running.setdefault(w.running.index, []).append(w.running)
        for index, runs in running.items():
            if len(runs) == 1 and now - runs[0].started > limit:
                return index
        return None
