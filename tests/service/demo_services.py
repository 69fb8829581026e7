"""Services the service tests run: a small inventory and an orders service that calls it.

Kept in a plain module (not a test module) so a replica process can import it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from minga import Service, consume, event, every, http, rpc
from minga.bus import Backoff
from minga.service import Config, Resource, Secret

log = logging.getLogger("shop")


class Reservation(BaseModel):
    sku: str
    qty: int
    left: int


class Order(BaseModel):
    id: int
    sku: str
    qty: int


class Restock(BaseModel):
    sku: str
    qty: int


class OutOfStock(Exception):
    pass


class Journal:
    """What happened, in order, with a way to wait until something has."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []
        self._changed = asyncio.Event()

    def add(self, *entry: Any) -> None:
        self.entries.append(entry)
        self._changed.set()

    async def until(self, check: Callable[[list[tuple[Any, ...]]], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not check(self.entries):
                self._changed.clear()
                await self._changed.wait()


class Inventory(Service):
    name = "inventory"

    stock = Resource(lambda cfg: {"a": int(cfg.get("INV_START", "10"))})
    journal = Resource(lambda cfg: Journal())
    config = Config(prefix="INV_", defaults={"CURRENCY": "EUR"})
    api_key = Secret("INVENTORY_KEY")

    @rpc
    async def reserve(self, sku: str, qty: int) -> Reservation:
        if qty <= 0:
            raise ValueError("qty must be positive")
        left = self.stock.get(sku, 0) - qty
        if left < 0:
            raise OutOfStock(f"only {self.stock.get(sku, 0)} of {sku} left")
        self.stock[sku] = left
        return Reservation(sku=sku, qty=qty, left=left)

    @rpc
    async def whoami(self) -> dict[str, str]:
        return {
            "key": self.api_key.get_secret_value(),
            "currency": self.config["CURRENCY"],
            "trace_id": self.worker.trace.trace_id,
            "entrypoint": self.worker.entrypoint,
        }

    @event("orders.created")
    async def on_order(self, order: Order) -> None:
        self.journal.add("order", order.id)

    @consume("restock", max_deliver=2, backoff=Backoff(initial=0.1))
    async def restock(self, job: Restock) -> None:
        self.stock[job.sku] = self.stock.get(job.sku, 0) + job.qty
        self.journal.add("restocked", job.sku, job.qty)

    @http.get("/stock/{sku}")
    async def stock_level(self, sku: str) -> dict[str, Any]:
        return {"sku": sku, "qty": self.stock.get(sku, 0)}

    @http.post("/restock")
    async def request_restock(self, job: Restock) -> dict[str, int]:
        return {"seq": await self.enqueue("restock", job)}

    @http.get("/search")
    async def search(self, prefix: str, limit: int = 10) -> list[str]:
        return sorted(s for s in self.stock if s.startswith(prefix))[:limit]

    @every("100ms")
    async def report(self) -> None:
        self.journal.add("tick")


class Orders(Service):
    name = "orders"

    @rpc
    async def place(self, id: int, sku: str, qty: int) -> dict[str, Any]:
        reservation = await self.rpc.inventory.reserve(sku=sku, qty=qty)
        await self.emit("orders.created", Order(id=id, sku=sku, qty=qty))
        log.info("order placed", extra={"fields": {"order": id}})
        return {"order": id, "reservation": reservation}


class Echo(Service):
    name = "echo"

    @rpc
    async def echo(self, text: str) -> str:
        log.info("echoing", extra={"fields": {"text": text}})
        return text

    @rpc
    async def slow(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"
