"""What the gateway's modules share of one request's way: the routes' and upstreams' state
(kept by :mod:`~minga.gateway._gateway`), a request and its body as the client connection
parses them (:mod:`~minga.gateway._proxy`), which an exchange forwards
(:mod:`~minga.gateway._exchange`). A leaf: it imports none of the three.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from minga.gateway._auth import RouteAuth
from minga.gateway._http import Headers, is_internal
from minga.gateway._resilience import BreakerPolicy, CircuitBreaker, RetryBudget
from minga.gateway._sources import Endpoint
from minga.gateway._upstream import Pool
from minga.spec import RouteSpec

__all__: list[str] = []

KEEP_FOR_RETRY = 64 * 1024  # request bodies up to this size are kept so that a retry can resend them
PAUSE_ABOVE = 1024 * 1024  # unread request body bytes above which the client is not read


class _Reader(Protocol):
    """The side a request body is read from: paused while too much of it waits unread."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class _UpstreamState:
    """What the gateway knows of one upstream instance."""

    __slots__ = ("breaker", "draining", "endpoint", "idle", "outstanding", "pool")

    def __init__(self, endpoint: Endpoint, policy: BreakerPolicy) -> None:
        self.endpoint = endpoint
        self.breaker = CircuitBreaker(policy)
        self.pool = Pool(endpoint)
        self.outstanding = 0
        self.draining = False
        self.idle = asyncio.Event()
        self.idle.set()

    def started(self) -> None:
        self.outstanding += 1
        self.idle.clear()

    def finished(self) -> None:
        self.outstanding -= 1
        if self.outstanding <= 0:
            self.outstanding = 0
            self.idle.set()


class _RouteState:
    __slots__ = ("auth", "budget", "expose", "name", "spec")

    def __init__(self, spec: RouteSpec, budget_ratio: float, base: Path) -> None:
        self.spec = spec
        self.name = (spec.host or "") + spec.path
        self.budget = RetryBudget(budget_ratio)
        self.auth = RouteAuth(spec.auth, base) if spec.auth is not None else None
        self.expose = tuple(p.encode() for p in spec.expose)

    def exposes(self, target: bytes) -> bool:
        """Whether this route forwards ``target``, one of a replica's own endpoints."""
        return is_internal(target, self.expose)


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing; ``status`` is what the client is told."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Body:
    """A request body as it arrives: parts in order, kept for a retry while small."""

    __slots__ = ("conn", "done", "error", "keep", "parts", "received", "unread", "waiter")

    def __init__(self, conn: _Reader) -> None:
        self.conn = conn
        self.parts: list[bytes] = []
        self.received = 0
        self.unread = 0
        self.done = False
        self.keep = True
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def feed(self, data: bytes) -> None:
        self.parts.append(data)
        self.received += len(data)
        self.unread += len(data)
        if self.received > KEEP_FOR_RETRY:
            self.keep = False
        if self.unread > PAUSE_ABOVE:
            self.conn.pause_reading()
        self._wake()

    def finish(self) -> None:
        self.done = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def replayable(self) -> bool:
        return self.done and self.keep

    async def read(self, index: int) -> bytes | None:
        """Part ``index``, waiting for it; None after the last part. Raises if the client failed."""
        while True:
            if self.error is not None:
                raise self.error
            if index < len(self.parts):
                data = self.parts[index]
                if not self.keep:
                    self.parts[index] = b""
                self.unread = max(0, self.unread - len(data))
                if self.unread <= PAUSE_ABOVE // 2:
                    self.conn.resume_reading()
                return data
            if self.done:
                return None
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter


class _Request:
    __slots__ = (
        "body",
        "chunked",
        "error",
        "headers",
        "keep_alive",
        "length",
        "method",
        "pending",
        "target",
        "upgrade",
        "version",
    )

    def __init__(self) -> None:
        self.method = ""
        self.target = b""
        self.headers: Headers = []
        self.version = "1.1"
        self.keep_alive = True
        self.upgrade = False
        self.length: int | None = None
        self.chunked = False
        self.body: _Body | None = None
        self.error: _Reject | None = None
        self.pending = bytearray()  # bytes after an Upgrade request, sent once the tunnel opens
