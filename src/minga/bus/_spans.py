"""Spans: what a replica (or the gateway) did within a trace, sent in batches on ``_minga.spans``.

A span is one unit of work: an RPC answered, an event handled, a job run, an HTTP request
served or proxied. Its ``parent_id`` is the span that caused it, which may live in another
process; the control plane puts the tree together. Times are Unix seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pydantic_core

__all__ = ["Span", "SpanRecorder"]

log = logging.getLogger("minga.bus")


@dataclass(frozen=True, slots=True)
class Span:
    """One finished span. ``kind`` is ``rpc``, ``event``, ``queue``, ``http``, ``timer`` or ``gateway``;
    ``status`` is ``ok`` or ``error``; ``start`` and ``end`` are Unix seconds. Batches of spans travel
    as JSON arrays on :attr:`SUBJECT`."""

    SUBJECT: ClassVar[str] = "_minga.spans"

    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    instance: str
    name: str
    kind: str
    start: float
    end: float
    status: str = "ok"
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Seconds the span lasted."""
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        # field by field: dataclasses.asdict deep-copies, and spans are made on every call
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "service": self.service,
            "instance": self.instance,
            "name": self.name,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "status": self.status,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Span:
        """A span from its JSON form; KeyError/TypeError/ValueError when fields are missing or wrong."""
        return cls(
            trace_id=str(data["trace_id"]),
            span_id=str(data["span_id"]),
            parent_id=None if data.get("parent_id") is None else str(data["parent_id"]),
            service=str(data["service"]),
            instance=str(data.get("instance", "")),
            name=str(data["name"]),
            kind=str(data.get("kind", "")),
            start=float(data["start"]),
            end=float(data["end"]),
            status=str(data.get("status", "ok")),
            attributes={str(k): str(v) for k, v in dict(data.get("attributes") or {}).items()},
        )


Publish = Callable[[bytes], Awaitable[None]]


class SpanRecorder:
    """Collects finished spans and publishes them as JSON arrays, at most every ``every`` seconds.

    ``publish`` sends one batch (for a bus: ``nats.publish("_minga.spans", data)``). A batch
    holds at most ``batch`` spans; beyond ``limit`` spans waiting, new ones are dropped
    (counted in :attr:`dropped`) rather than growing without bound while the broker is away.
    Run :meth:`run` in a task group; :meth:`flush` sends what is left.
    """

    def __init__(
        self, publish: Publish, *, every: float = 0.5, batch: int = 500, limit: int = 20_000
    ) -> None:
        self.publish = publish
        self.every = every
        self.batch = batch
        self.limit = limit
        self.dropped = 0
        self._pending: list[dict[str, Any]] = []  # spans in their JSON form (Span.to_json)

    def record(self, span: Span) -> None:
        """Queue ``span`` for the next batch."""
        if len(self._pending) >= self.limit:
            self.dropped += 1
            return
        self._pending.append(span.to_json())

    def record_fields(
        self,
        trace_id: str,
        span_id: str,
        parent_id: str | None,
        service: str,
        instance: str,
        name: str,
        kind: str,
        start: float,
        end: float,
        status: str = "ok",
        attributes: dict[str, str] | None = None,
    ) -> None:
        """:meth:`record` a span given by its fields (those of :class:`Span`, in the same order),
        without making the :class:`Span`: for code that records one on every call.

        ``attributes`` is kept as given, not copied.
        """
        if len(self._pending) >= self.limit:
            self.dropped += 1
            return
        # the same JSON form as Span.to_json
        self._pending.append(
            {
                "trace_id": trace_id,
                "span_id": span_id,
                "parent_id": parent_id,
                "service": service,
                "instance": instance,
                "name": name,
                "kind": kind,
                "start": start,
                "end": end,
                "status": status,
                "attributes": {} if attributes is None else attributes,
            }
        )

    async def flush(self) -> None:
        while self._pending:
            chunk, self._pending = self._pending[: self.batch], self._pending[self.batch :]
            try:
                # pydantic-core writes plain dicts about five times as fast as json.dumps
                await self.publish(pydantic_core.to_json(chunk))
            except Exception as exc:  # the broker is away: spans are best effort
                self.dropped += len(chunk)
                log.debug("dropped %d spans: %s", len(chunk), exc)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish batches until ``stop`` is set, then flush once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)
            await self.flush()
        await self.flush()
