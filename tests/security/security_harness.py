"""The security tests' harness: a running control plane and a client of its HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from minga.controlplane import ControlPlane, ServerState
from minga.security import Credentials, read_audit


@dataclass
class Plane:
    """A running control plane: its ``url``, ``home``, credentials and a client session."""

    cp: ControlPlane
    state: ServerState
    home: Path
    creds: Credentials
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.state.url

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Status and body (JSON when it is, else text) of one request."""
        async with self.http.request(method, self.url + path, allow_redirects=False, **kwargs) as resp:
            text = await resp.text()
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:
                return resp.status, text

    def audit_whys(self) -> list[str]:
        return [r.why for r in read_audit(self.home)]
