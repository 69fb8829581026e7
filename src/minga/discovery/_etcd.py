"""A :class:`Store` on etcd v3, through its JSON gRPC gateway (``/v3/...``) over aiohttp.

Each instance is one key, ``<prefix>instances/<id>``, holding its JSON record and bound to
an etcd lease of ``ceil(ttl)`` seconds; etcd deletes the key when the lease is not kept
alive, and watchers see the ``DELETE``. Keys and values travel base64-encoded and 64-bit
numbers as strings, as the gateway wants them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from pydantic import ValidationError

from minga.discovery._model import Instance, WatchEvent
from minga.discovery._session import LineReader, SessionStore
from minga.discovery._store import Snapshot, Watch
from minga.errors import DiscoveryError


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _prefix_end(prefix: str) -> str:
    """The etcd ``range_end`` that covers every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


class _EtcdWatch:
    """Reads etcd's watch stream: one JSON ``{"result": {...}}`` per line, each with a list of events."""

    def __init__(self, lines: LineReader, snapshot: Snapshot, store: EtcdStore) -> None:
        self._lines = lines
        self._snapshot = snapshot
        self._store = store
        self._pending: list[WatchEvent] = []
        self._known = {i.id: i for i in snapshot.instances}

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def __aiter__(self) -> _EtcdWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        while not self._pending:
            line = await self._store._next_line(self._lines, "the etcd watch")
            if not line:
                raise StopAsyncIteration
            try:
                message = json.loads(line)
            except ValueError as exc:
                raise DiscoveryError(f"etcd sent a bad watch message: {exc}") from exc
            if "error" in message:
                raise DiscoveryError(
                    f"the etcd watch failed: {message['error'].get('message', message['error'])}"
                )
            result = message.get("result", {})
            if result.get("canceled"):
                raise DiscoveryError(
                    f"etcd canceled the watch: {result.get('cancel_reason', 'no reason given')}"
                )
            for event in result.get("events", []):
                self._pending.append(self._event(event))
        return self._pending.pop(0)

    def _event(self, event: dict[str, Any]) -> WatchEvent:
        kv = event["kv"]
        revision = int(kv.get("mod_revision", 0))
        instance_id = _unb64(kv["key"]).removeprefix(self._store.instances_prefix)
        if event.get("type") == "DELETE":
            previous = event.get("prev_kv")
            instance = (
                self._store.decode(previous["value"])
                if previous and "value" in previous
                else self._known.get(instance_id, Instance(id=instance_id, service="unknown"))
            )
            self._known.pop(instance_id, None)
            return WatchEvent("delete", instance, revision)
        instance = self._store.decode(kv["value"])
        self._known[instance.id] = instance
        return WatchEvent("put", instance, revision)


class EtcdStore(SessionStore):
    """Instance records in etcd at ``url`` (``http://127.0.0.1:2379``) under ``prefix``.

    ``timeout`` (seconds) bounds each request; failures raise :class:`~minga.errors.DiscoveryError`.
    etcd's leases are whole seconds: a ttl is rounded up, and etcd expires leases about
    every half second, so a record outlives a missed renewal by up to ``ceil(ttl) + 0.5`` s.
    """

    _what = "the etcd store"

    def __init__(
        self, url: str = "http://127.0.0.1:2379", *, prefix: str = "/minga/", timeout: float = 5.0
    ) -> None:
        if not prefix.endswith("/"):
            raise DiscoveryError(f"an etcd prefix ends with '/', found {prefix!r}")
        super().__init__(timeout)
        self.url = url.rstrip("/")
        self.prefix = prefix
        self.instances_prefix = prefix + "instances/"

    def __repr__(self) -> str:
        return f"EtcdStore({self.url!r})"

    def _key(self, instance_id: str) -> str:
        return _b64(self.instances_prefix + instance_id)

    def decode(self, value: str) -> Instance:
        try:
            return Instance.model_validate_json(base64.b64decode(value))
        except (ValueError, ValidationError) as exc:
            raise DiscoveryError(f"etcd holds a record minga cannot read: {exc}") from exc

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        session = self._http()
        try:
            async with session.post(self.url + path, json=body) as resp:
                data: dict[str, Any] = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DiscoveryError(f"etcd at {self.url}{path}: {type(exc).__name__}: {exc}") from exc
        if "error" in data:
            raise DiscoveryError(f"etcd at {self.url}{path}: {data.get('message', data['error'])}")
        return data

    async def put(self, instance: Instance, ttl: float | None = None) -> None:
        body: dict[str, Any] = {"key": self._key(instance.id), "value": _b64(instance.model_dump_json())}
        if ttl is not None:
            lease = await self._call("/v3/lease/grant", {"TTL": max(1, math.ceil(ttl))})
            body["lease"] = lease["ID"]
        await self._call("/v3/kv/put", body)

    async def update(self, instance: Instance) -> bool:
        body = {
            "key": self._key(instance.id),
            "value": _b64(instance.model_dump_json()),
            "ignore_lease": True,
        }
        try:
            await self._call("/v3/kv/put", body)
        except DiscoveryError as exc:
            if "key not found" in str(exc):
                return False
            raise
        return True

    async def _kv(self, instance_id: str) -> dict[str, Any] | None:
        data = await self._call("/v3/kv/range", {"key": self._key(instance_id)})
        kvs: list[dict[str, Any]] = data.get("kvs", [])
        return kvs[0] if kvs else None

    async def renew(self, instance_id: str) -> bool:
        kv = await self._kv(instance_id)
        if kv is None:
            return False
        lease = int(kv.get("lease", 0))
        if lease == 0:
            return True
        data = await self._call("/v3/lease/keepalive", {"ID": str(lease)})
        return int(data.get("result", {}).get("TTL", 0)) > 0

    async def delete(self, instance_id: str) -> bool:
        data = await self._call("/v3/kv/deleterange", {"key": self._key(instance_id)})
        return int(data.get("deleted", 0)) > 0

    async def get(self, instance_id: str) -> Instance | None:
        kv = await self._kv(instance_id)
        return None if kv is None else self.decode(kv["value"])

    async def snapshot(self) -> Snapshot:
        data = await self._call(
            "/v3/kv/range",
            {"key": _b64(self.instances_prefix), "range_end": _prefix_end(self.instances_prefix)},
        )
        instances = [self.decode(kv["value"]) for kv in data.get("kvs", [])]
        return Snapshot(instances, int(data["header"]["revision"]))

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[Watch]:
        session = self._http()
        snapshot = await self.snapshot()
        request = {
            "create_request": {
                "key": _b64(self.instances_prefix),
                "range_end": _prefix_end(self.instances_prefix),
                "start_revision": str(snapshot.revision + 1),
                "prev_kv": True,
            }
        }
        try:
            resp = await session.post(
                self.url + "/v3/watch",
                json=request,
                timeout=aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_connect=self.timeout),
            )
        except aiohttp.ClientError as exc:
            raise DiscoveryError(f"cannot watch etcd at {self.url}: {exc}") from exc
        try:
            lines = LineReader(resp)
            try:
                created = json.loads(await lines.readline())
            except (aiohttp.ClientError, ValueError, DiscoveryError) as exc:
                raise DiscoveryError(f"cannot watch etcd at {self.url}: {exc}") from exc
            if not created.get("result", {}).get("created"):
                raise DiscoveryError(f"etcd did not open the watch: {created}")
            self._watches.add(resp)
            yield _EtcdWatch(lines, snapshot, self)
        finally:
            self._watches.discard(resp)
            resp.close()
