"""Faults and their checker: did a system under faults keep its promises?

A workload records a history of what its clients asked and were told
(:class:`Recorder`, JSON lines); the checkers read it back:

- :func:`check_registers`: every key of a key-value store behaved as one register would,
  operation by operation, in an order consistent with real time (linearizability); a
  failing key comes with a smallest failing history;
- :func:`check_queue`: a work queue lost no acknowledged message and handed none to two
  consumers at once beyond its documented redelivery.

``minga chaos check HISTORY`` runs them from the command line.
"""

from minga.chaos._history import Event, EventType, Operation, Recorder, load_history, operations
from minga.chaos._linear import KeyVerdict, LinearizabilityResult, check_register, check_registers
from minga.chaos._queue import QueueAnomaly, QueueResult, check_queue

__all__ = [
    "Event",
    "EventType",
    "KeyVerdict",
    "LinearizabilityResult",
    "Operation",
    "QueueAnomaly",
    "QueueResult",
    "Recorder",
    "check_queue",
    "check_register",
    "check_registers",
    "load_history",
    "operations",
]
