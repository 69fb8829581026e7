"""From minga.yaml to supervisor plans."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from minga.deploy._model import HealthProbe, Limits, RestartMode, RestartPolicy, ServicePlan
from minga.spec import ServiceSpec, Spec

__all__ = ["plan_from_spec", "plan_service"]

SERVICE_RUNNER = "minga.service"
"""The module that runs one replica of a ``module:`` service (``python -m minga.service pkg.mod:Class``)."""


def plan_service(name: str, svc: ServiceSpec, base: Path) -> ServicePlan:
    """The plan of one service; relative paths are resolved against ``base`` (the spec's directory).

    A ``module:`` service without a ``health:`` section is checked with ``GET /healthz`` on its
    HTTP port (the replica runner serves it); a ``command:`` service without one is healthy once started.
    A ``module:`` service's ``/healthz`` answer must come from the replica itself (its instance id and pid).
    """
    cwd = (base / svc.workdir).resolve() if svc.workdir else base
    env = dict(svc.env)
    if svc.module is not None:
        argv: tuple[str, ...] = (sys.executable, "-m", SERVICE_RUNNER, svc.module)
        # the service's module is imported from beside the spec, like a script's own directory
        path = [str(cwd)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        env.setdefault("PYTHONPATH", os.pathsep.join(path))
        health = HealthProbe(kind="http", path="/healthz", port="http", identity=True)
    else:
        assert svc.command is not None
        argv = tuple(svc.command)
        health = HealthProbe(kind="none")
    if svc.health is not None:
        h = svc.health
        health = HealthProbe(
            kind="http" if h.http is not None else "tcp",
            path=h.http or "/",
            port=h.port,
            interval=h.interval,
            timeout=h.timeout,
            failures=h.failures,
            identity=svc.module is not None and h.http == "/healthz",
        )
    return ServicePlan(
        name=name,
        argv=argv,
        replicas=svc.replicas,
        env=env,
        cwd=cwd,
        restart=RestartPolicy(mode=RestartMode(svc.restart)),
        health=health,
        depends_on=tuple(d for d, c in svc.depends_on.items() if c.condition == "healthy"),
        after=tuple(d for d, c in svc.depends_on.items() if c.condition == "started"),
        limits=Limits(memory=svc.resources.memory, cpus=svc.resources.cpu),
        ports=dict(svc.ports),
        stop_grace=svc.stop_grace,
        secrets=dict(svc.secrets),
    )


def plan_from_spec(spec: Spec, base: Path | None = None) -> list[ServicePlan]:
    """Plans of every service of ``spec``, dependencies first; ``base`` defaults to the spec file's directory."""
    if base is None:
        base = Path(spec.source).resolve().parent if spec.source else Path.cwd()
    return [plan_service(name, spec.services[name], base) for name in spec.start_order()]
