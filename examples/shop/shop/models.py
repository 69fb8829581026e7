"""The payloads the shop's services exchange (JSON on the wire, validated on receipt)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OrderRequest(BaseModel):
    sku: str
    qty: int = Field(gt=0)
    customer: str


class Reservation(BaseModel):
    reservation_id: str
    sku: str
    qty: int
    left: int


class Payment(BaseModel):
    payment_id: str
    order_id: str
    amount: float


class Order(BaseModel):
    order_id: str
    sku: str
    qty: int
    customer: str
    amount: float
    status: str  # "paid" or "declined"
    payment_id: str | None = None


class Stock(BaseModel):
    sku: str
    left: int


class Notify(BaseModel):
    customer: str
    order_id: str
    text: str


PRICES = {"tea": 4.5, "coffee": 6.0, "cocoa": 5.25}
"""Price of each SKU the shop sells."""
