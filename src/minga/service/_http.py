"""The replica's HTTP server: ``@http`` routes and ``GET /healthz``, on aiohttp.

Path parameters, the query string and a JSON object body fill a method's parameters
(path wins over query, query over body); a single parameter annotated with a pydantic
model that is not in the path receives the whole body. A parameter annotated
``aiohttp.web.Request`` receives the request. The return value is sent as JSON, unless
it already is an aiohttp response.

An exception the service maps in ``http_errors`` answers with that status; an unknown path or
method answers a JSON 404 or 405 that lists the routes the replica serves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from minga.bus import TraceContext, current_trace, encode, incoming
from minga.errors import PayloadError, RemoteError
from minga.service._payload import Signature

__all__ = ["ErrorMap", "Invoke", "error_status", "json_error", "route_handler", "unrouted_as_json"]

log = logging.getLogger("minga.service")

Invoke = Callable[[str, dict[str, Any], TraceContext], Awaitable[Any]]
"""Runs one call of a method by name, with validated keyword arguments, in a trace."""

ErrorMap = Mapping[type[BaseException] | str, int]
"""Exception class or class name → HTTP status (:attr:`minga.Service.http_errors`)."""


def error_status(exc: BaseException, errors: ErrorMap) -> int | None:
    """The status ``errors`` maps ``exc`` to: its class or nearest base first, then its class name
    (or, for a :class:`~minga.errors.RemoteError`, the remote class name); None when unmapped."""
    for cls in type(exc).__mro__:
        if cls in errors:
            return errors[cls]
    names = [exc.remote_type] if isinstance(exc, RemoteError) else []
    names += [cls.__name__ for cls in type(exc).__mro__]
    for name in names:
        if name in errors:
            return errors[name]
    return None


@web.middleware
async def unrouted_as_json(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown paths and methods answer JSON, naming the routes this replica serves."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        routes = sorted(
            {f"{r.method} {r.resource.canonical}" for r in request.app.router.routes() if r.resource is not None}
        )
        message = f"no route for {request.method} {request.path}"
        return web.json_response(
            {"error": {"type": type(exc).__name__, "message": message, "routes": routes}}, status=exc.status
        )


def json_error(status: int, exc: BaseException) -> web.Response:
    """A JSON error response: ``{"error": {"type": ..., "message": ...}}``."""
    if isinstance(exc, RemoteError):  # another service's error: its own type and message
        error: dict[str, Any] = {"type": exc.remote_type, "message": exc.remote_message}
    else:
        error = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, PayloadError) and exc.errors:
        error["errors"] = exc.errors
    return web.json_response({"error": error}, status=status)


def _body_param(sig: Signature, path_params: set[str]) -> str | None:
    free = [p for p in sig.params if p.name not in path_params]
    if len(free) == 1:
        hint = sig.hints.get(free[0].name)
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            return free[0].name
    return None


def route_handler(
    method: str, func: Callable[..., Any], path_params: set[str], invoke: Invoke, errors: ErrorMap | None = None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler that validates the request against ``func``'s signature and calls ``invoke``;
    an exception that ``errors`` maps answers with its status."""
    sig = Signature.of(func, skip=(web.Request,))
    request_params = [name for name, hint in sig.hints.items() if hint is web.Request]
    body_param = _body_param(sig, path_params)

    async def handle(request: web.Request) -> web.StreamResponse:
        trace = incoming(request.headers.get("traceparent"))
        current_trace.set(trace)
        try:
            payload: dict[str, Any] = {}
            if request.can_read_body:
                raw = await request.read()
                try:
                    body = json.loads(raw) if raw else None
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise PayloadError(f"request body is not valid JSON: {exc}") from None
                if body_param is not None:
                    payload[body_param] = body
                elif isinstance(body, dict):
                    payload.update(body)
                elif body is not None:
                    raise PayloadError("request body must be a JSON object of the parameters")
            payload.update({k: v for k, v in request.query.items() if k != body_param})
            payload.update(request.match_info)
            kwargs = sig.kwargs(payload)
            kwargs.update({name: request for name in request_params})
            result = await invoke(method, kwargs, trace)
        except PayloadError as exc:
            return json_error(400, exc)
        except Exception as exc:
            status = error_status(exc, errors) if errors else None
            if status is not None:
                return json_error(status, exc)
            log.exception("HTTP %s %s raised %s", request.method, request.path, type(exc).__name__)
            return json_error(500, exc)
        if isinstance(result, web.StreamResponse):
            return result
        return web.Response(body=encode(result), content_type="application/json")

    return handle
