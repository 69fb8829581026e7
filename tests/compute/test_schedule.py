"""The local engine's scheduling decisions, driven by events alone: no process, no clock."""

from __future__ import annotations

from minga.compute._schedule import (
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


def scheduler(tasks: int, slots: int, *, max_attempts: int = 3, speculative: bool = True) -> WaveScheduler:
    return WaveScheduler(
        tasks, slots, max_attempts=max_attempts, speculative=speculative,
        speculation_factor=1.5, speculation_after=1.0,
    )  # fmt: skip


def test_idle_slots_take_waiting_tasks_in_order() -> None:
    s = scheduler(3, 2)
    assert s.handle(Tick(0.0)) == [Launch(0, 0, 1, False), Launch(1, 1, 1, False)]
    assert s.handle(Tick(0.1)) == []  # both slots busy
    assert s.handle(Finished(1, True, 0.5)) == []
    assert s.handle(Tick(0.5)) == [Launch(1, 2, 1, False)]
    assert not s.finished
    s.handle(Finished(0, True, 0.6))
    s.handle(Finished(1, True, 0.7))
    assert s.finished


def test_a_failed_attempt_is_tried_again_until_max_attempts_fails_the_job() -> None:
    s = scheduler(1, 1, max_attempts=2)
    s.handle(Tick(0.0))
    assert s.handle(Failed(0, "Traceback...\nValueError: bad", 0.1)) == [
        ReportFailure(0, 1, "Traceback...\nValueError: bad")
    ]
    assert s.handle(Tick(0.2)) == [Launch(0, 0, 2, False)]
    assert s.handle(Failed(0, "ValueError: again", 0.3)) == [
        ReportFailure(0, 2, "ValueError: again"),
        FailJob(0, 2, "ValueError: again"),
    ]


def test_a_dead_worker_is_replaced_and_its_task_tried_again() -> None:
    s = scheduler(2, 2)
    s.handle(Tick(0.0))
    assert s.handle(Died(1, "worker process 42 died (exit code -9)", 0.1)) == [
        ReportFailure(1, 1, "worker process 42 died (exit code -9)"),
        Replace(1),
    ]
    assert s.handle(Tick(0.2)) == [Launch(1, 1, 2, False)]
    # an idle worker that dies is only replaced
    s.handle(Finished(0, True, 0.3))
    assert s.handle(Died(0, "worker process 41 died (exit code 1)", 0.4)) == [Replace(0)]


def test_a_straggler_gets_one_backup_and_the_slower_copy_is_killed() -> None:
    s = scheduler(3, 3)
    s.handle(Tick(0.0))
    s.handle(Finished(0, True, 1.0))
    s.handle(Finished(1, True, 1.2))
    # task 2 has run 1.4 s: not yet past max(1.0, 1.5 * median 1.1 = 1.65)
    assert s.handle(Tick(1.4)) == []
    assert s.handle(Tick(1.7)) == [Launch(0, 2, 2, True)]
    assert s.handle(Tick(5.0)) == [], "a task already backed up gets no third copy"
    # the backup wins: the original attempt in slot 2 is killed
    assert s.handle(Finished(0, True, 2.0)) == [Replace(2)]
    assert s.finished
    assert s.handle(Tick(6.0)) == []


def test_a_failed_copy_is_not_queued_again_while_its_backup_runs() -> None:
    s = scheduler(2, 2)
    s.handle(Tick(0.0))
    s.handle(Finished(0, True, 1.0))
    assert s.handle(Tick(2.0)) == [Launch(0, 1, 2, True)]
    assert s.handle(Failed(1, "OSError: disk", 2.1)) == [ReportFailure(1, 1, "OSError: disk")]
    assert s.handle(Tick(2.2)) == [], "the backup still runs: nothing to queue, nothing to back up"
    assert s.handle(Finished(0, True, 2.5)) == []
    assert s.finished


def test_no_backups_without_speculation() -> None:
    s = scheduler(2, 2, speculative=False)
    s.handle(Tick(0.0))
    s.handle(Finished(0, True, 0.1))
    assert s.handle(Tick(100.0)) == []
