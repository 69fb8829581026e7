"""Monitoring: metrics scraped and queried, logs collected and searched, traces, alerts.

The control plane runs one :class:`Monitor` (state under ``MINGA_HOME/monitor``) and serves
its API under ``/api/monitor`` (see :func:`monitor_app` for every route)::

    GET /api/monitor/query?query=sum by (service) (rate(minga_entrypoint_calls_total[1m]))
    GET /api/monitor/query_range?query=...&start=-15m&end=now&step=15s
    GET /api/monitor/red?window=1m                 per service: rps, errors, p50/p95/p99, CPU, RSS
    GET /api/monitor/logs?service=orders&level=warning&q=timeout&start=-1h
    GET /api/monitor/logs/tail?after=1234&wait=10s  live tail (long poll)
    GET /api/monitor/traces?service=orders          GET /api/monitor/traces/<trace id>
    GET /api/monitor/dependencies                   GET /api/monitor/alerts
    GET /api/monitor/targets                        GET /api/monitor/names

In Python, the same data (on a store opened in this process: the control plane itself asks its
query processes, ``await monitor.query.call(op, *args)``, so no read runs on its event loop)::

    monitor.engine.instant(query, at)            -> [Series(labels, [(t, v)])]
    monitor.engine.range(query, start, end, step, timeout=5.0)
    monitor.logs.search(LogSearch(service="orders", level="error", text="timeout"))
    monitor.traces.traces(service="orders"), monitor.traces.tree(trace_id), monitor.traces.dependencies()
    monitor.alerts.firing()
    await monitor.red(window=60)

Every API query has a deadline (``timeout``, at most the monitor's ``query_timeout``, 10 s by
default) and answers 504 with ``{"error"}`` past it; label regexes run on RE2 in linear time.

Queries are a PromQL subset (:mod:`minga.monitor._query`): selectors with label matchers,
``rate``/``increase``/``*_over_time`` over a range, ``sum``/``avg``/``min``/``max``/``count``
``by``/``without``, ``histogram_quantile`` and arithmetic. Replicas expose
``minga_entrypoint_calls_total``, ``minga_entrypoint_duration_seconds`` (histogram),
``minga_entrypoint_inflight``, ``minga_queue_pending``, ``minga_event_loop_lag_seconds`` and the
``process_*`` metrics; every series carries ``service`` and ``instance``.
"""

from minga.monitor._alerts import Alert, AlertEvaluator
from minga.monitor._api import monitor_app, parse_time
from minga.monitor._expo import Sample, parse_exposition
from minga.monitor._export import OpenSearchExporter, OtlpExporter, bulk_body, ecs_document, otlp_body
from minga.monitor._logs import LogCollector, LogRecord, LogSearch, LogStore, parse_log_line
from minga.monitor._monitor import Monitor, MonitorSettings
from minga.monitor._query import QueryEngine, Series, parse_query
from minga.monitor._render import Panel, render_grafana, render_prometheus, standard_panels
from minga.monitor._scrape import Scraper, ScrapeTarget
from minga.monitor._traces import TraceStore
from minga.monitor._tsdb import Matcher, MetricStore, SeriesData, label_regex
from minga.monitor._worker import (
    QueryStores,
    QueryWorker,
    WorkerSettings,
    instant_doc,
    log_after,
    log_search,
    metric_names,
    range_doc,
    red_rows,
    series_at,
    trace_dependencies,
    trace_list,
    trace_spans,
    trace_tree,
)

__all__ = [
    "Alert",
    "AlertEvaluator",
    "LogCollector",
    "LogRecord",
    "LogSearch",
    "LogStore",
    "Matcher",
    "MetricStore",
    "Monitor",
    "MonitorSettings",
    "OpenSearchExporter",
    "OtlpExporter",
    "Panel",
    "QueryEngine",
    "QueryStores",
    "QueryWorker",
    "Sample",
    "ScrapeTarget",
    "Scraper",
    "Series",
    "SeriesData",
    "TraceStore",
    "WorkerSettings",
    "bulk_body",
    "ecs_document",
    "instant_doc",
    "label_regex",
    "log_after",
    "log_search",
    "metric_names",
    "monitor_app",
    "otlp_body",
    "parse_exposition",
    "parse_log_line",
    "parse_query",
    "parse_time",
    "range_doc",
    "red_rows",
    "render_grafana",
    "render_prometheus",
    "series_at",
    "standard_panels",
    "trace_dependencies",
    "trace_list",
    "trace_spans",
    "trace_tree",
]
