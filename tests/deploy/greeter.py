"""A service the deploy tests run as real replicas (``python -m minga.service greeter:Greeter``)."""

from __future__ import annotations

from minga import Service, http


class Greeter(Service):
    name = "greeter"

    @http.get("/hello")
    async def hello(self) -> dict[str, str]:
        return {"hello": "world"}
