"""What the control plane feeds the dashboard: its status, supervisor alerts, CPU and memory
sampled from the replicas' processes, the job records under MINGA_HOME and, from the monitor,
request rates, errors, latency quantiles, indexed logs, traces, the dependency map and alerts.

Without a monitor (a control plane embedded in a test, say), logs are read from the replicas'
log files and the monitor's charts stay empty. With one, every read goes to the monitor's query
processes, so the page never runs a query on the control plane's event loop; the overview's
summaries are refreshed by the sampler, never computed for a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from minga.dashboard import DashboardSource, LogQuery
from minga.deploy import LogLine, follow_logs, log_files, read_logs
from minga.errors import MonitorError
from minga.monitor import (
    LogSearch,
    Monitor,
    QueryStores,
    log_after,
    log_search,
    trace_dependencies,
    trace_list,
    trace_spans,
)

__all__ = ["ControlPlaneSource", "jobs_dir"]

_HISTORY = 900  # samples kept per service (30 minutes at the default 2 s interval)
_CLOCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def jobs_dir(home: Path) -> Path:
    """Where MapReduce job records of the system under ``home`` live (``minga run`` keeps one per run there)."""
    return home / "jobs"


def log_record(line: LogLine) -> dict[str, Any]:
    """One replica log line as the dashboard shows it; minga services write JSON, others plain text."""
    doc: dict[str, Any] = {}
    if line.text.startswith("{"):
        with contextlib.suppress(ValueError):
            parsed = json.loads(line.text)
            if isinstance(parsed, dict):
                doc = parsed
    return {
        "at": line.at.isoformat(timespec="milliseconds"),
        "instance": line.instance,
        "service": doc.get("service") or line.instance.rsplit("-", 1)[0],
        "level": str(doc.get("level") or "info").lower(),
        "message": doc.get("message", line.text) if doc else line.text,
        "trace_id": doc.get("trace_id"),
        "fields": doc.get("fields") or {},
        "error": doc.get("error"),
    }


def indexed_record(r: dict[str, Any]) -> dict[str, Any]:
    """A line from the monitor's log index (:meth:`LogRecord.to_json`), in the shape :func:`log_record` gives."""
    fields = r.get("fields") or {}
    return {
        "at": datetime.fromtimestamp(r["ts"], UTC).isoformat(timespec="milliseconds"),
        "instance": r["instance"],
        "service": r["service"],
        "level": r["level"],
        "message": r["message"],
        "trace_id": r["trace_id"],
        "fields": fields,
        "error": fields.get("error"),
    }


def red_series(
    stores: QueryStores, timeout: float, service: str, start: float, end: float, window: float, scrape_interval: float
) -> dict[str, list[list[float]]]:
    """Requests/s, error % and latency quantiles of ``service`` from the scraped metrics (run by the
    monitor's query processes)."""
    step = max(scrape_interval, window / 150)
    rate = f"{int(max(4 * scrape_interval, 2 * step))}s"  # a few scrapes per rate
    sel = f'service="{service}"'
    queries = {
        "rps": f"sum(rate(minga_entrypoint_calls_total{{{sel}}}[{rate}]))",
        "errors": f'sum(rate(minga_entrypoint_calls_total{{{sel},outcome="error"}}[{rate}]))',
    }
    for q in (0.5, 0.95, 0.99):
        queries[f"p{round(q * 100)}"] = (
            f"histogram_quantile({q}, sum by (le) (rate(minga_entrypoint_duration_seconds_bucket{{{sel}}}[{rate}])))"
        )
    out: dict[str, list[list[float]]] = {}
    for key, query in queries.items():
        found = stores.engine.range(query, start, end, step, timeout=timeout)
        points = found[0].points if found else []
        out[key] = [[t, v] for t, v in points if math.isfinite(v)]
    errors = dict((t, v) for t, v in out.pop("errors"))
    out["error_pct"] = [[t, 100.0 * errors.get(t, 0.0) / v] for t, v in out["rps"] if v > 0]
    return out


def _log_search(q: LogQuery) -> LogSearch:
    return LogSearch(
        start=q.since.timestamp() if q.since else None,
        end=q.until.timestamp() if q.until else None,
        service=q.service,
        instance=q.instance,
        level=q.level,
        trace_id=q.trace_id,
        text=q.text or None,
        limit=q.limit,
    )


def _cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def _rss(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class ControlPlaneSource(DashboardSource):
    """The dashboard's view of one control plane: ``status`` is its status function, ``home`` MINGA_HOME."""

    status_fn: Callable[[], dict[str, Any]] = field(default=lambda: {"services": []})
    home: Path = field(default_factory=Path)
    _samples: dict[str, deque[tuple[float, float, float]]] = field(default_factory=dict)
    _markers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _ticks: dict[int, tuple[float, int]] = field(default_factory=dict)
    _pids: dict[str, int | None] = field(default_factory=dict)
    _summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: set by the control plane once its monitor runs
    monitor: Monitor | None = None

    def status(self) -> dict[str, Any]:
        return self.status_fn()

    def alerts(self) -> list[dict[str, Any]]:
        """The monitor's firing and pending alerts (the built-in ``CrashLoop`` among them), then running
        replicas that fail their health check; without a monitor, crash loops from the status."""
        out: list[dict[str, Any]] = []
        if self.monitor is not None:
            evaluator = self.monitor.alerts
            for alert in sorted(evaluator.active.values(), key=lambda a: (a.state != "firing", a.rule)):
                doc = alert.to_json()
                out.append({"name": doc["rule"], "state": doc["state"], "service": doc["labels"].get("service", ""),
                            "summary": doc["summary"] or doc["query"], "since": doc["since"]})  # fmt: skip
        for svc in self.status().get("services", []):
            for inst in svc.get("instances", []):
                if inst.get("crashloop") and self.monitor is None:
                    out.append({"name": "CrashLoop", "state": "firing", "service": svc["name"],
                                "summary": f"{inst['id']} keeps exiting ({inst.get('last_exit') or inst.get('last_error')})"})  # fmt: skip
                elif inst.get("health") == "critical" and inst.get("phase") == "running":
                    out.append({"name": "ReplicaCritical", "state": "firing", "service": svc["name"],
                                "summary": f"{inst['id']} fails its health check"})  # fmt: skip
        return out

    def summaries(self) -> dict[str, dict[str, Any]]:
        """Requests/s, error % and p99 of each service over the last minute, from the monitor (as the
        sampler last refreshed them)."""
        return self._summaries

    async def refresh_summaries(self) -> None:
        """Ask the monitor's query processes for the summaries again; a failure keeps the last ones."""
        if self.monitor is None:
            return
        try:
            rows = await self.monitor.red(window=60.0, budget=max(1.0, self.refresh))
        except MonitorError:
            return
        self._summaries = {
            row["service"]: {"rps": row.get("rps"), "error_pct": 100.0 * (row.get("error_ratio") or 0.0),
                             "p99": row.get("p99")}
            for row in rows
            if row.get("service")
        }  # fmt: skip

    # -- CPU and memory, sampled --------------------------------------------------------------

    def sample(self, now: float | None = None) -> None:
        """Take one CPU and memory sample of every replica; note replica starts as chart markers."""
        now = time.time() if now is None else now
        mono = time.monotonic()
        for svc in self.status().get("services", []):
            cpu = 0.0
            rss = 0.0
            for inst in svc.get("instances", []):
                pid = inst.get("pid")
                if self._pids.get(inst["id"], 0) != pid and pid:
                    restarts = inst.get("restarts", 0)
                    text = f"{inst['id']} started" if not restarts else f"{inst['id']} restarted ({restarts})"
                    self._markers.setdefault(svc["name"], []).append({"at": now, "text": text})
                self._pids[inst["id"]] = pid
                if not pid:
                    continue
                ticks = _cpu_ticks(pid)
                if ticks is not None:
                    last = self._ticks.get(pid)
                    if last is not None and mono > last[0]:
                        cpu += 100.0 * (ticks - last[1]) / _CLOCK / (mono - last[0])
                    self._ticks[pid] = (mono, ticks)
                rss += _rss(pid) or 0
            self._samples.setdefault(svc["name"], deque(maxlen=_HISTORY)).append((now, round(cpu, 2), rss))
            markers = self._markers.get(svc["name"], [])
            del markers[: max(0, len(markers) - 200)]

    async def run_sampler(self) -> None:
        """Sample every :attr:`refresh` seconds until cancelled."""
        while True:
            self.sample()
            await self.refresh_summaries()
            await asyncio.sleep(self.refresh)

    async def service_metrics(self, service: str, window: float) -> dict[str, Any]:
        now = time.time()
        since = now - window
        rows = [r for r in self._samples.get(service, ()) if r[0] >= since]
        series: dict[str, list[list[float]]] = {
            "cpu": [[t, c] for t, c, _ in rows],
            "rss": [[t, m] for t, _, m in rows],
        }
        if self.monitor is not None:
            interval = self.monitor.settings.scrape_interval
            series.update(await self.monitor.query.call(red_series, service, since, now, window, interval))
        return {
            "series": series,
            "markers": [m for m in self._markers.get(service, []) if m["at"] >= since],
            "available": sorted(series),
        }

    # -- logs ---------------------------------------------------------------------------------

    def _search(self, query: LogQuery) -> list[dict[str, Any]]:
        scope = query.instance or query.service
        found: deque[dict[str, Any]] = deque(maxlen=query.limit)
        for line in read_logs(log_files(self.home, scope), query.since):
            if query.until is not None and line.at > query.until:
                break
            record = log_record(line)
            if query.matches(record):
                found.append(record)
        return list(reversed(found))

    async def search_logs(self, query: LogQuery) -> list[dict[str, Any]]:
        """The newest ``query.limit`` matching lines, newest first: from the monitor's index when it runs."""
        if self.monitor is not None:
            return [indexed_record(r) for r in await self.monitor.query.call(log_search, _log_search(query))]
        return await asyncio.to_thread(self._search, query)

    async def tail_logs(self, query: LogQuery) -> AsyncIterator[dict[str, Any]]:
        if self.monitor is not None:
            monitor = self.monitor
            search = _log_search(query)
            last = monitor.logs.last_id

            async def fetch(after: int, q: LogSearch) -> list[dict[str, Any]]:
                found: list[dict[str, Any]] = await monitor.query.call(log_after, after, q)
                return found

            while True:
                for r in await monitor.logs.wait_after(last, search, 30.0, fetch):
                    last = max(last, r["id"])
                    yield indexed_record(r)
        async for line in follow_logs(self.home, query.instance or query.service, since=datetime.now(UTC)):
            record = log_record(line)
            if query.matches(record):
                yield record

    # -- traces ----------------------------------------------------------------------------------

    async def traces(self, service: str | None, limit: int) -> list[dict[str, Any]]:
        if self.monitor is None:
            return []
        return [
            {"trace_id": t["trace_id"], "root": t["root"], "service": t["root_service"], "start": t["start"],
             "duration": t["duration"], "spans": t["spans"], "services": t["services"], "error": t["errors"] > 0}
            for t in await self.monitor.query.call(trace_list, service, None, False, limit)
        ]  # fmt: skip

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        if self.monitor is None:
            return None
        spans = await self.monitor.query.call(trace_spans, trace_id)
        if not spans:
            return None
        return {
            "trace_id": trace_id,
            "spans": [
                {"span_id": s["span_id"], "parent_id": s["parent_id"], "service": s["service"],
                 "instance": s["instance"], "name": s["name"], "kind": s["kind"], "start": s["start"],
                 "duration": s["end"] - s["start"], "error": s["status"] == "error", "attributes": s["attributes"]}
                for s in spans
            ],
        }  # fmt: skip

    async def dependencies(self) -> dict[str, Any]:
        if self.monitor is None:
            return {"nodes": [], "edges": []}
        edges: list[dict[str, Any]] = await self.monitor.query.call(trace_dependencies, None)
        called = {e["from"] for e in edges} | {e["to"] for e in edges}
        known = [s["name"] for s in self.status().get("services", [])]
        nodes = [n for n in known if n in called] + sorted(called - set(known))
        return {"nodes": nodes, "edges": edges}

    # -- jobs ---------------------------------------------------------------------------------

    def _jobs(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for path in (jobs_dir(self.home)).glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                record = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(record, dict):
                    record["id"] = path.stem
                    out.append(record)
        out.sort(key=lambda r: str(r.get("finished_at") or r.get("started_at") or ""), reverse=True)
        return out

    async def jobs(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._jobs)
