"""The registry the control plane runs: a store, plus health (active checks, process exits)."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Final, Literal

import aiohttp

from minga.discovery._checks import check_once
from minga.discovery._model import Health, Instance
from minga.discovery._store import Store, Watch
from minga.discovery._tasks import stop_group
from minga.errors import DiscoveryError
from minga.spec import HealthCheckSpec

log = logging.getLogger("minga.discovery")

DEFAULT_TTL = 5.0
"""Seconds of lease a registration gets unless it asks for another ttl."""


class _Default(enum.Enum):
    TTL = "the registry's default_ttl"


USE_DEFAULT_TTL: Final = _Default.TTL
"""``register(instance)`` without a ttl: the registry's ``default_ttl``."""


class Registry:
    """Registrations with leases, health from active checks and from the supervisor, and watches.

    Use it as an async context manager; it opens the store and runs the active health checks
    (``checks`` maps a service name to its :class:`~minga.spec.HealthCheckSpec`) in a task
    group until it exits::

        async with Registry(EmbeddedStore(home / "registry.json"), checks=checks) as registry:
            await registry.register(Instance(id="orders-1", service="orders", ports={"http": 8001}))
            ...
            await registry.mark_critical("orders-1", "exited with -9")   # the moment a child dies

    An instance marked critical by :meth:`mark_critical` stays critical until it registers
    again, whatever a check that was already in flight reports.
    """

    def __init__(
        self,
        store: Store,
        *,
        checks: Mapping[str, HealthCheckSpec] | None = None,
        default_ttl: float | None = DEFAULT_TTL,
    ) -> None:
        self.store = store
        self.default_ttl = default_ttl
        self._checks: dict[str, HealthCheckSpec] = dict(checks or {})
        self._checkers: dict[str, asyncio.Task[None]] = {}
        self._dead: set[str] = set()
        self._group: asyncio.TaskGroup | None = None
        self._session: aiohttp.ClientSession | None = None
        self._known: dict[str, Instance] = {}
        self._watching = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Registry:
        """Open the store and start the checks; raises :class:`~minga.errors.DiscoveryError` when the
        store cannot be read (etcd unreachable, a corrupt registry file)."""
        await self.store.open()
        try:
            await self.store.snapshot()  # fail here, clearly, rather than retry the watch forever
        except BaseException:
            await self.store.close()
            raise
        self._session = aiohttp.ClientSession()
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        try:
            self._supervisor = self._group.create_task(self._supervise_checks(), name="minga-registry-checks")
            await self._watching.wait()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        group, self._group = self._group, None
        try:
            await stop_group(group, self._checkers, self._supervisor)
        finally:
            if self._session is not None:
                await self._session.close()
            await self.store.close()

    # -- registrations -------------------------------------------------------------------------

    async def register(
        self, instance: Instance, ttl: float | Literal[_Default.TTL] | None = USE_DEFAULT_TTL
    ) -> Instance:
        """Add or replace ``instance``; its lease is ``ttl`` seconds (``None``: no lease; default: ``default_ttl``).

        Raises :class:`~minga.errors.DiscoveryError` for a ttl under 0.5 s.
        """
        lease = self.default_ttl if ttl is USE_DEFAULT_TTL else ttl
        if lease is not None and lease < 0.5:
            raise DiscoveryError(f"a lease ttl must be at least 0.5s, got {lease:g}s")
        self._dead.discard(instance.id)
        await self.store.put(instance, lease)
        return instance

    async def update(self, instance: Instance) -> bool:
        """Replace a registered record (tags, metadata, restarts...), keeping its lease; ``False`` when unknown."""
        return await self.store.update(instance)

    async def renew(self, instance_id: str) -> bool:
        """Extend an instance's lease; ``False``: unknown or expired, register again."""
        return await self.store.renew(instance_id)

    async def deregister(self, instance_id: str) -> bool:
        """Remove an instance now (a graceful stop); ``False`` when it was not registered."""
        self._dead.discard(instance_id)
        return await self.store.delete(instance_id)

    async def mark_critical(self, instance_id: str, reason: str = "the process exited") -> bool:
        """Take an instance out of every picker at once: the supervisor calls this when a child dies.

        Watchers see the change as soon as the store delivers it (in-process: immediately).
        Returns ``False`` when the instance is not registered.
        """
        self._dead.add(instance_id)
        return await self._set(instance_id, Health.CRITICAL, reason)

    async def set_health(self, instance_id: str, health: Health, output: str = "") -> bool:
        """Set an instance's health by hand (or from a replica's own report); ``False`` when unknown."""
        if health is not Health.CRITICAL:
            self._dead.discard(instance_id)
        return await self._set(instance_id, health, output)

    async def _set(self, instance_id: str, health: Health, output: str) -> bool:
        current = await self.store.get(instance_id)
        if current is None:
            return False
        if current.health is health and current.output == output:
            return True
        return await self.store.update(current.with_health(health, output))

    # -- reading -------------------------------------------------------------------------------

    async def get(self, instance_id: str) -> Instance | None:
        return await self.store.get(instance_id)

    async def instances(self, service: str | None = None, *, passing_only: bool = False) -> list[Instance]:
        """Registered instances (of ``service``), sorted by service then id."""
        found = [
            i
            for i in (await self.store.snapshot()).instances
            if (service is None or i.service == service) and (not passing_only or i.health is Health.PASSING)
        ]
        return sorted(found, key=lambda i: (i.service, i.id))

    async def services(self) -> dict[str, list[Instance]]:
        """Service name -> its instances, sorted."""
        out: dict[str, list[Instance]] = {}
        for instance in await self.instances():
            out.setdefault(instance.service, []).append(instance)
        return out

    def watch(self) -> AbstractAsyncContextManager[Watch]:
        """The store's watch: a snapshot, then every change."""
        return self.store.watch()

    # -- active health checks ------------------------------------------------------------------

    def set_check(self, service: str, check: HealthCheckSpec | None) -> None:
        """Check ``service``'s instances with ``check`` from now on (``None``: stop checking them)."""
        if check is None:
            self._checks.pop(service, None)
        else:
            self._checks[service] = check
        for instance_id in [i for i, inst in self._known.items() if inst.service == service]:
            task = self._checkers.pop(instance_id, None)
            if task is not None:
                task.cancel()
        self._sync_checkers()

    async def _supervise_checks(self) -> None:
        """Keep one checker task per instance whose service has a check, following the store's watch."""
        while True:
            try:
                async with self.store.watch() as watch:
                    self._known = {i.id: i for i in watch.snapshot.instances}
                    self._sync_checkers()
                    self._watching.set()
                    async for event in watch:
                        if event.kind == "put":
                            self._known[event.instance.id] = event.instance
                        else:
                            self._known.pop(event.instance.id, None)
                            self._dead.discard(event.instance.id)
                        self._sync_checkers()
                    return
            except DiscoveryError as exc:
                log.warning("registry watch broke, reopening: %s", exc)
                await asyncio.sleep(0.5)

    def _sync_checkers(self) -> None:
        if self._group is None:
            return
        known = self._known
        wanted = {i for i, inst in known.items() if inst.service in self._checks}
        for instance_id in list(self._checkers):
            if instance_id not in wanted:
                self._checkers.pop(instance_id).cancel()
        for instance_id in wanted - set(self._checkers):
            service = known[instance_id].service
            self._checkers[instance_id] = self._group.create_task(
                self._check_loop(instance_id, service), name=f"minga-check-{instance_id}"
            )

    async def _check_loop(self, instance_id: str, service: str) -> None:
        failures = 0
        first = True
        while True:
            spec = self._checks.get(service)
            if spec is None:
                return
            await asyncio.sleep(spec.start_period if first else spec.interval)
            first = False
            try:
                instance = await self.store.get(instance_id)
                if instance is None:
                    return
                assert self._session is not None
                health, output = await check_once(instance, spec, self._session)
                failures = failures + 1 if health is Health.CRITICAL else 0
                if (health is Health.CRITICAL and failures < spec.failures) or instance_id in self._dead:
                    continue
                await self._set(instance_id, health, output)
            except DiscoveryError as exc:
                log.warning("health of %s not checked: %s", instance_id, exc)
