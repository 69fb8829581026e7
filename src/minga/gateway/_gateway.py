"""The gateway: listens, routes, balances, and keeps per-instance state (pools, breakers, load).

Stop order: stop accepting → close idle client connections → let requests in flight finish
(bounded by ``grace``) → close what is left → close the upstream pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from minga.bus import Span
from minga.errors import UsageError
from minga.gateway._http import Router
from minga.gateway._metrics import GatewayMetrics
from minga.gateway._proxy import ClientConnection
from minga.gateway._resilience import BreakerPolicy, BreakerState, TokenBucket
from minga.gateway._sources import Endpoint, UpstreamSource
from minga.gateway._state import _RouteState, _UpstreamState
from minga.security import AuditLog
from minga.service import metric_family
from minga.spec import GatewaySpec, RateLimitSpec

__all__ = ["Gateway"]

log = logging.getLogger("minga.gateway")
T = TypeVar("T")


class _Limiter:
    """A token bucket per client key; forgets full buckets when it holds too many.

    ``clock`` gives the time in seconds (monotonic); tests pass one they move by hand.
    """

    MAX_KEYS = 50_000

    def __init__(self, spec: RateLimitSpec, clock: Callable[[], float]) -> None:
        self.rate = spec.rate
        self.burst = float(spec.burst or max(1.0, spec.rate))
        self.header = spec.key.split(":", 1)[1].lower().encode() if spec.key.startswith("header:") else None
        self.buckets: dict[str, TokenBucket] = {}
        self.clock = clock

    def check(self, key: str) -> float:
        """0 when the request may pass, else the seconds until it could."""
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.MAX_KEYS:
                self.buckets = {k: b for k, b in self.buckets.items() if not b.full(now)}
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now)


class Gateway:
    """An HTTP/1.1 reverse proxy routing to the instances ``source`` reports, as ``spec`` says.

    ::

        source = StaticSource({"orders": ["127.0.0.1:8001", "127.0.0.1:8002"]})
        spec = GatewaySpec(port=0, routes=[RouteSpec(path="/api/orders", service="orders", strip_prefix=True)])
        async with Gateway(spec, source) as gateway:
            print(gateway.url)                  # http://127.0.0.1:PORT
            gateway.drain("instance-id")        # no new requests to it...
            async with asyncio.timeout(10):
                await gateway.wait_idle("instance-id")   # ...and those in flight have finished

    ``clock`` is what the rate limiter reads the time from (seconds, monotonic); ``rng`` picks
    among replicas. Routes with ``auth:`` read their key files relative to ``base`` (the spec file's directory;
    the working directory by default) and write each refusal to ``audit``.
    Raises :class:`~minga.errors.UsageError` when it cannot listen on ``host:port`` or a key
    file is missing or unusable.
    """

    def __init__(
        self,
        spec: GatewaySpec,
        source: UpstreamSource,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        audit: AuditLog | None = None,
        base: Path | None = None,
    ) -> None:
        self.spec = spec
        self.source = source
        self.audit = audit
        base = base if base is not None else Path.cwd()
        self.routes = [_RouteState(r, spec.retry_budget, base) for r in spec.routes]
        self.router = Router([(r.path, r.host, r.strip_prefix) for r in spec.routes])
        self.metrics = GatewayMetrics()
        # called with each proxied request's span (the control plane's monitor stores them)
        self.span_sink: Callable[[Span], None] | None = None
        self.metrics.gauges.append(self._gauges)
        self.metrics_path = spec.metrics_path.encode() if spec.metrics_path else None
        self.limiter = _Limiter(spec.limits.rate, clock) if spec.limits.rate else None
        self.policy = BreakerPolicy(failures=spec.breaker.failures, open_for=spec.breaker.open_for)
        self.clients: set[ClientConnection] = set()
        self.stopping = False
        self.url = ""
        self.port = 0
        self._rng = rng or random.Random()
        self._rr = 0
        self._upstreams: dict[str, _UpstreamState] = {}
        self._draining: set[str] = set()
        self._server: asyncio.Server | None = None
        self._group: asyncio.TaskGroup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._follower: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the gateway is not started"
        return self._loop

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        self._loop = asyncio.get_running_loop()
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        try:
            try:
                self._server = await self._loop.create_server(
                    lambda: ClientConnection(self), self.spec.host, self.spec.port, backlog=1024
                )
            except OSError as exc:
                raise UsageError(
                    f"the gateway cannot listen on {self.spec.host}:{self.spec.port}: {exc.strerror}"
                ) from None
            sock = self._server.sockets[0].getsockname()
            self.port = int(sock[1])
            host = self.spec.host if ":" not in self.spec.host else f"[{self.spec.host}]"
            self.url = f"http://{host}:{self.port}"
            self._follower = self._group.create_task(self._follow_source(), name="minga-gateway-source")
            self._sweeper = self._group.create_task(self._sweep(), name="minga-gateway-sweep")
        except BaseException:
            await self._close(0.0)
            raise
        log.info("gateway listening on %s", self.url)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close(10.0)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop as the module docstring says; requests still running after ``grace`` seconds are cut."""
        await self._close(grace)

    async def _close(self, grace: float) -> None:
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            if not client.busy:
                client.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                for state in list(self._upstreams.values()):
                    await state.idle.wait()
        for client in list(self.clients):
            client.close()
        for state in self._upstreams.values():
            state.pool.close()
        group, self._group = self._group, None
        if group is not None:
            for task in (self._follower, self._sweeper):
                if task is not None:
                    task.cancel()
            await group.__aexit__(None, None, None)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` in the gateway's task group."""
        assert self._group is not None, "the gateway is not started"
        return self._group.create_task(coro)

    async def _follow_source(self) -> None:
        """Close the pools of instances that left; they get no new request anyway."""
        while True:
            await self.source.changed()
            current = {e.id for e in self._all_endpoints()}
            for key, state in list(self._upstreams.items()):
                if key not in current:
                    state.pool.close()
                    if state.outstanding == 0:
                        del self._upstreams[key]

    async def _sweep(self) -> None:
        """Enforce the client deadlines (head, body, idle) to within a tenth of the shortest limit."""
        limits = self.spec.limits
        tick = min(0.5, max(0.02, min(limits.header_timeout, limits.body_timeout, limits.idle_timeout) / 10))
        while True:
            await asyncio.sleep(tick)
            now = self.loop.time()
            for client in list(self.clients):
                if (client.deadline and now >= client.deadline) or (
                    client.upstream_deadline and now >= client.upstream_deadline
                ):
                    client.expire(now)

    def _all_endpoints(self) -> Iterable[Endpoint]:
        for name in {r.service for r in self.spec.routes}:
            yield from self.source.endpoints(name)

    # -- balancing -----------------------------------------------------------------------------

    def pick(self, route: _RouteState, tried: set[str]) -> _UpstreamState | None:
        """An instance for ``route`` not in ``tried``: not draining, breaker allowing, least loaded of two."""
        now = self.loop.time()
        candidates: list[_UpstreamState] = []
        for endpoint in self.source.endpoints(route.spec.service):
            state = self._upstreams.get(endpoint.id)
            if state is None or state.endpoint != endpoint:
                if state is not None:
                    state.pool.close()
                state = self._upstreams[endpoint.id] = _UpstreamState(endpoint, self.policy)
                state.draining = endpoint.id in self._draining
            if state.draining or endpoint.id in tried or not state.breaker.available(now):
                continue
            candidates.append(state)
        if not candidates:
            return None
        n = len(candidates)
        if n == 1:
            chosen = candidates[0]
        elif self.spec.balance == "round_robin":
            self._rr = (self._rr + 1) % (1 << 30)
            chosen = candidates[self._rr % n]
        elif self.spec.balance == "random":
            chosen = candidates[self._rng.randrange(n)]
        else:
            i = self._rng.randrange(n)
            j = self._rng.randrange(n - 1)
            if j >= i:
                j += 1
            a, b = candidates[i], candidates[j]
            chosen = a if a.outstanding <= b.outstanding else b
        chosen.breaker.acquire(now)
        return chosen

    # -- draining ------------------------------------------------------------------------------

    def drain(self, instance_id: str) -> None:
        """Send no new request to ``instance_id`` (those in flight go on)."""
        self._draining.add(instance_id)
        state = self._upstreams.get(instance_id)
        if state is not None:
            state.draining = True
            state.pool.close()

    def undrain(self, instance_id: str) -> None:
        """Route to ``instance_id`` again."""
        self._draining.discard(instance_id)
        state = self._upstreams.get(instance_id)
        if state is not None:
            state.draining = False

    async def wait_idle(self, instance_id: str) -> None:
        """Return once no request to ``instance_id`` is in flight (bound it with ``asyncio.timeout``)."""
        state = self._upstreams.get(instance_id)
        if state is not None:
            await state.idle.wait()

    # -- introspection -------------------------------------------------------------------------

    def outstanding(self, instance_id: str) -> int:
        """Requests to ``instance_id`` in flight now."""
        state = self._upstreams.get(instance_id)
        return state.outstanding if state is not None else 0

    def breaker_state(self, instance_id: str) -> BreakerState:
        state = self._upstreams.get(instance_id)
        return state.breaker.state if state is not None else BreakerState.CLOSED

    def audit_refusal(self, who: str | None, source: str, what: str, why: str) -> None:
        """Write a refused authentication to the audit log, when the gateway has one."""
        if self.audit is not None:
            self.audit.record(area="gateway", who=who or "anonymous", source=source, what=what, why=why)

    def count_rejected(self, status: int) -> None:
        """A request refused before routing (malformed, too big, too slow)."""
        self.metrics.request("", status, 0.0)

    def _gauges(self) -> list[str]:
        states = self._upstreams.values()
        out = metric_family(
            "minga_gateway_upstream_outstanding",
            "gauge",
            ("upstream",),
            [((s.endpoint.id,), s.outstanding) for s in states],
            "Requests in flight to an upstream instance.",
        )
        out += metric_family(
            "minga_gateway_upstream_breaker_open",
            "gauge",
            ("upstream",),
            [((s.endpoint.id,), int(s.breaker.state is not BreakerState.CLOSED)) for s in states],
            "1 while an instance's circuit breaker is open.",
        )
        out += metric_family(
            "minga_gateway_client_connections", "gauge", (), [((), len(self.clients))], "Open client connections."
        )
        return out
