"""Inventory: reserves stock over RPC, releases it when a payment is declined (an event)."""

from __future__ import annotations

import uuid

from minga import Service, event, http, rpc
from minga.service import Resource
from shop.models import Order, Reservation, Stock

START_STOCK = 1_000_000


class OutOfStock(Exception):
    """Not enough of a SKU left."""


class Inventory(Service):
    name = "inventory"

    # each replica keeps its own counts in memory: enough for a demo, not a ledger
    stock: Resource[dict[str, int]] = Resource(lambda config: {})

    @rpc
    async def reserve(self, sku: str, qty: int) -> Reservation:
        left = self.stock.get(sku, START_STOCK)
        if qty > left:
            raise OutOfStock(f"{sku}: {left} left, {qty} wanted")
        self.stock[sku] = left - qty
        return Reservation(reservation_id=uuid.uuid4().hex[:12], sku=sku, qty=qty, left=left - qty)

    @event("orders.declined")
    async def release(self, order: Order) -> None:
        self.stock[order.sku] = self.stock.get(order.sku, START_STOCK) + order.qty

    @http.get("/stock/{sku}")
    async def level(self, sku: str) -> Stock:
        return Stock(sku=sku, left=self.stock.get(sku, START_STOCK))
