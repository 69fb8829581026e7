"""What the supervisor is asked to run: plans of services, restart policies, limits, health checks.

These are plain frozen dataclasses, built from a :mod:`minga.spec` system by
:func:`minga.deploy.plan_from_spec` or by hand in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from minga.backoff import Backoff

__all__ = [
    "RESTART_BACKOFF",
    "Backoff",
    "HealthProbe",
    "Limits",
    "RestartMode",
    "RestartPolicy",
    "ServicePlan",
]


class RestartMode(StrEnum):
    """When an exited replica is started again."""

    ALWAYS = "always"
    ON_FAILURE = "on-failure"  # only after a non-zero exit or a signal
    NEVER = "never"


# a replica restarts sooner than a job is redelivered
RESTART_BACKOFF = Backoff(initial=0.2, factor=2.0, maximum=10.0)


@dataclass(frozen=True)
class RestartPolicy:
    """How the supervisor restarts a service's replicas.

    A replica that stayed up ``stable_after`` seconds resets its backoff. ``crashloop_exits``
    exits in a row, none after a stable run, mark the replica as crash-looping: it keeps being
    restarted, at the backoff's maximum delay, status shows it and a ``CrashLoop`` alert fires,
    until a run lasts ``stable_after`` seconds. (Counting exits in a row rather than within a time
    window keeps the rule reachable whatever the backoff's delays.)
    """

    mode: RestartMode = RestartMode.ALWAYS
    backoff: Backoff = RESTART_BACKOFF
    stable_after: float = 10.0
    crashloop_exits: int = 4


@dataclass(frozen=True)
class HealthProbe:
    """An active check of a replica: ``kind`` is ``http`` (GET ``path`` on its HTTP port must answer 2xx),
    ``tcp`` (its HTTP port accepts a connection) or ``none`` (healthy once started).

    ``port`` names the replica's port to check. ``interval`` and ``timeout`` are seconds;
    ``failures`` consecutive failed checks make it critical. With ``identity`` the HTTP answer must
    name the replica's instance id and pid (a minga replica's ``/healthz`` does), so a process that
    holds the port in its stead never passes.
    """

    kind: str = "http"
    path: str = "/healthz"
    port: str = "http"
    interval: float = 1.0
    timeout: float = 1.0
    failures: int = 2
    identity: bool = False


@dataclass(frozen=True)
class Limits:
    """Resource limits of one replica: ``memory`` in bytes, ``cpus`` in cores (fractional allowed)."""

    memory: int | None = None
    cpus: float | None = None


@dataclass(frozen=True)
class ServicePlan:
    """One service as the supervisor runs it.

    ``argv`` is the replica's command line; ``depends_on`` names services that must have
    every replica healthy before this one starts, ``after`` services that must merely have
    every replica started. ``env`` is added to what the supervisor injects (MINGA_NATS_URL,
    MINGA_SERVICE, MINGA_INSTANCE, MINGA_HTTP_PORT, MINGA_DISCOVERY_URL). ``ports`` maps port
    names to numbers, 0 meaning a free port per replica; each is injected as
    ``MINGA_<NAME>_PORT``, and ``http`` is always assigned. ``stop_grace`` is the seconds
    between SIGTERM and SIGKILL when stopping.
    """

    name: str
    argv: tuple[str, ...]
    replicas: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    health: HealthProbe = field(default_factory=HealthProbe)
    depends_on: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    ports: Mapping[str, int] = field(default_factory=dict)
    stop_grace: float = 5.0
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Environment variable -> the name of a secret whose value the control plane injects at start."""

    def instance_ids(self) -> list[str]:
        """The stable ids of this service's replicas: ``orders-1``, ``orders-2``..."""
        return [f"{self.name}-{i}" for i in range(1, self.replicas + 1)]
