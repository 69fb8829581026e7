"""One fault against a 3-node cluster, end to end: hosts, the engine, a workload, the fault, the
history and its report. What ``bench/faults.py`` runs once per engine and fault."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from minga.chaos._clusters import etcd_leader, start_etcd_cluster, start_nats_cluster, stream_leader
from minga.chaos._history import NEMESIS, Event, Recorder, load_history
from minga.chaos._netns import Network
from minga.chaos._report import FaultReport, fault_report
from minga.chaos._workloads import ACK_WAIT
from minga.errors import UsageError

__all__ = ["ENGINES", "Scenario", "run_scenario"]

NODES = ("n1", "n2", "n3")
ENGINES = ("nats", "etcd")


@dataclass(frozen=True, slots=True)
class Scenario:
    """What ran and what it showed: the node hit, the history, and its report."""

    engine: str
    fault: str
    target: str
    events: list[Event]
    report: FaultReport


def _wait_for(what: str, check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise UsageError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.2)


def run_scenario(engine: str, fault: str, root: Path, *, seconds: float = 14, hold: float = 5) -> Scenario:
    """Run a ``seconds`` workload on a 3-node ``engine`` cluster; once it answers, inject
    ``fault`` on the leader (of the KV's stream for nats, of the cluster for etcd) for ``hold``
    seconds, then lift it; return the history and its report."""
    if engine not in ENGINES:
        raise UsageError(f"no engine {engine!r}: choose {', '.join(ENGINES)}")
    with Network([*NODES, "client"]) as net:
        if engine == "nats":
            urls = start_nats_cluster(net, NODES, root)
            extra = ["--replicas", "3", "--messages", "300"]
        else:
            urls = start_etcd_cluster(net, NODES, root)
            extra = []
        origin = time.monotonic()
        history = root / "workload.jsonl"
        argv = [
            sys.executable,
            "-m",
            "minga",
            "chaos",
            "workload",
            "-o",
            str(history),
            "--seconds",
            str(seconds),
        ]
        argv += [arg for url in urls for arg in ("--server", url)] + extra + ["--origin", repr(origin)]
        workload = net.spawn("client", argv, log=root / "workload.log")
        _wait_for(
            "the workload's first answers",
            lambda: history.exists() and '"type":"ok"' in history.read_text(),
            60,
        )
        if engine == "nats":
            target = stream_leader(net, "client", urls[1], "KV_history")
        else:
            target = etcd_leader(net, "client", urls, NODES)
        target = target if target in NODES else NODES[0]
        nemesis_file = root / "nemesis.jsonl"
        nemesis = Recorder(nemesis_file, origin=origin)
        nemesis.invoke(NEMESIS, f"start-{fault}", target)
        net.inject(fault, target)
        nemesis.complete(NEMESIS, "ok", f"start-{fault}", target)
        time.sleep(hold)
        nemesis.invoke(NEMESIS, f"stop-{fault}", target)
        net.lift(fault, target)
        nemesis.complete(NEMESIS, "ok", f"stop-{fault}", target)
        nemesis.close()
        code = workload.wait(timeout=seconds + 120)
        if code != 0:
            tail = (root / "workload.log").read_text(errors="replace")[-1500:]
            raise UsageError(f"the workload ended with status {code}:\n{tail}")
    events = load_history(history) + load_history(nemesis_file)
    return Scenario(engine, fault, target, events, fault_report(events, ack_wait=ACK_WAIT))
