"""What a replica (or the gateway) uses: register and keep a lease alive, and a watched local cache."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from minga.discovery._httpstore import HttpStore
from minga.discovery._model import Instance
from minga.discovery._pickers import InstanceCache, Picker, Strategy, make_picker
from minga.discovery._store import Store
from minga.discovery._tasks import stop_group
from minga.errors import DiscoveryError

log = logging.getLogger("minga.discovery")


class DiscoveryClient:
    """Registration with lease renewal, and a local cache of every instance kept by a watch.

    ``store`` is where the registry lives: :class:`HttpStore` (the control plane's API; a URL
    string is taken as one), :class:`EtcdStore` (etcd directly) or an :class:`EmbeddedStore`
    shared in-process. Entering the client opens it and waits (up to ``timeout`` seconds) for
    the first snapshot::

        async with DiscoveryClient("http://127.0.0.1:7070/v1/discovery") as client:
            await client.register(Instance(id=..., service="orders", ports={"http": port}), ttl=5)
            picker = client.picker("inventory", "p2c")
            with picker.request() as instance:
                ...                                  # call instance.address
            await client.deregister(instance_id)    # on graceful stop

    Renewals run every ``ttl / 3`` seconds; a lease found expired is registered again. The
    watch reconnects after a broken connection and replaces the cache with a fresh snapshot.
    Set ``watch=False`` for a client that only registers, and ``close_store=False`` when the
    store is shared (an in-process :class:`EmbeddedStore` that a :class:`Registry` also uses).
    """

    def __init__(
        self, store: Store | str, *, watch: bool = True, timeout: float = 10.0, close_store: bool = True
    ) -> None:
        self.store: Store = HttpStore(store) if isinstance(store, str) else store
        self._close_store = close_store
        self.cache = InstanceCache()
        self.timeout = timeout
        self._want_watch = watch
        self._ready = asyncio.Event()
        self._group: asyncio.TaskGroup | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._leases: dict[str, asyncio.Task[None]] = {}
        self._records: dict[str, Instance] = {}

    async def __aenter__(self) -> DiscoveryClient:
        """Open the store and, when watching, wait for the first snapshot; raises
        :class:`~minga.errors.DiscoveryError` when none comes within ``timeout`` seconds."""
        await self.store.open()
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        try:
            if self._want_watch:
                self._watcher = self._group.create_task(self._watch(), name="minga-discovery-watch")
                try:
                    async with asyncio.timeout(self.timeout):
                        await self._ready.wait()
                except TimeoutError:
                    raise DiscoveryError(
                        f"could not watch the registry ({self.store!r}) within {self.timeout:g}s"
                    ) from None
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        group, self._group = self._group, None
        try:
            await stop_group(group, self._leases, self._watcher)
        finally:
            if self._close_store:
                await self.store.close()

    # -- registration --------------------------------------------------------------------------

    async def register(self, instance: Instance, ttl: float | None = 5.0) -> Instance:
        """Register ``instance`` and keep its lease of ``ttl`` seconds alive until :meth:`deregister`."""
        if self._group is None:
            raise DiscoveryError("the discovery client is not open: use `async with DiscoveryClient(...)`")
        await self.store.put(instance, ttl)
        self._records[instance.id] = instance
        old = self._leases.pop(instance.id, None)
        if old is not None:
            old.cancel()
        if ttl is not None:
            self._leases[instance.id] = self._group.create_task(
                self._keepalive(instance.id, ttl), name=f"minga-lease-{instance.id}"
            )
        return instance

    async def update(self, instance: Instance) -> bool:
        """Replace this client's registered record (tags, metadata...), keeping the lease."""
        if instance.id in self._records:
            self._records[instance.id] = instance
        return await self.store.update(instance)

    async def deregister(self, instance_id: str) -> bool:
        """Stop renewing and remove the record now (part of a graceful stop)."""
        task = self._leases.pop(instance_id, None)
        if task is not None:
            task.cancel()
        self._records.pop(instance_id, None)
        return await self.store.delete(instance_id)

    async def _keepalive(self, instance_id: str, ttl: float) -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                if not await self.store.renew(instance_id):
                    record = self._records.get(instance_id)
                    if record is None:
                        return
                    log.warning("lease of %s had expired: registering again", instance_id)
                    await self.store.put(record, ttl)
            except DiscoveryError as exc:
                log.warning("lease of %s not renewed: %s", instance_id, exc)

    # -- the watched cache ---------------------------------------------------------------------

    async def _watch(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with self.store.watch() as watch:
                    self.cache.reset(watch.snapshot)
                    self._ready.set()
                    backoff = 0.1
                    async for event in watch:
                        self.cache.apply(event)
                if self._group is None:
                    return
            except DiscoveryError as exc:
                log.warning("registry watch lost, retrying in %.1fs: %s", backoff, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def instances(self, service: str | None = None) -> list[Instance]:
        """Cached instances (of ``service``), whatever their health."""
        return self.cache.instances(service)

    def picker(self, service: str, strategy: Strategy = "round_robin") -> Picker:
        """A picker over ``service``'s healthy instances in the cache: ``round_robin``, ``random`` or ``p2c``."""
        return make_picker(self.cache, service, strategy)
