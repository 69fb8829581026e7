"""Orders: the shop's front door over HTTP and RPC; reserves, charges, then emits what happened."""

from __future__ import annotations

import uuid

from minga import Service, http, rpc
from minga.errors import RemoteError
from minga.service import Resource
from shop.models import PRICES, Notify, Order, OrderRequest


class UnknownSku(Exception):
    """The shop does not sell this."""


class Orders(Service):
    name = "orders"

    # the orders this replica took, in memory (a demo keeps no database)
    orders: Resource[dict[str, Order]] = Resource(lambda config: {})

    @rpc
    async def place(self, sku: str, qty: int, customer: str) -> Order:
        if sku not in PRICES:
            raise UnknownSku(f"{sku!r} (the shop sells {', '.join(PRICES)})")
        order_id = uuid.uuid4().hex[:12]
        await self.rpc.inventory.reserve(sku=sku, qty=qty)
        amount = round(PRICES[sku] * qty, 2)
        order = Order(order_id=order_id, sku=sku, qty=qty, customer=customer, amount=amount, status="paid")
        try:
            payment = await self.rpc.payments.charge(order_id=order_id, amount=amount)
        except RemoteError as exc:  # a declined card is an outcome of the order, not a crash
            order = order.model_copy(update={"status": "declined"})
            await self.emit("orders.declined", order)
            self.orders[order_id] = order
            await self.enqueue("notify", Notify(customer=customer, order_id=order_id, text=f"declined: {exc.remote_message}"))
            return order
        order = order.model_copy(update={"payment_id": payment["payment_id"]})
        self.orders[order_id] = order
        await self.emit("orders.created", order)
        await self.enqueue("notify", Notify(customer=customer, order_id=order_id, text=f"{qty} x {sku} paid"))
        return order

    @http.post("/orders")
    async def create(self, body: OrderRequest) -> Order:
        return await self.place(body.sku, body.qty, body.customer)

    @http.get("/orders/{order_id}")
    async def show(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)
