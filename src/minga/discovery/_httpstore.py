"""A :class:`Store` that talks to the control plane's registry HTTP API (what replicas use)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from yarl import URL

from minga.discovery._model import Instance, WatchEvent
from minga.discovery._session import LineReader, SessionStore
from minga.discovery._store import Snapshot, Watch
from minga.errors import DiscoveryError


class _StreamWatch:
    """Reads the NDJSON watch stream: the snapshot line first, then one event per line."""

    def __init__(self, lines: LineReader, snapshot: Snapshot, store: HttpStore) -> None:
        self._lines = lines
        self._snapshot = snapshot
        self._store = store

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def __aiter__(self) -> _StreamWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        line = await self._store._next_line(self._lines, "the registry watch")
        if not line:
            raise StopAsyncIteration
        try:
            return WatchEvent.from_json(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise DiscoveryError(f"the registry sent a bad watch event: {exc}") from exc


API_PREFIX = "/v1/discovery"
"""Where the control plane mounts :func:`discovery_app`."""


class HttpStore(SessionStore):
    """The registry of a control plane at ``url`` (e.g. ``http://127.0.0.1:7070/v1/discovery``).

    A URL with no path (the control plane's root, as ``MINGA_DISCOVERY_URL`` may give it)
    gets ``/v1/discovery`` appended.

    ``token`` is the credential sent as ``Authorization: Bearer``; by default ``MINGA_TOKEN``
    (what the supervisor gives each replica). Raises :class:`~minga.errors.DiscoveryError`
    when the control plane cannot be reached within ``timeout`` seconds or answers with an error.
    """

    _what = "the registry client"

    def __init__(self, url: str, *, timeout: float = 5.0, token: str | None = None) -> None:
        url = url.rstrip("/")
        if URL(url).path in ("", "/"):
            url += API_PREFIX
        token = token if token is not None else os.environ.get("MINGA_TOKEN")
        super().__init__(timeout, {"Authorization": f"Bearer {token}"} if token else None)
        self.url = url

    def __repr__(self) -> str:
        return f"HttpStore({self.url!r})"

    async def _call(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        try:
            async with self._http().request(method, self.url + path, json=body) as resp:
                data = await resp.json(content_type=None)
                if resp.status == 404 and missing_ok:
                    return None
                if resp.status >= 400:
                    message = data.get("error") if isinstance(data, dict) else data
                    raise DiscoveryError(f"{method} {self.url}{path}: {resp.status} {message}")
                return data
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise DiscoveryError(f"{method} {self.url}{path}: {type(exc).__name__}: {exc}") from exc

    async def put(self, instance: Instance, ttl: float | None = None) -> None:
        await self._call(
            "PUT", f"/instances/{instance.id}", {"instance": instance.model_dump(mode="json"), "ttl": ttl}
        )

    async def update(self, instance: Instance) -> bool:
        body = {"instance": instance.model_dump(mode="json")}
        return await self._call("PATCH", f"/instances/{instance.id}", body, missing_ok=True) is not None

    async def renew(self, instance_id: str) -> bool:
        return await self._call("POST", f"/instances/{instance_id}/renew", missing_ok=True) is not None

    async def delete(self, instance_id: str) -> bool:
        return await self._call("DELETE", f"/instances/{instance_id}", missing_ok=True) is not None

    async def get(self, instance_id: str) -> Instance | None:
        data = await self._call("GET", f"/instances/{instance_id}", missing_ok=True)
        return None if data is None else Instance.model_validate(data)

    async def snapshot(self) -> Snapshot:
        data = await self._call("GET", "/instances")
        return Snapshot([Instance.model_validate(i) for i in data["instances"]], int(data["revision"]))

    async def set_health(self, instance_id: str, health: str, output: str = "") -> bool:
        """Report health to the control plane (e.g. a replica that knows it is degraded)."""
        body = {"health": health, "output": output}
        return await self._call("PUT", f"/instances/{instance_id}/health", body, missing_ok=True) is not None

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[Watch]:
        session = self._http()
        try:
            resp = await session.get(
                self.url + "/watch", timeout=aiohttp.ClientTimeout(total=None, connect=self.timeout)
            )
        except aiohttp.ClientError as exc:
            raise DiscoveryError(f"cannot watch {self.url}: {exc}") from exc
        try:
            if resp.status != 200:
                raise DiscoveryError(f"cannot watch {self.url}: {resp.status}")
            lines = LineReader(resp)
            try:
                first = json.loads(await lines.readline())
                snap = first["snapshot"]
                snapshot = Snapshot(
                    [Instance.model_validate(i) for i in snap["instances"]], int(snap["revision"])
                )
            except (aiohttp.ClientError, ValueError, KeyError, TypeError, DiscoveryError) as exc:
                raise DiscoveryError(f"cannot watch {self.url}: bad snapshot: {exc}") from exc
            self._watches.add(resp)
            yield _StreamWatch(lines, snapshot, self)
        finally:
            self._watches.discard(resp)
            resp.close()
