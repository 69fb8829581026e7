"""Notifications: a durable work queue; each job is acked once the customer is told."""

from __future__ import annotations

import logging

from minga import Service, consume
from shop.models import Notify

log = logging.getLogger("shop.notifications")


class Notifications(Service):
    name = "notifications"

    @consume("notify")
    async def send(self, job: Notify) -> None:
        # a real shop would send mail here; the log line is what the demo counts
        print(f"notified {job.customer}: {job.text}", flush=True)
