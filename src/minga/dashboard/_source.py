"""What the dashboard shows, behind one class the control plane fills in.

The dashboard never reaches into the registry, the supervisor or the monitor itself: the
control plane (which composes them) hands :func:`~minga.dashboard.dashboard_app` a
:class:`DashboardSource`. Every method has a default that means "nothing of this kind here",
so a page shows an empty state instead of failing when a part is not running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["LEVELS", "DashboardSource", "LogQuery"]

#: log levels from the least to the most severe; a query's ``level`` keeps that level and above
LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class LogQuery:
    """A log search: every field narrows it; ``text`` matches case-insensitively anywhere in the line.

    ``since`` and ``until`` are timezone-aware; ``limit`` keeps the newest lines.
    """

    text: str = ""
    service: str | None = None
    instance: str | None = None
    level: str | None = None
    trace_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200

    def matches(self, line: dict[str, Any]) -> bool:
        """Whether a log line (``{"at", "service", "instance", "level", "message", "trace_id", "fields",
        "error"}``) matches; free text is looked for in the message, the fields' values and the error."""
        if self.service and line.get("service") != self.service:
            return False
        if self.instance and line.get("instance") != self.instance:
            return False
        if self.level and self.level in LEVELS:
            level = str(line.get("level") or "info").lower()
            if level in LEVELS and LEVELS.index(level) < LEVELS.index(self.level):
                return False
        if self.trace_id and line.get("trace_id") != self.trace_id:
            return False
        return not self.text or self.text.lower() in _haystack(line)


def _haystack(line: dict[str, Any]) -> str:
    """What free text is matched against: the message, its fields' values and an error's traceback."""
    fields = line.get("fields") or {}
    parts = [str(line.get("message") or ""), str(line.get("error") or "")]
    if isinstance(fields, dict):
        parts.extend(str(v) for v in fields.values())
    return " ".join(parts).lower()


@dataclass
class DashboardSource:
    """The data behind every page; the control plane subclasses it.

    Shapes (JSON-ready dicts and lists):

    - :meth:`status`: the ``minga status --json`` document (``services`` with ``instances``).
    - :meth:`alerts`: ``[{"name", "state": "firing"|"pending"|"resolved", "service", "summary", "since"}]``.
    - :meth:`summaries`: per service name, ``{"rps", "error_pct", "p99"}`` over the last minute.
    - :meth:`service_metrics`: ``{"series": {name: [[unix_seconds, value], ...]}, "markers":
      [{"at", "text"}], "available": [names]}`` where names are ``rps``, ``error_pct``, ``p50``,
      ``p95``, ``p99`` (seconds), ``cpu`` (percent of one core) and ``rss`` (bytes).
    - :meth:`search_logs` and :meth:`tail_logs`: lines as in :meth:`LogQuery.matches`.
    - :meth:`traces`: ``[{"trace_id", "root", "service", "start", "duration", "spans", "error"}]``;
      :meth:`trace`: ``{"trace_id", "spans": [{"span_id", "parent_id", "service", "name",
      "start", "duration", "error"}]}``; :meth:`dependencies`: ``{"nodes": [names],
      "edges": [{"from", "to", "calls", "errors"}]}``.
    - :meth:`jobs`: MapReduce job records (``minga.compute``'s ``_job.json``), newest first, each
      with an ``id``.
    """

    #: seconds between the periodic refreshes pushed to open pages (metrics are sampled, not evented)
    refresh: float = 2.0
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def status(self) -> dict[str, Any]:
        return {"name": None, "services": [], "healthy": False}

    def alerts(self) -> list[dict[str, Any]]:
        return []

    def summaries(self) -> dict[str, dict[str, Any]]:
        return {}

    async def service_metrics(self, service: str, window: float) -> dict[str, Any]:
        return {"series": {}, "markers": [], "available": []}

    async def search_logs(self, query: LogQuery) -> list[dict[str, Any]]:
        return []

    async def tail_logs(self, query: LogQuery) -> AsyncIterator[dict[str, Any]]:
        """Lines written from now on that match ``query``; never ends on its own."""
        await asyncio.Event().wait()
        yield {}  # pragma: no cover - unreachable, makes this an async generator

    async def traces(self, service: str | None, limit: int) -> list[dict[str, Any]]:
        return []

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        return None

    async def dependencies(self) -> dict[str, Any]:
        return {"nodes": [], "edges": []}

    async def jobs(self) -> list[dict[str, Any]]:
        return []

    def notify_changed(self) -> None:
        """Something on the overview changed (a replica started, died, changed health): push it now."""
        self._changed.set()

    async def wait_changed(self) -> None:
        """Return on the next change, or after :attr:`refresh` seconds, whichever comes first."""
        try:
            async with asyncio.timeout(self.refresh):
                await self._changed.wait()
        except TimeoutError:
            return
        self._changed.clear()
