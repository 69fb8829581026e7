"""The service container: runs one replica of a service on a bus, from setup to close.

Start order: dependency providers ``setup`` → ``start`` → entrypoints (RPC, events,
queues, timers, HTTP with ``GET /healthz``) → register with discovery.

Stop order, enforced by :meth:`ServiceContainer.stop`:

1. **deregister** from discovery (leave routing), then wait ``leave_delay`` seconds (default
   0.25, at most ``grace``) so that watchers (the gateway, other services' pickers) drop this
   replica before it stops answering: requests routed meanwhile are still served;
2. **stop entrypoints**: unsubscribe RPC and events, end queue fetch loops, stop
   timers, stop accepting HTTP connections: no new work is taken;
3. **finish in-flight work**, bounded by what is left of ``grace`` seconds; what is still
   running then is cancelled (a cancelled RPC replies with an error, a cancelled job is
   naked and redelivered elsewhere);
4. **ack**: flush the connection so every reply and ack reaches the broker;
5. **close**: dependency providers ``stop`` (in reverse order), the HTTP server closes.

The bus connection itself belongs to whoever made it (the runner closes it last).
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from aiohttp import web

from minga.bus import (
    Bus,
    Delivery,
    Handler,
    Span,
    SpanRecorder,
    TraceContext,
    current_trace,
    queue_stream,
)
from minga.errors import ServiceError, UsageError
from minga.service._dependencies import Dependency, ServiceContext, WorkerContext
from minga.service._entrypoints import ConsumeEntry, Entrypoint, EventEntry, HttpEntry, RpcEntry, TimerEntry
from minga.service._http import route_handler, unrouted_as_json
from minga.service._metrics import EntrypointSeries, ReplicaMetrics
from minga.service._payload import Signature
from minga.service._service import RpcProxy, Service

__all__ = ["ContainerState", "InstanceInfo", "Registrar", "ServiceContainer"]

log = logging.getLogger("minga.service")

DEFAULT_LEAVE_DELAY = 0.25
"""Seconds a deregistered replica keeps serving while watchers drop it (a watch pushes a change
within about 100 ms)."""


class ContainerState(enum.StrEnum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    KILLED = "killed"


@dataclass(frozen=True)
class InstanceInfo:
    """What a replica tells discovery about itself; ``started_at`` is Unix seconds."""

    id: str
    service: str
    version: str = ""
    host: str = "127.0.0.1"
    ports: Mapping[str, int] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)


class Registrar(Protocol):
    """Registers a replica with discovery and keeps its lease alive until :meth:`deregister`."""

    async def register(self, info: InstanceInfo) -> None: ...

    async def deregister(self) -> None: ...


class ServiceContainer:
    """One running replica of ``service`` on ``bus``.

    ``replace`` maps dependency names to values injected instead of their providers
    (tests); ``config`` and ``secrets`` default to the environment. ``http_port`` 0 picks
    a free port (see :attr:`http_port` once started), None serves no HTTP at all.
    ``grace`` bounds, in seconds, how long stopping waits for in-flight work; ``leave_delay``
    is how long, in seconds, a stopping replica that was registered keeps serving after it
    deregistered, so that watchers stop routing to it first (counted within ``grace``).

    Use it as an async context manager, or call :meth:`start` and :meth:`stop` from the same task.
    """

    def __init__(
        self,
        service: type[Service],
        bus: Bus,
        *,
        name: str | None = None,
        instance: str | None = None,
        config: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        replace: Mapping[str, Any] | None = None,
        http_host: str = "127.0.0.1",
        http_port: int | None = 0,
        registrar: Registrar | None = None,
        grace: float = 10.0,
        leave_delay: float = DEFAULT_LEAVE_DELAY,
    ) -> None:
        if leave_delay < 0:
            raise UsageError(f"leave_delay must be 0 or more seconds, got {leave_delay}")
        self.service = service
        self.name = name or service.name
        if not self.name:
            raise UsageError(f'{service.__qualname__} has no name: set `name = "..."` on the class')
        self.instance = instance or f"{self.name}-{uuid.uuid4().hex[:12]}"
        self.bus = bus
        self.state = ContainerState.CREATED
        self.grace = grace
        self.leave_delay = leave_delay
        self.http_host = http_host
        self._http_port = http_port
        self.registrar = registrar
        self._replace = dict(replace or {})
        unknown = set(self._replace) - set(service.dependencies)
        if unknown:
            raise UsageError(f"{service.__qualname__} has no dependencies named {sorted(unknown)}")
        env = dict(os.environ)
        secrets_dir = env.get("MINGA_SECRETS_DIR")
        self.context = ServiceContext(
            service=self.name,
            instance=self.instance,
            config=dict(config) if config is not None else env,
            secrets=dict(secrets or {}),
            secrets_dir=Path(secrets_dir) if secrets_dir else None,
            bus=bus,
        )
        self._deps: dict[str, Dependency[Any]] = {
            attr: dep.bind() for attr, dep in service.dependencies.items() if attr not in self._replace
        }
        self._signatures = {method: Signature.of(getattr(service, method)) for method in service.entrypoints}
        self.metrics = ReplicaMetrics(self.name, self.instance)
        # what every call of an entrypoint needs, looked up once here rather than on each call
        self._calls = {
            method: self._plan(method, _kind(entries[0]))
            for method, entries in service.entrypoints.items()
            if entries
        }
        # set on every worker: the bus and its RPC proxy, then replaced dependencies (tests)
        self._worker_attrs: dict[str, Any] = {"_minga_bus": bus, "_minga_rpc": RpcProxy(bus), **self._replace}
        self.spans = SpanRecorder(self._publish_spans)
        self._timers: list[asyncio.Task[None]] = []
        self._tg: asyncio.TaskGroup | None = None
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._registered = False
        self.info: InstanceInfo | None = None

    # -- calls ----------------------------------------------------------------------------

    def _plan(self, method: str, kind: str) -> _Call:
        return _Call(
            method,
            getattr(self.service, method),
            kind,
            f"{self.name}.{method}",
            self.metrics.declare(method, kind),
        )

    def worker(self, worker: WorkerContext) -> tuple[Service, dict[str, Any]]:
        """A fresh service instance for one call, its dependencies injected; also returns the provided values."""
        instance = self.service()
        attrs = vars(instance)
        attrs.update(self._worker_attrs)
        attrs["_minga_worker"] = worker
        if not self._deps:
            return instance, {}
        provided = {attr: dep.get(worker) for attr, dep in self._deps.items()}
        attrs.update(provided)
        return instance, provided

    async def invoke(self, method: str, kwargs: dict[str, Any], trace: TraceContext | None = None) -> Any:
        """Call ``method`` on a fresh worker with already validated ``kwargs``; return what it returns."""
        trace = trace or current_trace.get() or TraceContext.new()
        current_trace.set(trace)
        plan = self._calls.get(method)
        if plan is None:  # not an entrypoint: counted and traced all the same, as a plain "call"
            plan = self._calls[method] = self._plan(method, "call")
        return await self._run(plan, kwargs, trace)

    async def _run(self, plan: _Call, kwargs: dict[str, Any], trace: TraceContext) -> Any:
        """:meth:`invoke` once the trace is current: the work of every call, kept lean."""
        worker = WorkerContext(self.name, self.instance, plan.method, trace)
        instance, provided = self.worker(worker)
        error: BaseException | None = None
        metrics = self.metrics
        started, clock = time.time(), time.perf_counter()
        metrics.inflight += 1
        try:
            return await plan.func(instance, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            seconds = time.perf_counter() - clock
            metrics.inflight -= 1
            plan.series.observe(error is None, seconds)
            if trace.sampled:
                self.spans.record_fields(
                    trace.trace_id,
                    trace.span_id,
                    trace.parent_id,
                    self.name,
                    self.instance,
                    plan.span_name,
                    plan.kind,
                    started,
                    started + seconds,
                    "ok" if error is None else "error",
                    None if error is None else {"error": f"{type(error).__name__}: {error}"[:500]},
                )
            if provided:
                await self._release(plan.method, worker, provided, error)

    async def _release(
        self, method: str, worker: WorkerContext, provided: dict[str, Any], error: BaseException | None
    ) -> None:
        for attr, dep in self._deps.items():
            try:
                await dep.release(worker, provided[attr], error)
            except Exception:
                log.exception("dependency %s failed to release after %s", attr, method)

    async def call(self, method: str, payload: Any = None) -> Any:
        """Run entrypoint ``method`` as its entrypoint kind would: validate ``payload`` and invoke.

        RPC and HTTP methods take a JSON object of keyword arguments; event and queue
        methods take the event or job payload; timers take nothing.
        """
        entries = self.service.entrypoints.get(method)
        if not entries:
            raise UsageError(f"{self.service.__qualname__}.{method} is not an entrypoint")
        sig = self._signatures[method]
        if isinstance(entries[0], EventEntry | ConsumeEntry):
            kwargs = sig.value(payload)
        else:
            kwargs = sig.kwargs(payload)
        return await self.invoke(method, kwargs)

    def _bus_handler(self, method: str, *, whole: bool) -> Handler:
        sig = self._signatures[method]
        validate = sig.value if whole else sig.kwargs
        plan = self._calls[method]
        run = self._run

        def handle(d: Delivery) -> Awaitable[Any]:
            # A plain function that hands back _run's coroutine: one coroutine less on every call.
            # An invalid payload raises PayloadError here, inside the bus's handling of the call,
            # as it would from a coroutine. The bus has made d.trace current already.
            return run(plan, validate(d.payload), d.trace)

        return handle

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def http_port(self) -> int | None:
        """The port the HTTP server listens on, once started (None when HTTP is off)."""
        return self._http_port

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            await self.kill()  # cancelled or interrupted: do not linger
        else:
            await self.stop()

    async def start(self) -> None:
        """Set up providers, start entrypoints, serve HTTP, register: ready when this returns."""
        if self.state is not ContainerState.CREATED:
            raise ServiceError(f"container for {self.name} is {self.state}, it can start only once")
        self.state = ContainerState.STARTING
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        try:
            for dep in self._deps.values():
                await dep.setup(self.context)
            for dep in self._deps.values():
                await dep.start()
            app = web.Application(middlewares=[unrouted_as_json])
            app.router.add_get("/healthz", self._healthz)
            app.router.add_get("/metrics", self._metrics)
            queues = [
                e.queue
                for entries in self.service.entrypoints.values()
                for e in entries
                if isinstance(e, ConsumeEntry)
            ]
            if queues:
                self.metrics.queue_depth = lambda: self._queue_depth(queues)
            tg = self._tg
            self._timers.append(tg.create_task(self.metrics.watch_loop_lag(self._stopping), name="loop lag"))
            self._timers.append(tg.create_task(self.spans.run(self._stopping), name="spans"))
            for method, entries in self.service.entrypoints.items():
                for entry in entries:
                    await self._start_entrypoint(method, entry, app)
            ports: dict[str, int] = {}
            if self._http_port is not None:
                await self._serve_http(app)
                assert self._http_port is not None
                ports["http"] = self._http_port
                ports["metrics"] = self._http_port
            self.info = InstanceInfo(self.instance, self.name, self.service.version, self.http_host, ports)
            if self.registrar is not None:
                await self.registrar.register(self.info)
                self._registered = True
        except BaseException:
            # undo what started; the error itself says what went wrong, "killed" would mislead
            await self.kill(quiet=True)
            raise
        self.state = ContainerState.RUNNING
        log.info("%s started", self.name, extra={"fields": {"http_port": self._http_port}})

    async def _start_entrypoint(self, method: str, entry: Entrypoint, app: web.Application) -> None:
        if isinstance(entry, RpcEntry):
            await self.bus.serve(self.name, entry.name or method, self._bus_handler(method, whole=False))
        elif isinstance(entry, EventEntry):
            group = None if entry.broadcast else self.name
            await self.bus.subscribe(entry.topic, self._bus_handler(method, whole=True), group=group)
        elif isinstance(entry, ConsumeEntry):
            await self.bus.consume(entry.queue, self._bus_handler(method, whole=True), policy=entry.policy)
        elif isinstance(entry, HttpEntry):
            resource = app.router.add_resource(entry.path)
            params = set(_path_params(entry.path))
            func = getattr(self.service, method)
            resource.add_route(
                entry.method, route_handler(method, func, params, self.invoke, self.service.http_errors)
            )
        elif isinstance(entry, TimerEntry):
            assert self._tg is not None
            self._timers.append(
                self._tg.create_task(self._tick(method, entry.interval), name=f"every {method}")
            )

    async def _serve_http(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=self.grace)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.http_host, self._http_port or 0)
        try:
            await self._site.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            hint = ": another process holds it (stop it, or give this service another port)"
            raise UsageError(
                f"cannot serve HTTP on {self.http_host}:{self._http_port}: {reason.lower()}"
                + (hint if exc.errno == errno.EADDRINUSE else "")
            ) from None
        server = self._site._server
        sockets: list[socket.socket] = list(getattr(server, "sockets", None) or [])
        if sockets:
            self._http_port = int(sockets[0].getsockname()[1])

    async def _healthz(self, request: web.Request) -> web.Response:
        passing = self.state is ContainerState.RUNNING
        body = {
            "status": "passing" if passing else "critical",
            "state": str(self.state),
            "service": self.name,
            "instance": self.instance,
            "pid": os.getpid(),  # with the instance id, proves to a probe that this process answered
            "inflight": self.bus.inflight,
        }
        return web.json_response(body, status=200 if passing else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=await self.metrics.render(), content_type="text/plain", charset="utf-8")

    async def _queue_depth(self, queues: list[str]) -> dict[str, int]:
        """Jobs stored in each consumed work queue (waiting or being worked on)."""
        jsm = self.bus.jetstream._jsm
        depth: dict[str, int] = {}
        for queue in queues:
            info = await jsm.stream_info(queue_stream(queue))
            depth[queue] = int(info.state.messages)
        return depth

    async def _publish_spans(self, data: bytes) -> None:
        nc = self.bus.nats
        if nc.is_connected:
            await nc.publish(Span.SUBJECT, data)

    async def _tick(self, method: str, interval: float) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), interval)
                return
            except TimeoutError:
                pass
            try:
                await self.invoke(method, {}, TraceContext.new())
            except Exception:
                log.exception("timer %s of %s raised", method, self.name)

    async def stop(self) -> None:
        """Stop in the documented order (module docstring); idempotent."""
        if self.state in (ContainerState.STOPPING, ContainerState.STOPPED, ContainerState.KILLED):
            return
        self.state = ContainerState.STOPPING
        deadline = time.monotonic() + self.grace
        # 1. deregister: leave routing first, and keep serving while watchers catch up
        if await self._deregister():
            await self._stopping_wait(min(self.leave_delay, max(0.0, deadline - time.monotonic())))
        # 2. stop entrypoints
        self._stopping.set()
        await self.bus.stop_entrypoints()
        if self._site is not None:
            await self._site.stop()
        # 3. finish in-flight work, bounded
        await self.bus.finish(max(0.0, deadline - time.monotonic()))
        if self._timers:
            _, pending = await asyncio.wait(self._timers, timeout=max(0.0, deadline - time.monotonic()))
            for task in pending:
                task.cancel()
        await self._close_http(max(0.0, deadline - time.monotonic()))
        # 4. ack
        await self.bus.flush()
        # 5. close
        for attr, dep in reversed(self._deps.items()):
            try:
                await dep.stop()
            except Exception:
                log.exception("dependency %s failed to stop", attr)
        await self._exit_tasks()
        self.state = ContainerState.STOPPED
        log.info("%s stopped", self.name)

    async def kill(self, *, quiet: bool = False) -> None:
        """Stop at once: cancel in-flight work, ``kill`` providers, close; no grace, no deregistration.

        ``quiet`` leaves out the "killed" warning (a start that failed says why on its own).
        """
        if self.state in (ContainerState.STOPPED, ContainerState.KILLED):
            return
        self.state = ContainerState.KILLED
        self._stopping.set()
        for task in self._timers:
            task.cancel()
        await self.bus.stop_entrypoints()
        await self.bus.finish(0)
        for dep in reversed(self._deps.values()):
            try:
                await dep.kill()
            except Exception:
                log.exception("dependency %s failed to die", dep.name)
        await self._close_http(0)
        await self._exit_tasks()
        if not quiet:
            log.warning("%s killed", self.name)

    async def _deregister(self) -> bool:
        """Deregister if registered; True when this replica was registered (and may have been routed to)."""
        if self.registrar is None or not self._registered:
            return False
        self._registered = False
        try:
            await self.registrar.deregister()
        except Exception:
            log.exception("deregistering %s failed", self.instance)
        return True

    @staticmethod
    async def _stopping_wait(seconds: float) -> None:
        """Keep serving for ``seconds`` while watchers drop this replica (a deadline: nothing announces
        that every watcher has seen the deregistration)."""
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def _close_http(self, within: float) -> None:
        """Stop listening, wait up to ``within`` seconds for requests being handled, close."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            # aiohttp takes the wait as a constructor argument only; the time left varies per stop
            runner._shutdown_timeout = within
            await runner.cleanup()

    async def _exit_tasks(self) -> None:
        if self._tg is not None:
            tg, self._tg = self._tg, None
            for task in self._timers:
                task.cancel()
            await tg.__aexit__(None, None, None)


@dataclass(frozen=True, slots=True)
class _Call:
    """One entrypoint as its calls run it: the function, its kind, its span name, its metrics."""

    method: str
    func: Callable[..., Awaitable[Any]]
    kind: str
    span_name: str
    series: EntrypointSeries


def _kind(entry: Any) -> str:
    """The ``kind`` label of an entrypoint's metrics and spans."""
    if isinstance(entry, RpcEntry):
        return "rpc"
    if isinstance(entry, EventEntry):
        return "event"
    if isinstance(entry, ConsumeEntry):
        return "queue"
    if isinstance(entry, HttpEntry):
        return "http"
    return "timer"


def _path_params(path: str) -> list[str]:
    """Names of ``{param}`` (or ``{param:regex}``) segments in an aiohttp route path."""
    names = []
    for part in path.split("{")[1:]:
        names.append(part.split("}", 1)[0].split(":", 1)[0])
    return names
