"""Did a work queue keep its promises? Nothing acknowledged lost, nothing handed out twice at once.

A work-queue history records, by message id:

- ``enqueue``: invoked by a producer, ``ok`` once the stream acknowledged it (the message is
  then durable), ``fail`` if refused, ``info`` if the answer never came;
- ``deliver``: observed (``ok``) by a consumer, the moment it received the message;
- ``ack`` (and ``nak``): ends that consumer's delivery; recorded as ``invoke`` then ``ok`` when
  the server confirmed it (a double ack), or as a lone ``ok`` when it was only sent.

The promises checked, those of a JetStream work queue with explicit acks:

- **lost**: a message whose enqueue was acknowledged and that no consumer ever acknowledged;
- **concurrent**: a message delivered to a second consumer while its delivery to a first was
  still in force (neither acked nor nakked, and younger than ``ack_wait``) — redelivery
  after the ack wait or a nak is the documented behaviour and is not counted;
- **after ack**: a message delivered again after the server confirmed an acknowledgement (an
  ack only sent may be lost on the way, and then the redelivery is due);
- **phantom**: a message delivered that no producer enqueued (or whose enqueue failed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from minga.chaos._history import Event, Operation, operations

__all__ = ["QueueAnomaly", "QueueResult", "check_queue"]

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
    for op in operations(events, with_f=QUEUE_FUNCTIONS):
        (enqueues if op.f == "enqueue" else observed).setdefault(_id(op), []).append(op)

    anomalies: list[QueueAnomaly] = []
    durable = {msg for msg, ops in enqueues.items() if any(op.definite for op in ops)}
    deliveries = redeliveries = 0
    acknowledged: set[str] = set()
    for msg, ops in sorted(observed.items()):
        ops.sort(key=lambda op: (op.start, op.f != "deliver"))
        in_force: dict[int | str, Operation] = {}  # consumer -> its open delivery
        acked: Operation | None = None
        first = True
        for op in ops:
            if op.f == "deliver":
                deliveries += 1
                redeliveries += not first
                first = False
                if msg not in enqueues:
                    anomalies.append(QueueAnomaly("phantom", msg, (op,)))
                if acked is not None and op.start > acked.end:
                    anomalies.append(QueueAnomaly("after ack", msg, (acked, op)))
                for other, earlier in list(in_force.items()):
                    if op.start - earlier.start >= ack_wait:
                        del in_force[other]  # that delivery's ack wait ran out: a redelivery is due
                    elif other != op.process:
                        anomalies.append(QueueAnomaly("concurrent", msg, (earlier, op)))
                in_force[op.process] = op
            else:  # ack or nak ends the consumer's delivery
                in_force.pop(op.process, None)
                if op.f == "ack":
                    acknowledged.add(msg)
                    if op.invoked:
                        acked = acked or op
    for msg in sorted(durable - acknowledged):
        anomalies.append(QueueAnomaly("lost", msg, tuple(enqueues[msg] + observed.get(msg, []))))
    return QueueResult(len(durable), len(acknowledged), deliveries, redeliveries, tuple(anomalies))
