"""Entrypoint decorators: ``@rpc``, ``@event``, ``@consume``, ``@http.get``, ``@every``.

Each decorator records what it declares in the function's ``__minga_entrypoints__``
tuple and returns the function unchanged, so a service stays a plain class whose
methods can be called directly in a unit test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from minga import durations
from minga.bus import Backoff, QueuePolicy
from minga.errors import UsageError

__all__ = [
    "ATTRIBUTE",
    "ConsumeEntry",
    "Entrypoint",
    "EventEntry",
    "HttpEntry",
    "RpcEntry",
    "TimerEntry",
    "consume",
    "entrypoints_of",
    "event",
    "every",
    "http",
    "parse_duration",
    "rpc",
]

F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "__minga_entrypoints__"


@dataclass(frozen=True, slots=True)
class RpcEntry:
    """Answers ``minga.rpc.<service>.<name>``; ``name`` defaults to the method's name."""

    name: str | None = None


@dataclass(frozen=True, slots=True)
class EventEntry:
    """Handles events on ``topic``: once per service, or on every replica when ``broadcast``."""

    topic: str
    broadcast: bool = False


@dataclass(frozen=True, slots=True)
class ConsumeEntry:
    """Handles jobs from the durable work queue ``queue`` under ``policy``."""

    queue: str
    policy: QueuePolicy


@dataclass(frozen=True, slots=True)
class HttpEntry:
    """Serves ``method`` ``path`` (aiohttp route syntax: ``/stock/{sku}``) on the replica's HTTP port."""

    method: str
    path: str


@dataclass(frozen=True, slots=True)
class TimerEntry:
    """Runs every ``interval`` seconds; the first run is one interval after start."""

    interval: float


Entrypoint = RpcEntry | EventEntry | ConsumeEntry | HttpEntry | TimerEntry


def _record(func: F, entry: Entrypoint) -> F:
    entries: tuple[Entrypoint, ...] = getattr(func, ATTRIBUTE, ())
    setattr(func, ATTRIBUTE, (*entries, entry))
    return func


def entrypoints_of(func: object) -> tuple[Entrypoint, ...]:
    """What the decorators recorded on ``func`` (empty when it is not an entrypoint)."""
    entries: tuple[Entrypoint, ...] = getattr(func, ATTRIBUTE, ())
    return entries


@overload
def rpc(func: F, /) -> F: ...
@overload
def rpc(*, name: str | None = None) -> Callable[[F], F]: ...
def rpc(func: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Make a method callable as ``await self.rpc.<service>.<method>(**kwargs)``.

    The keyword arguments are validated against the method's annotations; its return
    value, as JSON, is the reply. Usable bare (``@rpc``) or with a ``name``.
    """
    if func is not None:
        return _record(func, RpcEntry())
    return lambda f: _record(f, RpcEntry(name))


def event(topic: str, *, broadcast: bool = False) -> Callable[[F], F]:
    """Handle events emitted on ``topic`` (``*`` and a final ``>`` are wildcards).

    Each subscribing service gets each event once (its replicas share a queue group);
    with ``broadcast=True`` every replica gets it. The payload is validated against the
    method's one parameter (or its parameters, for a JSON object).
    """
    return lambda f: _record(f, EventEntry(topic, broadcast))


def consume(
    queue: str,
    *,
    max_deliver: int = 5,
    backoff: Backoff | None = None,
    ack_wait: float = 30.0,
    concurrency: int = 4,
) -> Callable[[F], F]:
    """Handle jobs from the durable work queue ``queue``.

    A job is acked when the method returns; an exception retries it after a delay from
    ``backoff``; after ``max_deliver`` deliveries it is dead-lettered. ``ack_wait`` is in
    seconds; ``concurrency`` bounds the jobs one replica runs at once.
    """
    policy = QueuePolicy(
        max_deliver=max_deliver, backoff=backoff or Backoff(), ack_wait=ack_wait, concurrency=concurrency
    )
    return lambda f: _record(f, ConsumeEntry(queue, policy))


class _Http:
    """``@http.get(path)``, ``@http.post(path)``... serve a method over HTTP."""

    def route(self, method: str, path: str) -> Callable[[F], F]:
        """Serve ``method`` requests on ``path``; path parameters, the query string and a JSON body
        fill the method's parameters, which are validated against their annotations."""
        if not path.startswith("/"):
            raise UsageError(f"HTTP path {path!r} must start with '/'")
        return lambda f: _record(f, HttpEntry(method.upper(), path))

    def get(self, path: str) -> Callable[[F], F]:
        return self.route("GET", path)

    def post(self, path: str) -> Callable[[F], F]:
        return self.route("POST", path)

    def put(self, path: str) -> Callable[[F], F]:
        return self.route("PUT", path)

    def patch(self, path: str) -> Callable[[F], F]:
        return self.route("PATCH", path)

    def delete(self, path: str) -> Callable[[F], F]:
        return self.route("DELETE", path)


http = _Http()

def parse_duration(value: str | float) -> float:
    """Seconds in ``value``: a number, or ``"250ms"``, ``"30s"``, ``"1m30s"``, ``"1h"`` (the grammar of
    :func:`minga.durations.parse_duration`, as in minga.yaml), more than zero; UsageError otherwise."""
    try:
        seconds = durations.parse_duration(value)
    except ValueError:
        raise UsageError(f"duration {value!r} must look like 250ms, 30s, 1m30s or 1h") from None
    if seconds <= 0:
        raise UsageError(f"duration {value!r} must be more than zero")
    return seconds


def every(interval: str | float) -> Callable[[F], F]:
    """Run a method periodically: ``@every("30s")``; the first run is one interval after start.

    Runs never overlap: a run that takes longer than the interval delays the next.
    """
    seconds = parse_duration(interval)
    return lambda f: _record(f, TimerEntry(seconds))
