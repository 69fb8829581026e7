"""A small aiohttp app the gateway tests run as real upstream processes: ``replica.py PORT NAME``
(PORT 0: any free port, printed as ``replica listening on port N``).

- ``GET /healthz``                 200
- ``GET /hello?ms=&drop=NAME``     {"replica": NAME}; waits ``ms``; drops the connection when ``drop`` names it
- ``POST /echo?drop=NAME``         the body back, with what the replica saw in X-Seen-* headers
- ``GET /stream``                  a chunked body in three parts
- ``GET /ws``                      a WebSocket that echoes text frames
- ``POST /mode?status=N``          answer /hello with status N from now on (200 restores)
- ``GET /stats``                   {"requests": how many /hello and /echo requests arrived,
                                   "paths": every raw path asked for, in order}
- ``GET /metrics``                 a Prometheus line, as a replica's own endpoint
"""

from __future__ import annotations

import asyncio
import socket
import sys

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

NAME = sys.argv[2] if len(sys.argv) > 2 else "replica"
state: dict[str, object] = {"requests": 0, "status": 200, "paths": []}


@web.middleware
async def remember(request: web.Request, handler: Handler) -> web.StreamResponse:
    paths = state["paths"]
    assert isinstance(paths, list)
    if request.path != "/stats":
        paths.append(request.raw_path)
        del paths[:-1000]  # the latest thousand are plenty for a test
    return await handler(request)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text="replica_up 1\n")


def _maybe_drop(request: web.Request) -> None:
    if request.query.get("drop") == NAME and request.transport is not None:
        request.transport.abort()
        raise ConnectionResetError("dropped on purpose")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _count() -> None:
    n = state["requests"]
    assert isinstance(n, int)
    state["requests"] = n + 1


async def hello(request: web.Request) -> web.Response:
    _count()
    _maybe_drop(request)
    ms = float(request.query.get("ms", "0"))
    if ms:
        await asyncio.sleep(ms / 1000)
    status = state["status"]
    assert isinstance(status, int)
    return web.json_response({"replica": NAME}, status=status)


async def echo(request: web.Request) -> web.Response:
    _count()
    _maybe_drop(request)
    body = await request.read()
    return web.Response(
        body=body,
        headers={
            "X-Seen-Path": request.path_qs,
            "X-Seen-Request-ID": request.headers.get("X-Request-ID", ""),
            "X-Seen-Traceparent": request.headers.get("traceparent", ""),
            "X-Seen-Forwarded-For": request.headers.get("X-Forwarded-For", ""),
            "X-Seen-Chunked": str("chunked" in request.headers.get("Transfer-Encoding", "")),
            "X-Replica": NAME,
            "X-Seen-Subject": ",".join(request.headers.getall("X-Minga-Subject", [])),
        },
    )


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    for i in range(3):
        await response.write(b"part%d;" % i)
        await asyncio.sleep(0.01)
    await response.write_eof()
    return response


async def ws(request: web.Request) -> web.WebSocketResponse:
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for msg in sock:
        if msg.type == WSMsgType.TEXT:
            await sock.send_str(f"{NAME}:{msg.data}")
    return sock


async def mode(request: web.Request) -> web.Response:
    state["status"] = int(request.query["status"])
    return web.json_response(state)


async def stats(request: web.Request) -> web.Response:
    return web.json_response(state)


app = web.Application(client_max_size=64 * 1024**2, middlewares=[remember])
app.add_routes(
    [
        web.get("/healthz", healthz),
        web.get("/metrics", metrics),
        web.get("/hello", hello),
        web.post("/echo", echo),
        web.put("/echo", echo),
        web.get("/stream", stream),
        web.get("/ws", ws),
        web.post("/mode", mode),
        web.get("/stats", stats),
    ]
)

if __name__ == "__main__":
    # bound here, so that with PORT 0 the port is the one the system gave, and reported
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    print(f"replica listening on port {sock.getsockname()[1]}", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=10)
