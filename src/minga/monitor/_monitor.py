"""The control plane's monitor: scrape loop, log collector, span collector and alert evaluator.

State lives under ``<home>/monitor/`` (``metrics.db``, ``logs.db``, ``traces.db``). Run it with
``async with Monitor(...) as monitor`` inside a task group owner: entering starts the loops and
the query processes, leaving stops them, collects the logs written meanwhile once more, and
closes the stores.

Nothing here touches a store on the event loop: every write (samples, log lines, spans,
compaction) runs on one writer thread (SQLite leaves the interpreter lock while it works), and
every read runs in the query processes (:class:`~minga.monitor.QueryWorker`), under a deadline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

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
from minga.monitor._worker import QueryWorker, WorkerSettings, red_rows
from minga.spec import AlertSpec, MonitorSpec, OpenSearchSpec, OtlpSpec

__all__ = ["Monitor", "MonitorSettings"]

log = logging.getLogger("minga.monitor")

T = TypeVar("T")


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
    query_timeout: float = 10.0
    # queries run on the CPU time the data path leaves; half the cores at most keeps the rest free
    query_processes: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2))
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
            query_timeout=spec.query_timeout,
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
        self.query = QueryWorker(
            root, WorkerSettings(processes=s.query_processes, timeout=s.query_timeout, max_series=s.max_query_series)
        )
        # one thread owns every store connection once the monitor runs: writes never wait on the loop
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minga-monitor-store")
        self._write_busy_since: float | None = None
        self._write_error = ""
        self._last_write = 0.0
        self.scraper = Scraper(self.metrics, targets, timeout=min(2.0, s.scrape_interval), write=self._write)
        self.collector = LogCollector(self.logs, home / "logs")
        self.alerts = AlertEvaluator(alerts or {}, self.query.instant, self._publish_alert)
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
        await self.query.__aenter__()
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
        await self.query.__aexit__(None, None, None)
        await self._write(self._close_stores)
        self._writer.shutdown(wait=True)

    def _close_stores(self) -> None:
        self.metrics.close()
        self.logs.close()
        self.traces.close()

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the writer thread; its outcome is remembered for :meth:`health`."""

        def timed() -> T:
            self._write_busy_since = time.time()
            try:
                return fn(*args)
            finally:
                self._write_busy_since = None

        try:
            result = await asyncio.get_running_loop().run_in_executor(self._writer, timed)
        except Exception as exc:
            self._write_error = f"{getattr(fn, '__name__', fn)}: {type(exc).__name__}: {exc}"
            raise
        self._write_error = ""
        self._last_write = time.time()
        return result

    def health(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """The state of the monitor's parts: ``queries`` (the query processes) and ``storage`` (the
        writer thread: ``ok``, ``behind`` with log lines left to index, ``stalled`` on one write for
        over 30 s, ``failing`` when the last write raised)."""
        now = time.time() if now is None else now
        busy = self._write_busy_since
        if busy is not None and now - busy > 30.0:
            state, detail = "stalled", f"one write has run {now - busy:.0f}s"
        elif self._write_error:
            state, detail = "failing", self._write_error
        elif self.collector.behind:
            state, detail = "behind", "indexing a backlog of log lines"
        else:
            state, detail = "ok", f"last write {max(0.0, now - self._last_write):.1f}s ago" if self._last_write else ""
        return {"queries": self.query.health(), "storage": {"state": state, "detail": detail}}

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
            await self._write(self.record_spans, spans)
        n = 0
        for _ in range(10_000):  # a backlog (after a restart) is read a megabyte at a time
            n += await self._write(self.collector.collect, self.COLLECT_BUDGET)
            if n:
                await self.logs.notify()
            if not self.collector.behind:
                break
            await asyncio.sleep(0)  # the API, health checks and scrapes go on meanwhile
        return n

    async def evaluate(self) -> None:
        await self.alerts.evaluate(time.time())

    async def compact(self) -> None:
        await self._write(self._compact, time.time())

    def _compact(self, now: float) -> None:
        self.metrics.compact(now)
        self.logs.expire(now)
        self.traces.expire(now)

    def record_spans(self, spans: list[Span]) -> None:
        """Store spans recorded in this process (on the writer thread, once the monitor runs)."""
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
            known = await self._write(self.logs.offset, key)
            last = known[1] if known is not None else 0
            batch = await self._write(self.logs.after, last, LogSearch(limit=5000))
            if batch:
                try:
                    shipped += await self.opensearch.send(self._session, batch)
                    self.export_errors.pop("opensearch", None)
                except MonitorError as exc:
                    self.export_errors["opensearch"] = str(exc)
                    if "refused" not in str(exc):
                        return shipped  # the cluster is away: the same lines go again next time
                    log.warning("%s", exc)  # refused documents would be refused again: move on
                await self._write(self.logs.add, [], (key, 0, batch[-1].id))
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
        await self._write(self.traces.add, spans)
        if self.otlp is not None:
            self._spans_out.extend(spans)

    async def _publish_alert(self, doc: dict[str, Any]) -> None:
        if self._bus is not None:
            await self._bus.nats.publish(f"{Alert.SUBJECT}.{doc['rule']}", json.dumps(doc).encode())

    # -- summaries -------------------------------------------------------------------------------

    async def red(
        self, window: float = 60.0, at: float | None = None, *, budget: float | None = None
    ) -> list[dict[str, Any]]:
        """Per service: requests/s, errors/s, error ratio, p50/p95/p99 (seconds), CPU (cores), RSS
        (bytes) and targets up, over the last ``window`` seconds (a query process answers, within
        ``budget`` seconds)."""
        at = time.time() if at is None else at
        rows: list[dict[str, Any]] = await self.query.call(red_rows, window, at, budget=budget)
        return rows
