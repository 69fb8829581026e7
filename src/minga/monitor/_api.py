"""The monitor's JSON HTTP API, mounted by the control plane under ``/api/monitor``.

Times are Unix seconds, or relative to now: ``now``, ``-15m``, ``-1h``. Durations are
``30s``, ``5m``... or seconds. A malformed query answers 400 with ``{"error": "..."}``; one
refused by the cardinality guard answers 422; one stopped at its deadline 504. Every read runs
in the monitor's query processes (never on the control plane's event loop), within ``timeout``
(a duration; at most, and by default, the monitor's ``query_timeout``).

============================  =====================================================================
``GET /query``                ``query``, ``time``, ``timeout``: ``{"result": [{"labels", "value", "time"}]}``
``GET /query_range``          ``query``, ``start``, ``end``, ``step``: ``{"result": [{"labels", "points"}]}``
``GET /names``                every metric name stored
``GET /targets``              what is scraped, ``up``, the last error, series refused by the guard
``GET /red``                  ``window``: per service rate, errors, error ratio, p50/p95/p99, CPU, RSS
``GET /logs``                 ``start``, ``end``, ``service``, ``instance``, ``level``, ``trace_id``,
                              ``q`` (free text), ``limit`` (1..10000), ``before`` (an id: the page
                              before it): ``{"lines": [...], "last": id, "next": id}``, newest first;
                              ``next`` is the ``before`` of the following page, null after the last
``GET /logs/tail``            ``after`` (an id; none: from now), ``wait`` (seconds, long poll) and the
                              filters above: ``{"lines": [...], "last": id}``, oldest first
``GET /traces``               ``service``, ``since``, ``errors`` (1), ``limit``: trace summaries, newest first
``GET /traces/{trace_id}``    the trace as a tree of spans with offsets and durations
``GET /dependencies``         ``since``: edges ``{"from", "to", "calls", "errors"}`` derived from spans
``GET /alerts``               ``{"firing", "pending", "history", "rules", "errors"}``
============================  =====================================================================
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from minga.durations import parse_prometheus_duration
from minga.errors import CardinalityError, QueryError, QueryTimeout
from minga.monitor._logs import LogSearch
from minga.monitor._monitor import Monitor
from minga.monitor._worker import (
    instant_doc,
    log_after,
    log_search,
    metric_names,
    range_doc,
    trace_dependencies,
    trace_list,
    trace_tree,
)

__all__ = ["monitor_app", "parse_time"]


def parse_time(value: str | None, default: float, now: float | None = None) -> float:
    """Unix seconds from ``value``: a number, ``now``, or ``-<duration>`` before now."""
    now = time.time() if now is None else now
    if value is None or value == "":
        return default
    if value == "now":
        return now
    try:
        if value.startswith("-") and not value[1:].replace(".", "", 1).isdigit():
            return now - parse_prometheus_duration(value[1:])
        return float(value)
    except ValueError:
        raise QueryError(value, "a time is Unix seconds, `now` or `-15m`") from None


def _seconds(value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        return parse_prometheus_duration(value)
    except ValueError:
        raise QueryError(value, "a duration looks like 30s, 5m or 1h") from None


def _int(value: str | None, default: int) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise QueryError(value, "expected a whole number") from None


def _search(request: web.Request, limit: int) -> LogSearch:
    q = request.query
    now = time.time()
    return LogSearch(
        start=parse_time(q.get("start"), 0.0, now) if q.get("start") else None,
        end=parse_time(q.get("end"), now, now) if q.get("end") else None,
        service=q.get("service") or None,
        instance=q.get("instance") or None,
        level=q.get("level") or None,
        trace_id=q.get("trace_id") or None,
        text=q.get("q") or None,
        limit=_int(q.get("limit"), limit),
        before=_int(q.get("before"), 0) or None,
    )


def _timeout(request: web.Request) -> float | None:
    value = request.query.get("timeout")
    return _seconds(value, 0.0) if value else None


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def monitor_app(monitor: Monitor) -> web.Application:
    """The API of ``monitor`` as an aiohttp application (mount it with ``add_subapp``)."""
    app = web.Application(middlewares=[_errors])
    routes = web.RouteTableDef()

    @routes.get("/query")
    async def _query(request: web.Request) -> web.Response:
        q = request.query
        at = parse_time(q.get("time"), time.time())
        return _json(await monitor.query.call_json(instant_doc, q.get("query", ""), at, budget=_timeout(request)))

    @routes.get("/query_range")
    async def _query_range(request: web.Request) -> web.Response:
        q = request.query
        now = time.time()
        end = parse_time(q.get("end"), now, now)
        start = parse_time(q.get("start"), end - 900, now)
        step = _seconds(q.get("step"), max(1.0, (end - start) / 120))
        body = await monitor.query.call_json(range_doc, q.get("query", ""), start, end, step, budget=_timeout(request))
        return _json(body)

    @routes.get("/names")
    async def _names(request: web.Request) -> web.Response:
        return web.json_response({"names": await monitor.query.call(metric_names)})

    @routes.get("/targets")
    async def _targets(request: web.Request) -> web.Response:
        return web.json_response({"targets": [s.to_json() for s in monitor.scraper.status.values()]})

    @routes.get("/red")
    async def _red(request: web.Request) -> web.Response:
        window = _seconds(request.query.get("window"), 60.0)
        return web.json_response({"window": window, "services": await monitor.red(window)})

    @routes.get("/logs")
    async def _logs(request: web.Request) -> web.Response:
        search = _search(request, 200)
        lines = await monitor.query.call(log_search, search, budget=_timeout(request))
        more = len(lines) == search.limit
        return web.json_response(
            {"lines": lines, "last": monitor.logs.last_id, "next": lines[-1]["id"] if more else None}
        )

    @routes.get("/logs/tail")
    async def _tail(request: web.Request) -> web.Response:
        after = request.query.get("after")
        last = monitor.logs.last_id if not after else _int(after, 0)
        wait = min(_seconds(request.query.get("wait"), 0.0), 60.0)
        search = _search(request, 1000)
        lines = await monitor.logs.wait_after(last, search, wait, lambda i, s: monitor.query.call(log_after, i, s))
        newest = max([r["id"] for r in lines], default=last)
        return web.json_response({"lines": lines, "last": newest})

    @routes.get("/traces")
    async def _traces(request: web.Request) -> web.Response:
        q = request.query
        since = parse_time(q.get("since"), 0.0) if q.get("since") else None
        found = await monitor.query.call(
            trace_list, q.get("service") or None, since, q.get("errors") in ("1", "true"), _int(q.get("limit"), 50)
        )
        return web.json_response({"traces": found})

    @routes.get("/traces/{trace_id}")
    async def _trace(request: web.Request) -> web.Response:
        tree = await monitor.query.call(trace_tree, request.match_info["trace_id"])
        if not tree["roots"]:
            return web.json_response({"error": "no such trace"}, status=404)
        return web.json_response(tree)

    @routes.get("/dependencies")
    async def _dependencies(request: web.Request) -> web.Response:
        q = request.query
        since = parse_time(q.get("since"), 0.0) if q.get("since") else None
        return web.json_response({"edges": await monitor.query.call(trace_dependencies, since)})

    @routes.get("/alerts")
    async def _alerts(request: web.Request) -> web.Response:
        ev = monitor.alerts
        return web.json_response(
            {
                "firing": [a.to_json() for a in ev.firing()],
                "pending": [a.to_json() for a in ev.active.values() if a.state == "pending"],
                "history": [a.to_json() for a in reversed(ev.history)],
                "rules": {
                    name: rule.model_dump(mode="json", by_alias=True) for name, rule in ev.rules.items()
                },
                "errors": ev.errors,
            }
        )

    app.add_routes(routes)
    return app


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except CardinalityError as exc:
        return web.json_response({"error": str(exc)}, status=422)
    except QueryTimeout as exc:
        return web.json_response({"error": str(exc)}, status=504)
    except QueryError as exc:
        return web.json_response({"error": str(exc)}, status=400)
