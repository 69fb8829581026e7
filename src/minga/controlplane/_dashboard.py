"""What the control plane feeds the dashboard: its status, the replicas' logs, CPU and memory
sampled from the replicas' processes, supervisor alerts, and the job records under MINGA_HOME.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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

    def status(self) -> dict[str, Any]:
        return self.status_fn()

    def alerts(self) -> list[dict[str, Any]]:
        """The supervisor's own alerts: replicas in a crash loop and replicas that are critical."""
        out: list[dict[str, Any]] = []
        for svc in self.status().get("services", []):
            for inst in svc.get("instances", []):
                if inst.get("crashloop"):
                    out.append({"name": "CrashLoop", "state": "firing", "service": svc["name"],
                                "summary": f"{inst['id']} keeps exiting ({inst.get('last_exit') or inst.get('last_error')})"})  # fmt: skip
                elif inst.get("health") == "critical" and inst.get("phase") == "running":
                    out.append({"name": "ReplicaCritical", "state": "firing", "service": svc["name"],
                                "summary": f"{inst['id']} fails its health check"})  # fmt: skip
        return out

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
            await asyncio.sleep(self.refresh)

    async def service_metrics(self, service: str, window: float) -> dict[str, Any]:
        since = time.time() - window
        rows = [r for r in self._samples.get(service, ()) if r[0] >= since]
        return {
            "series": {"cpu": [[t, c] for t, c, _ in rows], "rss": [[t, m] for t, _, m in rows]},
            "markers": [m for m in self._markers.get(service, []) if m["at"] >= since],
            "available": ["cpu", "rss"],
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
        """The newest ``query.limit`` matching lines, newest first."""
        return await asyncio.to_thread(self._search, query)

    async def tail_logs(self, query: LogQuery) -> AsyncIterator[dict[str, Any]]:
        async for line in follow_logs(self.home, query.instance or query.service, since=datetime.now(UTC)):
            record = log_record(line)
            if query.matches(record):
                yield record

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
