"""The Service base class and the RPC proxy a worker calls other services through."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from minga.bus import Timeout, check_name
from minga.errors import ServiceError, UsageError
from minga.service._dependencies import Dependency, WorkerContext
from minga.service._entrypoints import Entrypoint, entrypoints_of

__all__ = ["BusLike", "MethodProxy", "RpcProxy", "Service", "ServiceProxy"]


class BusLike(Protocol):
    """What a worker needs from the bus: :class:`minga.bus.Bus` or a test double."""

    async def request(
        self,
        service: str,
        method: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: Timeout | float | None = None,  # noqa: ASYNC109 -- mirrors Bus.request
    ) -> Any: ...

    async def publish(self, topic: str, payload: Any = None) -> None: ...

    async def enqueue(self, queue: str, payload: Any = None, *, msg_id: str | None = None) -> int: ...


@functools.lru_cache(maxsize=4096)  # a worker names the same few services and methods on every call
def _checked(kind: str, name: str) -> str:
    return check_name(kind, name)


class MethodProxy:
    """``self.rpc.inventory.reserve``: awaiting a call sends the request and returns the JSON result."""

    def __init__(self, bus: BusLike, service: str, method: str, timeout: Timeout | None) -> None:
        self._bus, self._service, self._method, self._timeout = bus, service, method, timeout

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise TypeError(f"{self._service}.{self._method}() takes keyword arguments only")
        return await self._bus.request(self._service, self._method, kwargs, timeout=self._timeout)


class ServiceProxy:
    """``self.rpc.inventory``; call it to set a timeout: ``self.rpc.inventory(timeout=Timeout(2)).reserve(...)``."""

    def __init__(self, bus: BusLike, service: str, timeout: Timeout | None = None) -> None:
        self._bus, self._service, self._timeout = bus, _checked("service", service), timeout

    def __call__(self, *, timeout: Timeout | float) -> ServiceProxy:
        return ServiceProxy(self._bus, self._service, Timeout.of(timeout, Timeout()))

    def __getattr__(self, method: str) -> MethodProxy:
        if method.startswith("_"):
            raise AttributeError(method)
        proxy = MethodProxy(self._bus, self._service, _checked("method", method), self._timeout)
        vars(self)[method] = proxy  # found there next time, without this hook
        return proxy


class RpcProxy:
    """``self.rpc``: attribute access names the service to call."""

    def __init__(self, bus: BusLike) -> None:
        self._bus = bus

    def __getattr__(self, service: str) -> ServiceProxy:
        if service.startswith("_"):
            raise AttributeError(service)
        proxy = ServiceProxy(self._bus, service)
        vars(self)[service] = proxy  # found there next time, without this hook
        return proxy


class Service:
    """Base of every minga service: set ``name``, decorate methods, declare dependencies.

    A fresh instance serves each call (a *worker*): keep state in dependencies, not on
    ``self``. Inside a method, ``self.rpc``, :meth:`emit` and :meth:`enqueue` reach other
    services and ``self.worker`` describes the call.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""

    http_errors: ClassVar[Mapping[type[BaseException] | str, int]] = {}
    """Exception → HTTP status its ``@http`` routes answer with (a domain error is a 4xx, not a 500).

    A key is an exception class (subclasses match too) or a class name, which also matches the
    ``remote_type`` of a :class:`~minga.errors.RemoteError` from another service::

        http_errors = {UnknownSku: 422, OrderNotFound: 404, "OutOfStock": 409}

    The answer is ``{"error": {"type": ..., "message": ...}}``; any other exception is a 500.
    """

    entrypoints: ClassVar[Mapping[str, tuple[Entrypoint, ...]]] = {}
    """Method name → what its decorators declared; filled in when the class is defined."""
    dependencies: ClassVar[Mapping[str, Dependency[Any]]] = {}
    """Attribute name → dependency provider; filled in when the class is defined."""

    _minga_bus: BusLike | None = None
    _minga_worker: WorkerContext | None = None
    _minga_rpc: RpcProxy | None = None  # a container's workers share one, with its proxies made once

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        entries: dict[str, tuple[Entrypoint, ...]] = {}
        deps: dict[str, Dependency[Any]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Dependency):
                    deps[attr] = value
                elif found := entrypoints_of(value):
                    if not inspect.iscoroutinefunction(value):
                        raise UsageError(
                            f"{cls.__qualname__}.{attr} is an entrypoint and must be `async def`"
                        )
                    entries[attr] = found
                else:
                    entries.pop(attr, None)
                    deps.pop(attr, None)
        cls.entrypoints = entries
        cls.dependencies = deps
        if cls.name:
            check_name("service", cls.name)

    @property
    def worker(self) -> WorkerContext:
        """The call this instance serves."""
        if self._minga_worker is None:
            raise ServiceError(f"{type(self).__name__} instance is not serving a call")
        return self._minga_worker

    @property
    def bus(self) -> BusLike:
        if self._minga_bus is None:
            raise ServiceError(
                f"{type(self).__name__} has no bus: run it in a container, or pass bus= to worker_factory"
            )
        return self._minga_bus

    @property
    def rpc(self) -> RpcProxy:
        """Call other services: ``await self.rpc.inventory.reserve(sku="a", qty=1)``."""
        if self._minga_rpc is not None:
            return self._minga_rpc
        return RpcProxy(self.bus)

    async def emit(self, topic: str, payload: Any = None) -> None:
        """Publish an event on ``topic``; every service subscribed to it gets it once."""
        await self.bus.publish(topic, payload)

    async def enqueue(self, queue: str, payload: Any = None, *, msg_id: str | None = None) -> int:
        """Put a job on the durable work queue ``queue``; return its sequence number."""
        return await self.bus.enqueue(queue, payload, msg_id=msg_id)
