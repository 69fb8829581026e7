"""The CLI's client of a running control plane's HTTP API, with the token kept in minga's home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from minga.controlplane._state import read_state
from minga.errors import DeployError, UsageError
from minga.security import read_token

__all__ = ["ControlPlaneClient"]


async def _error_text(resp: aiohttp.ClientResponse) -> str:
    """The ``error`` of a JSON answer, else its text."""
    text = await resp.text()
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    return str(doc.get("error", text)) if isinstance(doc, dict) else text


class ControlPlaneClient:
    """Talks to ``url`` (a :class:`~minga.controlplane.ServerState`'s ``url``) with ``token`` (sent as
    ``Authorization: Bearer``); raises DeployError when it cannot, UsageError when refused.

    :meth:`for_home` finds both for the server running under a home, as the CLI does.
    """

    def __init__(self, url: str, *, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    @classmethod
    def for_home(cls, home: Path) -> ControlPlaneClient:
        """The client of the server running for ``home``, with the admin token kept there
        (``MINGA_TOKEN`` when set); UsageError when no server runs."""
        state = read_state(home)
        assert state is not None  # read_state raises rather than return None when required
        return cls(state.url, token=read_token(home))

    async def _request(self, method: str, path: str, *, total: float, ok: tuple[int, ...] = (200,)) -> Any:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=total), headers=self._headers) as session,
                session.request(method, self.url + path) as resp,
            ):
                if resp.status in (401, 403) and resp.status not in ok:
                    raise UsageError(f"the minga server refused {method} {path}: {await _error_text(resp)}")
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

    async def wait_healthy(self, seconds: float, *, fail_fast: bool = False) -> dict[str, Any]:
        """Wait up to ``seconds`` for every replica to be healthy; the status, with ``"unhealthy"``
        listing the services that are not when time ran out. With ``fail_fast``, stop waiting as
        soon as a replica exits before it was ever healthy (``"failed"`` lists those services)."""
        doc: dict[str, Any] = await self._request(
            "GET",
            f"/api/wait?timeout={seconds:g}&fail_fast={int(fail_fast)}",
            total=seconds + 10,
            ok=(200, 504),
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
