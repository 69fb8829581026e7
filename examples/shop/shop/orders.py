"""Orders: the shop's front door over HTTP and RPC; reserves, charges, then emits what happened.

Orders are kept in the key-value bucket ``orders`` of the broker's JetStream, so every replica
answers ``GET /orders/{id}`` the same. Domain errors are 4xx answers, mapped in ``http_errors``.
"""

from __future__ import annotations

import uuid

from minga import Service, http, rpc
from minga.errors import RemoteError
from minga.service import KeyValue
from shop.models import PRICES, Notify, Order, OrderRequest


class UnknownSku(Exception):
    """The shop does not sell this."""


class OrderNotFound(Exception):
    """No order has this id."""


class Orders(Service):
    name = "orders"

    # an unknown SKU is the customer's mistake (422); an unknown id is a 404; stock that ran out,
    # which inventory raises, arrives as a RemoteError of type OutOfStock (409)
    http_errors = {UnknownSku: 422, OrderNotFound: 404, "OutOfStock": 409}

    orders = KeyValue("orders")

    @rpc
    async def place(self, sku: str, qty: int, customer: str) -> Order:
        if sku not in PRICES:
            raise UnknownSku(f"the shop does not sell {sku!r} (it sells {', '.join(PRICES)})")
        order_id = uuid.uuid4().hex[:12]
        await self.rpc.inventory.reserve(sku=sku, qty=qty)
        amount = round(PRICES[sku] * qty, 2)
        order = Order(order_id=order_id, sku=sku, qty=qty, customer=customer, amount=amount, status="paid")
        try:
            payment = await self.rpc.payments.charge(order_id=order_id, amount=amount)
        except RemoteError as exc:  # a declined card is an outcome of the order, not a crash
            order = order.model_copy(update={"status": "declined"})
            await self.orders.put(order_id, order)
            await self.emit("orders.declined", order)
            await self.enqueue("notify", Notify(customer=customer, order_id=order_id, text=f"declined: {exc.remote_message}"))
            return order
        order = order.model_copy(update={"payment_id": payment["payment_id"]})
        await self.orders.put(order_id, order)
        await self.emit("orders.created", order)
        await self.enqueue("notify", Notify(customer=customer, order_id=order_id, text=f"{qty} x {sku} paid"))
        return order

    @rpc
    async def get(self, order_id: str) -> Order:
        found = await self.orders.get(order_id)
        if found is None:
            raise OrderNotFound(f"no order {order_id!r}")
        return Order.model_validate(found)

    @http.post("/orders")
    async def create(self, body: OrderRequest) -> Order:
        return await self.place(body.sku, body.qty, body.customer)

    @http.get("/orders/{order_id}")
    async def show(self, order_id: str) -> Order:
        return await self.get(order_id)
