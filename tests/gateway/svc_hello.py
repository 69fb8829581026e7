"""A minga service for the gateway tests: ``GET /hello?ms=`` answers after ``ms`` milliseconds."""

from __future__ import annotations

import asyncio
import os

from minga import Service, http


class Hello(Service):
    name = "hello"

    @http.get("/hello")
    async def hello(self, ms: float = 0.0) -> dict[str, str]:
        if ms:
            await asyncio.sleep(ms / 1000)
        return {"instance": os.environ.get("MINGA_INSTANCE", "")}
