"""The local engine's scheduling decisions as pure transitions: events in, actions out.

:class:`WaveScheduler` decides, for one wave of tasks run by a fixed number of worker slots,
which task an idle slot runs, when a failed attempt is tried again, when the job fails, when a
straggler gets a speculative backup and which copy of a task is killed once another copy is
committed. The process side (:mod:`minga.compute._local`) feeds it events (a tick, an attempt
failed, a worker died, an attempt finished) through :meth:`WaveScheduler.handle` and carries out
the actions it returns. Time is an input (``at``, monotonic seconds), so unit tests drive
retries, backups and kills without a process or a clock.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

__all__ = [
    "Action",
    "Died",
    "Event",
    "FailJob",
    "Failed",
    "Finished",
    "Launch",
    "Replace",
    "ReportFailure",
    "Tick",
    "WaveScheduler",
]


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """Give every idle slot work: a waiting task, else a straggler's backup."""

    at: float


@dataclass(frozen=True)
class Failed:
    """The attempt running in ``slot`` raised; ``error`` is its traceback. The worker lives on."""

    slot: int
    error: str
    at: float


@dataclass(frozen=True)
class Died:
    """The worker process of ``slot`` ended; ``error`` says how."""

    slot: int
    error: str
    at: float


@dataclass(frozen=True)
class Finished:
    """The attempt running in ``slot`` returned a result; ``committed`` is the sink's answer
    (False: another attempt of the task was committed first)."""

    slot: int
    committed: bool
    at: float


Event = Tick | Failed | Died | Finished


# -- actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """Send attempt ``attempt`` (1-based) of task ``task`` to the worker of ``slot``."""

    slot: int
    task: int
    attempt: int
    speculative: bool


@dataclass(frozen=True)
class Replace:
    """Kill the worker of ``slot`` (whatever it runs) and start a fresh one in its place."""

    slot: int


@dataclass(frozen=True)
class ReportFailure:
    """Tell the sink that attempt ``attempt`` of ``task`` failed with ``error``."""

    task: int
    attempt: int
    error: str


@dataclass(frozen=True)
class FailJob:
    """Task ``task`` failed ``failures`` times, the last with ``error``: the job fails."""

    task: int
    failures: int
    error: str


Action = Launch | Replace | ReportFailure | FailJob


@dataclass(frozen=True)
class _Running:
    task: int
    attempt: int
    started: float


class WaveScheduler:
    """The decisions of one wave: ``tasks`` tasks on ``slots`` workers.

    A task is tried at most ``max_attempts`` times before :class:`FailJob`. With
    ``speculative``, an idle slot with no task waiting backs up a task that runs alone for
    longer than ``speculation_factor`` times the median duration of the wave's finished
    attempts and at least ``speculation_after`` seconds.
    """

    def __init__(
        self,
        tasks: int,
        slots: int,
        *,
        max_attempts: int,
        speculative: bool,
        speculation_factor: float,
        speculation_after: float,
    ) -> None:
        self.max_attempts = max_attempts
        self.speculative = speculative
        self.speculation_factor = speculation_factor
        self.speculation_after = speculation_after
        self._pending: list[int] = list(range(tasks))
        self._attempts = [0] * tasks
        self._failures = [0] * tasks
        self._done = [False] * tasks
        self._left = tasks
        self._durations: list[float] = []
        self._running: list[_Running | None] = [None] * slots

    @property
    def finished(self) -> bool:
        """Every task of the wave has a committed attempt."""
        return self._left == 0

    def handle(self, event: Event) -> list[Action]:
        """Apply ``event``; return what the process side must do, in order."""
        match event:
            case Tick(at):
                return self._tick(at)
            case Failed(slot, error, _):
                return self._fail(slot, error)
            case Died(slot, error, _):
                return [*self._fail(slot, error), Replace(slot)]
            case Finished(slot, committed, at):
                return self._finish(slot, committed, at)

    def _tick(self, at: float) -> list[Action]:
        actions: list[Action] = []
        for slot, run in enumerate(self._running):
            if run is not None:
                continue
            if self._pending:
                actions.append(self._launch(slot, self._pending.pop(0), at, speculative=False))
            elif self.speculative:
                straggler = self._straggler(at)
                if straggler is not None:
                    actions.append(self._launch(slot, straggler, at, speculative=True))
        return actions

    def _launch(self, slot: int, task: int, at: float, *, speculative: bool) -> Launch:
        self._attempts[task] += 1
        self._running[slot] = _Running(task, self._attempts[task], at)
        return Launch(slot, task, self._attempts[task], speculative)

    def _fail(self, slot: int, error: str) -> list[Action]:
        run = self._running[slot]
        if run is None:
            return []
        self._running[slot] = None
        actions: list[Action] = [ReportFailure(run.task, run.attempt, error)]
        if self._done[run.task]:
            return actions
        self._failures[run.task] += 1
        if self._failures[run.task] >= self.max_attempts:
            return [*actions, FailJob(run.task, self._failures[run.task], error)]
        if not any(other is not None and other.task == run.task for other in self._running):
            self._pending.append(run.task)  # no other copy runs: try it again
        return actions

    def _finish(self, slot: int, committed: bool, at: float) -> list[Action]:
        run = self._running[slot]
        if run is None:
            return []
        self._running[slot] = None
        self._durations.append(at - run.started)
        if not committed:
            return []
        self._done[run.task] = True
        self._left -= 1
        actions: list[Action] = []
        for other, other_run in enumerate(self._running):
            if other_run is not None and other_run.task == run.task:
                self._running[other] = None
                actions.append(Replace(other))  # the slower copy of a task now committed
        return actions

    def _straggler(self, at: float) -> int | None:
        if not self._durations:
            return None
        limit = max(self.speculation_after, self.speculation_factor * statistics.median(self._durations))
        copies: dict[int, list[_Running]] = {}
        for run in self._running:
            if run is not None:
                copies.setdefault(run.task, []).append(run)
        for task, runs in copies.items():
            if len(runs) == 1 and at - runs[0].started > limit:
                return task
        return None
