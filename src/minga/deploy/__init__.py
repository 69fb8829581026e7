"""Running systems: the supervisor of the local provider and what it is asked to run.

:class:`SupervisorMachine` is the supervisor's core as pure transitions (events in,
actions out); :class:`LocalSupervisor` carries its actions out with local process
groups, per-instance logs under MINGA_HOME, active health checks and resource limits.
"""

from minga.deploy._local import (
    LocalSupervisor,
    OnCrashLoop,
    OnCritical,
    OnHealth,
    error_line,
    log_path,
)
from minga.deploy._logs import LogLine, LogPage, follow_logs, log_files, page_logs, read_logs, select_lines
from minga.deploy._machine import (
    Action,
    Event,
    Exited,
    Health,
    HealthChanged,
    InstanceState,
    Kill,
    MarkCritical,
    Phase,
    Spawn,
    SpawnFailed,
    Start,
    Started,
    StopRequested,
    SupervisorMachine,
    Terminate,
    Tick,
)
from minga.deploy._model import Backoff, HealthProbe, Limits, RestartMode, RestartPolicy, ServicePlan
from minga.deploy._orphans import reap_orphans
from minga.deploy._spec import plan_from_spec, plan_service

__all__ = [
    "Action",
    "Backoff",
    "Event",
    "Exited",
    "Health",
    "HealthChanged",
    "HealthProbe",
    "InstanceState",
    "Kill",
    "Limits",
    "LocalSupervisor",
    "LogLine",
    "LogPage",
    "MarkCritical",
    "OnCrashLoop",
    "OnCritical",
    "OnHealth",
    "Phase",
    "RestartMode",
    "RestartPolicy",
    "ServicePlan",
    "Spawn",
    "SpawnFailed",
    "Start",
    "Started",
    "StopRequested",
    "SupervisorMachine",
    "Terminate",
    "Tick",
    "error_line",
    "follow_logs",
    "log_files",
    "log_path",
    "page_logs",
    "plan_from_spec",
    "plan_service",
    "read_logs",
    "reap_orphans",
    "select_lines",
]
