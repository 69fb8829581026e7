"""The one interface every registry store implements, and the embedded store.

A store keeps instance records, each optionally bound to a lease of ``ttl`` seconds that
:meth:`Store.renew` extends; a lease that is not renewed in time deletes its record, and
watchers see the ``delete``. The same test-suite runs against every store
(tests/discovery/test_stores.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from minga.discovery._model import Instance, WatchEvent
from minga.errors import DiscoveryError


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every instance in a store at ``revision``."""

    instances: list[Instance]
    revision: int


class Watch(Protocol):
    """An open watch: ``snapshot`` at the time it opened, then every change after it, in order.

    Iteration ends when the store closes; a broken connection raises
    :class:`~minga.errors.DiscoveryError`.
    """

    @property
    def snapshot(self) -> Snapshot: ...

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...


class Store(Protocol):
    """Where instance records live: :class:`EmbeddedStore`, :class:`EtcdStore`, :class:`HttpStore`."""

    async def open(self) -> None:
        """Connect or load; call once before anything else."""

    async def close(self) -> None:
        """Release connections; open watches end."""

    async def put(self, instance: Instance, ttl: float | None = None) -> None:
        """Register or replace ``instance``; with ``ttl`` (seconds) it lives only while renewed."""

    async def update(self, instance: Instance) -> bool:
        """Replace a record that exists, keeping its lease; ``False`` when it is gone."""

    async def renew(self, instance_id: str) -> bool:
        """Extend the lease by its ttl; ``False`` when the record is gone (register again)."""

    async def delete(self, instance_id: str) -> bool:
        """Remove a record now; ``False`` when it was not there."""

    async def get(self, instance_id: str) -> Instance | None:
        """One record, or ``None``."""

    async def snapshot(self) -> Snapshot:
        """Every record and the store's revision."""

    def watch(self) -> AbstractAsyncContextManager[Watch]:
        """``async with store.watch() as w``: ``w.snapshot``, then ``async for event in w``."""


class _QueueWatch:
    """A watch fed by the embedded store through a queue; ``None`` in the queue ends it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self.queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def __aiter__(self) -> _QueueWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        event = await self.queue.get()
        if event is None:
            self.queue.put_nowait(None)  # stay ended for any later reader
            raise StopAsyncIteration
        return event


class EmbeddedStore:
    """Records in memory, leases as event-loop timers, persisted to ``path`` (JSON) when given.

    On :meth:`open` the records saved at ``path`` are loaded and each lease starts again with
    its full ttl: replicas that still run renew it, dead ones expire. Renewals are not
    written to disk; registrations, changes and deletions are (atomically, by rename).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._records: dict[str, Instance] = {}
        self._ttls: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._watches: set[_QueueWatch] = set()
        self._revision = 0
        self._open = False

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.path) if self.path else None!r})"

    async def open(self) -> None:
        if self._open:
            return
        self._open = True
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._revision = int(data["revision"])
            for item in data["instances"]:
                instance = Instance.model_validate(item["instance"])
                self._records[instance.id] = instance
                if item.get("ttl") is not None:
                    self._arm(instance.id, float(item["ttl"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DiscoveryError(f"cannot load the registry from {self.path}: {exc}") from exc

    async def close(self) -> None:
        self._open = False
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for watch in self._watches:
            watch.queue.put_nowait(None)
        self._watches.clear()

    async def put(self, instance: Instance, ttl: float | None = None) -> None:
        self._check_open()
        self._records[instance.id] = instance
        self._disarm(instance.id)
        if ttl is not None:
            self._arm(instance.id, ttl)
        self._changed("put", instance)

    async def update(self, instance: Instance) -> bool:
        self._check_open()
        if instance.id not in self._records:
            return False
        self._records[instance.id] = instance
        self._changed("put", instance)
        return True

    async def renew(self, instance_id: str) -> bool:
        self._check_open()
        if instance_id not in self._records:
            return False
        ttl = self._ttls.get(instance_id)
        if ttl is not None:
            self._arm(instance_id, ttl)
        return True

    async def delete(self, instance_id: str) -> bool:
        self._check_open()
        return self._remove(instance_id)

    async def get(self, instance_id: str) -> Instance | None:
        return self._records.get(instance_id)

    async def snapshot(self) -> Snapshot:
        return Snapshot(list(self._records.values()), self._revision)

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[Watch]:
        self._check_open()
        watch = _QueueWatch(Snapshot(list(self._records.values()), self._revision))
        self._watches.add(watch)
        try:
            yield watch
        finally:
            self._watches.discard(watch)

    def _check_open(self) -> None:
        if not self._open:
            raise DiscoveryError("the embedded registry store is not open")

    def _arm(self, instance_id: str, ttl: float) -> None:
        self._disarm(instance_id)
        self._ttls[instance_id] = ttl
        loop = asyncio.get_running_loop()
        self._timers[instance_id] = loop.call_later(ttl, self._remove, instance_id)

    def _disarm(self, instance_id: str) -> None:
        self._ttls.pop(instance_id, None)
        timer = self._timers.pop(instance_id, None)
        if timer is not None:
            timer.cancel()

    def _remove(self, instance_id: str) -> bool:
        instance = self._records.pop(instance_id, None)
        self._disarm(instance_id)
        if instance is None:
            return False
        self._changed("delete", instance)
        return True

    def _changed(self, kind: str, instance: Instance) -> None:
        self._revision += 1
        event = WatchEvent("put" if kind == "put" else "delete", instance, self._revision)
        for watch in self._watches:
            watch.queue.put_nowait(event)
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        data = {
            "revision": self._revision,
            "instances": [
                {"instance": i.model_dump(mode="json"), "ttl": self._ttls.get(i.id)}
                for i in self._records.values()
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)
