"""Did a work queue keep its promises? Nothing acknowledged lost, nothing handed out twice at once.

A work-queue history records, by message id:

- ``enqueue``: invoked by a producer, ``ok`` once the stream acknowledged it (the message is
  then durable), ``fail`` if refused, ``info`` if the answer never came;
- ``deliver``: a consumer received the message: a lone ``ok`` at the moment it was seen, or,
  when the client cannot tell exactly when the server sent it (a message buffered by a pull
  request made earlier), an ``invoke`` at the earliest moment it can have been sent and an
  ``ok`` when it was seen;
- ``ack`` (and ``nak``): ends that consumer's delivery; recorded as ``invoke`` then ``ok`` when
  the server confirmed it (a double ack), or as a lone ``ok`` when it was only sent.

The promises checked, those of a JetStream work queue with explicit acks; an anomaly is
reported only when the times recorded prove it, never when an observation was merely late:

- **lost**: a message whose enqueue was acknowledged and that no consumer ever acknowledged;
- **concurrent**: a message delivered to a second consumer while its delivery to a first was
  still in force (neither acked nor nakked, and younger than ``ack_wait``) — redelivery
  after the ack wait or a nak is the documented behaviour and is not counted, nor is one
  after a fault: a server that restarts (nats-server does) may hand out again at once what was
  pending. Faults are recorded by the process ``nemesis`` (see :func:`fault_windows`);
- **after ack**: a message delivered again after the server confirmed an acknowledgement (an
  ack only sent may be lost on the way, and then the redelivery is due);
- **phantom**: a message delivered that no producer enqueued (or whose enqueue failed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from minga.chaos._history import NEMESIS, Event, Operation, fault_windows, operations
from minga.chaos._linear import REGISTER_FUNCTIONS

__all__ = ["QUEUE_FUNCTIONS", "QueueAnomaly", "QueueResult", "check_queue", "history_model"]

QUEUE_FUNCTIONS = frozenset({"enqueue", "deliver", "ack", "nak"})


@dataclass(frozen=True, slots=True)
class QueueAnomaly:
    kind: str  # lost | concurrent | after ack | phantom
    message: str
    operations: tuple[Operation, ...]

    def describe(self) -> str:
        lines = [f"{self.kind}: message {self.message}"]
        lines += [f"  {op.describe()}" for op in self.operations]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class QueueResult:
    enqueued: int  # acknowledged enqueues
    acknowledged: int  # messages acknowledged by a consumer
    deliveries: int
    redeliveries: int  # deliveries beyond each message's first (documented, not anomalies)
    anomalies: tuple[QueueAnomaly, ...] = field(default=())

    @property
    def valid(self) -> bool:
        return not self.anomalies

    def count(self, kind: str) -> int:
        return sum(1 for a in self.anomalies if a.kind == kind)


def _id(op: Operation) -> str:
    return str(op.value)


def check_queue(events: Iterable[Event], *, ack_wait: float = 30.0) -> QueueResult:
    """Check a work-queue history; ``ack_wait`` is the consumer's, in seconds."""
    enqueues: dict[str, list[Operation]] = {}
    observed: dict[str, list[Operation]] = {}
    events = list(events)
    faults = fault_windows(events)
    for op in operations(e for e in events if e.process != NEMESIS):
        if op.f in QUEUE_FUNCTIONS:
            (enqueues if op.f == "enqueue" else observed).setdefault(_id(op), []).append(op)

    anomalies: list[QueueAnomaly] = []
    durable = {msg for msg, ops in enqueues.items() if any(op.definite for op in ops)}
    deliveries = redeliveries = 0
    acknowledged: set[str] = set()
    for msg, ops in sorted(observed.items()):
        ops.sort(key=lambda op: (op.start, op.f != "deliver"))
        delivered = [op for op in ops if op.f == "deliver"]
        deliveries += len(delivered)
        redeliveries += max(0, len(delivered) - 1)
        if msg not in enqueues and delivered:
            anomalies.append(QueueAnomaly("phantom", msg, (delivered[0],)))
        if any(op.f == "ack" for op in ops):
            acknowledged.add(msg)
        confirmed = [op for op in ops if op.f == "ack" and op.invoked]
        for d in delivered:
            # sent after the server had confirmed an ack: surely after it
            after = next((a for a in confirmed if a.end < d.start), None)
            if after is not None:
                anomalies.append(QueueAnomaly("after ack", msg, (after, d)))
        for i, first in enumerate(delivered):
            ending = next(
                (
                    op
                    for op in ops
                    if op.f != "deliver" and op.process == first.process and op.start >= first.start
                ),
                None,
            )
            released = math.inf if ending is None else ending.start
            for second in delivered[i + 1 :]:
                if (
                    second.process != first.process
                    and second.start > first.end  # surely sent after the first
                    and second.end < released  # surely before the first was acked or nakked
                    and second.end - first.start < ack_wait  # surely within the first's ack wait
                    and not any(f.begins <= second.end and f.ends >= first.start for f in faults)
                ):
                    anomalies.append(QueueAnomaly("concurrent", msg, (first, second)))
    for msg in sorted(durable - acknowledged):
        anomalies.append(QueueAnomaly("lost", msg, tuple(enqueues[msg] + observed.get(msg, []))))
    return QueueResult(len(durable), len(acknowledged), deliveries, redeliveries, tuple(anomalies))


def history_model(events: Iterable[Event]) -> str:
    """Which checker a history calls for: "register", "queue", or "mixed" when it has both kinds."""
    functions = {e.f for e in events}
    if functions & REGISTER_FUNCTIONS and functions & QUEUE_FUNCTIONS:
        return "mixed"
    return "queue" if functions & QUEUE_FUNCTIONS else "register"
