"""Dependency providers: what a service declares as class attributes and gets injected per call.

A provider lives as long as its container and goes through the same lifecycle:
``setup`` (open pools, read config) → ``start`` → per call ``get`` (the value the
method sees as ``self.<name>``) and ``release`` → ``stop`` (graceful) or ``kill``.
Each container works on its own copy of the class's providers (:meth:`Dependency.bind`),
so two replicas in one process never share state by accident.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Generic, Self, TypeVar, overload

from pydantic import SecretStr

from minga.bus import Bucket, Bus, TraceContext
from minga.errors import ServiceError

__all__ = ["Config", "Dependency", "KeyValue", "Resource", "Secret", "ServiceContext", "WorkerContext"]

T = TypeVar("T")


@dataclass(frozen=True)
class ServiceContext:
    """What providers see at setup: who runs, its configuration and where its secrets are.

    ``config`` is the replica's environment unless a test passes its own; a secret is
    read from ``secrets`` (tests), then the environment, then a file named after it in
    ``secrets_dir`` (``MINGA_SECRETS_DIR``).
    """

    service: str
    instance: str
    config: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    secrets: Mapping[str, str] = field(default_factory=dict)
    secrets_dir: Path | None = None
    bus: Bus | None = None  # the replica's bus, for providers that keep state on it (KeyValue)

    def secret(self, name: str) -> str | None:
        """The secret ``name``, or None when it is set nowhere."""
        if name in self.secrets:
            return self.secrets[name]
        if name in self.config:
            return self.config[name]
        if self.secrets_dir is not None:
            path = self.secrets_dir / name
            if path.is_file():
                return path.read_text().rstrip("\n")
        return None


@dataclass(frozen=True)
class WorkerContext:
    """One call of one entrypoint: the service, the method, and the trace it runs in."""

    service: str
    instance: str
    entrypoint: str
    trace: TraceContext = field(default_factory=TraceContext.new)


class Dependency(Generic[T]):
    """Base of dependency providers; subclass it and implement :meth:`get`.

    Declared as a class attribute (``db = Resource(open_db)``); on a worker instance the
    attribute is the injected value of type ``T``.
    """

    name: str = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> Self | T:
        if instance is None:
            return self
        # injected values live in the instance's __dict__ and shadow this descriptor
        raise ServiceError(
            f"{owner.__name__}.{self.name} is injected per call: create the service through a "
            "container, or minga.service.testing.worker_factory in tests"
        )

    def bind(self) -> Self:
        """A copy for one container (shallow: override to share or deepen)."""
        return copy.copy(self)

    async def setup(self, context: ServiceContext) -> None:
        """Prepare before any entrypoint starts (read config, open pools). Raise ServiceError to refuse."""

    async def start(self) -> None:
        """Called once every provider is set up, before entrypoints start."""

    def get(self, worker: WorkerContext) -> T:
        """The value injected for one call."""
        raise NotImplementedError(f"{type(self).__name__}.get")

    async def release(self, worker: WorkerContext, value: T, error: BaseException | None) -> None:
        """Called after each call with what :meth:`get` returned and the call's exception, if any."""

    async def stop(self) -> None:
        """Release resources after in-flight calls have finished."""

    async def kill(self) -> None:
        """Release resources at once; the default is :meth:`stop`."""
        await self.stop()


class Config(Dependency[Mapping[str, str]]):
    """The replica's configuration as a read-only mapping of strings.

    With a ``prefix``, only variables starting with it are kept, prefix removed
    (``Config("SHOP_")`` turns ``SHOP_CURRENCY`` into ``CURRENCY``); ``defaults`` fill the gaps.
    """

    def __init__(self, prefix: str = "", defaults: Mapping[str, str] | None = None) -> None:
        self.prefix = prefix
        self.defaults = dict(defaults or {})
        self._values: Mapping[str, str] = MappingProxyType({})

    async def setup(self, context: ServiceContext) -> None:
        values = dict(self.defaults)
        values.update(
            {k[len(self.prefix) :]: v for k, v in context.config.items() if k.startswith(self.prefix)}
        )
        self._values = MappingProxyType(values)

    def get(self, worker: WorkerContext) -> Mapping[str, str]:
        return self._values


class Secret(Dependency[SecretStr]):
    """One secret, injected as a pydantic ``SecretStr`` (its repr and str hide the value).

    Setup fails with ServiceError when the secret is set nowhere (see :class:`ServiceContext`).
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self._value: SecretStr | None = None

    async def setup(self, context: ServiceContext) -> None:
        value = context.secret(self.key)
        if value is None:
            raise ServiceError(
                f"secret {self.key!r} is not set: export {self.key} or put it in a file named "
                f"{self.key} under MINGA_SECRETS_DIR"
            )
        self._value = SecretStr(value)

    def get(self, worker: WorkerContext) -> SecretStr:
        if self._value is None:
            raise ServiceError(f"secret {self.key!r} was read before setup")
        return self._value


class Resource(Dependency[T]):
    """A long-lived handle (a database connection or pool, a client), the same for every call.

    ``open(config)`` makes it at setup and ``close(handle)`` releases it at stop; either
    may be a coroutine function::

        db = Resource(lambda cfg: sqlite3.connect(cfg.get("DB", ":memory:")), close=lambda c: c.close())
    """

    def __init__(
        self,
        open: Callable[[Mapping[str, str]], T | Awaitable[T]],
        close: Callable[[T], object] | None = None,
    ) -> None:
        self._open = open
        self._close = close
        self._handle: T | None = None
        self._ready = False

    async def setup(self, context: ServiceContext) -> None:
        handle = self._open(context.config)
        self._handle = await handle if inspect.isawaitable(handle) else handle
        self._ready = True

    def get(self, worker: WorkerContext) -> T:
        if not self._ready:
            raise ServiceError(f"resource {self.name!r} was used before setup")
        return self._handle  # type: ignore[return-value]  # set by setup, which may produce None

    async def stop(self) -> None:
        if self._ready and self._close is not None:
            self._ready = False
            result = self._close(self._handle)  # type: ignore[arg-type]  # see get()
            if inspect.isawaitable(result):
                await result


class KeyValue(Dependency[Bucket]):
    """A key-value bucket of the broker's JetStream, shared by every replica (values are JSON).

    The bucket is created when missing. In a method, ``await self.orders.get(key)`` is the value or
    None, ``await self.orders.put(key, value)`` stores one::

        orders = KeyValue("orders")

    Unit tests pass a stand-in with ``replace={"orders": ...}``.
    """

    def __init__(self, bucket: str, *, history: int = 1) -> None:
        self.bucket = bucket
        self.history = history
        self._bus: Bus | None = None
        self._value: Bucket | None = None

    async def setup(self, context: ServiceContext) -> None:
        if context.bus is None:
            raise ServiceError(f"key-value bucket {self.bucket!r} needs the replica's bus")
        self._bus = context.bus

    async def start(self) -> None:
        assert self._bus is not None  # setup ran
        self._value = await self._bus.key_value(self.bucket, history=self.history)

    def get(self, worker: WorkerContext) -> Bucket:
        if self._value is None:
            raise ServiceError(f"key-value bucket {self.bucket!r} was used before start")
        return self._value
