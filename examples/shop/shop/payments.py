"""Payments: charges over RPC, and declines a share of charges on purpose (PAYMENTS_FAILURE_RATE)."""

from __future__ import annotations

import random
import uuid

from minga import Service, rpc
from minga.service import Config
from shop.models import Payment


class PaymentDeclined(Exception):
    """The (pretend) card network said no."""


class Payments(Service):
    name = "payments"

    config = Config("PAYMENTS_", defaults={"FAILURE_RATE": "0.05"})

    @rpc
    async def charge(self, order_id: str, amount: float) -> Payment:
        if random.random() < float(self.config["FAILURE_RATE"]):
            raise PaymentDeclined(f"order {order_id}: card declined")
        return Payment(payment_id=uuid.uuid4().hex[:12], order_id=order_id, amount=amount)
