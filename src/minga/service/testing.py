"""Testing helpers for minga services, and the pytest plugin that ships them.

Installed with minga, the plugin (entry point ``pytest11: minga``) gives every test suite:

- ``minga_broker``: the URL of minga's embedded broker (JetStream on) on a free loopback port,
  fresh for the test (:func:`nats_server` gives a real nats-server instead);
- ``container_factory``: ``async with container_factory(Inventory, replace={"db": fake}) as c``
  runs a real replica on that broker and stops it in order at the end of the block.

Without a broker, :func:`worker_factory` builds a service instance with its dependencies
replaced, and :class:`RecordingBus` stands in for the bus; :func:`entrypoint_hook` calls an
entrypoint of a running container directly, with the same validation as the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import pytest

from minga.broker import Broker, BrokerConfig
from minga.broker.jetstream import JetStream, JetStreamConfig
from minga.bus import Bus, Timeout
from minga.errors import ServiceError, ServiceUnavailable
from minga.service._container import ServiceContainer
from minga.service._dependencies import WorkerContext
from minga.service._service import Service

__all__ = [
    "RecordingBus",
    "container_factory",
    "embedded_broker",
    "entrypoint_hook",
    "minga_broker",
    "nats_server",
    "worker_factory",
]

S = TypeVar("S", bound=Service)


@dataclass
class RecordingBus:
    """A stand-in for the bus in unit tests: records what a worker sends, answers RPCs from ``replies``.

    ``replies`` maps ``"service.method"`` to a value, an exception to raise, or a function of the
    keyword arguments returning the value. A call with no reply raises ServiceUnavailable, as
    a call to a service that is not running would.
    """

    replies: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[str, Any]] = field(default_factory=list)
    jobs: list[tuple[str, Any]] = field(default_factory=list)

    async def request(
        self,
        service: str,
        method: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: Timeout | float | None = None,  # noqa: ASYNC109 -- mirrors Bus.request
    ) -> Any:
        key = f"{service}.{method}"
        kwargs = dict(payload or {})
        self.calls.append((key, kwargs))
        if key not in self.replies:
            raise ServiceUnavailable(f"minga.rpc.{key}")
        reply = self.replies[key]
        if isinstance(reply, BaseException):
            raise reply
        return reply(**kwargs) if callable(reply) else reply

    async def publish(self, topic: str, payload: Any = None) -> None:
        self.events.append((topic, payload))

    async def enqueue(self, queue: str, payload: Any = None, *, msg_id: str | None = None) -> int:
        self.jobs.append((queue, payload))
        return len(self.jobs)


def worker_factory(service: type[S], *, bus: Any = None, **dependencies: Any) -> S:
    """An instance of ``service`` as a container would make for one call, with no container.

    Dependencies named in ``dependencies`` get those values; the others get a
    ``unittest.mock.MagicMock``. ``bus`` (a :class:`RecordingBus` or a real Bus) backs
    ``self.rpc``, ``self.emit`` and ``self.enqueue``.
    """
    unknown = set(dependencies) - set(service.dependencies)
    if unknown:
        raise ServiceError(f"{service.__qualname__} has no dependencies named {sorted(unknown)}")
    instance = service()
    instance._minga_bus = bus
    instance._minga_worker = WorkerContext(service.name or service.__name__, "test", "worker_factory")
    for name in service.dependencies:
        vars(instance)[name] = dependencies[name] if name in dependencies else mock.MagicMock(name=name)
    return instance


def entrypoint_hook(container: ServiceContainer, method: str) -> Callable[..., Awaitable[Any]]:
    """A function that runs entrypoint ``method`` of a running ``container`` directly.

    RPC and HTTP methods take keyword arguments; event and queue methods take the
    payload (``await hook(order)``). Payloads are validated as if they came over the
    wire, dependencies are injected, and the method's return value is returned.
    """
    if method not in container.service.entrypoints:
        raise ServiceError(f"{container.service.__qualname__}.{method} is not an entrypoint")

    async def call(*args: Any, **kwargs: Any) -> Any:
        if (args and kwargs) or len(args) > 1:
            raise TypeError("pass either one payload or keyword arguments")
        return await container.call(method, args[0] if args else kwargs)

    return call


@contextlib.contextmanager
def embedded_broker(*, jetstream: bool = True, store_dir: Path | None = None) -> Iterator[str]:
    """minga's embedded broker on a free loopback port for the duration of the block; yields its URL.

    It runs on its own event loop in a background thread, so it serves whatever loop (or
    process) the test uses. JetStream is on unless ``jetstream=False``; streams are kept in
    memory unless ``store_dir`` is given.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="minga-test-broker", daemon=True)
    thread.start()

    async def start() -> Broker:
        extensions = [JetStream(JetStreamConfig(store_dir=store_dir))] if jetstream else []
        server = Broker(BrokerConfig(port=0), extensions=extensions)
        await server.start()
        return server

    try:
        server = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
        try:
            yield server.url
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _reported_url(ports_file: Path, proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The client URL nats-server wrote to ``ports_file`` once it listened (its ``--ports_file_dir``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urls = json.loads(ports_file.read_text(encoding="utf-8"))["nats"]
        except (OSError, ValueError, KeyError):
            urls = None
        if urls:
            return str(urls[0])
        if proc.poll() is not None:
            raise RuntimeError(f"it exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no ports file within {timeout:g}s")
        time.sleep(0.02)


@contextlib.contextmanager
def nats_server(*, jetstream: bool = True) -> Iterator[str]:
    """A real ``nats-server`` (with JetStream) on a free loopback port, in a temporary directory."""
    binary = shutil.which("nats-server")
    if binary is None:
        raise ServiceError("nats_server() needs nats-server on PATH (Debian package nats-server)")
    with tempfile.TemporaryDirectory(prefix="minga-broker-") as tmp:
        # the server picks its port (-p -1) and writes it to a ports file: no other process can
        # take it between a choice made here and the server's bind
        argv = [binary, "-a", "127.0.0.1", "-p", "-1", "--ports_file_dir", tmp]
        if jetstream:
            argv += ["-js", "-sd", str(Path(tmp) / "js")]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            try:
                url = _reported_url(Path(tmp) / f"nats-server_{proc.pid}.ports", proc, 10.0)
            except (RuntimeError, TimeoutError) as exc:
                raise ServiceError(f"nats-server did not start: {exc}") from None
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def minga_broker() -> Iterator[str]:
    """The URL of minga's embedded broker (with JetStream, in memory) on a free loopback port, per test.

    Override it in a conftest.py to run against something else, for example
    ``with minga.service.testing.nats_server() as url: yield url``.
    """
    with embedded_broker() as url:
        yield url


ContainerFactory = Callable[..., contextlib.AbstractAsyncContextManager[ServiceContainer]]


@pytest.fixture
def container_factory(minga_broker: str) -> ContainerFactory:
    """Makes running containers on ``minga_broker``: ``async with container_factory(Svc, **options) as c``.

    Options are :class:`~minga.service.ServiceContainer`'s (``replace``, ``config``,
    ``secrets``, ``http_port``...); HTTP is off unless ``http_port`` is given.
    """

    @contextlib.asynccontextmanager
    async def make(service: type[Service], **options: Any) -> AsyncIterator[ServiceContainer]:
        options.setdefault("http_port", None)
        options.setdefault("grace", 5.0)
        async with (
            Bus(minga_broker, grace=options["grace"]) as bus,
            ServiceContainer(service, bus, **options) as container,
        ):
            yield container

    return make
