"""A reduce-side join of two CSV files: each order with the name and country of its customer.

    python examples/jobs/join.py customers.csv orders.csv -o out/

customers.csv has the columns id,name,country; orders.csv has order_id,customer_id,amount.
Rows are told apart by their columns; the reducer meets each customer with all its orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from minga.compute import MapReduce, main


class Join(MapReduce):
    """Join orders to customers on the customer id."""

    input_format = "csv"

    def map(self, key: None, row: dict[str, str]) -> Iterator[tuple[int, tuple[Any, ...]]]:
        if "order_id" in row:
            yield int(row["customer_id"]), ("order", int(row["order_id"]), float(row["amount"]))
        else:
            yield int(row["id"]), ("customer", row["name"], row["country"])

    def reduce(self, customer: int, rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[int, dict[str, Any]]]:
        customers = []
        orders = []
        for row in rows:
            (customers if row[0] == "customer" else orders).append(row)
        for _, name, country in customers:
            for _, order_id, amount in sorted(orders):
                self.count("join", "joined orders")
                yield order_id, {"customer": customer, "name": name, "country": country, "amount": amount}
        if not customers:
            self.count("join", "orders without customer", len(orders))


if __name__ == "__main__":
    main(Join)
