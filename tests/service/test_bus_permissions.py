"""The bus permissions derived from a service's declarations."""

from __future__ import annotations

from minga.broker._permissions import ClientPermissions
from minga.service import KeyValue, Service, bus_permissions, consume, event, rpc


class Billing(Service):
    name = "billing"
    ledger = KeyValue("ledger")

    @rpc
    async def charge(self) -> None: ...

    @rpc(name="refund")
    async def give_back(self) -> None: ...

    @event("orders.*")
    async def on_order(self) -> None: ...

    @consume("invoices")
    async def invoice(self) -> None: ...


def test_subscriptions_are_only_its_own() -> None:
    perms = bus_permissions("billing", Billing)
    assert perms.subscribe is not None
    assert perms.subscribe.allow == (
        "_INBOX.>",
        "minga.rpc.billing.charge",
        "minga.rpc.billing.refund",
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.MINGA_Q_invoices.*",
        "minga.evt.orders.*",
    )
    checked = ClientPermissions(perms)
    assert checked.may_subscribe(b"minga.rpc.billing.refund")
    assert not checked.may_subscribe(b"minga.rpc.billing.*")
    assert not checked.may_subscribe(b"minga.rpc.orders.place")
    assert not checked.may_subscribe(b"minga.q.invoices")


def test_publishing_and_jetstream() -> None:
    checked = ClientPermissions(bus_permissions("billing", Billing))
    for subject in (
        "minga.evt.billing.charged", "minga.rpc.orders.get", "minga.q.invoices", "minga.dlq.invoices",
        "$JS.API.CONSUMER.DURABLE.CREATE.MINGA_Q_invoices.workers", "$JS.ACK.MINGA_Q_invoices.workers.1.1.1.1.0",
        "$KV.ledger.alice", "$JS.API.DIRECT.GET.KV_ledger.$KV.ledger.alice", "_minga.spans",
    ):
        assert checked.may_publish(subject.encode()), subject
    for subject in (
        "$JS.API.STREAM.DELETE.MINGA_Q_invoices", "$JS.API.STREAM.PURGE.MINGA_Q_invoices",
        "$JS.API.STREAM.CREATE.MINGA_Q_invoices", "$JS.API.CONSUMER.DELETE.MINGA_Q_invoices.workers",
        "$JS.API.CONSUMER.DURABLE.CREATE.MINGA_Q_other.workers", "$KV.other.key", "minga.dlq.other",
    ):
        assert not checked.may_publish(subject.encode()), subject
