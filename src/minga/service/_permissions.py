"""What a service's replicas may do on the bus, derived from what the service declares.

:func:`bus_permissions` reads a :class:`Service` class: its ``@rpc`` methods, ``@event``
subscriptions, ``@consume`` queues and :class:`KeyValue` buckets. A replica may then:

- subscribe to its own service's RPC subjects (``minga.rpc.<service>.<method>``, never another
  service's), the event topics it handles, its queues' dead-letter advisories, and its reply inbox
  (``_INBOX.>``);
- publish events (``minga.evt.>``), RPC requests (``minga.rpc.>``: which services it calls is not
  declared), jobs (``minga.q.>``), its queues' dead letters, spans (``_minga.spans``), and replies
  to requests it received (``allow_responses``);
- read JetStream (account and stream info), consume its own queues (create and read its durable
  consumer, ack) and use its own key-value buckets;
- never create, update, delete or purge a stream, nor delete a consumer: only the control plane
  administers JetStream, so the streams a service needs (``MINGA_Q_<queue>``, ``MINGA_DLQ``,
  ``KV_<bucket>``) must exist before its replicas start.
"""

from __future__ import annotations

from minga.broker import Permissions, SubjectPermission
from minga.bus import dead_letter_subject, event_subject, queue_stream, rpc_subject
from minga.service._dependencies import KeyValue
from minga.service._entrypoints import ConsumeEntry, EventEntry, RpcEntry
from minga.service._service import Service

__all__ = ["JETSTREAM_ADMIN", "bus_permissions"]

INBOX = "_INBOX.>"
SPANS = "_minga.spans"

JETSTREAM_ADMIN = (
    "$JS.API.STREAM.CREATE.>",
    "$JS.API.STREAM.UPDATE.>",
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.CONSUMER.DELETE.>",
)
"""The JetStream API subjects only the control plane may publish to."""


def bus_permissions(service: str, cls: type[Service]) -> Permissions:
    """The permissions of every replica of ``service`` (whose code is ``cls``); see the module."""
    subscribe: list[str] = [INBOX]
    publish: list[str] = ["minga.evt.>", "minga.rpc.>", "minga.q.>", SPANS, "$JS.API.INFO", "$JS.API.STREAM.INFO.*"]
    for attr, entries in sorted(cls.entrypoints.items()):
        for entry in entries:
            if isinstance(entry, RpcEntry):
                subscribe.append(rpc_subject(service, entry.name or attr))
            elif isinstance(entry, EventEntry):
                subscribe.append(event_subject(entry.topic, wildcards=True))
            elif isinstance(entry, ConsumeEntry):
                stream = queue_stream(entry.queue)
                subscribe.append(f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.*")
                publish += [
                    dead_letter_subject(entry.queue),
                    *_consumer_api(stream),
                    f"$JS.API.STREAM.MSG.GET.{stream}",
                    f"$JS.API.STREAM.MSG.DELETE.{stream}",
                ]
    for dependency in cls.dependencies.values():
        if isinstance(dependency, KeyValue):
            stream = f"KV_{dependency.bucket}"
            publish += [
                f"$KV.{dependency.bucket}.>",
                *_consumer_api(stream),
                f"$JS.API.STREAM.MSG.GET.{stream}",
                f"$JS.API.DIRECT.GET.{stream}",
                f"$JS.API.DIRECT.GET.{stream}.>",
            ]
    return Permissions(
        publish=SubjectPermission(allow=tuple(dict.fromkeys(publish)), deny=JETSTREAM_ADMIN),
        subscribe=SubjectPermission(allow=tuple(dict.fromkeys(subscribe))),
        allow_responses=1,
    )


def _consumer_api(stream: str) -> list[str]:
    """Create, look at and read the consumers of ``stream`` (not delete them), and ack its messages."""
    return [
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.*",
        f"$JS.API.CONSUMER.INFO.{stream}.*",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*",
        f"$JS.ACK.{stream}.>",
    ]
