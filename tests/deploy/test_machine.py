"""The supervisor's transitions, driven by events with no process and no clock."""

from __future__ import annotations

import pytest

from minga.deploy import (
    Backoff,
    Exited,
    Health,
    HealthChanged,
    Kill,
    MarkCritical,
    Phase,
    RestartMode,
    RestartPolicy,
    ServicePlan,
    Spawn,
    SpawnFailed,
    Start,
    Started,
    StopRequested,
    SupervisorMachine,
    Terminate,
    Tick,
)
from minga.errors import DeployError

FAST = RestartPolicy(backoff=Backoff(initial=1.0, factor=2.0, maximum=8.0), stable_after=10.0, crashloop_exits=3)


def plan(name: str, replicas: int = 1, depends_on: tuple[str, ...] = (), **kw: object) -> ServicePlan:
    return ServicePlan(name=name, argv=("true",), replicas=replicas, depends_on=depends_on, **kw)  # type: ignore[arg-type]


def run_all(m: SupervisorMachine, at: float = 0.0) -> None:
    """Start every spawned replica and make it healthy, until nothing is left to spawn."""
    pid = 100
    pending = m.handle(Start(at))
    while pending:
        nxt = []
        for a in pending:
            assert isinstance(a, Spawn)
            pid += 1
            nxt += m.handle(Started(a.instance, pid, at))
            nxt += m.handle(HealthChanged(a.instance, Health.PASSING, at))
        pending = nxt


def test_replicas_get_stable_ids_and_start_together() -> None:
    m = SupervisorMachine([plan("orders", replicas=2)])
    actions = m.handle(Start(0))
    assert actions == [Spawn("orders-1", "orders", 0), Spawn("orders-2", "orders", 0)]
    assert m.instances["orders-1"].phase is Phase.STARTING


def test_dependents_wait_until_every_replica_of_the_dependency_is_healthy() -> None:
    m = SupervisorMachine([plan("web", depends_on=("db",)), plan("db", replicas=2)])
    assert m.order == ["db", "web"]
    assert m.handle(Start(0)) == [Spawn("db-1", "db", 0), Spawn("db-2", "db", 0)]
    m.handle(Started("db-1", 11, 0.1))
    m.handle(Started("db-2", 12, 0.1))
    assert m.handle(HealthChanged("db-1", Health.PASSING, 0.2)) == []
    assert m.instances["web-1"].phase is Phase.WAITING
    assert m.handle(HealthChanged("db-2", Health.PASSING, 0.3)) == [Spawn("web-1", "web", 0)]


def test_unknown_dependency_and_cycles_are_refused() -> None:
    with pytest.raises(DeployError, match="not in the spec"):
        SupervisorMachine([plan("web", depends_on=("db",))])
    with pytest.raises(DeployError, match="cycle: a -> b -> a"):
        SupervisorMachine([plan("a", depends_on=("b",)), plan("b", depends_on=("a",))])


def test_unexpected_exit_marks_critical_then_restarts_after_backoff() -> None:
    m = SupervisorMachine([plan("svc", restart=FAST)])
    run_all(m)
    actions = m.handle(Exited("svc-1", -9, 1.0))
    assert actions == [MarkCritical("svc-1", "svc")]
    inst = m.instances["svc-1"]
    assert inst.phase is Phase.BACKOFF and inst.health is Health.CRITICAL and inst.last_exit == -9
    assert m.next_deadline() == 2.0
    assert m.handle(Tick(1.5)) == []
    assert m.handle(Tick(2.0)) == [Spawn("svc-1", "svc", 1)]
    assert inst.restarts == 1


def test_backoff_grows_exponentially_and_resets_after_a_stable_run() -> None:
    m = SupervisorMachine([plan("svc", restart=FAST)])
    run_all(m)
    t = 0.0
    delays = []
    for n in range(3):
        m.handle(Started("svc-1", 200 + n, t)) if n else None
        t += 0.5
        m.handle(Exited("svc-1", 1, t))
        deadline = m.next_deadline()
        assert deadline is not None
        delays.append(deadline - t)
        t = deadline
        m.handle(Tick(t))
    assert delays[:2] == [1.0, 2.0]
    m.handle(Started("svc-1", 300, t))
    m.handle(Tick(t + 10.0))  # stayed up stable_after seconds
    assert m.instances["svc-1"].quick_failures == 0
    m.handle(Exited("svc-1", 1, t + 50.0))
    assert m.next_deadline() == t + 51.0


def test_crash_loop_is_detected_and_cleared_after_a_stable_run() -> None:
    m = SupervisorMachine([plan("svc", restart=FAST)])
    run_all(m)
    t = 0.0
    for _ in range(3):
        t += 0.1
        m.handle(Exited("svc-1", 2, t))
        t = m.next_deadline() or t
        m.handle(Tick(t))
        m.handle(Started("svc-1", 1, t))
    inst = m.instances["svc-1"]
    assert inst.crashloop
    m.handle(Exited("svc-1", 2, t + 0.1))
    assert m.next_deadline() == pytest.approx(t + 0.1 + FAST.backoff.maximum)
    m.handle(Tick(t + 10))
    m.handle(Started("svc-1", 1, t + 10))
    m.handle(Tick(t + 20))
    assert not inst.crashloop


def test_a_steadily_failing_replica_stays_in_a_crash_loop_whatever_the_backoff() -> None:
    # the default policy: backoff up to 10 s, so such a replica exits about 3 times per 30 s
    m = SupervisorMachine([plan("svc")])
    m.handle(Start(0.0))
    t = 0.0
    looping = []
    for n in range(12):
        m.handle(Started("svc-1", 100 + n, t))
        t += 1.0  # each run fails after a second: an import error, say
        m.handle(Exited("svc-1", 1, t, error="ModuleNotFoundError: No module named 'shop.nope'"))
        looping.append(m.instances["svc-1"].crashloop)
        t = m.next_deadline() or t
        m.handle(Tick(t))
    assert looping == [False] * 3 + [True] * 9
    inst = m.instances["svc-1"]
    assert inst.last_error == "ModuleNotFoundError: No module named 'shop.nope'"
    assert m.failed_before_healthy("svc") == [inst]


def test_a_replica_that_was_healthy_once_has_not_failed_before_being_healthy() -> None:
    m = SupervisorMachine([plan("svc", restart=FAST)])
    run_all(m)
    m.handle(Exited("svc-1", 1, 1.0))
    assert m.failed_before_healthy("svc") == []


@pytest.mark.parametrize(
    ("mode", "code", "restarts"),
    [
        (RestartMode.NEVER, 1, False),
        (RestartMode.ON_FAILURE, 0, False),
        (RestartMode.ON_FAILURE, 1, True),
        (RestartMode.ALWAYS, 0, True),
    ],
)
def test_restart_policy(mode: RestartMode, code: int, restarts: bool) -> None:
    m = SupervisorMachine([plan("svc", restart=RestartPolicy(mode=mode))])
    run_all(m)
    m.handle(Exited("svc-1", code, 1.0))
    assert (m.instances["svc-1"].phase is Phase.BACKOFF) is restarts
    if not restarts:
        assert m.instances["svc-1"].phase is Phase.EXITED
        assert m.next_deadline() is None


def test_spawn_failure_counts_as_a_failed_run() -> None:
    m = SupervisorMachine([plan("svc", restart=FAST)])
    m.handle(Start(0))
    assert m.handle(SpawnFailed("svc-1", "no such file", 0.0)) == [MarkCritical("svc-1", "svc")]
    inst = m.instances["svc-1"]
    assert inst.phase is Phase.BACKOFF and inst.last_error == "no such file" and inst.last_exit == 127


def test_health_of_a_dead_replica_is_ignored() -> None:
    m = SupervisorMachine([plan("svc", restart=FAST)])
    run_all(m)
    m.handle(Exited("svc-1", -9, 1.0))
    m.handle(HealthChanged("svc-1", Health.PASSING, 1.1))  # a late probe result
    assert m.instances["svc-1"].health is Health.CRITICAL


def test_stop_goes_in_reverse_dependency_order_and_kills_after_grace() -> None:
    m = SupervisorMachine([plan("db"), plan("web", depends_on=("db",))])
    run_all(m)
    db_pid, web_pid = m.instances["db-1"].pid, m.instances["web-1"].pid
    assert db_pid is not None and web_pid is not None
    actions = m.handle(StopRequested(10.0, grace=2.0))
    assert actions == [Terminate("web-1", web_pid)]  # db waits for its dependent
    assert m.handle(Tick(12.0)) == [Kill("web-1", web_pid)]
    assert m.handle(Tick(12.5)) == []  # killed once
    actions = m.handle(Exited("web-1", -9, 12.6))
    assert actions == [Terminate("db-1", db_pid)]  # no MarkCritical: an exit we asked for
    assert not m.all_stopped()
    assert m.handle(Exited("db-1", 0, 12.7)) == []
    assert m.all_stopped()


def test_stop_while_backing_off_or_starting() -> None:
    m = SupervisorMachine([plan("a", restart=FAST), plan("b")])
    m.handle(Start(0))
    m.handle(Started("a-1", 5, 0))
    m.handle(Exited("a-1", 1, 0.5))  # a-1 in backoff, b-1 still starting
    actions = m.handle(StopRequested(1.0, grace=1.0))
    assert actions == []
    assert m.instances["a-1"].phase is Phase.STOPPED
    assert m.handle(Tick(5.0)) == []  # no restart after stop
    assert m.handle(Started("b-1", 9, 1.1)) == [Terminate("b-1", 9)]
    m.handle(Exited("b-1", -15, 1.2))
    assert m.all_stopped()


def test_unexpected_exit_during_stop_is_not_restarted() -> None:
    m = SupervisorMachine([plan("db"), plan("web", depends_on=("db",))])
    run_all(m)
    m.handle(StopRequested(1.0))
    assert m.handle(Exited("db-1", -9, 1.1)) == [MarkCritical("db-1", "db")]
    assert m.instances["db-1"].phase is Phase.STOPPED
    assert m.next_deadline() is not None  # web-1's kill deadline only
