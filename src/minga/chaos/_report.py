"""What a fault cost the clients, read from a history: the figures of a fault report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from minga.chaos._history import NEMESIS, Event, fault_windows, operations
from minga.chaos._linear import REGISTER_FUNCTIONS, check_registers
from minga.chaos._queue import QUEUE_FUNCTIONS, QueueAnomaly, check_queue

__all__ = ["HEADER", "FaultReport", "fault_report"]


@dataclass(frozen=True, slots=True)
class FaultReport:
    """One fault's cost: operations answered, unknown (timed out) and failed; the seconds from
    the moment the fault was surely in force until a KV write invoked after it succeeded; acknowledged jobs lost; and the
    checkers' verdicts (None where the history had no such operations, or the search ran out)."""

    operations: int
    ok: int
    unknown: int
    failed: int
    recovery: float | None
    lost: int | None
    linearizable: bool | None
    queue_ok: bool | None
    anomalies: tuple[str, ...] = ()  # the kinds found, with their counts: "after ack x12"

    def row(self) -> list[str]:
        def verdict(value: bool | None) -> str:
            return {True: "ok", False: "ANOMALY", None: "-"}[value]

        recovery = "-" if self.recovery is None else f"{self.recovery:.1f} s"
        return [
            str(self.operations),
            str(self.ok),
            str(self.unknown),
            str(self.failed),
            recovery,
            "-" if self.lost is None else str(self.lost),
            verdict(self.linearizable),
            verdict(self.queue_ok) + (f" ({', '.join(self.anomalies)})" if self.anomalies else ""),
        ]


HEADER = ["operations", "ok", "unknown", "failed", "KV writes again after", "acked lost", "KV", "queue"]


def fault_report(events: Sequence[Event], *, ack_wait: float) -> FaultReport:
    invoked = [e for e in events if e.type == "invoke" and e.process != NEMESIS]
    completions = [e for e in events if e.type != "invoke" and e.process != NEMESIS]
    windows = fault_windows(events)
    start = windows[0].in_force if windows else None  # from when the fault was surely acting
    recovery = None
    if start is not None:
        writes = [
            op.end
            for op in operations((e for e in events if e.process != NEMESIS), with_f=frozenset({"write"}))
            if op.definite and op.start >= start and not math.isinf(op.end)
        ]
        recovery = min(writes) - start if writes else None
    kinds = {e.f for e in events}
    linearizable = check_registers(events).valid if kinds & REGISTER_FUNCTIONS else None
    queue = check_queue(events, ack_wait=ack_wait) if kinds & QUEUE_FUNCTIONS else None
    return FaultReport(
        operations=len(invoked),
        ok=sum(1 for e in completions if e.type == "ok" and e.f in REGISTER_FUNCTIONS | {"enqueue"}),
        unknown=sum(1 for e in completions if e.type == "info"),
        failed=sum(1 for e in completions if e.type == "fail"),
        recovery=recovery,
        lost=None if queue is None else queue.count("lost"),
        linearizable=linearizable,
        queue_ok=None if queue is None else queue.valid,
        anomalies=() if queue is None else _kinds(queue.anomalies),
    )


def _kinds(anomalies: Sequence[QueueAnomaly]) -> tuple[str, ...]:
    counts: dict[str, int] = {}
    for anomaly in anomalies:
        counts[anomaly.kind] = counts.get(anomaly.kind, 0) + 1
    return tuple(f"{kind} x{n}" for kind, n in sorted(counts.items()))
