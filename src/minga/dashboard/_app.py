"""The dashboard as an aiohttp application the control plane mounts (``/dashboard``).

Under its prefix it serves the single page (``/``), its assets from package data
(``/static/...``: nothing is fetched from elsewhere, so it works without a network), and
a JSON API the page reads:

=======  ==========================  ==================================================================
GET      /api/overview               ``{"status", "alerts", "summaries"}``
GET      /api/events                 Server-Sent Events: ``overview`` on every change and refresh
GET      /api/services/{name}        ``{"service", "metrics"}``; ``?window=SECONDS`` (default 900)
GET      /api/logs                   ``{"lines"}``, newest first; ``?q=&service=&instance=&level=&trace=&since=&limit=``
GET      /api/logs/tail              Server-Sent Events: one ``line`` event per new matching line
GET      /api/traces                 ``{"traces"}``; ``?service=&limit=``
GET      /api/traces/{trace_id}      one trace with its spans, or 404
GET      /api/dependencies           ``{"nodes", "edges"}``
GET      /api/jobs                   ``{"jobs"}``, newest first
=======  ==========================  ==================================================================

``since`` is ISO 8601 or a duration back from now (``15m``, ``2h``). A bad parameter is a 400
with ``{"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from aiohttp import web

from minga.dashboard._source import LEVELS, DashboardSource, LogQuery
from minga.spec import parse_duration

__all__ = ["ASSETS", "dashboard_app"]

#: the files the page is made of, served from this package's data
ASSETS = ("app.css", "app.js", "charts.js", "favicon.svg", "index.html")

_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".html": "text/html",
}

SOURCE_KEY = web.AppKey("minga_dashboard_source", DashboardSource)
_CLOSING_KEY = web.AppKey("minga_dashboard_closing", asyncio.Event)
_ASSETS_KEY = web.AppKey("minga_dashboard_assets", dict)


def _load_assets() -> dict[str, bytes]:
    root = resources.files("minga.dashboard") / "static"
    return {name: (root / name).read_bytes() for name in ASSETS}


def dashboard_app(source: DashboardSource) -> web.Application:
    """An aiohttp application serving the dashboard over ``source``; mount it with ``add_subapp``."""
    app = web.Application()
    app[SOURCE_KEY] = source
    app[_CLOSING_KEY] = asyncio.Event()
    app[_ASSETS_KEY] = _load_assets()
    app.add_routes(
        [
            web.get("/", _index),
            web.get("/static/{name}", _asset),
            web.get("/api/overview", _overview),
            web.get("/api/events", _events),
            web.get("/api/services/{name}", _service),
            web.get("/api/logs", _logs),
            web.get("/api/logs/tail", _tail),
            web.get("/api/traces", _traces),
            web.get("/api/traces/{trace_id}", _trace),
            web.get("/api/dependencies", _dependencies),
            web.get("/api/jobs", _jobs),
        ]
    )

    async def closing(app: web.Application) -> None:
        app[_CLOSING_KEY].set()  # ends every open event stream, so shutdown does not wait on them

    app.on_shutdown.append(closing)
    return app


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


# -- the page ---------------------------------------------------------------------------------


async def _index(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[_ASSETS_KEY]["index.html"],
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = request.app[_ASSETS_KEY].get(name)
    if body is None:
        raise web.HTTPNotFound(text=f"no asset {name}")
    suffix = name[name.rfind(".") :]
    return web.Response(
        body=body, content_type=_TYPES.get(suffix, "application/octet-stream"), headers={"Cache-Control": "no-cache"}
    )


# -- JSON -------------------------------------------------------------------------------------


def _overview_doc(source: DashboardSource) -> dict[str, Any]:
    return {
        "status": source.status(),
        "alerts": source.alerts(),
        "summaries": source.summaries(),
        "at": datetime.now(UTC).isoformat(),
    }


async def _overview(request: web.Request) -> web.Response:
    return web.json_response(_overview_doc(request.app[SOURCE_KEY]))


async def _service(request: web.Request) -> web.Response:
    source = request.app[SOURCE_KEY]
    name = request.match_info["name"]
    window = _number(request, "window", 900.0, low=10.0, high=7 * 86400.0)
    doc = source.status()
    service = next((s for s in doc.get("services", []) if s.get("name") == name), None)
    if service is None:
        raise web.HTTPNotFound(text=json.dumps({"error": f"no service {name}"}), content_type="application/json")
    metrics = await source.service_metrics(name, window)
    return web.json_response({"service": service, "metrics": metrics})


def _number(request: web.Request, key: str, default: float, *, low: float, high: float) -> float:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _bad(f"{key} must be a number, not {raw!r}") from None
    return min(max(value, low), high)


def _when(raw: str, key: str) -> datetime:
    """``raw`` as an aware datetime: ISO 8601, or a duration back from now."""
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        try:
            return datetime.now(UTC) - timedelta(seconds=float(parse_duration(raw)))
        except ValueError:
            raise _bad(f"{key} must be an ISO 8601 time or a duration such as 15m, not {raw!r}") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def log_query(request: web.Request) -> LogQuery:
    """The :class:`LogQuery` a request's parameters describe; a bad one is a 400."""
    q = request.query
    level = q.get("level") or None
    if level is not None and level not in LEVELS:
        raise _bad(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    return LogQuery(
        text=q.get("q", "").strip(),
        service=q.get("service") or None,
        instance=q.get("instance") or None,
        level=level,
        trace_id=q.get("trace") or None,
        since=_when(q["since"], "since") if q.get("since") else None,
        until=_when(q["until"], "until") if q.get("until") else None,
        limit=int(_number(request, "limit", 200, low=1, high=5000)),
    )


def _at(line: dict[str, Any]) -> datetime:
    at = datetime.fromisoformat(line["at"])
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _newest_first(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``lines`` by time, the newest first; lines of the same instant keep the source's order. A
    source's own order may differ (the monitor's index keeps the order lines were collected in,
    replica by replica)."""
    return sorted(lines, key=_at, reverse=True)


async def _logs(request: web.Request) -> web.Response:
    query = log_query(request)
    lines = await request.app[SOURCE_KEY].search_logs(query)
    return web.json_response({"lines": _newest_first(lines)})


async def _traces(request: web.Request) -> web.Response:
    limit = int(_number(request, "limit", 50, low=1, high=1000))
    traces = await request.app[SOURCE_KEY].traces(request.query.get("service") or None, limit)
    return web.json_response({"traces": traces})


async def _trace(request: web.Request) -> web.Response:
    trace_id = request.match_info["trace_id"]
    trace = await request.app[SOURCE_KEY].trace(trace_id)
    if trace is None:
        raise web.HTTPNotFound(text=json.dumps({"error": f"no trace {trace_id}"}), content_type="application/json")
    return web.json_response(trace)


async def _dependencies(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SOURCE_KEY].dependencies())


async def _jobs(request: web.Request) -> web.Response:
    return web.json_response({"jobs": await request.app[SOURCE_KEY].jobs()})


# -- Server-Sent Events -----------------------------------------------------------------------


async def _open_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await resp.prepare(request)
    await resp.write(b"retry: 2000\n\n")
    return resp


def sse_event(kind: str, data: Any) -> bytes:
    """One Server-Sent Event: ``event: kind`` and its data as one line of JSON."""
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n".encode()


async def _until_closing(request: web.Request, events: AsyncGenerator[bytes, None]) -> web.StreamResponse:
    """Write ``events`` to an event stream until the client leaves or the server shuts down."""
    resp = await _open_stream(request)

    async def pump() -> None:
        async for chunk in events:
            await resp.write(chunk)

    pumping = asyncio.ensure_future(pump())
    closing = asyncio.ensure_future(request.app[_CLOSING_KEY].wait())
    try:
        await asyncio.wait({pumping, closing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        pumping.cancel()
        closing.cancel()
        await asyncio.wait({pumping})  # not `await pumping`: that would raise the pump's own cancellation
        await events.aclose()
        error = None if pumping.cancelled() else pumping.exception()
        if error is not None and not isinstance(error, ConnectionError):  # ConnectionError: the page went away
            raise error
    return resp


async def _events(request: web.Request) -> web.StreamResponse:
    source = request.app[SOURCE_KEY]

    async def overview() -> AsyncGenerator[bytes, None]:
        while True:
            yield sse_event("overview", _overview_doc(source))
            await source.wait_changed()

    return await _until_closing(request, overview())


async def _tail(request: web.Request) -> web.StreamResponse:
    query = log_query(request)
    source = request.app[SOURCE_KEY]

    async def lines() -> AsyncGenerator[bytes, None]:
        async for line in source.tail_logs(query):
            yield sse_event("line", line)

    return await _until_closing(request, lines())
