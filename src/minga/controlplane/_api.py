"""The control plane's own HTTP API, which the CLI talks to (JSON, on 127.0.0.1).

- ``GET  /api/status``               the status document (``minga status --json``)
- ``GET  /api/wait?timeout=SECONDS&fail_fast=1``  waits until every replica is healthy: 200 and
  the status, or 504 and the status with ``"unhealthy"`` naming the services that are not (with
  ``fail_fast``, as soon as a replica exits before it was ever healthy; ``"failed"`` names those)
- ``GET  /api/logs?service=S&since=ISO&limit=N&before=CURSOR``  the replicas' log lines, merged in
  time order, a page at a time: the newest ``limit`` (1 to 10,000; 1000 by default) older than
  ``before`` (a page's ``next``): ``{"lines": [{"at", "instance", "text"}], "next": CURSOR or null}``.
  A page reads the files backwards from its end, never every line
- ``POST /api/stop``                 stops every replica, then the server itself
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from minga.deploy import log_files, page_logs

__all__ = ["api_routes"]

StatusFn = Callable[[], dict[str, Any]]
class WaitFn(Protocol):
    """Waits until every replica is healthy; with ``fail_fast``, False once one failed before it ever was."""

    def __call__(self, *, fail_fast: bool = ...) -> Awaitable[bool]: ...

StopFn = Callable[[], Awaitable[None]]

MAX_LOG_LINES = 10_000  # lines per page of /api/logs


def api_routes(status: StatusFn, wait_healthy: WaitFn, stop: StopFn, home: Path) -> web.RouteTableDef:
    """The routes above; ``home`` is where the replicas' logs are."""
    routes = web.RouteTableDef()

    @routes.get("/api/logs")
    async def _logs(request: web.Request) -> web.Response:
        try:
            since = datetime.fromisoformat(request.query["since"]) if "since" in request.query else None
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            raise web.HTTPBadRequest(text="since must be an ISO time with a zone, limit a number") from None
        if since is not None and since.tzinfo is None:
            raise web.HTTPBadRequest(text="since must carry a time zone (2026-01-31T12:00:00Z)")
        if not 1 <= limit <= MAX_LOG_LINES:
            raise web.HTTPBadRequest(
                text=f"limit must be between 1 and {MAX_LOG_LINES}: page back with the answer's `next` as `before`"
            )
        files = log_files(home, request.query.get("service"))
        try:
            page = await asyncio.to_thread(
                page_logs, files, since=since, limit=limit, before=request.query.get("before")
            )
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"before: {exc}") from None
        return web.json_response(
            {
                "lines": [{"at": ln.at.isoformat(), "instance": ln.instance, "text": ln.text} for ln in page.lines],
                "next": page.before,
            }
        )

    @routes.get("/api/status")
    async def _status(request: web.Request) -> web.Response:
        return web.json_response(status())

    @routes.get("/api/wait")
    async def _wait(request: web.Request) -> web.Response:
        try:
            timeout = float(request.query.get("timeout", "30"))
        except ValueError:
            raise web.HTTPBadRequest(text="timeout must be a number of seconds") from None
        fail_fast = request.query.get("fail_fast", "") in ("1", "true")
        healthy = False
        try:
            async with asyncio.timeout(timeout):
                healthy = await wait_healthy(fail_fast=fail_fast)
        except TimeoutError:
            pass
        doc = status()
        if healthy:
            return web.json_response(doc)
        doc["unhealthy"] = [s["name"] for s in doc["services"] if not s["healthy"]]
        doc["failed"] = [
            s["name"] for s in doc["services"] if any(i["last_exit"] is not None and not i["ever_healthy"]
                                                      for i in s["instances"])
        ]
        return web.json_response(doc, status=504)

    @routes.post("/api/stop")
    async def _stop(request: web.Request) -> web.Response:
        await stop()
        return web.json_response({"stopped": True})

    return routes
