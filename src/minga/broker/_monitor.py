"""The monitoring endpoint: /varz and /connz as JSON over HTTP (aiohttp)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from minga.broker._config import bind_error
from minga.errors import UsageError

if TYPE_CHECKING:
    from minga.broker._server import Broker

__all__ = ["Monitor"]


class Monitor:
    """Serves a broker's figures: ``/varz``, ``/connz`` (``?subs=1``, ``offset``, ``limit``,
    ``state=open|closed|all``), ``/healthz``."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/varz", self._varz)
        app.router.add_get("/connz", self._connz)
        app.router.add_get("/healthz", self._healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise UsageError(bind_error(host, port, exc, "--monitor-port")) from None
        self._runner = runner
        server = site._server  # aiohttp exposes the bound socket only through the site's server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _varz(self, request: web.Request) -> web.Response:
        return web.json_response(self._broker.varz())

    async def _connz(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            offset = max(0, int(query.get("offset", "0")))
            limit = max(1, int(query.get("limit", "1024")))
        except ValueError:
            return web.json_response({"error": "offset and limit must be integers"}, status=400)
        subs = query.get("subs", "") in ("1", "true", "detail")
        try:
            connz = self._broker.connz(offset=offset, limit=limit, subs=subs, state=query.get("state", "open"))
        except UsageError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(connz)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})
