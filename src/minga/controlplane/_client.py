"""The CLI's client of a running control plane's HTTP API."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp

from minga.errors import DeployError, UsageError

__all__ = ["ControlPlaneClient"]


class ControlPlaneClient:
    """Talks to ``url`` (a :class:`~minga.controlplane.ServerState`'s ``url``); raises DeployError when it cannot."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def _request(self, method: str, path: str, *, total: float, ok: tuple[int, ...] = (200,)) -> Any:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=total)) as session,
                session.request(method, self.url + path) as resp,
            ):
                if resp.status not in ok:
                    raise DeployError(f"{method} {path} answered {resp.status}: {await resp.text()}")
                return await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeployError(f"cannot reach the minga server at {self.url}: {exc or type(exc).__name__}") from None

    async def status(self) -> dict[str, Any]:
        """The status document."""
        doc: dict[str, Any] = await self._request("GET", "/api/status", total=10)
        return doc

    async def instances(self) -> list[dict[str, Any]]:
        """Every instance the registry knows (``/v1/discovery/instances``), as JSON records."""
        doc: dict[str, Any] = await self._request("GET", "/v1/discovery/instances", total=10)
        found: list[dict[str, Any]] = doc["instances"]
        return found

    async def wait_healthy(self, seconds: float) -> dict[str, Any]:
        """Wait up to ``seconds`` for every replica to be healthy; the status, with ``"unhealthy"``
        listing the services that are not when time ran out."""
        doc: dict[str, Any] = await self._request(
            "GET", f"/api/wait?timeout={seconds:g}", total=seconds + 10, ok=(200, 504)
        )
        return doc

    async def monitor(self, route: str, *, total: float = 30, **params: str | float | int | None) -> dict[str, Any]:
        """``GET /api/monitor/<route>`` with ``params`` (None ones left out); a query the monitor
        refuses, or stops at its deadline, raises UsageError with its message."""
        query = urlencode({k: str(v) for k, v in params.items() if v is not None})
        doc: dict[str, Any] = await self._request(
            "GET", f"/api/monitor/{route}" + (f"?{query}" if query else ""), total=total, ok=(200, 400, 404, 422, 504)
        )
        if "error" in doc:
            raise UsageError(str(doc["error"]))
        return doc

    async def stop(self, seconds: float = 60) -> None:
        """Stop every replica and the server; returns once the replicas are gone."""
        await self._request("POST", "/api/stop", total=seconds)
