"""Durable messaging in the embedded broker: the part of JetStream that minga uses.

:class:`JetStream` is a broker extension that answers JetStream's own JSON API on
``$JS.API.>``, so nats-py's JetStream client (streams, pull and push consumers, acks,
message get, key-value buckets) works against the embedded broker unchanged::

    broker = Broker(BrokerConfig(port=4222), extensions=[JetStream(JetStreamConfig(store_dir=Path("data")))])

Streams live in :mod:`minga.broker.storage` stores; with a ``store_dir`` a publish is
acknowledged only once its record is fsynced (see :class:`~minga.broker.storage.FsyncPolicy`).
"""

from __future__ import annotations

from minga.broker.jetstream._engine import JetStream, JetStreamConfig

__all__ = ["JetStream", "JetStreamConfig"]
