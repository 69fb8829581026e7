"""The supervisor's core as pure transitions: events in, actions out, no processes in sight.

:class:`SupervisorMachine` holds the state of every replica. The process side
(:mod:`minga.deploy._local`) feeds it events (a replica started, exited, changed
health, a timer fired, a stop was asked for) through :meth:`SupervisorMachine.handle`
and carries out the actions it returns (spawn, terminate, kill, mark critical).
Time is an input (``at``, monotonic seconds), so unit tests drive restarts, backoff,
crash-loop detection, dependency gating and the stop sequence without a clock.

Stop order: a service's replicas are terminated only once every service that depends
on it has no live replica left; a replica still alive ``grace`` seconds after its
SIGTERM gets SIGKILL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from minga.deploy._model import RestartMode, ServicePlan
from minga.errors import DeployError

__all__ = [
    "Action",
    "Event",
    "Exited",
    "Health",
    "HealthChanged",
    "InstanceState",
    "Kill",
    "MarkCritical",
    "Phase",
    "Spawn",
    "SpawnFailed",
    "Start",
    "Started",
    "StopRequested",
    "SupervisorMachine",
    "Terminate",
    "Tick",
]


class Phase(StrEnum):
    """Where a replica is in its life."""

    WAITING = "waiting"  # for the services it depends on to be healthy
    STARTING = "starting"  # spawn asked for, no pid yet
    RUNNING = "running"
    BACKOFF = "backoff"  # exited; restarts when its delay is over
    STOPPING = "stopping"  # SIGTERM sent
    STOPPED = "stopped"  # stopped on request
    EXITED = "exited"  # exited and the restart policy says to leave it


class Health(StrEnum):
    """A replica's health, as discovery records it."""

    UNKNOWN = "unknown"
    PASSING = "passing"
    WARNING = "warning"
    CRITICAL = "critical"


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Begin: start every service whose dependencies allow it."""

    at: float


@dataclass(frozen=True)
class Started:
    """The process of ``instance`` is running as ``pid``."""

    instance: str
    pid: int
    at: float


@dataclass(frozen=True)
class SpawnFailed:
    """The process of ``instance`` could not be started (command missing, not executable...)."""

    instance: str
    reason: str
    at: float


@dataclass(frozen=True)
class Exited:
    """The process of ``instance`` exited; ``returncode`` is negative for a signal, as in :mod:`subprocess`.

    ``error`` is what it last said about a failure (a traceback's last line), when it said anything.
    """

    instance: str
    returncode: int
    at: float
    error: str | None = None


@dataclass(frozen=True)
class HealthChanged:
    """An active check or the registry saw ``instance`` become ``health``."""

    instance: str
    health: Health
    at: float


@dataclass(frozen=True)
class Tick:
    """Time passed: due restarts, kills and backoff resets happen."""

    at: float


@dataclass(frozen=True)
class StopRequested:
    """Stop everything: SIGTERM in reverse dependency order, SIGKILL after ``grace`` seconds
    (None: each service's ``stop_grace``)."""

    at: float
    grace: float | None = None


Event = Start | Started | SpawnFailed | Exited | HealthChanged | Tick | StopRequested


# -- actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spawn:
    """Start a process for ``instance`` of ``service``; ``attempt`` is 0 for the first start."""

    instance: str
    service: str
    attempt: int


@dataclass(frozen=True)
class Terminate:
    """Send SIGTERM to the process group of ``instance``."""

    instance: str
    pid: int


@dataclass(frozen=True)
class Kill:
    """Send SIGKILL to the process group of ``instance``."""

    instance: str
    pid: int


@dataclass(frozen=True)
class MarkCritical:
    """``instance`` died unexpectedly: tell the registry now, so pickers drop it."""

    instance: str
    service: str


Action = Spawn | Terminate | Kill | MarkCritical


# -- state ----------------------------------------------------------------------------------


@dataclass
class InstanceState:
    """Everything the supervisor knows about one replica."""

    id: str
    service: str
    phase: Phase = Phase.WAITING
    pid: int | None = None
    health: Health = Health.UNKNOWN
    restarts: int = 0
    quick_failures: int = 0
    crashloop: bool = False
    started_at: float | None = None
    restart_at: float | None = None
    kill_at: float | None = None
    kill_sent: bool = False
    last_exit: int | None = None
    last_error: str | None = None
    ever_healthy: bool = False

    @property
    def alive(self) -> bool:
        """A process exists (or is being created) for this replica."""
        return self.phase in (Phase.STARTING, Phase.RUNNING, Phase.STOPPING)


def _order(plans: Sequence[ServicePlan]) -> list[str]:
    """Service names in dependency order; raises DeployError on an unknown name or a cycle."""
    by_name = {p.name: p for p in plans}
    for p in plans:
        for dep in (*p.depends_on, *p.after):
            if dep not in by_name:
                raise DeployError(f"service {p.name!r} depends on {dep!r}, which is not in the spec")
    done: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise DeployError(f"dependency cycle: {cycle}")
        visiting.append(name)
        for dep in (*by_name[name].depends_on, *by_name[name].after):
            visit(dep)
        visiting.pop()
        done.append(name)

    for p in plans:
        visit(p.name)
    return done


class SupervisorMachine:
    """The state of every replica of every planned service, advanced by :meth:`handle`."""

    def __init__(self, plans: Sequence[ServicePlan]) -> None:
        self.plans = {p.name: p for p in plans}
        self.order = _order(plans)
        self.instances: dict[str, InstanceState] = {}
        for name in self.order:
            for iid in self.plans[name].instance_ids():
                self.instances[iid] = InstanceState(id=iid, service=name)
        self.started = False
        self.stopping = False
        self.grace: float | None = None

    # -- queries ---------------------------------------------------------------------------

    def of(self, service: str) -> list[InstanceState]:
        """The replicas of ``service``, in index order."""
        return [i for i in self.instances.values() if i.service == service]

    def healthy(self, service: str) -> bool:
        """Every replica of ``service`` is running and passing its checks."""
        return all(i.phase is Phase.RUNNING and i.health is Health.PASSING for i in self.of(service))

    def service_health(self, service: str) -> Health:
        """One word for ``service``, the same wherever it is shown (CLI, dashboard): passing when
        every replica passes; critical when one is critical or crash-looping; else warning when one
        is, else unknown (still starting)."""
        if self.healthy(service):
            return Health.PASSING
        replicas = self.of(service)
        if any(i.crashloop or i.health is Health.CRITICAL for i in replicas):
            return Health.CRITICAL
        if any(i.health is Health.WARNING for i in replicas):
            return Health.WARNING
        return Health.UNKNOWN

    def running(self, service: str) -> bool:
        """Every replica of ``service`` has a running process."""
        return all(i.phase is Phase.RUNNING for i in self.of(service))

    def failed_before_healthy(self, service: str) -> list[InstanceState]:
        """The replicas of ``service`` that exited (or could not start) before they ever passed their checks."""
        return [i for i in self.of(service) if i.last_exit is not None and not i.ever_healthy]

    def all_stopped(self) -> bool:
        """After a stop request: no process is left."""
        return self.stopping and not any(i.alive for i in self.instances.values())

    def next_deadline(self) -> float | None:
        """The earliest time at which a :class:`Tick` changes something, or None."""
        times: list[float] = []
        for i in self.instances.values():
            if i.phase is Phase.BACKOFF and i.restart_at is not None:
                times.append(i.restart_at)
            elif i.phase is Phase.STOPPING and i.kill_at is not None and not i.kill_sent:
                times.append(i.kill_at)
            elif (
                i.phase is Phase.RUNNING
                and i.started_at is not None
                and (i.quick_failures or i.crashloop)
            ):
                times.append(i.started_at + self.plans[i.service].restart.stable_after)
        return min(times) if times else None

    # -- transitions -----------------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        """Apply ``event``; return what the process side must do, in order."""
        actions: list[Action] = []
        match event:
            case Start(at=at):
                self.started = True
                actions += self._release_waiting()
            case Started(instance=iid, pid=pid, at=at):
                inst = self.instances[iid]
                inst.pid = pid
                inst.started_at = at
                inst.health = Health.UNKNOWN
                if inst.phase is Phase.STOPPING:  # stop asked for while it was being created
                    inst.kill_at = at + self._grace(inst.service)
                    actions.append(Terminate(iid, pid))
                else:
                    inst.phase = Phase.RUNNING
                    actions += self._release_waiting()
            case SpawnFailed(instance=iid, reason=reason, at=at):
                inst = self.instances[iid]
                inst.last_error = reason
                actions += self._exited(inst, 127, at)
            case Exited(instance=iid, returncode=code, at=at, error=error):
                inst = self.instances[iid]
                if error is not None and code != 0:
                    inst.last_error = error
                actions += self._exited(inst, code, at)
            case HealthChanged(instance=iid, health=health):
                inst = self.instances[iid]
                if inst.phase is Phase.RUNNING:
                    inst.health = health
                    inst.ever_healthy = inst.ever_healthy or health is Health.PASSING
                    actions += self._release_waiting()
            case Tick(at=at):
                actions += self._tick(at)
            case StopRequested(at=at, grace=grace):
                self.stopping = True
                self.grace = grace
                for inst in self.instances.values():
                    if inst.phase in (Phase.WAITING, Phase.BACKOFF, Phase.EXITED):
                        inst.phase = Phase.STOPPED
                        inst.restart_at = None
                actions += self._stop_next(at)
        return actions

    def _grace(self, service: str) -> float:
        return self.plans[service].stop_grace if self.grace is None else self.grace

    def _release_waiting(self) -> list[Action]:
        if not self.started or self.stopping:
            return []
        actions: list[Action] = []
        for name in self.order:
            waiting = [i for i in self.of(name) if i.phase is Phase.WAITING]
            plan = self.plans[name]
            if (
                waiting
                and all(self.healthy(dep) for dep in plan.depends_on)
                and all(self.running(dep) for dep in plan.after)
            ):
                for inst in waiting:
                    inst.phase = Phase.STARTING
                    actions.append(Spawn(inst.id, name, 0))
        return actions

    def _exited(self, inst: InstanceState, code: int, at: float) -> list[Action]:
        actions: list[Action] = []
        was = inst.phase
        inst.pid = None
        inst.last_exit = code
        inst.health = Health.CRITICAL
        if was is Phase.STOPPING:
            inst.phase = Phase.STOPPED
            return self._stop_next(at)
        actions.append(MarkCritical(inst.id, inst.service))
        policy = self.plans[inst.service].restart
        if self.stopping:
            inst.phase = Phase.STOPPED
            return actions + self._stop_next(at)
        if policy.mode is RestartMode.NEVER or (policy.mode is RestartMode.ON_FAILURE and code == 0):
            inst.phase = Phase.EXITED
            return actions
        if inst.started_at is not None and at - inst.started_at >= policy.stable_after:
            inst.quick_failures = 0
        inst.quick_failures += 1
        inst.crashloop = inst.quick_failures >= policy.crashloop_exits
        delay = policy.backoff.maximum if inst.crashloop else policy.backoff.delay(inst.quick_failures)
        inst.phase = Phase.BACKOFF
        inst.restart_at = at + delay
        return actions

    def _tick(self, at: float) -> list[Action]:
        actions: list[Action] = []
        for inst in self.instances.values():
            policy = self.plans[inst.service].restart
            if inst.phase is Phase.BACKOFF and inst.restart_at is not None and inst.restart_at <= at:
                inst.phase = Phase.STARTING
                inst.restart_at = None
                inst.restarts += 1
                actions.append(Spawn(inst.id, inst.service, inst.restarts))
            elif (
                inst.phase is Phase.STOPPING
                and inst.kill_at is not None
                and inst.kill_at <= at
                and not inst.kill_sent
                and inst.pid is not None
            ):
                inst.kill_sent = True
                actions.append(Kill(inst.id, inst.pid))
            elif (
                inst.phase is Phase.RUNNING
                and inst.started_at is not None
                and at - inst.started_at >= policy.stable_after
            ):
                inst.quick_failures = 0
                inst.crashloop = False
        return actions

    def _stop_next(self, at: float) -> list[Action]:
        """Terminate the replicas of every service that no live service depends on any more."""
        actions: list[Action] = []
        for name in reversed(self.order):
            dependents = [p.name for p in self.plans.values() if name in (*p.depends_on, *p.after)]
            if any(i.alive for d in dependents for i in self.of(d)):
                continue
            for inst in self.of(name):
                if inst.phase is Phase.RUNNING and inst.pid is not None:
                    inst.phase = Phase.STOPPING
                    inst.kill_at = at + self._grace(inst.service)
                    inst.kill_sent = False
                    actions.append(Terminate(inst.id, inst.pid))
                elif inst.phase is Phase.STARTING:
                    inst.phase = Phase.STOPPING  # Terminate once Started brings its pid
        return actions

    def apply(self, events: Iterable[Event]) -> list[Action]:
        """Handle several events in order; the concatenated actions."""
        out: list[Action] = []
        for e in events:
            out += self.handle(e)
        return out
