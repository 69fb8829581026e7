"""The messaging API services use: RPC, events and durable work queues, over nats-py.

Subjects: ``minga.rpc.<service>.<method>`` (one queue group per service),
``minga.evt.<topic>`` (one queue group per subscribing service, or broadcast),
``minga.q.<queue>`` (a JetStream work-queue stream) and ``minga.dlq.<queue>``
(dead letters); key-value buckets of JSON values (:meth:`Bus.key_value`). JSON on the wire; W3C ``traceparent`` in the headers. Finished spans travel
in batches on ``_minga.spans`` (:class:`SpanRecorder`), for the control plane to collect.
"""

from minga.bus._bus import Bus, Delivery, Handler
from minga.bus._codec import ErrorAllowList, decode, encode
from minga.bus._kv import Bucket
from minga.bus._queue import Backoff, QueuePolicy
from minga.bus._spans import Span, SpanRecorder
from minga.bus._subjects import (
    check_name,
    dead_letter_subject,
    event_subject,
    queue_stream,
    queue_subject,
    rpc_subject,
)
from minga.bus._timeout import Timeout
from minga.bus._trace import TraceContext, current_trace, incoming, outgoing, random_id

__all__ = [
    "Backoff",
    "Bucket",
    "Bus",
    "Delivery",
    "ErrorAllowList",
    "Handler",
    "QueuePolicy",
    "Span",
    "SpanRecorder",
    "Timeout",
    "TraceContext",
    "check_name",
    "current_trace",
    "dead_letter_subject",
    "decode",
    "encode",
    "event_subject",
    "incoming",
    "outgoing",
    "queue_stream",
    "queue_subject",
    "random_id",
    "rpc_subject",
]
