"""Spans in SQLite: the traces they make up, each as a tree, and the service dependency map.

Spans arrive from replicas on ``_minga.spans`` (see :class:`minga.bus.SpanRecorder`) and from
the gateway in-process. A span whose parent was recorded by another service makes an edge
``parent service → child service`` of the dependency map.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from minga.bus import Span

__all__ = ["TraceStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT,
    service TEXT NOT NULL, instance TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    start REAL NOT NULL, end REAL NOT NULL, status TEXT NOT NULL, attributes TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id));
CREATE INDEX IF NOT EXISTS spans_start ON spans (start);
CREATE INDEX IF NOT EXISTS spans_service ON spans (service, start);
"""


def _span(row: tuple[Any, ...]) -> Span:
    trace_id, span_id, parent_id, service, instance, name, kind, start, end, status, attrs = row
    return Span(trace_id, span_id, parent_id, service, instance, name, kind, start, end, status, json.loads(attrs))


class TraceStore:
    """Spans stored in ``path``; ``retention`` in seconds."""

    def __init__(self, path: Path, *, retention: float = 3 * 86400) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.retention = retention
        # one thread at a time: the monitor's writer thread once the control plane runs
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, spans: Iterable[Span]) -> int:
        rows = [
            (s.trace_id, s.span_id, s.parent_id, s.service, s.instance, s.name, s.kind, s.start, s.end, s.status,
             json.dumps(s.attributes))
            for s in spans
        ]
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")
        return len(rows)

    def expire(self, now: float) -> int:
        cur = self.db.execute("DELETE FROM spans WHERE start < ?", (now - self.retention,))
        return cur.rowcount

    def spans(self, trace_id: str) -> list[Span]:
        rows = self.db.execute("SELECT * FROM spans WHERE trace_id = ? ORDER BY start", (trace_id.lower(),))
        return [_span(r) for r in rows]

    def traces(
        self, *, service: str | None = None, start: float | None = None, errors_only: bool = False, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Summaries of recent traces, newest first: root name, services, span count, duration, errors."""
        where: list[str] = []
        args: list[Any] = []
        if service:
            where.append("trace_id IN (SELECT trace_id FROM spans WHERE service = ?)")
            args.append(service)
        if start is not None:
            where.append("start >= ?")
            args.append(start)
        sql = (
            "SELECT trace_id, min(start), max(end), count(*), group_concat(DISTINCT service),"
            " sum(status = 'error') FROM spans"
            f"{' WHERE ' + ' AND '.join(where) if where else ''} GROUP BY trace_id"
            f"{' HAVING sum(status = ?) > 0' if errors_only else ''} ORDER BY min(start) DESC LIMIT ?"
        )
        if errors_only:
            args.append("error")
        args.append(max(1, min(limit, 1000)))
        out = []
        for trace_id, first, last, count, services, errors in self.db.execute(sql, args).fetchall():
            root = self.db.execute(
                "SELECT name, service FROM spans WHERE trace_id = ? ORDER BY (parent_id IS NOT NULL"
                " AND parent_id IN (SELECT span_id FROM spans WHERE trace_id = ?)), start LIMIT 1",
                (trace_id, trace_id),
            ).fetchone()
            out.append(
                {
                    "trace_id": trace_id,
                    "root": root[0] if root else "",
                    "root_service": root[1] if root else "",
                    "start": first,
                    "duration": last - first,
                    "spans": count,
                    "services": sorted(str(services or "").split(",")),
                    "errors": int(errors or 0),
                }
            )
        return out

    def tree(self, trace_id: str) -> dict[str, Any]:
        """The trace as nested spans (``children``), with offsets from its start and durations in seconds.

        Spans whose parent was never recorded (the caller is outside minga) become roots.
        """
        spans = self.spans(trace_id)
        if not spans:
            return {"trace_id": trace_id, "roots": [], "spans": 0, "duration": 0.0}
        t0 = min(s.start for s in spans)
        nodes: dict[str, dict[str, Any]] = {}
        for s in spans:
            node = s.to_json()
            node.update({"offset": s.start - t0, "duration": s.duration, "children": []})
            nodes[s.span_id] = node
        roots: list[dict[str, Any]] = []
        for s in spans:
            parent = nodes.get(s.parent_id or "")
            (parent["children"] if parent is not None else roots).append(nodes[s.span_id])
        return {
            "trace_id": trace_id,
            "roots": roots,
            "spans": len(spans),
            "duration": max(s.end for s in spans) - t0,
            "services": sorted({s.service for s in spans}),
        }

    def dependencies(self, start: float | None = None) -> list[dict[str, Any]]:
        """Edges ``{"from", "to", "calls", "errors"}``: spans of ``to`` whose parent span belongs to ``from``."""
        sql = (
            "SELECT p.service, c.service, count(*), sum(c.status = 'error') FROM spans AS c"
            " JOIN spans AS p ON p.trace_id = c.trace_id AND p.span_id = c.parent_id"
            " WHERE p.service != c.service"
        )
        args: list[Any] = []
        if start is not None:
            sql += " AND c.start >= ?"
            args.append(start)
        sql += " GROUP BY p.service, c.service ORDER BY p.service, c.service"
        return [
            {"from": a, "to": b, "calls": int(n), "errors": int(e or 0)}
            for a, b, n, e in self.db.execute(sql, args).fetchall()
        ]
