"""Two small services the monitor tests run as real replicas: front calls back, back fails every
third call, and back consumes a durable queue."""

from __future__ import annotations

import logging
from typing import Any

from minga import Service, consume, http, rpc

log = logging.getLogger("trial")


class Front(Service):
    name = "front"

    @rpc
    async def hello(self, n: int) -> dict[str, Any]:
        log.info("hello %d", n, extra={"fields": {"n": n}})
        try:
            return await self.rpc.back.work(n=n)
        except Exception as exc:
            log.warning("back refused %d: %s", n, exc)
            raise

    @http.get("/hello/{n}")
    async def hello_http(self, n: int) -> dict[str, Any]:
        return await self.rpc.back.work(n=n)


class Back(Service):
    name = "back"

    @rpc
    async def work(self, n: int) -> dict[str, Any]:
        if n % 3 == 0:
            log.warning("%d is divisible by three", n)
            raise ValueError(f"{n} is divisible by three")
        return {"n": n}

    @consume("chores")
    async def chore(self, job: dict[str, Any]) -> None:
        log.info("chore %s", job)
