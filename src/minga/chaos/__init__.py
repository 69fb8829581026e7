"""Faults and their checker: did a system under faults keep its promises?

A workload records a history of what its clients asked and were told
(:class:`Recorder`, JSON lines); the checkers read it back:

- :func:`check_registers`: every key of a key-value store behaved as one register would,
  operation by operation, in an order consistent with real time (linearizability); a
  failing key comes with a smallest failing history;
- :func:`check_queue`: a work queue lost no acknowledged message and handed none to two
  consumers at once beyond its documented redelivery.

:func:`kv_workload` and :class:`QueueWorkload` record such histories through nats-py, against
the embedded broker or a nats-server alike. ``minga chaos check HISTORY`` runs the checkers
from the command line.
"""

from minga.chaos._clusters import (
    client_urls,
    etcd_leader,
    start_etcd_cluster,
    start_nats_cluster,
    stream_leader,
)
from minga.chaos._history import (
    Event,
    EventType,
    FaultWindow,
    Operation,
    Recorder,
    fault_windows,
    load_history,
    operations,
)
from minga.chaos._linear import (
    KeyVerdict,
    LinearizabilityResult,
    check_register,
    check_registers,
)
from minga.chaos._netns import Host, Network
from minga.chaos._queue import QueueAnomaly, QueueResult, check_queue, history_model
from minga.chaos._report import FaultReport, fault_report
from minga.chaos._scenario import ENGINES, Scenario, run_scenario
from minga.chaos._workloads import QueueWorkload, kv_workload, run_etcd_workload, run_workloads

__all__ = [
    "ENGINES",
    "Event",
    "EventType",
    "FaultReport",
    "FaultWindow",
    "Host",
    "KeyVerdict",
    "LinearizabilityResult",
    "Network",
    "Operation",
    "QueueAnomaly",
    "QueueResult",
    "QueueWorkload",
    "Recorder",
    "Scenario",
    "check_queue",
    "check_register",
    "check_registers",
    "client_urls",
    "etcd_leader",
    "fault_report",
    "fault_windows",
    "history_model",
    "kv_workload",
    "load_history",
    "operations",
    "run_etcd_workload",
    "run_scenario",
    "run_workloads",
    "start_etcd_cluster",
    "start_nats_cluster",
    "stream_leader",
]
