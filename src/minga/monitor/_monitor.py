"""The control plane's monitor: scrape loop, log collector, span collector and alert evaluator.

State lives under ``<home>/monitor/`` (``metrics.db``, ``logs.db``, ``traces.db``). Run it with
``async with Monitor(...) as monitor`` inside a task group owner: entering starts the loops,
leaving stops them, collects the logs written meanwhile once more, and closes the stores.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
from nats.aio.msg import Msg

from minga.bus import Bus, Span
from minga.errors import MonitorError
from minga.monitor._alerts import Alert, AlertEvaluator
from minga.monitor._export import OpenSearchExporter, OtlpExporter
from minga.monitor._logs import LogCollector, LogSearch, LogStore
from minga.monitor._query import QueryEngine
from minga.monitor._scrape import Scraper, TargetsFn
from minga.monitor._traces import TraceStore
from minga.monitor._tsdb import MetricStore
from minga.spec import AlertSpec, MonitorSpec, OpenSearchSpec, OtlpSpec

__all__ = ["Monitor", "MonitorSettings"]

log = logging.getLogger("minga.monitor")


@dataclass(frozen=True)
class MonitorSettings:
    """Intervals and retention, in seconds; ``max_series`` is the cardinality guard per metric name."""

    scrape_interval: float = 5.0
    collect_interval: float = 0.5
    evaluate_interval: float = 5.0
    retention: float = 7 * 86400
    raw_for: float = 3600.0
    resolution: float = 60.0
    max_series: int = 2000
    max_query_series: int = 500
    log_retention: float = 7 * 86400
    trace_retention: float = 3 * 86400
    export_interval: float = 2.0
    opensearch: OpenSearchSpec | None = None
    otlp: OtlpSpec | None = None

    @classmethod
    def from_spec(cls, spec: MonitorSpec) -> MonitorSettings:
        """The settings minga.yaml's ``monitor:`` section asks for."""
        return cls(
            scrape_interval=spec.scrape_interval,
            retention=spec.retention,
            raw_for=spec.raw_for,
            max_series=spec.max_series,
            log_retention=spec.log_retention,
            opensearch=spec.opensearch,
            otlp=spec.otlp,
        )


class Monitor:
    """Metrics, logs, traces and alerts of one running system, stored under ``home/monitor``.

    Log lines written while no control plane ran are indexed by the collect loop, a megabyte at a
    time between other work, so a long backlog never stalls the control plane.

    ``targets`` lists what to scrape (the registry's instances with a ``metrics`` port);
    ``nats_url``, when given, is where spans arrive and alerts are published.
    """

    COLLECT_BUDGET = 1024 * 1024  # bytes of log files read per step of the collect loop

    def __init__(
        self,
        home: Path,
        *,
        targets: TargetsFn,
        nats_url: str | None = None,
        alerts: Mapping[str, AlertSpec] | None = None,
        settings: MonitorSettings | None = None,
    ) -> None:
        self.home = home
        self.settings = s = settings or MonitorSettings()
        root = home / "monitor"
        self.metrics = MetricStore(
            root / "metrics.db", retention=s.retention, raw_for=s.raw_for, resolution=s.resolution,
            max_series=s.max_series,
        )
        self.logs = LogStore(root / "logs.db", retention=s.log_retention)
        self.traces = TraceStore(root / "traces.db", retention=s.trace_retention)
        self.engine = QueryEngine(self.metrics, max_series=s.max_query_series)
        self.scraper = Scraper(self.metrics, targets, timeout=min(2.0, s.scrape_interval))
        self.collector = LogCollector(self.logs, home / "logs")
        self.alerts = AlertEvaluator(alerts or {}, self.engine, self._publish_alert)
        self.opensearch = OpenSearchExporter(s.opensearch.url, s.opensearch.index) if s.opensearch else None
        self.otlp = OtlpExporter(s.otlp.url) if s.otlp else None
        self._spans_out: collections.deque[Span] = collections.deque(maxlen=100_000)
        self.export_errors: dict[str, str] = {}
        self._exporting = asyncio.Lock()
        self._spans_in: list[Span] = []
        self.nats_url = nats_url
        self._bus: Bus | None = None
        self._stop = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession()
        if self.nats_url:
            bus = Bus(self.nats_url, name="minga-monitor")
            try:
                await bus.__aenter__()
            except MonitorError:
                raise
            except Exception as exc:
                log.warning("the monitor collects no spans: %s", exc)
            else:
                self._bus = bus
                await bus.nats.subscribe(Span.SUBJECT, cb=self._on_spans)
        loops = (
            (self._every(self.settings.scrape_interval, self.scrape), "scrape"),
            (self._every(self.settings.collect_interval, self.collect), "collect logs"),
            (self._every(self.settings.evaluate_interval, self.evaluate), "alerts"),
            (self._every(60.0, self.compact), "compact"),
            (self._every(self.settings.export_interval, self.export, first=False), "export"),
        )
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        for coro, name in loops:
            self._tg.create_task(coro, name=f"monitor {name}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._tg is not None:
            tg, self._tg = self._tg, None
            await tg.__aexit__(None, None, None)  # the loops never raise: each step's errors are logged
        with contextlib.suppress(Exception):
            await self.collect()
        if self._bus is not None:
            bus, self._bus = self._bus, None
            with contextlib.suppress(Exception):
                await bus.__aexit__(None, None, None)
        if self._session is not None:
            await self._session.close()
        self.metrics.close()
        self.logs.close()
        self.traces.close()

    async def _every(self, seconds: float, step: Any, *, first: bool = True) -> None:
        """Run ``step`` every ``seconds`` until the monitor stops (at once too, when ``first``)."""
        if not first:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)
        while not self._stop.is_set():
            try:
                await step()
            except Exception:
                log.exception("monitor step %s failed", getattr(step, "__name__", step))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)

    # -- the loops' steps ------------------------------------------------------------------------

    async def scrape(self) -> int:
        """Scrape every target once; the samples stored."""
        assert self._session is not None
        return await self.scraper.scrape_all(self._session)

    async def collect(self) -> int:
        """Index the log lines written since the last call (and store waiting spans); the lines indexed."""
        if self._spans_in:
            spans, self._spans_in = self._spans_in, []
            self.record_spans(spans)
        n = 0
        for _ in range(10_000):  # a backlog (after a restart) is read a megabyte at a time
            n += self.collector.collect(budget=self.COLLECT_BUDGET)
            if n:
                await self.logs.notify()
            if not self.collector.behind:
                break
            await asyncio.sleep(0)  # the API, health checks and scrapes go on meanwhile
        return n

    async def evaluate(self) -> None:
        await self.alerts.evaluate(time.time())

    async def compact(self) -> None:
        now = time.time()
        self.metrics.compact(now)
        self.logs.expire(now)
        self.traces.expire(now)

    def record_spans(self, spans: list[Span]) -> None:
        """Store spans recorded in this process."""
        self.traces.add(spans)
        if self.otlp is not None:
            self._spans_out.extend(spans)

    def record_span(self, span: Span) -> None:
        """Keep one span recorded in this process (the gateway's, one per request); stored in
        batches with the next log collection, so a busy gateway costs one transaction per batch."""
        self._spans_in.append(span)

    async def export(self) -> int:
        """Ship what is new to the configured exporters; the lines and spans shipped.

        Log lines are shipped from a position kept in the log index (so a restart resumes
        where it stopped); spans from memory (spans received while the collector is away are
        kept, up to 100,000).
        """
        async with self._exporting:
            return await self._export()

    async def _export(self) -> int:
        assert self._session is not None
        shipped = 0
        if self.opensearch is not None:
            key = f"export:opensearch:{self.opensearch.url}/{self.opensearch.index}"
            known = self.logs.offset(key)
            last = known[1] if known is not None else 0
            batch = self.logs.after(last, LogSearch(limit=5000))
            if batch:
                try:
                    shipped += await self.opensearch.send(self._session, batch)
                    self.export_errors.pop("opensearch", None)
                except MonitorError as exc:
                    self.export_errors["opensearch"] = str(exc)
                    if "refused" not in str(exc):
                        return shipped  # the cluster is away: the same lines go again next time
                    log.warning("%s", exc)  # refused documents would be refused again: move on
                self.logs.add([], (key, 0, batch[-1].id))
        if self.otlp is not None and self._spans_out:
            chunk = [self._spans_out.popleft() for _ in range(min(1000, len(self._spans_out)))]
            try:
                shipped += await self.otlp.send(self._session, chunk)
                self.export_errors.pop("otlp", None)
            except MonitorError as exc:
                self.export_errors["otlp"] = str(exc)
                self._spans_out.extendleft(reversed(chunk))
        return shipped

    async def _on_spans(self, msg: Msg) -> None:
        try:
            spans = [Span.from_json(d) for d in json.loads(msg.data)]
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("dropped a malformed span batch: %s", exc)
            return
        self.traces.add(spans)
        if self.otlp is not None:
            self._spans_out.extend(spans)

    async def _publish_alert(self, doc: dict[str, Any]) -> None:
        if self._bus is not None:
            await self._bus.nats.publish(f"{Alert.SUBJECT}.{doc['rule']}", json.dumps(doc).encode())

    # -- summaries -------------------------------------------------------------------------------

    def red(self, window: float = 60.0, at: float | None = None) -> list[dict[str, Any]]:
        """Per service: requests/s, errors/s, error ratio, p50/p95/p99 (seconds), CPU (cores), RSS
        (bytes) and targets up, over the last ``window`` seconds."""
        at = time.time() if at is None else at
        w = f"{max(1, int(window))}s"
        calls = f"minga_entrypoint_calls_total[{w}]"
        queries = {
            "rps": f"sum by (service) (rate({calls}))",
            "errors": f'sum by (service) (rate(minga_entrypoint_calls_total{{outcome="error"}}[{w}]))',
            "cpu": f"sum by (service) (rate(process_cpu_seconds_total[{w}]))",
            "rss": "sum by (service) (process_resident_memory_bytes)",
            "up": "sum by (service) (up)",
            "targets": "count by (service) (up)",
            "inflight": "sum by (service) (minga_entrypoint_inflight)",
        }
        for q in (0.5, 0.95, 0.99):
            queries[f"p{round(q * 100)}"] = (
                f"histogram_quantile({q}, sum by (service, le) "
                f"(rate(minga_entrypoint_duration_seconds_bucket[{w}])))"
            )
        rows: dict[str, dict[str, Any]] = {}
        for key, query in queries.items():
            for series in self.engine.instant(query, at):
                service = series.labels.get("service", "")
                row = rows.setdefault(service, {"service": service})
                value = series.points[-1][1]
                row[key] = None if math.isnan(value) or math.isinf(value) else value
        for row in rows.values():
            rps, errors = row.get("rps"), row.get("errors") or 0.0
            row["error_ratio"] = (errors / rps) if rps else 0.0
        return sorted(rows.values(), key=lambda r: str(r["service"]))
