"""Durable work queues on JetStream: retry policy, the fetch loop, and dead letters.

A queue ``restock`` is the stream ``MINGA_Q_restock`` (work-queue retention, file
storage) over the subject ``minga.q.restock``, read by one durable pull consumer
``workers`` that every replica of the consuming service shares. A job is acked
when its handler returns; a failure naks it with a delay from :class:`Backoff`;
after ``max_deliver`` deliveries the server publishes its max-deliveries advisory,
and the bus moves the job to ``minga.dlq.restock`` in the ``MINGA_DLQ`` stream,
with headers saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minga.backoff import Backoff

__all__ = ["CONSUMER", "Backoff", "QueuePolicy"]

CONSUMER = "workers"


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """How a work queue is consumed.

    ``max_deliver``: deliveries before a job is dead-lettered; ``ack_wait``: seconds a
    delivery may stay unacknowledged before the server redelivers it (a running
    handler keeps it alive); ``concurrency``: jobs handled at once per replica.
    """

    max_deliver: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    ack_wait: float = 30.0
    concurrency: int = 4

    def __post_init__(self) -> None:
        if self.max_deliver < 1 or self.concurrency < 1 or self.ack_wait <= 0:
            raise ValueError(f"invalid queue policy {self}: max_deliver and concurrency >= 1, ack_wait > 0")
